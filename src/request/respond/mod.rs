//! Phase 8 for streamed answers, and every answer the gateway gives itself: the backend's
//! answer streamed or settled into HCP's, errors written as HCP's document, early answers with
//! their unread bodies, refusals before a request is looked at.

use super::*;

pub mod complete;
pub(in crate::request) mod etag;
mod long_complete;
mod order;
pub mod rewrite;
pub(in crate::request) mod settle;
mod versions;

/// How much of an unwanted request body is read and discarded after an early answer, so that a
/// client that writes its whole body before reading still sees the answer.
pub(super) const DRAIN_LIMIT: usize = 8 * 1024 * 1024;
/// How long draining it may take in all.
pub(super) const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// When an error is answered, relative to the request's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    /// Before any of it was read.
    BeforeBody,
    /// After part of it may have been read.
    DuringBody,
}

/// A request that asked for `100 Continue`, was not sent it, and whose body was not read (or
/// is empty): the error answers it without the 100, and the connection closes (saying so).
/// Clients handle a final answer in place of the 100 badly on a connection they reuse —
/// botocore parses the next answer on it with this one's status (a PUT refused with 409 made
/// the next PUT on the connection read "409" although it was stored).
fn expect_left_waiting(s: &mut ServerSession) -> bool {
    // (A request whose head could not be parsed has no headers to ask. One whose body has
    // begun to arrive waits for nothing: it was told to go on, or did not wait. Nor does one
    // sent its 100: its client is sending the body, drained as any other's.)
    let parsed = !s.request_summary().starts_with("- ");
    let begun = s.body_bytes_read() > 0;
    let continued = continued(s);
    parsed
        && !continued
        && is_expect_continue(s)
        && (s.is_body_empty() || (!begun && !s.is_body_done()))
}

/// Whether the request was sent its `100 Continue` (and nothing since).
fn continued(s: &ServerSession) -> bool {
    s.response_written().is_some_and(|h| h.status == 100)
}

/// Whether the call's answer, which names an object version, is judged by
/// `versions_only_where_on`: a read's or a delete's own version, a copy's source's; and a
/// write's, where the gateway keeps HCP's versioning (`request::versioning`).
fn judges_versions(call: &Call<'_>) -> bool {
    match call.op {
        Operation::GetObject
        | Operation::HeadObject
        | Operation::DeleteObject
        | Operation::CopyObject
        | Operation::UploadPartCopy => true,
        Operation::PutObject | Operation::CompleteMultipartUpload => {
            crate::request::versioning::kept_by_gateway(call.route.tenant)
        }
        _ => false,
    }
}

/// Whether an answer of `status` to this request has no body (a HEAD's, a 204, a 304).
fn bodiless(s: &ServerSession, status: u16) -> bool {
    s.req_header().method == http::Method::HEAD || matches!(status, 204 | 304)
}

impl Gateway {
    /// Writes an answer's header — every answer's, so that one written once the gateway is
    /// stopping closes its connection (pingora writes `Connection: close` for a session kept
    /// no longer), whenever its request was admitted.
    pub(super) async fn write_head(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        mut resp: ResponseHeader,
    ) -> pingora::Result<()> {
        if s.get_keepalive().is_some() && self.stopping.load(std::sync::atomic::Ordering::Acquire) {
            s.set_keepalive(None);
        }
        // HTTP/1.0 has no chunks (RFC 9112: no Transfer-Encoding in an answer to a request
        // that is not HTTP/1.1): an answer of no known length ends where the connection does.
        // (Chunks are asked first: an answer to a head never parsed has none.)
        if resp.headers.contains_key(http::header::TRANSFER_ENCODING)
            && !s.request_summary().starts_with("- ")
            && s.req_header().version == http::Version::HTTP_10
        {
            resp.remove_header(&http::header::TRANSFER_ENCODING);
            s.set_keepalive(None);
        }
        // HCP answers over HTTPS with HSTS (the manual's HTTPS answers: "Strict-Transport-
        // Security: max-age=31536000; includeSubDomains"); over plain HTTP, as HCP, without.
        if s.digest().is_some_and(|d| d.ssl_digest.is_some()) {
            resp.insert_header(http::header::STRICT_TRANSPORT_SECURITY, rewrite::HSTS)
                .expect("static");
        }
        // (The gateway's CORS decision for this request, on whatever answers it: `cors`.)
        if !x.reply.cors.is_empty() {
            for (name, value) in std::mem::take(&mut x.reply.cors) {
                resp.append_header(name, value).expect("a CORS header");
            }
        }
        s.write_response_header(Box::new(resp)).await
    }

