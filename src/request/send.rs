//! Phases 6 and 7: the backend request is signed from the plan, guarded by the checks that need
//! the backend's state, and sent — with the body verified on its way, control documents read
//! and checked first, and bodiless requests retried by [`Retry`].

use super::*;

/// Retries of one request: bounded in count and in time.
pub(super) struct Retry {
    left: u32,
    done: u32,
    started: Instant,
}

impl Retry {
    /// First wait's ceiling; each retry doubles it, up to `MAX_WAIT`.
    const BASE_WAIT: std::time::Duration = std::time::Duration::from_millis(50);
    const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
    /// No retry starts after this long.
    const BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

    pub(super) fn new(max: u32) -> Retry {
        Retry {
            left: max,
            done: 0,
            started: Instant::now(),
        }
    }

    pub(super) fn left(&self) -> bool {
        self.left > 0 && self.started.elapsed() < Self::BUDGET
    }

    pub(super) fn next_wait(&mut self) -> Option<std::time::Duration> {
        use rand::Rng;
        if !self.left() {
            return None;
        }
        self.left -= 1;
        let ceiling = Self::BASE_WAIT
            .saturating_mul(1 << self.done.min(16))
            .min(Self::MAX_WAIT);
        self.done += 1;
        Some(ceiling.mul_f64(rand::thread_rng().gen_range(0.0..1.0)))
    }
}

