//! Phase 7 for HCP's retention change: an object copied onto itself with `x-hcp-retention` or
//! `x-hcp-retentionhold` (HCP's documented way to change them, manual "Setting retention for an
//! existing object") changes the object's Object Lock at the backend instead of copying it —
//! no new object or version. The object's current lock is read with a HEAD, HCP's change rules
//! decide (`hcp::retention::may_change`: lengthened, never shortened; `-1` never changes; no
//! change while on hold), then the gateway's own `PUT ?legal-hold` and `PUT ?retention` carry
//! it out through [`Retainer`], a typed client (the unit tests below use a fake).

use crate::hcp::labels::{Holds, LabelChange};
use crate::hcp::retention::{self, Context, LockMode, Protection, Refusal, Setting, Value};
use crate::request::validate::probes::At;
use crate::request::*;
use forward::Call;

mod holds;

/// A change asked for, validated: the value (classes already expanded) and the hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub value: Option<Value>,
    pub hold: Option<bool>,
    /// Labeled holds placed and released (`x-hcp-labelretentionhold`).
    pub labels: Option<Vec<LabelChange>>,
    /// The source's `versionId`, where the copy named one.
    pub version: Option<String>,
}

/// The object as the change found it, for the copy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::request) struct Changed {
    pub etag: String,
    pub last_modified: String,
}

