//! The benchmark's "pingora passthrough": pingora-proxy forwarding every request, unchanged, to one
//! upstream over pooled keep-alive connections — no authentication, no signing, no normalisation.
//! It shows what pingora itself costs, so the gateway's own work can be told apart from it.
//!
//!   cargo run --release --example passthrough -- LISTEN UPSTREAM [THREADS]
//!   e.g. passthrough 127.0.0.1:18082 127.0.0.1:18080 1

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::{Opt, ServerConf};

/// The gateway's allocator (src/main.rs), so that the comparison is of the code, not of malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Passthrough {
    upstream: std::net::SocketAddr,
}

#[async_trait]
impl ProxyHttp for Passthrough {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: passthrough LISTEN UPSTREAM [THREADS]");
        std::process::exit(2);
    }
    let upstream = args[2].parse().expect("UPSTREAM is host:port");
    let threads = args
        .get(3)
        .map_or(1, |t| t.parse().expect("THREADS is a number"));
    // Defaults that matter for a benchmark: no 300 s grace sleep, no shared /tmp pid/upgrade paths;
    // as the gateway runs, no work stealing (one runtime per thread, no task migration).
    let pid = std::process::id();
    let conf = ServerConf {
        threads,
        work_stealing: false,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        pid_file: format!("/tmp/passthrough-{pid}.pid"),
        upgrade_sock: format!("/tmp/passthrough-{pid}.sock"),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    let mut service = http_proxy_service(&server.configuration, Passthrough { upstream });
    service.add_tcp(&args[1]);
    server.add_service(service);
    server.run_forever();
}