impl Gateway {
    /// Signing, forwarding and normalisation.
    pub(super) async fn forward(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        plan: Plan<'_>,
    ) -> Flow {
        let Plan {
            target,
            op,
            params,
            auth,
            mut route,
        } = plan;
        if let Err(cause) = self.resolve_credentials(&mut route).await {
            return self.backend_unreachable(s, x, &cause).await;
        }
        // Only operations that carry a body forward one: a body sent with any other request
        // is left unread (the connection closes after the answer), so that it can hold nothing
        // — no backend connection, no place — while it trickles in.
        let client_body = !s.is_body_empty();
        let takes_body = op.takes_body()
            && matches!(
                s.req_header().method,
                http::Method::PUT | http::Method::POST
            );
        let has_body = client_body && takes_body;
        let verifier =
            match BodyVerifier::new(&auth.payload, s.req_header(), self.cfg.max_chunk_bytes) {
                Ok(v) => v,
                Err(e) => return self.answer_early(s, x, e).await,
            };
        let body_length = if has_body {
            verifier.decoded_length()
        } else {
            None
        };
        // A body is verified before the backend could commit it, whatever its length: without
        // a body, the signed digest, Content-MD5 and checksums must be an empty body's (and an
        // aws-chunked request must have its chunks); the backend would store an empty object on
        // the header alone.
        let verifier = if has_body {
            Some(verifier)
        } else if !takes_body {
            None
        } else {
            if let Err(e) = verifier.finish() {
                return self.answer_early(s, x, e).await;
            }
            None
        };
        if has_body {
            self.metrics
                .payloads
                .with_label_values(&[auth.payload.mode()])
                .inc();
        }
        // What the gateway vouches for toward the backend: the verified digest of a body that is
        // forwarded unchanged, or no claim at all (the gateway verified what it could itself).
        let (payload_hash, framing) = match (&auth.payload, has_body) {
            (_, false) => (sigv4::EMPTY_SHA256.to_string(), BodyFraming::AsSent),
            (Payload::Plain { sha256: Some(d) }, true) => (hex::encode(d), BodyFraming::AsSent),
            (Payload::Plain { sha256: None }, true) => {
                (sigv4::UNSIGNED_PAYLOAD.to_string(), BodyFraming::AsSent)
            }
            (Payload::Chunked { .. }, true) => {
                (sigv4::UNSIGNED_PAYLOAD.to_string(), BodyFraming::Dechunked)
            }
        };

        // 6. signing
        let body = signing::BodyPlan {
            length: body_length,
            framing,
            payload_hash: &payload_hash,
        };
        let client = s.req_header();
        let outbound = signing::Outbound {
            op,
            method: &client.method,
            params: &params,
            target: &target,
            headers: &client.headers,
        };
        let mut upstream_req = signing::backend_request(
            outbound,
            &route,
            body,
            SystemTime::now(),
            &self.signing_keys,
        );
        if has_body && body_length.is_none() {
            upstream_req
                .insert_header(http::header::TRANSFER_ENCODING, "chunked")
                .expect("static");
        }

        // AWS us-east-1 answers a re-created own bucket 200 and resets its ACL: the gateway asks
        // first and answers HCP's BucketAlreadyOwnedByYou without re-creating it.
        if op == Operation::CreateBucket && self.recreates_silently(&route) {
            match self
                .backend_call(Operation::HeadBucket, Params::default(), &target, &route)
                .await
            {
                Some((h, _)) if h.status == 200 => {
                    let bucket = target.bucket.as_deref().unwrap_or_default();
                    return self
                        .answer_early(
                            s,
                            x,
                            HcpError::new(HcpCode::BucketAlreadyOwnedByYou).with_bucket(bucket),
                        )
                        .await;
                }
                Some((h, _)) if h.status == 403 => {
                    return self
                        .answer_early(s, x, HcpError::new(HcpCode::BucketAlreadyExists))
                        .await;
                }
                _ => {}
            }
        }

        // Rule 41 and create-only writes where the backend cannot refuse them itself; before a
        // 100-continue, so that a refused body is never sent.
        match self
            .check_overwrite(s.req_header(), op, &target, &route)
            .await
        {
            Ok(Overwrite::Unguarded) => {}
            Ok(Overwrite::AskBackend) => {
                upstream_req
                    .insert_header(http::header::IF_NONE_MATCH, "*")
                    .expect("static");
                x.overwrite_guarded = true;
            }
            Err(e) => return self.answer_early(s, x, e).await,
        }

        if has_body && is_expect_continue(s) {
            if let Err(e) = s.write_continue_response().await {
                x.cause = Some(format!("writing 100-continue: {e}"));
                return Flow::Abort;
            }
        }

        // Seed 000's part-copy rules that need the backend's state.
        if op == Operation::UploadPartCopy {
            if let Err(e) = self
                .check_part_copy(s.req_header(), &params, &target, &route)
                .await
            {
                return self.answer_early(s, x, e).await;
            }
            x.upload_confirmed = true;
        }

        // HCP's complete, multi-delete and ACL rules need the (small) XML body before the backend
        // acts: it is read and verified whole, checked, then sent on as it came (an ACL in HCP's
        // terms is sent in the backend's).
        // A body that decodes to nothing (aws-chunked with x-amz-decoded-content-length: 0) is
        // read and verified whole first for the same reason.
        let mut verifier = verifier;
        let mut buffered: Option<Bytes> = None;
        let control = matches!(
            op,
            Operation::CompleteMultipartUpload
                | Operation::DeleteObjects
                | Operation::PutBucketAcl
                | Operation::PutObjectAcl
        );
        if has_body && (control || body_length == Some(0)) {
            let v = verifier.take().expect("not used yet");
            let body = match forward::read_request_body(
                s,
                v,
                self.cfg.limits.max_control_body_bytes,
                self.cfg.client_body_timeout,
            )
            .await
            {
                Ok(b) => b,
                Err(BodyError::Rejected(e)) => return self.answer(s, x, e).await,
                Err(e) => {
                    x.cause = Some(format!("client body: {e:?}"));
                    return Flow::Abort;
                }
            };
            x.bytes_in = body.len() as u64;
            let upload_id = params.get("uploadId").unwrap_or_default().to_string();
            let checked = match op {
                _ if !control => Ok(None),
                Operation::DeleteObjects => {
                    validation::check_delete_list(&body, &self.cfg.limits).map(|()| None)
                }
                Operation::PutBucketAcl | Operation::PutObjectAcl => {
                    let backend = self.backend_owner(&target, &route).await;
                    let shown = routing::tenant_owner_id(route.tenant);
                    let ids = (shown.as_str(), backend.as_deref());
                    acl::check_policy(&body, &self.users.load(), ids).map(Some)
                }
                _ => self
                    .check_complete(&body, &upload_id, &target, &route)
                    .await
                    .map(|()| None),
            };
            buffered = match checked {
                Err(e) => return self.answer(s, x, e).await,
                Ok(None) => Some(body),
                Ok(Some(translated)) => {
                    upstream_req =
                        self.resign_with_body(s, (op, &params), &target, &route, &translated);
                    Some(Bytes::from(translated))
                }
            };
        }

        // 7. forwarding (only bodiless requests are ever retried, so the verifier is used once)
        // Bodiless requests other than POST (which could create twice) are retried on connection
        // failures and on the backend's 503 (SlowDown), with backoff; a body is never replayed.
        let mut retry = Retry::new(
            if !has_body && s.req_header().method != http::Method::POST {
                route.backend.max_retries
            } else {
                0
            },
        );
        let mut stale_retried = false;
        let mut up = loop {
            let mut up = match self.forwarder.connect(route.backend).await {
                Ok(u) => u,
                Err(e) => {
                    // Only failures to reach a backend count toward its health, never its
                    // answer (or its hanging up) on a bad request.
                    self.health.record(&route.backend.name, false);
                    if self.back_off(&mut retry, route.backend, "connect").await {
                        continue;
                    }
                    return self.backend_unreachable(s, x, &e.to_string()).await;
                }
            };
            self.count_connection(route.backend, up.reused);
            let sent = Instant::now();
            // A pooled connection may have been closed by the backend meanwhile: a bodiless request
            // that fails on one before any answer is sent again, at once, on a fresh connection.
            let retriable = up.reused && !has_body && !stale_retried;
            stale_retried |= retriable;
            if let Err(e) = up
                .session
                .write_request_header(Box::new(upstream_req.clone()))
                .await
            {
                if retriable {
                    continue;
                }
                return self.backend_unreachable(s, x, &e.to_string()).await;
            }
            self.metrics
                .backend_requests
                .with_label_values(&[&route.backend.name])
                .inc();
            if let Some(body) = &buffered {
                let sent = up.session.write_body(body).await;
                if let Err(e) = sent.and(up.session.finish_body().await) {
                    x.cause = Some(format!("backend stopped reading the body: {e}"));
                }
            } else if has_body {
                let verifier = verifier.take().expect("a request with a body is sent once");
                match forward::stream_request_body(
                    s,
                    &mut up.session,
                    verifier,
                    self.cfg.client_body_timeout,
                )
                .await
                {
                    Ok(n) => x.bytes_in = n,
                    Err(BodyError::Rejected(e)) => {
                        // The upstream request is abandoned unfinished: the backend stores nothing.
                        drop(up);
                        return self.answer(s, x, e).await;
                    }
                    Err(BodyError::Client(e)) => {
                        x.cause = Some(format!("client body: {e}"));
                        return Flow::Abort;
                    }
                    Err(BodyError::Backend(e)) => {
                        // The backend may have answered early (and stopped reading): use its answer.
                        x.cause = Some(format!("backend stopped reading the body: {e}"));
                    }
                }
            } else if let Err(e) = up.session.finish_body().await {
                if retriable {
                    continue;
                }
                return self.backend_unreachable(s, x, &e.to_string()).await;
            }
            if op == Operation::CompleteMultipartUpload {
                break up;
            }
            match up.session.read_response().await {
                Ok(_) => {
                    let busy = up.session.resp_header().map(|h| h.status.as_u16()) == Some(503);
                    if busy && retry.left() {
                        // Read the short error answer so the connection can be pooled.
                        let drained = forward::read_whole_body(&mut up.session, 64 * 1024).await;
                        if drained.is_ok() && up.session.is_body_done() {
                            self.forwarder.release(up).await;
                        }
                        if self.back_off(&mut retry, route.backend, "busy").await {
                            continue;
                        }
                        // Out of time: the request is answered as the backend is overloaded.
                        return self
                            .answer(s, x, HcpError::new(HcpCode::ServiceUnavailable))
                            .await;
                    }
                    x.backend_elapsed = Some(sent.elapsed());
                    self.health.record(&route.backend.name, true);
                    break up;
                }
                Err(e) if retriable => {
                    tracing::debug!("retrying on a fresh backend connection: {e}");
                    continue;
                }
                Err(e) => {
                    // (A read timeout is not counted: a client can make a request long; a
                    // backend that stops answering fails its HTTP probe.)
                    if self.back_off(&mut retry, route.backend, "connection").await {
                        continue;
                    }
                    return self.backend_unreachable(s, x, &e.to_string()).await;
                }
            }
        };
        let body_fully_read = !client_body || s.is_body_done();
        if op == Operation::CompleteMultipartUpload {
            return self.complete(s, x, up, &target, &route).await;
        }

        // 8. normalisation
        let flow = self
            .answer_from_backend(s, x, &mut up, op, &target, &route)
            .await;
        match flow {
            Flow::KeepAlive if up.session.is_body_done() => self.forwarder.release(up).await,
            _ => drop(up),
        }
        match flow {
            Flow::KeepAlive if !body_fully_read => Flow::Close,
            f => f,
        }
    }