/// The gateway's own requests of a retention change.
#[async_trait]
pub(in crate::request) trait Retainer: Send + Sync {
    /// The object's header (200), or `None`.
    async fn head(&self, at: At<'_>, version: Option<&str>) -> Option<ResponseHeader>;
    /// `PUT ?retention` of the version: `retention` or none; the backend's status.
    async fn put_retention(
        &self,
        at: At<'_>,
        version: Option<&str>,
        retention: Option<(LockMode, i64)>,
        bypass: bool,
    ) -> Option<u16>;
    /// `PUT ?legal-hold` of the version; the backend's status.
    async fn put_hold(&self, at: At<'_>, version: Option<&str>, on: bool) -> Option<u16>;
    /// The version's recorded holds (`None`: no label holds it); an error if unreadable.
    async fn holds(&self, at: At<'_>, version: &str) -> Result<Option<Holds>, String>;
    /// Records the version's holds (none recorded where no label holds).
    async fn keep_holds(&self, at: At<'_>, version: &str, holds: &Holds) -> Result<(), String>;
}

#[async_trait]
impl Retainer for Gateway {
    async fn head(&self, at: At<'_>, version: Option<&str>) -> Option<ResponseHeader> {
        use crate::request::validate::probes::Probe;
        self.object_head(at, version).await
    }

    async fn put_retention(
        &self,
        at: At<'_>,
        version: Option<&str>,
        retention: Option<(LockMode, i64)>,
        bypass: bool,
    ) -> Option<u16> {
        let xmlns = "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";
        let doc = match retention {
            None => format!("<Retention {xmlns}/>"),
            Some((mode, until)) => {
                let until = time::OffsetDateTime::from_unix_timestamp(until)
                    .ok()?
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok()?;
                format!(
                    "<Retention {xmlns}><Mode>{}</Mode><RetainUntilDate>{until}</RetainUntilDate></Retention>",
                    mode.as_str()
                )
            }
        };
        let mut headers = http::HeaderMap::new();
        if bypass {
            let yes = http::HeaderValue::from_static("true");
            headers.insert("x-amz-bypass-governance-retention", yes);
        }
        let op = Operation::PutObjectRetention;
        self.put_document(op, ("retention", version), at, headers, doc.as_bytes())
            .await
    }

    async fn put_hold(&self, at: At<'_>, version: Option<&str>, on: bool) -> Option<u16> {
        let status = if on { "ON" } else { "OFF" };
        let doc = format!(
            "<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>{status}</Status></LegalHold>"
        );
        let op = Operation::PutObjectLegalHold;
        let headers = http::HeaderMap::new();
        self.put_document(op, ("legal-hold", version), at, headers, doc.as_bytes())
            .await
    }

    async fn holds(&self, at: At<'_>, version: &str) -> Result<Option<Holds>, String> {
        self.read_holds(at, version).await
    }

    async fn keep_holds(&self, at: At<'_>, version: &str, holds: &Holds) -> Result<(), String> {
        self.write_holds(at, version, holds).await
    }
}

impl Gateway {
    /// The gateway's own `PUT ?sub` of an object's version with an XML document (Content-MD5
    /// as S3 asks for these); the backend's status.
    async fn put_document(
        &self,
        op: Operation,
        (sub, version): (&'static str, Option<&str>),
        at: At<'_>,
        mut headers: http::HeaderMap,
        doc: &[u8],
    ) -> Option<u16> {
        let xml = http::HeaderValue::from_static("application/xml");
        headers.insert(http::header::CONTENT_TYPE, xml);
        let mut params = Params::default().with(sub, "");
        if let Some(v) = version {
            params.set("versionId", v);
        }
        self.send_bytes(op, params, at, headers, doc).await
    }

    /// The gateway's own PUT of a small body held in memory (with its Content-MD5); the
    /// backend's status.
    pub(in crate::request) async fn send_bytes(
        &self,
        op: Operation,
        params: Params,
        at: At<'_>,
        mut headers: http::HeaderMap,
        doc: &[u8],
    ) -> Option<u16> {
        use base64::Engine as _;
        use md5::Digest as _;
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(doc));
        headers.insert("content-md5", http::HeaderValue::from_str(&md5).ok()?);
        let digest = sigv4::sha256_hex(doc);
        let req = sign::backend_request(
            sign::Outbound {
                op,
                method: &http::Method::PUT,
                params: &params,
                target: at.target,
                headers: &headers,
            },
            at.route,
            sign::BodyPlan {
                length: Some(doc.len() as u64),
                framing: BodyFraming::AsSent,
                payload_hash: &digest,
            },
            SystemTime::now(),
            &self.signing_keys,
        );
        let (header, _) = self.backend_exchange(req, Some(doc), at.route).await?;
        Some(header.status.as_u16())
    }

    /// [`change`] of the call's object, now, in the call's tenant's retention mode.
    async fn change_for(&self, call: &Call<'_>, asked: &Change) -> Result<Changed, HcpError> {
        let at = At {
            target: call.target,
            route: call.route,
        };
        let compliance =
            call.route.tenant.retention.mode == crate::config::RetentionMode::Compliance;
        change(self, at, asked, compliance, retention::now()).await
    }

    /// HCP's retention change (`Params::effects.change`), carried out and answered as the copy
    /// that asked for it: `CopyObjectResult`, or HCP's error.
    pub(in crate::request) async fn change_retention(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        call: &Call<'_>,
        asked: &Change,
    ) -> Flow {
        let changed = match self.change_for(call, asked).await {
            Ok(c) => c,
            Err(e) => return self.answer(s, x, e).await,
        };
        let body = Bytes::from(copy_result(&changed));
        let mut resp = ResponseHeader::build(200, Some(4)).expect("status");
        resp.insert_header(http::header::CONTENT_TYPE, "application/xml")
            .expect("static");
        resp.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())
            .expect("digits");
        self.answer_own(s, x, resp, body).await
    }

    /// What HCP's headers ask of a version once it is written: a completed multipart upload's
    /// retention, hold and labels (manual: retention is "calculated based on the time when the
    /// multipart upload was completed"), changed as a copy onto itself would change them — if
    /// that fails, the version is removed again and the error answered, never an unprotected
    /// object behind an answer; and a new object's labeled holds (it was stored on hold) — if
    /// they cannot be recorded, the object stays on hold and the error is answered.
    pub(in crate::request) async fn keep_written(
        &self,
        call: &Call<'_>,
        upstream: &ResponseHeader,
    ) -> Result<(), HcpError> {
        let effects = &call.params.effects;
        let asked = match call.op {
            Operation::CompleteMultipartUpload => effects.change.as_ref(),
            Operation::PutObject | Operation::CopyObject => effects.after_write.as_ref(),
            _ => None,
        };
        let Some(asked) = asked else {
            return Ok(());
        };
        let version = upstream
            .headers
            .get("x-amz-version-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let asked = Change {
            version: version.clone(),
            ..asked.clone()
        };
        let Err(e) = self.change_for(call, &asked).await else {
            return Ok(());
        };
        if call.op != Operation::CompleteMultipartUpload {
            return Err(e.with_cause("the new object is kept on hold: its labels were not kept"));
        }
        // The completed version, or (without versions) the object.
        let params = match version {
            Some(v) => Params::default().with("versionId", v),
            None => Params::default(),
        };
        let removed = self.backend_call(Operation::DeleteObject, params, call.target, call.route);
        let status = removed.await.map(|(h, _)| h.status.as_u16());
        if !matches!(status, Some(200 | 204)) {
            return Err(e.with_cause(format!(
                "the completed object kept no retention and could not be removed ({status:?})"
            )));
        }
        Err(e)
    }
}

fn refused(r: Refusal) -> HcpError {
    match r {
        Refusal::Invalid(why) => {
            HcpError::new(HcpCode::InvalidArgument).with_message(format!("x-hcp-retention: {why}."))
        }
        Refusal::NotAllowed(why) => {
            HcpError::new(HcpCode::AccessDenied).with_message(format!("x-hcp-retention: {why}."))
        }
    }
}

/// Carries out `change` on the object at `at`, at time `now`, in a namespace whose retention
/// is compliance (`compliance`) or enterprise.
pub(in crate::request) async fn change(
    r: &dyn Retainer,
    at: At<'_>,
    change: &Change,
    compliance: bool,
    now: i64,
) -> Result<Changed, HcpError> {
    let version = change.version.as_deref();
    let Some(head) = r.head(at, version).await else {
        let key = at.target.key_lossy().unwrap_or_default();
        return Err(HcpError::new(HcpCode::NoSuchKey).with_key(key));
    };
    let (current, held) = rewrite::object_lock_of(&head);
    let text = |name: &str| {
        head.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    // The version's record is named by its id ("null" where the bucket keeps none).
    let record = version.map_or_else(|| text("x-amz-version-id"), str::to_string);
    let record = if record.is_empty() {
        "null".to_string()
    } else {
        record
    };
    let (holds_now, holds_after) = holds_of(r, at, &record, held, change).await?;
    let added = httpdate::parse_http_date(&text("last-modified"))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(now, |d| d.as_secs() as i64);
    let held_then = holds_now.still_held(&holds_after);
    let new = match &change.value {
        None => None,
        Some(value) => new_setting(value, (current, added, now), held_then)?,
    };
    // The retention first, then the hold: a failure leaves a hold on, never one taken off.
    if let Some(setting) = new {
        let protection = Protection::of(Some(setting), None, compliance);
        // HCP's rules were checked above: the gateway's account may replace a governance
        // retention (a -2, or a change of mode) that S3 would keep without a bypass.
        let bypass = current != Setting::Allowed;
        let mut status = r
            .put_retention(at, version, protection.retention, bypass)
            .await;
        if protection.retention.is_none() && status != Some(200) {
            // A backend that cannot remove a retention (Ceph RGW wants a mode and a date) ends
            // it instead, a moment from now.
            let ended = Some((LockMode::Governance, now + 2));
            status = r.put_retention(at, version, ended, bypass).await;
        }
        if status != Some(200) {
            return Err(failed("changing the retention", status));
        }
    }
    // The labels' record before the backend's hold: placed, they are recorded before the
    // hold goes on; released, the hold comes off only after the record is gone.
    let labelled = !holds_now.labels.is_empty() || !holds_after.labels.is_empty();
    if labelled && holds_now != holds_after {
        r.keep_holds(at, &record, &holds_after)
            .await
            .map_err(|cause| {
                HcpError::new(HcpCode::InternalError)
                    .with_cause(format!("keeping the labeled holds: {cause}"))
            })?;
    }
    let on = holds_after.any();
    if on != held {
        let status = r.put_hold(at, version, on).await;
        if status != Some(200) {
            return Err(failed("changing the hold", status));
        }
    }
    Ok(Changed {
        etag: text("etag"),
        last_modified: text("last-modified"),
    })
}

/// A backend's refusal of the gateway's own Object Lock request, as HCP's error.
fn failed(what: &str, status: Option<u16>) -> HcpError {
    match status {
        // S3: "Bucket is missing Object Lock Configuration".
        Some(400) => HcpError::new(HcpCode::InvalidArgument).with_message(
            "This bucket cannot keep retention: it was created without S3 Object Lock.",
        ),
        _ => HcpError::new(HcpCode::InternalError)
            .with_cause(format!("{what}: the backend answered {status:?}")),
    }
}

/// What the backend is to keep for HCP's `value`, asked of a version with setting `current`
/// added at `added`, at time `now` (`None`: nothing changes there): HCP's change rules, and no
/// change while a hold stays on.
fn new_setting(
    value: &Value,
    (current, added, now): (Setting, i64, i64),
    held_then: bool,
) -> Result<Option<Setting>, HcpError> {
    let ctx = Context {
        now,
        added,
        current,
    };
    let classes = retention::Classes::new();
    let new = retention::resolve(value, &ctx, &classes)
        .and_then(retention::keepable)
        .map_err(refused)?;
    retention::may_change(current, new, now).map_err(refused)?;
    if held_then && new != current {
        return Err(HcpError::new(HcpCode::AccessDenied)
            .with_message("The object is on hold: its retention does not change."));
    }
    // What the backend keeps changes only where the kept settings differ (a date already past
    // keeps nothing).
    let kept = retention::kept_at(new, now);
    Ok(Some(kept).filter(|k| *k != retention::kept_at(current, now)))
}

/// The version's holds as they are and as `change` leaves them. Where the backend's legal hold
/// is on in a namespace that keeps labeled holds, the record says which holds hold it (none
/// recorded: the unlabeled hold alone); elsewhere the backend's hold is the unlabeled hold.
async fn holds_of(
    r: &dyn Retainer,
    at: At<'_>,
    record: &str,
    held: bool,
    change: &Change,
) -> Result<(Holds, Holds), HcpError> {
    let unlabeled = Holds {
        hold: held,
        labels: std::collections::BTreeSet::new(),
    };
    let now = if held && at.route.tenant.retention.labels_bucket.is_some() {
        r.holds(at, record)
            .await
            .map_err(|cause| {
                HcpError::new(HcpCode::ServiceUnavailable)
                    .with_message("The object's holds could not be read; try again.")
                    .with_cause(cause)
            })?
            .unwrap_or(unlabeled)
    } else {
        unlabeled
    };
    let labels = match &change.labels {
        None => now.labels.clone(),
        Some(changes) => now.apply(changes).map_err(|why| {
            HcpError::new(HcpCode::InvalidArgument)
                .with_message(format!("x-hcp-labelretentionhold: {why}."))
        })?,
    };
    let after = Holds {
        hold: change.hold.unwrap_or(now.hold),
        labels,
    };
    Ok((now, after))
}

/// The copy's answer: S3's `CopyObjectResult` for the object as it is.
pub(in crate::request) fn copy_result(changed: &Changed) -> String {
    let modified = httpdate::parse_http_date(&changed.last_modified)
        .ok()
        .map(|t| {
            time::OffsetDateTime::from(t)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        })
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult><LastModified>{}</LastModified><ETag>{}</ETag></CopyObjectResult>",
        quick_xml::escape::escape(modified.as_str()),
        quick_xml::escape::escape(changed.etag.as_str())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A backend object with a lock, and the requests made of it.
    struct Fake {
        head: Option<ResponseHeader>,
        calls: Mutex<Vec<String>>,
        /// The labeled-holds record.
        record: Mutex<Option<Holds>>,
    }

    #[async_trait]
    impl Retainer for Fake {
        async fn head(&self, _: At<'_>, _: Option<&str>) -> Option<ResponseHeader> {
            self.head.clone()
        }
        async fn put_retention(
            &self,
            _: At<'_>,
            _: Option<&str>,
            retention: Option<(LockMode, i64)>,
            bypass: bool,
        ) -> Option<u16> {
            let call = format!("retention {retention:?} bypass {bypass}");
            self.calls.lock().unwrap().push(call);
            Some(200)
        }
        async fn put_hold(&self, _: At<'_>, _: Option<&str>, on: bool) -> Option<u16> {
            self.calls.lock().unwrap().push(format!("hold {on}"));
            Some(200)
        }
        async fn holds(&self, _: At<'_>, version: &str) -> Result<Option<Holds>, String> {
            assert_eq!(version, "v1");
            Ok(self.record.lock().unwrap().clone())
        }
        async fn keep_holds(&self, _: At<'_>, version: &str, h: &Holds) -> Result<(), String> {
            assert_eq!(version, "v1");
            let labels: Vec<&str> = h.labels.iter().map(String::as_str).collect();
            let call = format!("record hold {} labels {labels:?}", h.hold);
            self.calls.lock().unwrap().push(call);
            *self.record.lock().unwrap() = Some(h.clone()).filter(|h| !h.labels.is_empty());
            Ok(())
        }
    }

    fn object(until: Option<&str>, hold: bool) -> Fake {
        let mut h = ResponseHeader::build(200, None).unwrap();
        h.insert_header("etag", "\"e\"").unwrap();
        h.insert_header("x-amz-version-id", "v1").unwrap();
        h.insert_header("last-modified", "Mon, 01 Jun 2026 00:00:00 GMT")
            .unwrap();
        if let Some(u) = until {
            h.insert_header("x-amz-object-lock-mode", "GOVERNANCE")
                .unwrap();
            h.insert_header("x-amz-object-lock-retain-until-date", u)
                .unwrap();
        }
        if hold {
            h.insert_header("x-amz-object-lock-legal-hold", "ON")
                .unwrap();
        }
        Fake {
            head: Some(h),
            calls: Mutex::new(Vec::new()),
            record: Mutex::new(None),
        }
    }

    async fn run(
        fake: &Fake,
        value: Option<&str>,
        hold: Option<bool>,
    ) -> Result<Changed, HcpError> {
        run_labels(fake, value, hold, None).await
    }

    /// A change in a namespace that keeps labeled holds.
    async fn run_labels(
        fake: &Fake,
        value: Option<&str>,
        hold: Option<bool>,
        labels: Option<&str>,
    ) -> Result<Changed, HcpError> {
        let mut tenant = crate::config::Tenant::for_tests();
        tenant.retention.labels_bucket = Some("holds".into());
        let backend = BackendRuntime::for_tests();
        let route = Route {
            tenant: &tenant,
            backend: &backend,
            backend_bucket: Some("b".into()),
            credentials: None,
        };
        let target = Target {
            tenant: "t".into(),
            bucket: Some("b".into()),
            raw_key: Some(b"k".to_vec()),
            virtual_host: false,
        };
        let change = Change {
            value: value.map(|v| Value::parse(v).unwrap()),
            hold,
            labels: labels.map(|l| crate::hcp::labels::parse(l.as_bytes()).unwrap()),
            version: None,
        };
        let at = At {
            target: &target,
            route: &route,
        };
        // 2026-06-02T00:00:00Z.
        super::change(fake, at, &change, false, 1_780_358_400).await
    }

    fn calls(fake: &Fake) -> Vec<String> {
        fake.calls.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn a_retention_is_lengthened_never_shortened() {
        // Until 2026-07-01; the object was added 2026-06-01.
        let fake = object(Some("2026-07-01T00:00:00Z"), false);
        let done = run(&fake, Some("A+60d"), None).await.unwrap();
        assert_eq!(done.etag, "\"e\"");
        assert_eq!(
            calls(&fake),
            ["retention Some((Governance, 1785456000)) bypass true"]
        );
        let fake = object(Some("2026-07-01T00:00:00Z"), false);
        let e = run(&fake, Some("A+10d"), None).await.unwrap_err();
        assert_eq!(e.code, HcpCode::AccessDenied);
        let e = run(&fake, Some("0"), None).await.unwrap_err();
        assert_eq!(e.code, HcpCode::AccessDenied);
        assert!(calls(&fake).is_empty(), "{:?}", calls(&fake));
        // R counts from the current date.
        let fake = object(Some("2026-07-01T00:00:00Z"), false);
        run(&fake, Some("R+1d"), None).await.unwrap();
        assert_eq!(
            calls(&fake),
            ["retention Some((Governance, 1782950400)) bypass true"]
        );
    }

    #[tokio::test]
    async fn holds_come_and_go_and_keep_the_retention_while_on() {
        let fake = object(Some("2026-07-01T00:00:00Z"), true);
        let e = run(&fake, Some("A+60d"), None).await.unwrap_err();
        assert_eq!(e.code, HcpCode::AccessDenied);
        // Released and lengthened in one request: the retention first, so that a failure
        // leaves the hold on.
        run(&fake, Some("A+60d"), Some(false)).await.unwrap();
        assert_eq!(
            calls(&fake),
            [
                "retention Some((Governance, 1785456000)) bypass true",
                "hold false"
            ]
        );
        let fake = object(None, false);
        run(&fake, None, Some(true)).await.unwrap();
        assert_eq!(calls(&fake), ["hold true"]);
        // -2 becomes 0: the retention removed.
        let fake = object(Some("2106-02-06T00:00:00Z"), false);
        run(&fake, Some("0"), None).await.unwrap();
        assert_eq!(calls(&fake), ["retention None bypass true"]);
        // No object: NoSuchKey.
        let gone = Fake {
            head: None,
            calls: Mutex::new(Vec::new()),
            record: Mutex::new(None),
        };
        let e = run(&gone, Some("A+1d"), None).await.unwrap_err();
        assert_eq!(e.code, HcpCode::NoSuchKey);
    }

    /// Labels are recorded before the backend's hold goes on and the record is gone before it
    /// comes off; the unlabeled hold is the record's while a label holds; no retention change
    /// while a label holds; HCP's limit of 100 active labels.
    #[tokio::test]
    async fn labeled_holds_are_recorded_around_the_backend_s_hold() {
        let fake = object(None, false);
        let two = r#"[{"id":"L1","hold":true},{"id":"L2","hold":true}]"#;
        run_labels(&fake, None, None, Some(two)).await.unwrap();
        assert_eq!(
            calls(&fake),
            [r#"record hold false labels ["L1", "L2"]"#, "hold true"]
        );
        // The backend's hold is on now; the record says it is the labels'.
        let mut held = object(None, true);
        held.record = Mutex::new(fake.record.lock().unwrap().clone());
        let e = run_labels(&held, Some("A+60d"), None, None)
            .await
            .unwrap_err();
        assert_eq!(e.code, HcpCode::AccessDenied);
        // The unlabeled hold placed and one label released: the hold stays on.
        let one_off = r#"[{"id":"L1","hold":false}]"#;
        run_labels(&held, None, Some(true), Some(one_off))
            .await
            .unwrap();
        assert_eq!(calls(&held), [r#"record hold true labels ["L2"]"#]);
        // The unlabeled hold released: the label still holds.
        run_labels(&held, None, Some(false), None).await.unwrap();
        assert_eq!(calls(&held)[1], r#"record hold false labels ["L2"]"#);
        assert_eq!(calls(&held).len(), 2);
        // The last label released: the record goes, then the backend's hold.
        let last = r#"[{"id":"L2","hold":false}]"#;
        run_labels(&held, None, None, Some(last)).await.unwrap();
        assert_eq!(
            calls(&held)[2..],
            ["record hold false labels []", "hold false"]
        );
        // Released and lengthened in one request: allowed, the retention first.
        let mut both = object(Some("2026-07-01T00:00:00Z"), true);
        both.record = Mutex::new(Some(Holds {
            hold: false,
            labels: ["L".to_string()].into(),
        }));
        let off = r#"[{"id":"L","hold":false}]"#;
        run_labels(&both, Some("A+60d"), None, Some(off))
            .await
            .unwrap();
        assert_eq!(
            calls(&both)[1..],
            ["record hold false labels []", "hold false"]
        );
        // A hold without a record is the unlabeled hold: a label placed keeps it.
        let plain = object(None, true);
        run_labels(&plain, None, None, Some(r#"[{"id":"N","hold":true}]"#))
            .await
            .unwrap();
        assert_eq!(calls(&plain), [r#"record hold true labels ["N"]"#]);
        // 100 active labels at most.
        let full = object(None, true);
        *full.record.lock().unwrap() = Some(Holds {
            hold: false,
            labels: (0..100).map(|i| format!("l{i}")).collect(),
        });
        let more = r#"[{"id":"x","hold":true}]"#;
        let e = run_labels(&full, None, None, Some(more)).await.unwrap_err();
        assert_eq!((e.status, e.code), (400, HcpCode::InvalidArgument));
        assert!(calls(&full).is_empty());
    }

    #[test]
    fn the_answer_is_s3_s_copy_result() {
        let doc = copy_result(&Changed {
            etag: "\"e\"".into(),
            last_modified: "Mon, 01 Jun 2026 00:00:00 GMT".into(),
        });
        assert!(
            doc.contains("<LastModified>2026-06-01T00:00:00Z</LastModified>"),
            "{doc}"
        );
        assert!(doc.contains("<ETag>&quot;e&quot;</ETag>"), "{doc}");
    }
}
