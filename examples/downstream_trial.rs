//! The downstream trial of issue "Half the CPU per request" (item 3): what pingora's downstream
//! `ServerSession` costs against a lean downstream built on httparse, with everything else the
//! same — one worker, mimalloc, pingora's upstream `HttpSession` kept with the client
//! connection, the client's request forwarded unchanged to one upstream, the answer relayed.
//! No gateway logic: the difference between the two modes is the downstream session alone.
//!
//!   cargo run --release --example downstream_trial -- MODE LISTEN UPSTREAM
//!   MODE: pingora (pingora-core's v1 ServerSession on the gateway's Coalesced stream)
//!         lean    (httparse heads, the answer's head and a small body in one write)
//!
//! A measuring tool, not a server: HTTP/1.1 keep-alive with Content-Length bodies only.
//!
//! `TRIAL_SPIN_NS=N` adds N ns of busy work to each request before its upstream request is
//! written (pingora mode): a floor that costs as much CPU per request as a heavier proxy, to
//! see whether the scheduling on the shared CPU depends on that cost alone (BENCHMARKS.md,
//! "The shared CPU").

use bytes::{Bytes, BytesMut};
use hcp_s3_gateway::server::coalesce::Coalesced;
use pingora::http::RequestHeader;
use pingora::protocols::http::v1::client::HttpSession as ClientSession;
use pingora::protocols::http::v1::server::HttpSession as ServerSession;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 || !matches!(args[1].as_str(), "pingora" | "lean") {
        eprintln!("usage: downstream_trial pingora|lean LISTEN UPSTREAM");
        std::process::exit(2);
    }
    let lean = args[1] == "lean";
    if let Ok(ns) = std::env::var("TRIAL_SPIN_NS") {
        let ns: u64 = match ns.parse() {
            Ok(ns) if ns > 0 && !lean => ns,
            _ => {
                eprintln!("TRIAL_SPIN_NS: a positive count of ns, in pingora mode only");
                std::process::exit(2);
            }
        };
        let _ = SPIN.set(std::time::Duration::from_nanos(ns));
    }
    let upstream: std::net::SocketAddr = args[3].parse().expect("UPSTREAM is host:port");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind(&args[2]).await.expect("bind");
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let _ = if lean {
                    serve_lean(tcp, upstream).await
                } else {
                    serve_pingora(tcp, upstream).await
                };
            });
        }
    });
}

/// `TRIAL_SPIN_NS`, read once by `main` before the first request.
static SPIN: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();

/// `TRIAL_SPIN_NS` of busy work (none when unset).
fn spin() {
    let Some(&spin) = SPIN.get() else { return };
    let start = std::time::Instant::now();
    while start.elapsed() < spin {
        std::hint::spin_loop();
    }
}

/// The upstream connection of one client connection, opened on first use.
struct Upstream {
    addr: std::net::SocketAddr,
    stream: Option<Stream>,
}

impl Upstream {
    async fn session(&mut self) -> Result<ClientSession> {
        let stream = match self.stream.take() {
            Some(s) => s,
            None => {
                let tcp = TcpStream::connect(self.addr).await?;
                tcp.set_nodelay(true)?;
                Box::new(L4Stream::from(tcp))
            }
        };
        Ok(ClientSession::new(stream))
    }

    async fn keep(&mut self, mut session: ClientSession) {
        session.respect_keepalive();
        self.stream = session.reuse().await;
    }
}

async fn serve_pingora(tcp: TcpStream, addr: std::net::SocketAddr) -> Result<()> {
    let mut upstream = Upstream { addr, stream: None };
    let mut stream: Stream = Box::new(Coalesced::new(tcp, None));
    loop {
        let mut down = ServerSession::new(stream);
        if down.read_request().await?.is_none() {
            return Ok(());
        }
        spin();
        let mut up = upstream.session().await?;
        let mut req = down.req_header().clone();
        // (A client's `Expect: 100-continue` is not passed on: the trial answers no 1xx.)
        req.remove_header("expect");
        up.write_request_header(Box::new(req)).await?;
        while let Some(piece) = down.read_body_bytes().await? {
            up.write_body(&piece).await?;
        }
        up.finish_body().await?;
        up.read_response().await?;
        let answer = up.resp_header().expect("read").clone();
        down.write_response_header(Box::new(answer)).await?;
        while let Some(piece) = up.read_body_bytes().await? {
            down.write_body(&piece).await?;
        }
        down.finish_body().await?;
        upstream.keep(up).await;
        match down.reuse().await? {
            // (wrk does not pipeline: nothing read ahead is dropped.)
            Some(s) => stream = s.into_parts().0,
            None => return Ok(()),
        }
    }
}

async fn serve_lean(mut tcp: TcpStream, addr: std::net::SocketAddr) -> Result<()> {
    let mut upstream = Upstream { addr, stream: None };
    let mut buf = BytesMut::with_capacity(8192);
    let mut out = Vec::with_capacity(8192);
    loop {
        let (req, length, head_len) = loop {
            if let Some(parsed) = parse_head(&buf)? {
                break parsed;
            }
            if tcp.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        let _ = buf.split_to(head_len);
        let mut up = upstream.session().await?;
        up.write_request_header(Box::new(req)).await?;
        let mut left = length;
        while left > 0 {
            if buf.is_empty() && tcp.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
            let piece: Bytes = buf.split_to(left.min(buf.len())).freeze();
            left -= piece.len();
            up.write_body(&piece).await?;
        }
        up.finish_body().await?;
        up.read_response().await?;
        out.clear();
        let answer = up.resp_header().expect("read");
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(answer.status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(
            answer
                .status
                .canonical_reason()
                .unwrap_or("Unknown")
                .as_bytes(),
        );
        out.extend_from_slice(b"\r\n");
        for (name, value) in answer.headers.iter() {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        while let Some(piece) = up.read_body_bytes().await? {
            out.extend_from_slice(&piece);
            if out.len() >= 64 * 1024 {
                tcp.write_all(&out).await?;
                out.clear();
            }
        }
        tcp.write_all(&out).await?;
        upstream.keep(up).await;
    }
}

/// A complete request head in `buf`: the upstream request, its body's length, the head's
/// length; `None` while more is needed.
fn parse_head(buf: &[u8]) -> Result<Option<(RequestHeader, usize, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head_len) = req.parse(buf)? else {
        return Ok(None);
    };
    let mut up = RequestHeader::build_no_case(
        req.method.unwrap_or("GET"),
        req.path.unwrap_or("/").as_bytes(),
        Some(req.headers.len()),
    )?;
    let mut length = 0;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value)?.trim().parse()?;
        }
        if !h.name.eq_ignore_ascii_case("expect") {
            up.append_header(h.name.to_string(), h.value)?;
        }
    }
    Ok(Some((up, length, head_len)))
}