    /// Phase 8: the backend's answer header is in; HCP's answer goes out. Errors and control
    /// answers are small documents, read whole and settled so that the status can follow the
    /// code; a precondition the backend ignored is answered here; object data streams.
    pub(super) async fn answer_from_backend(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        up: &mut Upstream,
        call: &Call<'_>,
    ) -> Flow {
        // Borrowed, not copied: the paths that read the backend's body while they still need
        // its header take a copy of their own.
        let upstream = up.session.resp_header().expect("response was read");
        let status = upstream.status.as_u16();
        self.note_answer(x, call, upstream);
        if status == 405 && call.op == Operation::HeadObject && rewrite::is_delete_marker(upstream)
        {
            if let Some(version) = call.params.get("versionId") {
                let upstream = upstream.clone();
                return self.a_delete_marker(s, x, (call, &upstream), version).await;
            }
        }
        if status == 416 {
            if let Some(flow) = Box::pin(self.conditions_before_range(s, x, call)).await {
                return flow;
            }
        }
        if up.sent_before && after_a_lost_try(call, status) {
            let upstream = upstream.clone();
            return Box::pin(self.done_by_a_lost_try(s, x, up, (call, &upstream))).await;
        }
        let ok = (200..300).contains(&status);
        if !ok && call.guards.acl_target.is_some() {
            if let Err(e) = Box::pin(self.acl_change_refused(call, status)).await {
                return self.answer(s, x, e).await;
            }
        }
        // (A bucket sub-resource's document — a CORS or lifecycle configuration — is settled
        // too: a backend's namespace names it.)
        let document = call.op.result_root().is_some()
            || (call.op == Operation::BucketSubresource
                && s.req_header().method == http::Method::GET);
        if rewrite::is_error_status(status) || (document && ok) {
            let upstream = upstream.clone();
            return self.answer_settled(s, x, up, call, &upstream).await;
        }
        if ok && matches!(call.op, Operation::GetObject | Operation::HeadObject) {
            match rewrite::precondition(s.req_header(), upstream) {
                rewrite::Precondition::Holds => {}
                rewrite::Precondition::Failed => {
                    let failed = HcpError::new(HcpCode::PreconditionFailed);
                    return self.answer(s, x, failed).await;
                }
                rewrite::Precondition::NotModified => {
                    return Box::pin(self.not_modified(s, x, call, upstream)).await
                }
            }
        }
        // (A backend's own 304, as the gateway's.)
        if status == 304 && matches!(call.op, Operation::GetObject | Operation::HeadObject) {
            return Box::pin(self.not_modified(s, x, call, upstream)).await;
        }
        if ok {
            // A new object's labeled holds and "deletable at once", kept now that its version
            // is known — and its records whether or not that fails: it is stored whatever
            // follows, and answered with the first error.
            let kept = match call.op {
                Operation::PutObject => self.keep_written(call, upstream, None).await,
                _ => Ok(()),
            };
            let recorded = self.records_after(call, upstream).await;
            if call.guards.acl_target.is_some() {
                self.acl_turn_done(call);
            }
            if let Err(e) = kept.and(recorded) {
                return self.answer(s, x, e).await;
            }
        }
        let retention = ok
            && matches!(call.op, Operation::GetObject | Operation::HeadObject)
            && call.route.tenant.retention.mode != crate::config::RetentionMode::Off;
        let holds = if retention {
            match self.holds_read_back(call, upstream).await {
                Ok(holds) => Some(holds),
                Err(e) => return self.answer(s, x, e).await,
            }
        } else {
            None
        };
        let (mut resp, passed) = self.streamed_header(s, x, (call, upstream), holds.as_ref());
        // (Boxed only where an answer names a version: the rest allocate nothing for it.)
        if ok && passed.version && judges_versions(call) {
            Box::pin(self.versions_only_where_on(s, call, &mut resp)).await;
        }
        self.stream_answer(s, x, up, resp).await
    }

    /// HCP returns an object's version id "only while versioning is enabled for the bucket",
    /// a copy's source version "only while versioning is enabled for the source bucket", and a
    /// delete marker's header with them: an answer naming one (an object stored while
    /// versioning was enabled, a marker a suspended bucket's DELETE left) for a bucket whose
    /// versioning is not enabled now names none. (Where versioning cannot be read, what the
    /// backend said is shown.)
    pub(in crate::request) async fn versions_only_where_on(
        &self,
        s: &ServerSession,
        call: &Call<'_>,
        resp: &mut ResponseHeader,
    ) {
        use crate::request::validate::probes::{self, At};
        let at = At {
            target: call.target,
            route: call.route,
        };
        // (A write's answer names a version only where versioning was enabled when it was
        // made, S3's `null` aside: it is the client's one record of it, never taken away on a
        // reading of versioning that may be seconds old — but where the gateway keeps HCP's
        // versioning, whose backend names a version for every write: HCP's answer names none
        // while versioning is not enabled, as the gateway last read it. A read or a delete
        // names one an object was given before.)
        let writes = crate::request::versioning::kept_by_gateway(call.route.tenant)
            && matches!(
                call.op,
                Operation::PutObject | Operation::CopyObject | Operation::CompleteMultipartUpload
            );
        let reads = writes
            || matches!(
                call.op,
                Operation::GetObject | Operation::HeadObject | Operation::DeleteObject
            );
        let own = ["x-amz-version-id", "x-amz-delete-marker"];
        if reads
            && own.iter().any(|n| resp.headers.contains_key(*n))
            && self.bucket_versioning(at).await == Some(false)
        {
            resp.remove_header("x-amz-version-id");
            // (HCP's header for deleting a delete marker by its version id stays.)
            let marker_deleted =
                call.op == Operation::DeleteObject && call.params.get("versionId").is_some();
            if !marker_deleted {
                resp.remove_header("x-amz-delete-marker");
            }
        }
        let source = "x-amz-copy-source-version-id";
        if !resp.headers.contains_key(source) {
            return;
        }
        let named = s.req_header().headers.get("x-amz-copy-source");
        let Some(copied) = named.and_then(|v| sign::CopySource::parse(v.as_bytes())) else {
            return;
        };
        let source_target = probes::source_target(at, &copied);
        let Ok(source_route) = probes::source_route(at, &source_target) else {
            return;
        };
        let source_at = At {
            target: &source_target,
            route: &source_route,
        };
        if self.bucket_versioning(source_at).await == Some(false) {
            resp.remove_header(source);
        }
    }

