//! Phase 8 for buffered answers: a backend's error or control document becomes HCP's.

use super::*;

impl Gateway {
    /// [`Gateway::settle`], then what HCP's retention headers ask of the written version (a
    /// multipart complete's retention, holds and labels; a copy's labeled holds):
    /// [`Gateway::keep_written`].
    pub(in crate::request) async fn settle_kept(
        &self,
        x: &mut Exchange,
        call: &Call<'_>,
        upstream: &ResponseHeader,
        body: Result<Vec<u8>, pingora::BError>,
        location: &str,
    ) -> Result<Bytes, HcpError> {
        let listed = match &body {
            Ok(b) => self.listing_owners(call, upstream, b).await,
            Err(_) => None,
        };
        let doc = self.settle(x, call, upstream, body, location, listed.as_ref())?;
        // (A copy's or a complete's answer is a document: it is settled here, not in
        // `records_after`.)
        self.forget_written_head(call);
        let etag = crate::request::acls::etag_in(&doc);
        let kept = self.keep_written(call, upstream, etag.as_deref()).await;
        // (A complete whose change failed was removed again; a copy is stored whatever
        // follows: its records are made, the first error answered.)
        if kept.is_err() && call.op == Operation::CompleteMultipartUpload {
            return kept.map(|()| doc);
        }
        self.owner_written(call, upstream, etag.as_deref());
        let recorded = self.acls_after(call, upstream, etag.as_deref()).await;
        self.folders_after(call).await;
        kept.and(recorded).map(|()| doc)
    }

    /// Turns a buffered backend answer into HCP's: the normalised document for a success, or
    /// the HCP error (including errors a backend hides in a 200, and copies answered without an
    /// ETag, which OBS documents as failures). `listed`: a listing's objects' owners, where
    /// they were read.
    pub(in crate::request) fn settle(
        &self,
        x: &mut Exchange,
        call: &Call<'_>,
        upstream: &ResponseHeader,
        body: Result<Vec<u8>, pingora::BError>,
        location: &str,
        listed: Option<&object_owners::EntryOwners>,
    ) -> Result<Bytes, HcpError> {
        let status = upstream.status.as_u16();
        let body = body.map_err(|e| {
            if e.etype() == &crate::backend::upstream::HELD_FULL {
                return crate::request::held::Full.error().with_cause(e.to_string());
            }
            let code = if e.etype() == &pingora::ErrorType::ReadTimedout {
                HcpCode::ServiceUnavailable
            } else {
                // Oversized, or cut off: nothing HCP could answer with.
                HcpCode::InternalError
            };
            HcpError::new(code).with_cause(format!("reading the backend's answer: {e}"))
        })?;
        let hidden =
            (200..300).contains(&status) && call.op.may_hide_error() && body_root_is_error(&body);
        if rewrite::is_error_status(status) || hidden {
            return Err(self.backend_error(x, call, upstream, &body, hidden));
        }
        if call.op.may_hide_error() && !rewrite::has_element(&body, b"ETag") {
            let what = if call.op == Operation::CompleteMultipartUpload {
                "multipart upload"
            } else {
                "copy"
            };
            return Err(HcpError::new(HcpCode::InternalError)
                .with_message(format!("The {what} did not complete."))
                .with_cause(format!("{what} answered 200 without an ETag")));
        }
        // (AWS's whitespace before a long complete's document is no part of HCP's: a
        // declaration after it is malformed XML.)
        self.rewrite_document(x, call, body.trim_ascii_start(), (location, listed))
    }