    /// Waits before the next attempt (exponential backoff with full jitter), or says that no
    /// attempt is left in count or time.
    pub(super) async fn back_off(
        &self,
        retry: &mut Retry,
        backend: &BackendRuntime,
        reason: &str,
    ) -> bool {
        let Some(wait) = retry.next_wait() else {
            return false;
        };
        self.metrics
            .backend_retries
            .with_label_values(&[backend.name.as_str(), reason])
            .inc();
        tokio::time::sleep(wait).await;
        true
    }

    /// The backend request again, for a body the gateway rewrote: its length, digest and
    /// Content-MD5 are the new body's, and the client's checksums of the old body are dropped.
    pub(super) fn resign_with_body(
        &self,
        s: &mut ServerSession,
        (op, params): (Operation, &Params),
        target: &Target,
        route: &Route<'_>,
        body: &[u8],
    ) -> pingora::http::RequestHeader {
        use base64::Engine as _;
        use md5::Digest as _;
        let req = s.req_header_mut();
        if req.headers.contains_key("content-md5") {
            let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body));
            req.insert_header("content-md5", md5).expect("base64");
        }
        let stale: Vec<http::HeaderName> = req
            .headers
            .keys()
            .filter(|n| {
                n.as_str().starts_with("x-amz-checksum-")
                    || n.as_str() == "x-amz-sdk-checksum-algorithm"
            })
            .cloned()
            .collect();
        for name in stale {
            req.remove_header(&name);
        }
        let digest = sigv4::sha256_hex(body);
        let client = s.req_header();
        signing::backend_request(
            signing::Outbound {
                op,
                method: &client.method,
                params,
                target,
                headers: &client.headers,
            },
            route,
            signing::BodyPlan {
                length: Some(body.len() as u64),
                framing: BodyFraming::Dechunked,
                payload_hash: &digest,
            },
            SystemTime::now(),
            &self.signing_keys,
        )
    }
}