    /// What the gateway records of a request the backend carried out: a new bucket's owner
    /// (or a deleted one's removed), a written object's owner, the grants to users an ACL
    /// change set now that the backend took the rest (`request::acls`), folders.
    /// An object written or deleted is no copy source as it was: its kept HEAD goes (a part
    /// copy's range is judged on the source as it is now).
    pub(super) fn forget_written_head(&self, call: &Call<'_>) {
        let writes = matches!(
            call.op,
            Operation::PutObject
                | Operation::CopyObject
                | Operation::CompleteMultipartUpload
                | Operation::DeleteObject
        );
        if writes {
            self.forget_source_head(validate::probes::At {
                target: call.target,
                route: call.route,
            });
        }
    }

    async fn records_after(
        &self,
        call: &Call<'_>,
        upstream: &ResponseHeader,
    ) -> Result<(), HcpError> {
        self.owners_after(call).await?;
        self.versioning_after_delete(call).await;
        self.forget_written_head(call);
        let etag = upstream.headers.get("etag").and_then(|v| v.to_str().ok());
        self.owner_written(call, upstream, etag);
        let recorded = self.acls_after(call, upstream, etag).await;
        self.folders_after(call).await;
        recorded
    }

    /// A bucket's create or delete tried again after its first try's answer was lost, whose
    /// try again finds what the first did: a create's 409 `BucketAlreadyOwnedByYou` where the
    /// bucket is the gateway's lost try's (`lost_try_created`), answered and recorded as
    /// created, not left without its owner (a creator on another replica racing it: the one
    /// recorded last owns it, as for any two creators, `owners_after`); a delete's 404
    /// `NoSuchBucket` (`after_a_lost_try`: of a bucket the records knew), answered as deleted
    /// (HCP's 204) with its records (owner, ACLs) forgotten, never left for a bucket of the name
    /// made again. Otherwise the answer is HCP's.
    async fn done_by_a_lost_try(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        up: &mut Upstream,
        (call, upstream): (&Call<'_>, &ResponseHeader),
    ) -> Flow {
        let limit = self.cfg.max_buffered_response_bytes;
        let mut held = self.held.hold_counted();
        let body = upstream::read_whole_body(&mut up.session, limit, &mut held).await;
        let creating = call.op == Operation::CreateBucket;
        let done = match creating {
            true => self.lost_try_created(call, upstream, &body).await,
            false => body.as_ref().is_ok_and(|b| {
                rewrite::read_backend_error(upstream, b).code.as_deref() == Some("NoSuchBucket")
            }),
        };
        if !done {
            return self
                .answer_document(s, x, call, upstream, (body, &mut held))
                .await;
        }
        x.cause = Some("done by a try whose answer was lost".into());
        let resp = match creating {
            true => {
                let mut resp = ResponseHeader::build(200, Some(3)).expect("200");
                resp.insert_header(http::header::CONTENT_LENGTH, "0")
                    .expect("static");
                rewrite::created_bucket_location(call.op, call.target.bucket.as_deref(), &mut resp);
                resp
            }
            false => ResponseHeader::build(204, Some(1)).expect("204"),
        };
        let recorded = self.records_after(call, &resp).await;
        if creating {
            self.acl_turn_done(call);
        }
        if let Err(e) = recorded {
            return self.answer(s, x, e).await;
        }
        self.answer_own(s, x, resp, Bytes::new()).await
    }

    /// Whether a repeated create's 409 (`body`) is the gateway's own lost try's bucket: see
    /// [`Gateway::done_by_a_lost_try`].
    async fn lost_try_created(
        &self,
        call: &Call<'_>,
        upstream: &ResponseHeader,
        body: &Result<Vec<u8>, pingora::BError>,
    ) -> bool {
        use crate::request::validate::probes::Probe as _;
        let Ok(body) = body else {
            return false;
        };
        let code = rewrite::read_backend_error(upstream, body).code;
        if code.as_deref() != Some("BucketAlreadyOwnedByYou") {
            return false;
        }
        let at = crate::request::validate::probes::At {
            target: call.target,
            route: call.route,
        };
        matches!(self.bucket_owner(at, true).await, Ok(None))
            && self.bucket_status(at).await == Some(200)
    }

    /// What a GET or HEAD answers of the object's holds: the backend's legal hold, and where
    /// it is on in a namespace that keeps labeled holds, the record of which holds those are
    /// (the labels shown to privileged readers only). A record that cannot be read is a 503:
    /// HCP's answer would say which holds hold the object.
    pub(in crate::request) async fn holds_read_back(
        &self,
        call: &Call<'_>,
        upstream: &ResponseHeader,
    ) -> Result<rewrite::HoldsSeen, HcpError> {
        let (_, held) = rewrite::object_lock_of(upstream);
        let unlabeled = crate::hcp::labels::Holds {
            hold: held,
            ..Default::default()
        };
        if !held || call.route.tenant.retention.labels_bucket.is_none() {
            return Ok(rewrite::HoldsSeen {
                holds: unlabeled,
                show_labels: false,
            });
        }
        // (S3's header or OBS's, as the holds were recorded: `retain::keep_asked`.)
        let version = crate::request::acls::version_header(upstream)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty());
        let at = validate::probes::At {
            target: call.target,
            route: call.route,
        };
        // Boxed: most GETs answer without it.
        let holds = Box::pin(self.read_holds(at, version))
            .await
            .map_err(|cause| {
                HcpError::new(HcpCode::ServiceUnavailable)
                    .with_message("The object's holds could not be read; try again.")
                    .with_cause(cause)
            })?;
        Ok(rewrite::HoldsSeen {
            holds: holds.unwrap_or(unlabeled),
            show_labels: call.sees_labels,
        })
    }

