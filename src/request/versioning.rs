//! HCP's versioning of a bucket whose backend keeps every version. In a namespace with HCP's
//! retention each bucket is an S3 Object Lock bucket, whose versioning S3 keeps `Enabled` and
//! never suspends; HCP's bucket has versioning enabled, disabled (`Suspended`) or never set
//! (manual, "Enabling or disabling versioning for a bucket"), and while it is not enabled a
//! name that exists is not stored again (409, the no-overwrite rule), an old version asked for
//! is the current one, and answers name no version.
//!
//! Where such a tenant keeps records (`records_bucket`), the gateway keeps that status as the
//! record `versioning/<backend bucket>` (`request::records`): written "never set" before it
//! creates a bucket, changed by `PUT ?versioning`, read by `GET ?versioning` and by everything
//! that asks whether the bucket keeps versions ([`Gateway::bucket_versioning`]; this replica
//! sees a change at once, another within the 5 s it keeps an answer). The backend still keeps
//! every version — a write over a name while versioning is disabled is refused before it is
//! sent, and nothing a client asks can make the backend drop a version its retention keeps. A
//! bucket without a record (one created before, or beside the gateway) is as the backend says.

use crate::request::validate::probes::{At, Probe};
use crate::request::*;
use forward::Call;

/// A bucket's versioning as HCP shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::request) enum Status {
    /// Never enabled: no explicit status.
    Never,
    Enabled,
    Suspended,
}

impl Status {
    fn record(self) -> &'static [u8] {
        match self {
            Status::Never => b"never",
            Status::Enabled => b"Enabled",
            Status::Suspended => b"Suspended",
        }
    }

    fn of_record(body: &[u8]) -> Option<Status> {
        match body {
            b"never" => Some(Status::Never),
            b"Enabled" => Some(Status::Enabled),
            b"Suspended" => Some(Status::Suspended),
            _ => None,
        }
    }

    pub(in crate::request) fn enabled(self) -> bool {
        self == Status::Enabled
    }

    /// `GET ?versioning`'s answer: S3's document, with no `Status` where none was ever set.
    fn document(self) -> Vec<u8> {
        use crate::request::validate::lock_document::LockDocument;
        match self {
            Status::Never => {
                b"<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>"
                    .to_vec()
            }
            Status::Enabled => LockDocument::Versioning(true).to_xml(),
            Status::Suspended => LockDocument::Versioning(false).to_xml(),
        }
    }
}

/// Whether the gateway keeps HCP's versioning status for the tenant's locked buckets: a tenant
/// with HCP's retention (its buckets keep versions at the backend) and records.
pub(in crate::request) fn kept_by_gateway(tenant: &crate::config::Tenant) -> bool {
    tenant.retention.mode != crate::config::RetentionMode::Off && tenant.records_bucket.is_some()
}

/// Whether the call is a `GET`/`PUT ?versioning` in a tenant where the gateway keeps HCP's
/// versioning status (asked before anything is read).
pub(in crate::request) fn may_answer(call: &Call<'_>) -> bool {
    matches!(
        call.op,
        Operation::GetBucketVersioning | Operation::PutBucketVersioning
    ) && kept_by_gateway(call.route.tenant)
}

fn record_name(at: At<'_>) -> String {
    let bucket = at.route.backend_bucket.as_deref().unwrap_or_default();
    format!("versioning/{bucket}")
}

fn unavailable(cause: String) -> HcpError {
    HcpError::new(HcpCode::ServiceUnavailable)
        .with_message("The bucket's versioning could not be read or recorded; try again.")
        .with_cause(cause)
}

impl Gateway {
    /// The status the gateway keeps for `at`'s bucket: `None` where it keeps none (a tenant
    /// without HCP's retention or records, a bucket without Object Lock or without a record).
    pub(in crate::request) async fn kept_versioning(
        &self,
        at: At<'_>,
    ) -> Result<Option<Status>, String> {
        if !kept_by_gateway(at.route.tenant) {
            return Ok(None);
        }
        match self.lock_known(at).await {
            Some(true) => {}
            Some(false) => return Ok(None),
            // (Read as unlocked, the backend's Enabled would stand for a status the gateway
            // may have recorded otherwise.)
            None => return Err("the bucket's Object Lock configuration could not be read".into()),
        }
        let records = records::Records::of_tenant(at).expect("records_bucket");
        let body = self.get_record(&records, record_name(at)).await?;
        match body {
            None => Ok(None),
            Some(body) => Status::of_record(&body)
                .map(Some)
                .ok_or_else(|| "a versioning record that does not parse".to_string()),
        }
    }