    /// A backend's error, in the dialect's table, as HCP's; the guards' facts decide the two
    /// answers only the gateway can tell apart.
    fn backend_error(
        &self,
        x: &mut Exchange,
        call: &Call<'_>,
        upstream: &ResponseHeader,
        body: &[u8],
        hidden: bool,
    ) -> HcpError {
        let (op, target, route) = (call.op, call.target, call.route);
        let backend_err = rewrite::read_backend_error(upstream, body);
        x.backend_code = backend_err.code.clone();
        if x.backend_request_id.is_none() {
            x.backend_request_id = backend_err
                .request_id
                .clone()
                .map(exchange::BackendRequestId::Document);
        }
        let effective = if hidden {
            500
        } else {
            upstream.status.as_u16()
        };
        // (A copy's missing bucket or key may be its source's: not named as the target's.)
        let names_target = !matches!(op, Operation::CopyObject | Operation::UploadPartCopy);
        let mapped = rewrite::map_backend_error(
            route.backend.dialect,
            effective,
            &backend_err,
            op,
            target.bucket.as_deref().filter(|_| names_target),
            target.key_lossy().as_deref().filter(|_| names_target),
        );
        let err = if mapped.code == HcpCode::NoSuchUpload
            && op == Operation::UploadPartCopy
            && call.guards.upload_confirmed
        {
            // Seed 000: completed or aborted while the copy ran.
            HcpError::new(HcpCode::OperationAborted).with_message(
                "The multipart upload was completed or aborted while the part was being copied.",
            )
        } else if mapped.code == HcpCode::AccessDenied
            && op == Operation::DeleteObject
            && call.params.get("versionId").is_some()
        {
            // The gateway's account may delete any version but one S3 Object Lock keeps: HCP's
            // 409 for an object under retention or on hold (manual, DELETE object).
            HcpError::new(HcpCode::OperationAborted)
                .with_message("The object version is under retention or on hold.")
        } else if backend_err.names_invalid_version() && asks_for_a_version(call) {
            // HCP: a version id it never gave names no version (404; a DELETE's is answered
            // 204 before it is settled, `Gateway::answer_document`). A copy's is its source's:
            // the target's key is not named for it.
            let no_such = HcpError::new(HcpCode::NoSuchKey);
            match names_target {
                true => no_such.with_key(target.key_lossy().unwrap_or_default()),
                false => no_such,
            }
        } else if mapped.code == HcpCode::PreconditionFailed && call.guards.overwrite_guarded {
            // The gateway's own If-None-Match: the name exists (rule 41).
            name_exists()
        } else {
            mapped
        };
        let backend_code = backend_err.code.as_deref().unwrap_or("-");
        // (A code in no table is labelled `other`: a backend cannot grow the label set.)
        let label = match backend_err.code.as_deref() {
            Some(c) if !crate::hcp::mapping::is_known(route.backend.dialect, c) => "other",
            _ => backend_code,
        };
        self.metrics
            .code_rewrite(&route.backend.name, label, err.code);
        let message = logged_message(backend_err.message.as_deref(), self.cfg.log_keys);
        if err.code == HcpCode::InternalError {
            tracing::warn!(request_id = %x.reply.id, backend = %route.backend.name,
                backend_status = upstream.status.as_u16(), backend_code = ?backend_err.code,
                backend_message = ?message, "backend error mapped to InternalError");
        }
        err.with_cause(format!(
            "backend answered {} {backend_code}: {message}",
            upstream.status.as_u16()
        ))
    }

    /// A control document in S3's names and the client's terms: root element, bucket names
    /// without the tenant's prefix, `Location`, upload ids bound to their initiator, owners.
    fn rewrite_document(
        &self,
        x: &mut Exchange,
        call: &Call<'_>,
        body: &[u8],
        (location, listed): (&str, Option<&object_owners::EntryOwners>),
    ) -> Result<Bytes, HcpError> {
        let target = call.target;
        let scope = uploads::Scope {
            tenant: &target.tenant,
            bucket: target.bucket.as_deref().unwrap_or_default(),
        };
        let upload_id = |backend_id: &str| match call.op {
            Operation::CreateMultipartUpload => Some(self.upload_ids.issue(
                scope,
                call.caller.unwrap_or_default(),
                backend_id,
            )),
            Operation::ListParts => call.client_upload_id.map(str::to_string),
            Operation::ListMultipartUploads => Some(self.upload_ids.listed(scope, backend_id)),
            _ => None,
        };
        let unparsable =
            || HcpError::new(HcpCode::InternalError).with_cause("unparsable backend XML answer");
        let body = &*as_rewritten(call, body).ok_or_else(unparsable)?;
        // (In the order the document lists them: after ListObjectVersions' reordering, read
        // again.)
        let reread;
        let entry_owners: &[Option<owners::Owner>] = match listed {
            Some(l) if call.op == Operation::ListObjectVersions => {
                reread = l.in_order_of(body).ok_or_else(unparsable)?;
                &reread
            }
            Some(l) => &l.owners,
            None => &[],
        };
        // (Where owners are kept: an upload's initiator as the user it is, or was.)
        let initiator = |backend_id: &str| {
            call.guards.owners.as_ref()?;
            let key = self.upload_ids.initiator(backend_id)?;
            Some(owners::Owner::of_key(&self.users.load(), &key))
        };
        let rewrites = rewrite::Rewrites {
            location,
            upload_id: &upload_id,
            // (As the client sent it: sealed, or not one the gateway issued.)
            upload_id_marker: call
                .client_upload_id
                .or_else(|| call.params.get("upload-id-marker")),
            initiator: &initiator,
            pretty: x.reply.pretty,
            owners: call.guards.owners.as_ref(),
            grants: &call.guards.shown_grants,
            entry_owners,
            quiet: call.guards.quiet_deletes,
            params: Some(call.params),
        };
        let doc =
            rewrite::rewrite_xml(body, call.op, call.route, &rewrites).ok_or_else(unparsable)?;
        if call.op != Operation::DeleteObjects || call.guards.kept.is_empty() {
            return Ok(doc);
        }
        // The objects kept back (under retention or on hold) are reported as not deleted (and
        // the whole indented again, where it was: `own_document`).
        let text = String::from_utf8_lossy(&doc);
        let errors = crate::request::retain::deletes::kept_errors(&call.guards.kept);
        let whole = match text.rfind("</DeleteResult>") {
            Some(end) => format!("{}{errors}{}", &text[..end], &text[end..]),
            // A result with nothing in it may close itself (`<DeleteResult …/>`): opened.
            None => {
                let end = text.trim_end().strip_suffix("/>").ok_or_else(unparsable)?;
                format!("{end}>{errors}</DeleteResult>")
            }
        };
        Ok(Bytes::from(rewrite::own_document(
            whole.as_bytes(),
            x.reply.pretty,
        )))
    }
}