    /// An answer the gateway composed itself (a form's, a retention change's): HCP's
    /// common headers added, written whole; the connection is kept only if the request's body
    /// was read to its end.
    pub(super) async fn answer_own(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        mut resp: ResponseHeader,
        body: Bytes,
    ) -> Flow {
        rewrite::finish_headers(&mut resp, false, &x.reply.id, &self.cfg.host_id);
        self.answer_finished(s, x, resp, body).await
    }

    /// [`Gateway::answer_own`] of an answer whose headers are finished (HCP's fixed ones, and
    /// what replaces them: a form's `Expires`).
    pub(super) async fn answer_finished(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        resp: ResponseHeader,
        body: Bytes,
    ) -> Flow {
        x.status = resp.status.as_u16();
        x.bytes_out = body.len() as u64;
        if self.write_head(s, x, resp).await.is_err()
            || s.write_response_body(body, true).await.is_err()
        {
            return Flow::Abort;
        }
        if s.is_body_done() {
            Flow::KeepAlive
        } else {
            Flow::Close
        }
    }

    /// A 200 with a document the gateway writes itself: HCP's media type, the declaration, and
    /// indented as `x-hcp-pretty-print` asks (`rewrite::own_document`).
    pub(super) async fn answer_own_xml(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        doc: &[u8],
    ) -> Flow {
        self.answer_own_xml_with(s, x, doc, None).await
    }

