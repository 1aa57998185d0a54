//! The benchmark's backend: an in-memory S3 stand-in that costs as little as possible, so that
//! what the benchmark measures is the proxy in front of it.
//!
//! GET/HEAD `/{bucket}/{name}-{size}` answers `size` bytes (`1024`, `4k`, `1g`, `5g`) streamed from
//! one shared buffer; PUT reads the whole body, discards it and answers 200 with an ETag. It does
//! not check signatures: the gateway's re-signed requests and the proxies' unsigned ones cost it
//! the same.
//!
//!   cargo run --release --example bench_origin -- 127.0.0.1:18080

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::{Request, Response};

const PIECE: usize = 256 * 1024;

fn piece() -> &'static Bytes {
    static PIECE_BYTES: OnceLock<Bytes> = OnceLock::new();
    PIECE_BYTES.get_or_init(|| {
        Bytes::from(
            (0..PIECE)
                .map(|i| b'a' + (i % 26) as u8)
                .collect::<Vec<u8>>(),
        )
    })
}

/// `size` bytes, handed out as slices of the shared buffer.
struct Repeated {
    left: u64,
}

impl Body for Repeated {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(PIECE as u64) as usize;
        self.left -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(piece().slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

/// The object size a path names: the text after its last '-', with an optional k/m/g suffix.
fn object_size(path: &str) -> Option<u64> {
    let tail = path.rsplit_once('-')?.1;
    let (digits, unit) = match tail.as_bytes().last()? {
        b'k' => (&tail[..tail.len() - 1], 1u64 << 10),
        b'm' => (&tail[..tail.len() - 1], 1 << 20),
        b'g' => (&tail[..tail.len() - 1], 1 << 30),
        _ => (tail, 1),
    };
    digits.parse::<u64>().ok().map(|n| n * unit)
}

async fn serve(req: Request<hyper::body::Incoming>) -> Result<Response<Repeated>, Infallible> {
    let method = req.method().clone();
    let size = object_size(req.uri().path());
    let mut answer = Response::builder()
        .header("etag", "\"0123456789abcdef0123456789abcdef\"")
        .header("x-amz-request-id", "bench-origin");
    let body = match (method.as_str(), size) {
        ("GET" | "HEAD", Some(size)) => {
            answer = answer
                .header("content-type", "application/octet-stream")
                .header("last-modified", "Sun, 22 Nov 2026 00:00:00 GMT");
            if method == "HEAD" {
                answer = answer.header("content-length", size);
                Repeated { left: 0 }
            } else {
                Repeated { left: size }
            }
        }
        ("GET" | "HEAD", None) => {
            answer = answer.status(404);
            Repeated { left: 0 }
        }
        _ => {
            // PUT and anything else: read the body to its end, then answer.
            let mut body = req.into_body();
            while let Some(frame) = body.frame().await {
                if frame.is_err() {
                    break;
                }
            }
            Repeated { left: 0 }
        }
    };
    Ok(answer.body(body).expect("static headers are valid"))
}

fn main() {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await.expect("bind");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, hyper::service::service_fn(serve))
                    .await;
            });
        }
    });
}