/// Rule 41's answer.
pub(in crate::request) fn name_exists() -> HcpError {
    HcpError::new(HcpCode::OperationAborted).with_message(
        "An object or folder with this name already exists and versioning is not enabled.",
    )
}

/// Whether a 200 body is in fact an `<Error>` document (AWS on complete and copies).
pub(in crate::request) fn body_root_is_error(body: &[u8]) -> bool {
    let mut reader = quick_xml::Reader::from_reader(body);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e)) => return e.local_name().as_ref() == b"Error",
            Ok(quick_xml::events::Event::Eof) | Err(_) => return false,
            _ => {}
        }
    }
}

/// Whether `call` names an object version the backend could refuse as invalid: its own
/// `versionId`, or a copy's source's (a copy's target names none).
pub(super) fn asks_for_a_version(call: &Call<'_>) -> bool {
    call.params.get("versionId").is_some()
        || matches!(call.op, Operation::CopyObject | Operation::UploadPartCopy)
}

/// A backend's error message as the logs may show it: its first 200 characters where keys are
/// logged whole (`server.log_keys = "full"`), else nothing of it — a backend's message may name
/// the object (AWS's AccessDenied names the resource's ARN), which the setting keeps out.
fn logged_message(message: Option<&str>, log_keys: crate::config::LogKeys) -> String {
    match log_keys {
        crate::config::LogKeys::Full => message.unwrap_or_default().chars().take(200).collect(),
        _ => "(its message is not logged: server.log_keys)".into(),
    }
}

/// A backend's document as the rewrite reads it (`None`: it cannot be read): a version listing
/// with each key's versions oldest first (HCP's order; a page asked to go on inside a key
/// begins with the rest of that key's versions), an ACL of OBS's own dialect or of the embedded
/// store written as S3's, in HCP's order; a copy's or a complete's result with its ETag quoted
/// (`etag`); any other as it is.
fn as_rewritten<'b>(call: &Call<'_>, body: &'b [u8]) -> Option<std::borrow::Cow<'b, [u8]>> {
    use crate::hcp::mapping::Dialect;
    use std::borrow::Cow;
    let dialect = call.route.backend.dialect;
    match call.op {
        _ if asks_no_entries(call) => no_entries(body).map(Cow::Owned),
        // (The embedded store's, written by s3s, lists the grants before the owner and a
        // party's DisplayName before its ID: written again in HCP's order.)
        Operation::GetBucketAcl | Operation::GetObjectAcl
            if matches!(dialect, Dialect::Obs | Dialect::Local) =>
        {
            crate::request::validate::acl::as_s3_policy(body)
                .ok()
                .map(Cow::Owned)
        }
        Operation::ListObjectVersions => {
            let resumed = call.params.get("key-marker").filter(|_| {
                call.params
                    .get("version-id-marker")
                    .is_some_and(|v| !v.is_empty())
            });
            let resumed = resumed.map(str::as_bytes);
            super::versions::oldest_first(body, resumed, dialect == Dialect::Minio).map(Cow::Owned)
        }
        // (RGW's copy results name the ETag unquoted, its complete's none.)
        Operation::CopyObject | Operation::UploadPartCopy | Operation::CompleteMultipartUpload => {
            let made = call.guards.complete_etag.as_deref();
            Some(super::etag::quoted(body, made).map_or(Cow::Borrowed(body), Cow::Owned))
        }
        _ => Some(Cow::Borrowed(body)),
    }
}