    /// [`Gateway::answer_own_xml`] with HCP's `x-amz-server-side-encryption` (`encryption`:
    /// where the request asked for it).
    pub(super) async fn answer_own_xml_with(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        doc: &[u8],
        encryption: Option<&'static str>,
    ) -> Flow {
        let body = Bytes::from(rewrite::own_document(doc, x.reply.pretty));
        let mut resp = ResponseHeader::build(200, Some(4)).expect("status");
        if let Some(encryption) = encryption {
            resp.insert_header("x-amz-server-side-encryption", encryption)
                .expect("static");
        }
        resp.insert_header(http::header::CONTENT_TYPE, rewrite::XML_DOCUMENT)
            .expect("static");
        resp.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())
            .expect("digits");
        self.answer_own(s, x, resp, body).await
    }

    /// What a backend's answer header tells before it is answered: its status and request id
    /// for the record; and what the no-overwrite rule knew of the bucket's versioning may be
    /// past (it was forgotten when the change was sent, too).
    pub(super) fn note_answer(&self, x: &mut Exchange, call: &Call<'_>, upstream: &ResponseHeader) {
        x.backend_status = Some(upstream.status.as_u16());
        self.forget_bucket_settings(call);
        x.backend_request_id = ["x-amz-request-id", "x-obs-request-id"]
            .iter()
            .find_map(|h| upstream.headers.get(*h))
            .and_then(exchange::BackendRequestId::of_header);
    }

    /// A buffered backend answer, read whole and settled into HCP's document or error.
    async fn answer_settled(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        up: &mut Upstream,
        call: &Call<'_>,
        upstream: &ResponseHeader,
    ) -> Flow {
        let limit = self.cfg.max_buffered_response_bytes;
        // (Held until the answer is written. The answer to a change the backend made is read
        // whatever the budget: a 503 would say nothing was done.)
        let mut held = match s.req_header().method {
            http::Method::GET | http::Method::HEAD => self.held.hold(),
            _ => self.held.hold_counted(),
        };
        let body = upstream::read_whole_body(&mut up.session, limit, &mut held).await;
        // A document is rewritten whole before it is written — copied, reordered (versions),
        // indented (pretty-print) — and held until then: counted as the copies it makes, not
        // once (a listing of long keys held several times over was the process's memory).
        if let Ok(b) = &body {
            let copies = rewrite_copies(call.op, x.reply.pretty);
            if let Err(full) = held.add_unless_alone(b.len().saturating_mul(copies)) {
                return self.answer(s, x, full.error()).await;
            }
        }
        self.answer_document(s, x, call, upstream, (body, &mut held))
            .await
    }

    /// A backend's answer read whole (`body`), settled into HCP's document or error.
    pub(super) async fn answer_document(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        call: &Call<'_>,
        upstream: &ResponseHeader,
        (body, held): (
            Result<Vec<u8>, pingora::BError>,
            &mut crate::request::held::Held,
        ),
    ) -> Flow {
        if call.op == Operation::DeleteObject && upstream.status == 400 {
            if let Ok(b) = &body {
                let refused = rewrite::read_backend_error(upstream, b);
                if refused.names_invalid_version() && settle::asks_for_a_version(call) {
                    // HCP deletes nothing and answers 204 for a version id it never gave
                    // (manual, DELETE object: "specified an invalid version ID").
                    let resp = ResponseHeader::build(204, Some(4)).expect("204");
                    return self.answer_own(s, x, resp, Bytes::new()).await;
                }
            }
        }
        if call.op == Operation::HeadObject
            && upstream.status == 400
            && Box::pin(self.version_never_given(call)).await
        {
            let key = call.target.key_lossy().unwrap_or_default();
            return self
                .answer(s, x, HcpError::new(HcpCode::NoSuchKey).with_key(key))
                .await;
        }
        let location = self.client_location(s, call.target);
        let doc = match self.settle_kept(x, call, upstream, body, &location).await {
            Ok(doc) => doc,
            Err(err) => return self.answer(s, x, err).await,
        };
        // What was read and its copies are gone: the document written is what is held while
        // the client reads it, however slowly.
        held.keep(doc.len());
        let (mut resp, passed) =
            rewrite::success_header_noting(upstream, &x.reply.id, &self.cfg.host_id);
        rewrite::answer_checksums(passed, s.req_header(), &mut resp);
        rewrite::answer_encryption(call.params.effects.answer_encryption, upstream, &mut resp);
        rewrite::created_bucket_location(call.op, call.target.bucket.as_deref(), &mut resp);
        rewrite::bucket_answer(call.target, &mut resp);
        if passed.version && judges_versions(call) {
            Box::pin(self.versions_only_where_on(s, call, &mut resp)).await;
        }
        rewrite::xml_document_type(&mut resp);
        resp.insert_header(http::header::CONTENT_LENGTH, doc.len().to_string())
            .expect("length");
        x.status = resp.status.as_u16();
        x.bytes_out = doc.len() as u64;
        if self.write_head(s, x, resp).await.is_err()
            || s.write_response_body(doc, true).await.is_err()
        {
            return Flow::Abort;
        }
        Flow::KeepAlive
    }

    /// AWS answers a HEAD naming a version id of a form it never gives with a bodiless 400,
    /// which says nothing of why — it answers a HEAD of a version encrypted with a customer's
    /// key, sent without the key, so as well. HCP's HEAD of a version that is none is 404, as
    /// its GET: asked again by the version's ACL, which needs no key — a version id refused
    /// (400) or not found (404) there is none; any other answer leaves the HEAD's 400 to be
    /// settled (the backend's fault: 500).
    async fn version_never_given(&self, call: &Call<'_>) -> bool {
        let Some(version) = call.params.get("versionId") else {
            return false;
        };
        if call.route.backend.dialect != crate::hcp::mapping::Dialect::Aws {
            return false;
        }
        let params = Params::default().with("acl", "").with("versionId", version);
        let acl = self.backend_call(Operation::GetObjectAcl, params, call.target, call.route);
        acl.await
            .is_some_and(|(h, _)| matches!(h.status.as_u16(), 400 | 404))
    }

    /// 304 for a condition the backend did not evaluate (s3s-fs): its headers without a body.
    async fn not_modified(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        call: &Call<'_>,
        upstream: &ResponseHeader,
    ) -> Flow {
        let (mut resp, passed) =
            rewrite::success_header_noting(upstream, &x.reply.id, &self.cfg.host_id);
        resp.set_status(304).expect("304");
        // (HCP's 304 is of its error class: "The Cache-Control and Expires headers are not
        // returned with error responses", seed 002.)
        for h in [
            http::header::CONTENT_LENGTH,
            http::header::CONTENT_TYPE,
            http::header::CONTENT_RANGE,
            http::header::CACHE_CONTROL,
            http::header::EXPIRES,
        ] {
            resp.remove_header(&h);
        }
        // What a 200 of the object would name, as it would: a version only while versioning
        // is enabled, checksums only where asked.
        rewrite::answer_checksums(passed, s.req_header(), &mut resp);
        if passed.version && judges_versions(call) {
            Box::pin(self.versions_only_where_on(s, call, &mut resp)).await;
        }
        x.status = 304;
        x.code = Some(HcpCode::PreconditionFailed);
        if self.write_head(s, x, resp).await.is_err() || s.finish_body().await.is_err() {
            return Flow::Abort;
        }
        Flow::KeepAlive
    }

    /// A range the backend could not satisfy (416) on a GET with conditions: HCP judges the
    /// conditions before the range, so a failing one answers (412, 304) — judged on a HEAD of
    /// the object, whatever the backend made of them (dates beside an ETag condition and an
    /// If-Match of `*` or a list are not sent; an If-None-Match list Ceph RGW and MinIO read
    /// each their own way; s3s-fs judges none); `None` where they hold, or cannot be judged
    /// (the 416 is answered).
    async fn conditions_before_range(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        call: &Call<'_>,
    ) -> Option<Flow> {
        let req = s.req_header();
        let conditional = validate::carries_any(
            &req.headers,
            &[
                "if-match",
                "if-none-match",
                "if-modified-since",
                "if-unmodified-since",
            ],
        );
        if call.op != Operation::GetObject || !conditional {
            return None;
        }
        // (With the object's customer's key, where the GET gave one: without it, no HEAD
        // reads the object. Of the current version where the GET read it: one stored since is
        // judged, as HCP would judge the object it has then.)
        let mut params = Params::default();
        if let Some(version) = call.params.get("versionId") {
            params.set("versionId", version);
        }
        let key: http::HeaderMap = req
            .headers
            .iter()
            .filter(|(n, _)| {
                n.as_str()
                    .starts_with("x-amz-server-side-encryption-customer-")
            })
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        let head = self.backend_call_with(
            Operation::HeadObject,
            params,
            (call.target, call.route),
            &key,
        );
        let (head, _) = head.await.filter(|(h, _)| h.status == 200)?;
        Some(match rewrite::precondition(s.req_header(), &head) {
            rewrite::Precondition::Holds => return None,
            rewrite::Precondition::Failed => {
                let failed = HcpError::new(HcpCode::PreconditionFailed);
                self.answer(s, x, failed).await
            }
            rewrite::Precondition::NotModified => self.not_modified(s, x, call, &head).await,
        })
    }

    /// A HEAD of a delete marker's version, which S3 servers refuse (405, "the specified
    /// version is a delete marker"): HCP answers it as an item that exists, of no content,
    /// with `x-amz-delete-marker: true` ("returned only for delete markers") and its version
    /// id, and its Last-Modified where the backend told it.
    async fn a_delete_marker(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        (call, upstream): (&Call<'_>, &ResponseHeader),
        version: &str,
    ) -> Flow {
        let mut resp = ResponseHeader::build(200, Some(6)).expect("200");
        let mut set = |name: &'static str, value: &str| {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                let _ = resp.insert_header(name, value);
            }
        };
        set("Content-Length", "0");
        set("x-amz-delete-marker", "true");
        set("x-amz-version-id", version);
        if let Some(modified) = upstream.headers.get("last-modified") {
            set("Last-Modified", modified.to_str().unwrap_or_default());
        }
        // (A delete marker has no ETag: an If-Match naming one fails on it; `*` matches it,
        // as it matches any item.)
        match rewrite::precondition(s.req_header(), &resp) {
            rewrite::Precondition::Holds => self.answer_own(s, x, resp, Bytes::new()).await,
            rewrite::Precondition::Failed => {
                let failed = HcpError::new(HcpCode::PreconditionFailed);
                self.answer(s, x, failed).await
            }
            rewrite::Precondition::NotModified => self.not_modified(s, x, call, &resp).await,
        }
    }

    /// HCP's header for an answer whose body streams from the backend's (`x.status` set), and
    /// what of the backend's it passed.
    fn streamed_header(
        &self,
        s: &ServerSession,
        x: &mut Exchange,
        (call, upstream): (&Call<'_>, &ResponseHeader),
        holds: Option<&rewrite::HoldsSeen>,
    ) -> (ResponseHeader, rewrite::Passed) {
        let status = upstream.status.as_u16();
        let (mut resp, passed) =
            rewrite::success_header_noting(upstream, &x.reply.id, &self.cfg.host_id);
        rewrite::answer_checksums(passed, s.req_header(), &mut resp);
        rewrite::answer_encryption(call.params.effects.answer_encryption, upstream, &mut resp);
        rewrite::created_bucket_location(call.op, call.target.bucket.as_deref(), &mut resp);
        rewrite::bucket_answer(call.target, &mut resp);
        rewrite::answer_overrides((call.op, call.params), s.req_header(), &mut resp);
        if let Some(holds) = holds {
            rewrite::add_hcp_retention(upstream, holds, &mut resp);
        }
        // (A backend's own framing never passes: its session took it off.)
        if !bodiless(s, status) && !resp.headers.contains_key(http::header::CONTENT_LENGTH) {
            resp.insert_header(http::header::TRANSFER_ENCODING, "chunked")
                .expect("static");
        }
        x.status = resp.status.as_u16();
        (resp, passed)
    }

    /// Object data, streamed from the backend's read buffer to the client under `resp`. A
    /// backend that fails mid-body aborts the client connection: never a truncated body that
    /// looks whole.
    async fn stream_answer(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        up: &mut Upstream,
        mut resp: ResponseHeader,
    ) -> Flow {
        let bodiless = bodiless(s, resp.status.as_u16());
        // A backend's body that ends where it closes the connection ends the client's so too:
        // chunks would end it as complete where the backend may have been cut short.
        let until_close = !bodiless && up.session.body_until_close();
        if until_close {
            resp.remove_header(&http::header::TRANSFER_ENCODING);
            s.set_keepalive(None);
        }
        if self.write_head(s, x, resp).await.is_err() {
            return Flow::Abort;
        }
        if !bodiless {
            loop {
                match up.session.read_body_ref().await {
                    Ok(Some(chunk)) => {
                        x.bytes_out += chunk.len() as u64;
                        // HTTP/1 writes from the backend's read buffer as it is; only the generic
                        // session interface needs an owned copy of each piece.
                        let sent = match &mut *s {
                            ServerSession::H1(h1) => h1.write_body(chunk).await.map(|_| ()),
                            other => {
                                let piece = Bytes::copy_from_slice(chunk);
                                other.write_response_body(piece, false).await
                            }
                        };
                        if let Err(e) = sent {
                            // (Gone, or too slow to take it: `server::send_deadline`.)
                            x.cause = Some(format!("the response could not be sent: {e}"));
                            return Flow::Abort;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // (Counted as the failure the client would have been answered, had the
                        // 200 not been sent: a cut download is no success in the metrics.)
                        x.code = Some(HcpCode::InternalError);
                        x.cause = Some(format!("backend failed mid-response: {e}"));
                        return Flow::Abort;
                    }
                }
            }
        }
        if s.finish_body().await.is_err() {
            return Flow::Abort;
        }
        if until_close {
            return Flow::Close;
        }
        Flow::KeepAlive
    }

    /// The URL HCP reports as an object's location: the client's own view of it, `https://`
    /// on a TLS listener, through HCP's `hs3` interface identifier as HCP's own locations name
    /// it (manual: a complete's `<Location>https://finance.europe.hcp.example.com/hs3/acctg…`,
    /// a form's `…/hs3/acctg%2FChecklist.txt`, whatever the request's authentication).
    pub(super) fn client_location(&self, s: &ServerSession, target: &Target) -> String {
        let host = s
            .req_header()
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let key = target
            .raw_key
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let tls = s.digest().is_some_and(|d| d.ssl_digest.is_some());
        let scheme = if tls { "https" } else { "http" };
        if target.virtual_host {
            format!("{scheme}://{host}/hs3/{key}")
        } else {
            format!(
                "{scheme}://{host}/hs3/{}/{key}",
                target.bucket.as_deref().unwrap_or_default()
            )
        }
    }

    /// The backend could not be reached or did not answer: 503, and the cause only in the log.
    pub(super) async fn backend_unreachable(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        cause: &str,
    ) -> Flow {
        tracing::warn!(request_id = %x.reply.id, backend = %x.backend, "backend unavailable: {cause}");
        let err = HcpError::new(HcpCode::ServiceUnavailable).with_cause(cause);
        self.answer(s, x, err).await
    }

    /// Answers an error found before the body was read; the unread body is drained later.
    pub(super) async fn answer_early(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        err: HcpError,
    ) -> Flow {
        self.reply_error(s, x, err, Moment::BeforeBody).await
    }

    /// Answers an error once the body may have been read in part.
    pub(super) async fn answer(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        err: HcpError,
    ) -> Flow {
        self.reply_error(s, x, err, Moment::DuringBody).await
    }

    /// The one place an error is answered and the connection's fate decided: HCP's error
    /// document is written, then a body left unread is drained after the request's place is
    /// given back — unless the client waits for 100-continue for it or more than `DRAIN_LIMIT`
    /// of it is left, which close the connection. A client gone while the answer is written
    /// aborts.
    async fn reply_error(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        err: HcpError,
        moment: Moment,
    ) -> Flow {
        let closes = err.closes;
        // (Asked before the answer is written, which then is the session's response.)
        let (left_waiting, continued) = (expect_left_waiting(s), continued(s));
        if !self.write_error(s, x, err).await {
            return Flow::Abort;
        }
        if left_waiting {
            return Flow::Close;
        }
        if s.is_body_empty() || s.is_body_done() {
            return if closes { Flow::Close } else { Flow::KeepAlive };
        }
        // (An answer that closes the connection drains the unread body all the same: closing
        // with bytes unread would reset the connection, and the answer with it. Its session
        // keeps no connection alive past the drain: `write_error`. So does one given while
        // the body was being read — a chunk's signature, a digest — as far as what is left.)
        let declared = s
            .req_header()
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let left = match moment {
            Moment::BeforeBody => declared,
            Moment::DuringBody => declared.map(|n| n.saturating_sub(s.body_bytes_read())),
        };
        let waits = moment == Moment::BeforeBody && is_expect_continue(s) && !continued;
        if waits || left.is_some_and(|n| n > DRAIN_LIMIT) {
            return Flow::Close;
        }
        Flow::Drain
    }

    /// Reads and discards what is left of a refused request's body: at most `DRAIN_LIMIT`
    /// bytes within `DRAIN_TIME` in all (no place of `max_concurrent_requests` is held).
    pub(super) async fn drain(&self, s: &mut ServerSession) -> Flow {
        let read_all = async {
            let mut drained = 0usize;
            while drained <= DRAIN_LIMIT {
                match s.read_request_body().await {
                    Ok(Some(chunk)) => drained += chunk.len(),
                    Ok(None) => return Flow::KeepAlive,
                    Err(_) => return Flow::Close,
                }
            }
            Flow::Close
        };
        tokio::time::timeout(DRAIN_TIME.min(self.cfg.client_body.pause), read_all)
            .await
            .unwrap_or(Flow::Close)
    }

    /// Writes an HCP error document (headers only for HEAD); false if the client is gone.
    pub(super) async fn write_error(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        err: HcpError,
    ) -> bool {
        x.status = err.status;
        x.note_error(&err);
        let closes = err.closes;
        let body = err.to_xml(&x.reply.id, &self.cfg.host_id, x.reply.pretty);
        let mut resp: ResponseHeader =
            rewrite::error_header(&err, body.len(), &x.reply.id, &self.cfg.host_id);
        if closes || expect_left_waiting(s) {
            // (pingora writes the Connection header from the session's keep-alive.)
            s.set_keepalive(None);
            resp.insert_header(http::header::CONNECTION, "close")
                .expect("static");
        }
        if self.write_head(s, x, resp).await.is_err() {
            return false;
        }
        // The request head may not have been parsed at all (malformed requests are answered
        // too); the summary names the method when it was.
        if s.request_summary().starts_with("HEAD ") {
            return s.finish_body().await.is_ok();
        }
        x.bytes_out = body.len() as u64;
        s.write_response_body(body, true).await.is_ok()
    }

    /// Over `max_concurrent_requests` (overall or per client): HCP's overload answer, 503
    /// ServiceUnavailable with Retry-After, sent before anything else is done; the connection
    /// closes, since the request's body (if any) is not read.
    pub(super) async fn refuse_overload(
        &self,
        s: &mut ServerSession,
        limit: crate::request::admit::Refused,
        started: Instant,
    ) {
        self.metrics.overload_refusal(limit.name());
        let cause = format!("{} concurrency limit", limit.name());
        let err = HcpError::new(HcpCode::ServiceUnavailable);
        // (Its head was read: its `x-hcp-pretty-print` is heard.)
        let pretty = super::asks_pretty(s.req_header());
        self.refuse(s, err, (Some(cause), pretty), started).await;
    }

    /// A request whose header section pingora cannot accept (a Content-Length that is empty,
    /// negative or given twice with different values, a control character in a header value,
    /// broken framing), or that is larger than `limits.max_header_bytes`, gets HCP's 400 and
    /// the connection closes: there is no telling where the next request would begin.
    pub(super) async fn refuse_malformed(&self, s: &mut ServerSession, message: &str) {
        let err = HcpError::new(HcpCode::InvalidArgument).with_message(message.to_string());
        self.refuse(s, err, (None, false), Instant::now()).await;
    }

    /// Answers a request refused before it was looked at (its document indented where
    /// `pretty`), and closes the connection.
    pub(super) async fn refuse(
        &self,
        s: &mut ServerSession,
        err: HcpError,
        (cause, pretty): (Option<String>, bool),
        started: Instant,
    ) {
        let mut x = Exchange {
            reply: Reply {
                id: RequestId::new(),
                pretty,
                ..Reply::default()
            },
            client: s.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip()),
            cause,
            ..Exchange::default()
        };
        s.set_keepalive(None);
        let _ = self.write_error(s, &mut x, err).await;
        self.record(&x, started);
    }
}

