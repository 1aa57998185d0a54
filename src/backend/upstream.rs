//! Forwarding: a pooled HTTP/1.1 connection to the backend, the request body streamed up while
//! its signed digest is verified, and the backend's answer read back.
//!
//! The newest verified piece of the body is held back until the whole-body checks pass, so a body
//! that fails verification never reaches the backend whole: the upstream connection is dropped
//! and the backend discards the incomplete request.

use std::time::Duration;

use crate::hcp::errors::HcpError;
use crate::request::body::BodyVerifier;
use crate::request::route::BackendRuntime;
use bytes::Bytes;
use pingora::connectors::http::v1::Connector;
use pingora::protocols::http::v1::client::HttpSession;
use pingora::protocols::http::ServerSession;
use pingora::upstreams::peer::HttpPeer;

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
    /// The request's body was not sent whole (the backend stopped reading it): bytes of it
    /// may still be in flight, so the connection is never pooled again.
    pub body_cut_short: bool,
}

impl Default for Forwarder {
    fn default() -> Self {
        Forwarder {
            connector: Connector::new(None),
        }
    }
}

impl Forwarder {
    /// Takes a pooled connection to the backend or opens one. TLS connections are made here
    /// (rustls) and pooled by pingora like plain ones.
    pub async fn connect(&self, backend: &BackendRuntime) -> pingora::Result<Upstream> {
        let sni = backend
            .authority
            .rsplit_once(':')
            .map_or(backend.authority.as_str(), |(h, _)| h);
        let addr = backend.addr();
        let mut peer = HttpPeer::new(addr, backend.tls.is_some(), sni.to_string());
        peer.options.connection_timeout = Some(backend.connect_timeout);
        peer.options.read_timeout = Some(backend.read_timeout);
        peer.options.write_timeout = Some(backend.read_timeout);
        peer.options.idle_timeout = Some(UPSTREAM_IDLE);
        let (mut session, reused) = match &backend.tls {
            None => self.connector.get_http_session(&peer).await?,
            Some(tls) => match self.connector.reused_http_session(&peer).await {
                Some(session) => (session, true),
                None => {
                    let connect = async {
                        let tcp = tokio::net::TcpStream::connect(addr).await?;
                        let _ = tcp.set_nodelay(true);
                        tls.connect(tcp).await
                    };
                    let stream = tokio::time::timeout(backend.connect_timeout, connect)
                        .await
                        .map_err(|_| {
                            pingora::Error::explain(
                                pingora::ErrorType::ConnectTimedout,
                                "TLS connect timed out",
                            )
                        })?
                        .map_err(|e| {
                            pingora::Error::because(
                                pingora::ErrorType::TLSHandshakeFailure,
                                "TLS connect failed",
                                e,
                            )
                        })?;
                    (HttpSession::new(Box::new(stream)), false)
                }
            },
        };
        session.read_timeout = Some(backend.read_timeout);
        session.write_timeout = Some(backend.read_timeout);
        Ok(Upstream {
            session,
            peer,
            reused,
            body_cut_short: false,
        })
    }

    /// Returns a connection whose exchange completed to the pool.
    pub async fn release(&self, upstream: Upstream) {
        if upstream.body_cut_short {
            return;
        }
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

/// Streams the client's body to the backend through `verifier`. Verified bytes go up as they are
/// released, except the newest piece, which is held until the whole-body checks pass. Returns
/// the number of decoded bytes forwarded. On error the upstream exchange must be abandoned.
pub async fn stream_request_body(
    downstream: &mut ServerSession,
    upstream: &mut HttpSession,
    mut verifier: BodyVerifier,
    read_timeout: Duration,
) -> Result<u64, BodyError> {
    let hold_back = verifier.needs_hold_back();
    let mut held: Option<Bytes> = None;
    let mut released = Vec::new();
    let mut total = 0u64;
    loop {
        let Some(chunk) = next_chunk(downstream, read_timeout).await? else {
            break;
        };
        verifier
            .push(chunk, &mut released)
            .map_err(BodyError::Rejected)?;
        for piece in released.drain(..) {
            total += piece.len() as u64;
            let piece = if hold_back {
                held.replace(piece)
            } else {
                Some(piece)
            };
            if let Some(p) = piece {
                upstream.write_body(&p).await.map_err(BodyError::Backend)?;
            }
        }
    }
    verifier.finish().map_err(BodyError::Rejected)?;
    if let Some(last) = held.take() {
        upstream
            .write_body(&last)
            .await
            .map_err(BodyError::Backend)?;
    }
    upstream.finish_body().await.map_err(BodyError::Backend)?;
    Ok(total)
}

/// The next piece of the client's body, or `None` at its end; a client that pauses longer than
/// `read_timeout` is given up on.
async fn next_chunk(
    downstream: &mut ServerSession,
    read_timeout: Duration,
) -> Result<Option<Bytes>, BodyError> {
    match tokio::time::timeout(read_timeout, downstream.read_request_body()).await {
        Ok(Ok(chunk)) => Ok(chunk),
        Ok(Err(e)) => Err(BodyError::Client(e)),
        Err(_) => Err(BodyError::Client(pingora::Error::explain(
            pingora::ErrorType::ReadTimedout,
            "client body read timed out",
        ))),
    }
}

/// Reads a whole (small) request body through `verifier`, failing past `limit` bytes.
pub async fn read_request_body(
    downstream: &mut ServerSession,
    mut verifier: BodyVerifier,
    limit: usize,
    read_timeout: Duration,
) -> Result<Bytes, BodyError> {
    let mut body = Vec::new();
    let mut released = Vec::new();
    loop {
        let Some(chunk) = next_chunk(downstream, read_timeout).await? else {
            break;
        };
        verifier
            .push(chunk, &mut released)
            .map_err(BodyError::Rejected)?;
        for piece in released.drain(..) {
            if body.len() + piece.len() > limit {
                return Err(BodyError::Rejected(
                    crate::hcp::errors::HcpError::new(crate::hcp::errors::HcpCode::MalformedXML)
                        .with_message("The XML you provided is larger than this gateway accepts."),
                ));
            }
            body.extend_from_slice(&piece);
        }
    }
    verifier.finish().map_err(BodyError::Rejected)?;
    Ok(Bytes::from(body))
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
