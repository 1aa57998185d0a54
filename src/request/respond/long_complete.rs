//! CompleteMultipartUpload, which may take minutes at the backend: HCP's statuses until
//! `complete_keepalive_ms`, then a committed 200 with whitespace until the result.

use super::*;

impl Gateway {
    /// CompleteMultipartUpload may take long at the backend. Until `complete_keepalive_after`
    /// HCP's statuses apply as usual; after it the gateway commits a 200 and sends whitespace
    /// every second so that clients and proxies keep the connection, then the result or the
    /// Error document.
    pub(in crate::request) async fn complete(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        mut up: Upstream,
        call: &Call<'_>,
    ) -> Flow {
        up.session.read_timeout = Some(self.cfg.complete_timeout);
        // (Sent a moment ago, `forward::transmit`: the backend's time counts from here.)
        let sent = std::time::Instant::now();
        // (Under way until its answer is settled: a stop waits for it.)
        let _underway = self.underway.begin();
        let mut committed = false;
        // (The backend completed, or will have: its answer is read whatever the budget, and
        // counted until it is answered.)
        let mut held = self.held.hold_counted();
        // A client gone meanwhile (a read timeout of its own, a closed connection) does not end
        // the complete: the backend goes on and makes the object all the same, so its answer is
        // still awaited and what HCP's headers ask of the object (retention, holds, labels,
        // folders, ACL, owner) is still done — never an object stored without them. Only the
        // answer goes nowhere.
        let mut client_gone = false;
        let (read, body) = {
            let limit = self.cfg.max_buffered_response_bytes;
            let within = self.cfg.complete_timeout;
            let exchange = Self::complete_answer(&mut up, (limit, within), &mut held);
            tokio::pin!(exchange);
            let start = tokio::time::Instant::now() + self.cfg.complete_keepalive_after;
            let mut ticks = tokio::time::interval_at(start, std::time::Duration::from_secs(1));
            loop {
                tokio::select! {
                    r = &mut exchange => break r,
                    _ = ticks.tick(), if !client_gone => {
                        client_gone = !self.keep_complete_alive(s, x, &mut committed).await;
                    }
                }
            }
        };
        x.backend_elapsed = Some(sent.elapsed());
        // (A success before the backend had the whole document is none: `early_success`.)
        let early = match read {
            Ok(_) => crate::request::forward::early_success(x, call, &up),
            Err(_) => None,
        };
        if !committed {
            let flow = match (early, read, body) {
                (Some(failed), ..) => return self.answer(s, x, failed).await,
                (None, Err(e), _) => return self.backend_unreachable(s, x, &e.to_string()).await,
                (None, Ok(_), Some(body)) => {
                    let upstream = up.session.resp_header().expect("response was read").clone();
                    self.note_answer(x, call, &upstream);
                    self.answer_document(s, x, call, &upstream, (body, &mut held))
                        .await
                }
                (None, Ok(_), None) => self.answer_from_backend(s, x, &mut up, call).await,
            };
            if matches!(flow, Flow::KeepAlive) && up.session.is_body_done() {
                self.forwarder.release(up).await;
            }
            return if client_gone { Flow::Abort } else { flow };
        }
        // The 200 is on its way: whatever happens now goes into the body.
        let location = self.client_location(s, call.target);
        let settled = match (early, read) {
            (Some(failed), _) => Err(failed),
            (None, Ok(_)) => {
                let upstream = up.session.resp_header().expect("response was read").clone();
                self.note_answer(x, call, &upstream);
                let body = match body {
                    Some(body) => body,
                    None => {
                        let limit = self.cfg.max_buffered_response_bytes;
                        upstream::read_whole_body(&mut up.session, limit, &mut held).await
                    }
                };
                self.settle_kept(x, call, &upstream, body, &location).await
            }
            (None, Err(e)) => Err(HcpError::new(HcpCode::ServiceUnavailable)
                .with_cause(format!("backend failed during a long complete: {e}"))),
        };
        let doc = match settled {
            Ok(doc) => doc,
            Err(err) => {
                x.note_error(&err);
                err.to_xml(&x.reply.id, &self.cfg.host_id, x.reply.pretty)
            }
        };
        if client_gone {
            return Flow::Abort;
        }
        let doc = rewrite::without_declaration(doc);
        x.bytes_out = doc.len() as u64;
        if s.write_response_body(doc, true).await.is_err() {
            return Flow::Abort;
        }
        Flow::KeepAlive
    }

    /// The backend's answer to a complete: its header, and where that says 200 its document
    /// too — AWS answers 200 at once and sends whitespace while it works, minutes on end, so
    /// the document is awaited under the same ticks as the header. (An error status's document
    /// is small and read as any other's.) All of it `within` (`complete_timeout`), not each
    /// read: the backend's whitespace would keep a per-read timeout, and a stop waiting for the
    /// complete, from ever ending.
    async fn complete_answer(
        up: &mut Upstream,
        (limit, within): (usize, std::time::Duration),
        held: &mut crate::request::held::Held,
    ) -> (
        pingora::Result<()>,
        Option<Result<Vec<u8>, pingora::BError>>,
    ) {
        let answer = async {
            let read = up.session.read_response().await;
            let document = read.is_ok()
                && !up.body_cut_short
                && up
                    .session
                    .resp_header()
                    .is_some_and(|h| h.status.is_success());
            let body = if document {
                Some(upstream::read_whole_body(&mut up.session, limit, held).await)
            } else {
                None
            };
            (read, body)
        };
        match tokio::time::timeout(within, answer).await {
            Ok(answered) => answered,
            Err(_) => {
                let why = "no answer within complete_timeout_seconds";
                let timeout = pingora::Error::explain(pingora::ErrorType::ReadTimedout, why);
                (Err(timeout), None)
            }
        }
    }

    /// One tick of a long complete: the 200 header the first time, then a space. False if the
    /// client is gone.
    async fn keep_complete_alive(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        committed: &mut bool,
    ) -> bool {
        if !*committed {
            let mut resp = ResponseHeader::build(200, Some(12)).expect("200");
            resp.insert_header(http::header::CONTENT_TYPE, rewrite::XML_DOCUMENT)
                .expect("static");
            resp.insert_header(http::header::TRANSFER_ENCODING, "chunked")
                .expect("static");
            rewrite::finish_headers(&mut resp, false, &x.reply.id, &self.cfg.host_id);
            if self.write_head(s, x, resp).await.is_err() {
                return false;
            }
            x.status = 200;
            *committed = true;
        }
        s.write_response_body(Bytes::from_static(b" "), false)
            .await
            .is_ok()
    }
}