    async fn record_versioning(&self, at: At<'_>, status: Status) -> Result<(), String> {
        let records = records::Records::of_tenant(at).expect("records_bucket");
        self.put_record(&records, record_name(at), status.record())
            .await
    }

    /// Before a bucket is created where the gateway keeps versioning: its status, never set
    /// (HCP's bucket starts without versioning; the backend's, with Object Lock, is Enabled).
    /// The owner's turn and check came first (`owners`): no bucket of the name exists now.
    pub(in crate::request) async fn versioning_at_creation(
        &self,
        call: &Call<'_>,
    ) -> Result<(), HcpError> {
        if call.op != Operation::CreateBucket
            || !kept_by_gateway(call.route.tenant)
            || !call.params.effects.lock_bucket
        {
            return Ok(());
        }
        let at = At {
            target: call.target,
            route: call.route,
        };
        self.record_versioning(at, Status::Never)
            .await
            .map_err(unavailable)
    }

    /// After a bucket was deleted: its versioning record goes too (a failure leaves a record
    /// that the next creation of the name writes over; logged).
    pub(in crate::request) async fn versioning_after_delete(&self, call: &Call<'_>) {
        if call.op != Operation::DeleteBucket || !kept_by_gateway(call.route.tenant) {
            return;
        }
        let at = At {
            target: call.target,
            route: call.route,
        };
        let records = records::Records::of_tenant(at).expect("records_bucket");
        if let Err(e) = self.delete_record(&records, record_name(at)).await {
            tracing::warn!(bucket = ?call.route.backend_bucket, "versioning records: {e}");
        }
    }

    /// HCP's DELETE of an object whose current version is a delete marker, or of a name that is
    /// no object, where the backend keeps versions: "If you try to delete an object where the
    /// current version is a delete marker or delete record, HCP returns a 204 (No Content)"
    /// and nothing more — S3 would stack another delete marker (or make one for a name that
    /// never was), which `GET ?versions` would then list. Asked of a DELETE that names no
    /// version (a folder's too) in such a bucket; a HEAD that finds an object, or says
    /// nothing, leaves the DELETE to the backend.
    ///
    /// A DELETE the backend answers all the same (`backend_s`): a browser's, whose answer
    /// carries the bucket's CORS headers, and a conditional one (`If-Match`), whose condition
    /// the guards judge (`probes::check_delete_if_match`); and a 404 that does not say the name is a delete marker's is taken
    /// for no object only while the bucket is there (a bucket gone is the backend's
    /// NoSuchBucket).
    pub(in crate::request) async fn nothing_to_delete(
        &self,
        call: &Call<'_>,
        backend_s: bool,
    ) -> bool {
        // s3s-fs keeps no versions and reads no version id: one named (but `null`, the object
        // itself) names no version there — HCP's 204, nothing deleted — where s3s-fs would
        // delete the object.
        // (A bucket that is not there is s3s-fs's NoSuchBucket.)
        let at = At {
            target: call.target,
            route: call.route,
        };
        let s3s_fs = call.route.backend.target.engine() == Some(crate::config::LocalEngine::S3sFs);
        let named = call.params.get("versionId").filter(|v| *v != "null");
        if call.op == Operation::DeleteObject && s3s_fs && named.is_some() {
            return self.bucket_status(at).await == Some(200);
        }
        // (A folder's name too: HCP's 204 for a folder that does not exist — folders have
        // no versions, so none of its delete markers either.)
        if call.op != Operation::DeleteObject || call.params.get("versionId").is_some() || backend_s
        {
            return false;
        }
        // (Where the gateway keeps HCP's status, the backend keeps every version whatever it
        // is: a locked bucket.)
        let kept = kept_by_gateway(call.route.tenant) && self.lock_known(at).await == Some(true);
        if !kept && self.bucket_versioning(at).await != Some(true) {
            return false;
        }
        let Some(head) = self
            .object_answer(at, None)
            .await
            .filter(|h| h.status == 404)
        else {
            return false;
        };
        // (S3's header or, signed OBS's way, OBS's own.)
        super::respond::rewrite::is_delete_marker(&head)
            || self.bucket_status(at).await == Some(200)
    }