/// A refused CORS preflight, the same whatever the reason; anonymous, as every preflight, its
/// connection closes after it (a connection walking through bucket names, each a `GET ?cors`
/// of the backend, pays a connection for each).
pub(super) fn preflight_refused() -> HcpError {
    HcpError::new(HcpCode::AccessDenied)
        .with_message("CORS is not enabled for this origin, method and headers on this bucket.")
        .closing()
}

/// How many copies of a backend document of `op` its rewrite holds at once besides the one
/// read: the rewritten document and the one in HCP's order (`order`), and for a version
/// listing its entries reordered, for `x-hcp-pretty-print` the indented one (written into
/// room for twice the length), and where owners are named the listed names once more. Every
/// document is rewritten so, a sub-resource's too (`GET ?cors`: up to 2.5 MB), an error
/// document as well.
fn rewrite_copies(op: Operation, pretty: bool) -> usize {
    let listing = op.page_size().is_some();
    2 + usize::from(op == Operation::ListObjectVersions)
        + usize::from(listing)
        + if pretty { 2 } else { 0 }
}
/// Whether a backend's answer to a request tried again after its first try's answer was lost
/// may be that first try's doing: a CreateBucket's 409 (the bucket made, where the tenant keeps
/// owners), a DeleteBucket's 404 (the bucket deleted — one the records named an owner of when
/// the delete began: a first try the backend never read, on a connection it had closed, finds
/// a bucket that was never there 404 all the same).
fn after_a_lost_try(call: &Call<'_>, status: u16) -> bool {
    let change = call.guards.owner_change.as_ref();
    match call.op {
        Operation::CreateBucket => status == 409 && change.is_some(),
        Operation::DeleteBucket => status == 404 && change.is_some_and(|c| c.had_owner()),
        _ => false,
    }
}
