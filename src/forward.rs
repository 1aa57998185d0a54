//! Forwarding: a pooled HTTP/1.1 connection to the backend, the request body streamed up while
//! its signed digest is verified, and the backend's answer read back.
//!
//! The newest body chunk is held back until the digest is known, so a body that fails
//! verification never reaches the backend whole: the upstream connection is dropped and the
//! backend discards the incomplete request.

use std::time::Duration;

use bytes::Bytes;
use pingora::connectors::http::v1::Connector;
use pingora::protocols::http::v1::client::HttpSession;
use pingora::protocols::http::ServerSession;
use pingora::upstreams::peer::HttpPeer;
use sha2::{Digest, Sha256};

use crate::auth::PayloadCheck;
use crate::errors::{HcpCode, HcpError};
use crate::routing::BackendRuntime;

/// How long an idle pooled backend connection is kept.
const UPSTREAM_IDLE: Duration = Duration::from_secs(55);

pub struct Forwarder {
    connector: Connector,
}

/// One exchange with a backend on a (possibly reused) connection.
pub struct Upstream {
    pub session: HttpSession,
    peer: HttpPeer,
    pub reused: bool,
}

impl Default for Forwarder {
    fn default() -> Self {
        Forwarder {
            connector: Connector::new(None),
        }
    }
}

impl Forwarder {
    /// Takes a pooled connection to the backend or opens one.
    pub async fn connect(&self, backend: &BackendRuntime) -> pingora::Result<Upstream> {
        let mut peer = HttpPeer::new(backend.addr, false, String::new());
        peer.options.connection_timeout = Some(backend.connect_timeout);
        peer.options.read_timeout = Some(backend.read_timeout);
        peer.options.write_timeout = Some(backend.read_timeout);
        peer.options.idle_timeout = Some(UPSTREAM_IDLE);
        let (mut session, reused) = self.connector.get_http_session(&peer).await?;
        session.read_timeout = Some(backend.read_timeout);
        session.write_timeout = Some(backend.read_timeout);
        Ok(Upstream {
            session,
            peer,
            reused,
        })
    }

    /// Returns a connection whose exchange completed to the pool.
    pub async fn release(&self, upstream: Upstream) {
        self.connector
            .release_http_session(upstream.session, &upstream.peer, Some(UPSTREAM_IDLE))
            .await;
    }
}

/// Why streaming the request body stopped.
#[derive(Debug)]
pub enum BodyError {
    /// The body broke a rule the client is told about (digest mismatch).
    Rejected(HcpError),
    /// The client stopped sending or went away.
    Client(pingora::BError),
    /// The backend stopped accepting the body.
    Backend(pingora::BError),
}

/// Streams the client's body to the backend, verifying it against `check`. Returns the number of
/// body bytes forwarded. On error the upstream exchange must be abandoned, not released.
pub async fn stream_request_body(
    downstream: &mut ServerSession,
    upstream: &mut HttpSession,
    check: &PayloadCheck,
    read_timeout: Duration,
) -> Result<u64, BodyError> {
    let mut hasher = match check {
        PayloadCheck::Sha256(_) => Some(Sha256::new()),
        PayloadCheck::Unsigned => None,
    };
    let mut held: Option<Bytes> = None;
    let mut total = 0u64;
    loop {
        let chunk = match tokio::time::timeout(read_timeout, downstream.read_request_body()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(BodyError::Client(e)),
            Err(_) => {
                return Err(BodyError::Client(pingora::Error::explain(
                    pingora::ErrorType::ReadTimedout,
                    "client body read timed out",
                )))
            }
        };
        let Some(chunk) = chunk else { break };
        if chunk.is_empty() {
            continue;
        }
        total += chunk.len() as u64;
        match hasher.as_mut() {
            Some(h) => {
                h.update(&chunk);
                if let Some(prev) = held.replace(chunk) {
                    upstream
                        .write_body(&prev)
                        .await
                        .map_err(BodyError::Backend)?;
                }
            }
            None => {
                upstream
                    .write_body(&chunk)
                    .await
                    .map_err(BodyError::Backend)?;
            }
        }
    }
    if let (Some(h), PayloadCheck::Sha256(expected)) = (hasher, check) {
        let actual: [u8; 32] = h.finalize().into();
        if &actual != expected {
            return Err(BodyError::Rejected(
                HcpError::new(HcpCode::BadDigest).with_message(
                    "The x-amz-content-sha256 you specified did not match what was received.",
                ),
            ));
        }
        if let Some(last) = held.take() {
            upstream
                .write_body(&last)
                .await
                .map_err(BodyError::Backend)?;
        }
    }
    upstream.finish_body().await.map_err(BodyError::Backend)?;
    Ok(total)
}

/// Reads a whole response body, failing once it exceeds `limit` bytes.
pub async fn read_whole_body(
    upstream: &mut HttpSession,
    limit: usize,
) -> Result<Vec<u8>, pingora::BError> {
    let mut body = Vec::new();
    while let Some(chunk) = upstream.read_body_ref().await? {
        if body.len() + chunk.len() > limit {
            return Err(pingora::Error::explain(
                pingora::ErrorType::InvalidHTTPHeader,
                "backend body too large",
            ));
        }
        body.extend_from_slice(chunk);
    }
    Ok(body)
}