    /// Whether the gateway answers the call's `GET`/`PUT ?versioning` itself: where it keeps
    /// the status ([`may_answer`]) of a bucket with Object Lock (a bucket without, or missing,
    /// is the backend's to answer).
    pub(in crate::request) async fn answers_versioning(&self, call: &Call<'_>) -> bool {
        let at = At {
            target: call.target,
            route: call.route,
        };
        // (A lock that could not be read is the gateway's to answer: 503, never the backend's
        // status for one the gateway may keep otherwise.)
        may_answer(call) && self.lock_known(at).await != Some(false)
    }

    /// HCP's `GET` and `PUT ?versioning` of a bucket whose status the gateway keeps: only its
    /// owner's (`owners`); a `PUT` reads the document as one sent on would be read
    /// (`lock_document`), records the status and answers 200 with HCP's `Location`; a `GET`
    /// answers the recorded status (a bucket without a record: the backend's, Enabled).
    pub(in crate::request) async fn answer_versioning(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        call: &Call<'_>,
        payload: &Payload,
    ) -> Flow {
        let at = At {
            target: call.target,
            route: call.route,
        };
        if let Err(e) = Box::pin(self.owners_before(call, None)).await {
            return self.stop(s, x, forward::Stop::Early(e)).await;
        }
        // The bucket as it is now (one deleted beside this replica keeps no status), and its
        // status; for a PUT, that the gateway keeps it.
        let kept = match self.bucket_status(at).await {
            Some(200) => self.kept_versioning(at).await.map_err(unavailable),
            Some(404) => {
                let bucket = call.target.bucket.as_deref().unwrap_or_default();
                Err(HcpError::new(HcpCode::NoSuchBucket).with_bucket(bucket))
            }
            other => Err(unavailable(format!(
                "a HEAD of the bucket answered {other:?}"
            ))),
        };
        let kept = match kept {
            Ok(kept) => kept,
            Err(e) => return self.stop(s, x, forward::Stop::Early(e)).await,
        };
        if call.op == Operation::GetBucketVersioning {
            let status = kept.unwrap_or(Status::Enabled);
            return self.answer_own_xml(s, x, &status.document()).await;
        }
        let doc = match self.read_document(s, x, (call.op, false), payload).await {
            Ok(doc) => doc,
            Err(stop) => return self.stop(s, x, stop).await,
        };
        let now = crate::hcp::retention::now();
        let read = crate::request::validate::lock_document::read(call.op, &doc, now);
        // (Counted while it was read; not held, uncounted, while the change is recorded.)
        drop(doc);
        let status = match read {
            Ok(crate::request::validate::lock_document::LockDocument::Versioning(true)) => {
                Status::Enabled
            }
            Ok(crate::request::validate::lock_document::LockDocument::Versioning(false)) => {
                Status::Suspended
            }
            Ok(_) => unreachable!("a versioning document reads as versioning"),
            Err(e) => return self.answer(s, x, e).await,
        };
        let recorded = self.record_versioning(at, status).await;
        self.forget_bucket_settings(call);
        if let Err(cause) = recorded {
            return self.answer(s, x, unavailable(cause)).await;
        }
        let mut resp = ResponseHeader::build(200, Some(3)).expect("status");
        resp.insert_header(http::header::CONTENT_LENGTH, "0")
            .expect("static");
        respond::rewrite::created_bucket_location(
            call.op,
            call.target.bucket.as_deref(),
            &mut resp,
        );
        self.answer_own(s, x, resp, Bytes::new()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_recorded_and_answered_as_hcp_shows_them() {
        for status in [Status::Never, Status::Enabled, Status::Suspended] {
            assert_eq!(Status::of_record(status.record()), Some(status));
        }
        assert_eq!(Status::of_record(b"enabled"), None);
        assert_eq!(Status::of_record(b""), None);
        assert!(Status::Enabled.enabled());
        assert!(!Status::Never.enabled() && !Status::Suspended.enabled());
        let never = String::from_utf8(Status::Never.document()).unwrap();
        assert!(!never.contains("Status"), "{never}");
        let on = String::from_utf8(Status::Enabled.document()).unwrap();
        assert!(on.contains("<Status>Enabled</Status>"), "{on}");
        let off = String::from_utf8(Status::Suspended.document()).unwrap();
        assert!(off.contains("<Status>Suspended</Status>"), "{off}");
    }
}