/// Whether a listing asks for no entries (`max-keys=0`, which HCP takes).
fn asks_no_entries(call: &Call<'_>) -> bool {
    // (As validation read it: `00` and `+0` are 0 too.)
    let zero = |v: &str| v.parse::<u64>() == Ok(0);
    matches!(call.op.page_size(), Some(("max-keys", _)))
        && call.params.get("max-keys").is_some_and(zero)
}

/// A listing's answer to `max-keys=0`: S3's empty page, not truncated, whatever entries the
/// backend gave (Huawei OBS answers up to 1,000 and says it is cut off); `None` where it
/// cannot be read.
fn no_entries(body: &[u8]) -> Option<Vec<u8>> {
    use quick_xml::events::{BytesText, Event};
    const DROPPED: [&[u8]; 8] = [
        b"Contents",
        b"CommonPrefixes",
        b"Version",
        b"DeleteMarker",
        b"NextMarker",
        b"NextContinuationToken",
        b"NextKeyMarker",
        b"NextVersionIdMarker",
    ];
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut writer = quick_xml::Writer::new(Vec::with_capacity(body.len()));
    let (mut depth, mut replaced) = (0usize, None);
    loop {
        let event = reader.read_event().ok()?;
        match &event {
            Event::Eof => break,
            Event::Start(e) if depth == 1 && DROPPED.contains(&e.local_name().as_ref()) => {
                reader.read_to_end(e.name()).ok()?;
                continue;
            }
            Event::Empty(e) if depth == 1 && DROPPED.contains(&e.local_name().as_ref()) => {
                continue;
            }
            Event::Start(e) => {
                depth += 1;
                replaced = match e.local_name().as_ref() {
                    b"IsTruncated" if depth == 2 => Some("false"),
                    b"KeyCount" if depth == 2 => Some("0"),
                    _ => None,
                };
            }
            Event::End(_) => {
                depth = depth.checked_sub(1)?;
                replaced = None;
            }
            Event::Text(_) => {
                if let Some(text) = replaced {
                    writer.write_event(Event::Text(BytesText::new(text))).ok()?;
                    continue;
                }
            }
            _ => {}
        }
        writer.write_event(event).ok()?;
    }
    Some(writer.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `max-keys=0` answers an empty page whatever the backend listed (OBS: up to 1,000 entries,
    /// truncated): no entries, no marker to go on with, not truncated; the rest as it was.
    #[test]
    fn no_entries_is_an_empty_page() {
        let obs = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://obs.myhwclouds.com/doc/2015-06-30/\"><Name>b</Name><Prefix></Prefix><NextMarker>b</NextMarker><KeyCount>2</KeyCount><MaxKeys>0</MaxKeys><IsTruncated>true</IsTruncated><Contents><Key>a</Key><Owner><ID>o</ID></Owner></Contents><Contents><Key>b</Key></Contents><CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes><CommonPrefixes/></ListBucketResult>";
        let page = String::from_utf8(no_entries(obs.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            page,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://obs.myhwclouds.com/doc/2015-06-30/\"><Name>b</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>0</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>"
        );
        let versions = "<ListVersionsResult><Name>b</Name><NextKeyMarker>k</NextKeyMarker><NextVersionIdMarker>v</NextVersionIdMarker><IsTruncated>true</IsTruncated><Version><Key>k</Key></Version><DeleteMarker><Key>k</Key></DeleteMarker></ListVersionsResult>";
        let page = String::from_utf8(no_entries(versions.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            page,
            "<ListVersionsResult><Name>b</Name><IsTruncated>false</IsTruncated></ListVersionsResult>"
        );
        assert!(no_entries(b"<ListBucketResult><Contents>").is_none());
    }

    /// A backend's message names what it likes, the object among them: logged only where keys
    /// are.
    #[test]
    fn a_backend_s_message_is_logged_only_where_keys_are() {
        use crate::config::LogKeys;
        let arn = "User: x is not authorized on resource: \"arn:aws:s3:::b/payroll-2024.xlsx\"";
        assert_eq!(logged_message(Some(arn), LogKeys::Full), arn);
        for hidden in [LogKeys::Hash, LogKeys::Omit] {
            assert!(!logged_message(Some(arn), hidden).contains("payroll"));
        }
        let long = "x".repeat(500);
        assert_eq!(logged_message(Some(&long), LogKeys::Full).len(), 200);
    }
}
