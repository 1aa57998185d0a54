//! Listeners and lifecycle: the gateway's own accept loops hand each connection to pingora-core's
//! HTTP session machinery, which lets tests bind `127.0.0.1:0` and lets shutdown drain within a
//! configurable grace period.

pub mod admin;
pub mod coalesce;
pub mod head_budget;
pub mod open_files;
pub mod send_deadline;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pingora::apps::{HttpServerApp, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use std::os::fd::AsRawFd;

use pingora::protocols::Stream;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backend::credentials::BackendCredentials;
use crate::backend::health::Reach;
use crate::backend::local::LocalBackend;
use crate::config::{BackendTarget, Config, RemoteKeys};
use crate::in_flight::InFlight;
use crate::observe::metrics::Metrics;
use crate::request::route::BackendRuntime;
use crate::request::Gateway;
use crate::server::admin::Admin;
use crate::server::send_deadline::{SendDeadline, SendLimit};
use crate::server::tls::ServerTls;

/// Open connections the admin listener serves at once (probes and scrapers need a few).
const ADMIN_CONNECTIONS: usize = 256;

/// Of those, what one peer address holds of its own (a probe or a scrape holds one at a time).
/// Past its share a peer takes a place only while [`ADMIN_RESERVED`] others stay free — else
/// its connection is closed at once, never queued before the kubelet's probes — so that no one
/// address holds the places every probe needs, while probes that share an address (a mesh's
/// proxy, a node's agents) are still served beside a few others.
const ADMIN_CONNECTIONS_PER_PEER: usize = 4;

/// The admin places a peer past its share leaves free for the others.
const ADMIN_RESERVED: usize = 64;

/// The longest an admin exchange — the wait for its request, the request, the answer — takes
/// (`client_header_timeout_seconds` if shorter): a probe or a scrape sends its request at once,
/// and a connection that sends nothing holds one of the places this long, so that filling them
/// all to make the kubelet's probes time out takes 128 new connections a second, and past 192
/// of them more addresses than one ([`ADMIN_CONNECTIONS_PER_PEER`], [`ADMIN_RESERVED`]).
const ADMIN_EXCHANGE: Duration = Duration::from_secs(2);

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a listener waits after a failed accept (out of descriptors, say) before the next,
/// instead of spinning on the error (and its warning).
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A started gateway. Dropping it without [`RunningGateway::shutdown`] stops accepting only when
/// the runtime ends.
pub struct RunningGateway {
    pub s3_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    /// The S3 listener's certificate, when it serves TLS.
    pub tls: Option<Arc<ServerTls>>,
    shutdown: watch::Sender<bool>,
    /// Open connections, which shutdown waits for within the grace period.
    connections: Arc<InFlight>,
    grace: Duration,
    /// `/readyz` 503 for this long, still accepting, before the drain.
    delay: Duration,
    stopping: Arc<AtomicBool>,
    _local: Option<LocalBackend>,
    /// Kept, never sent: the admin listener stops with the gateway itself, not when the drain
    /// begins (`/healthz` answers while the process runs, `/readyz` 503 while it stops).
    _admin_runs: watch::Sender<bool>,
}

impl RunningGateway {
    /// The embedded backend's server (its address and this process's keys), when one runs.
    pub fn embedded_backend(&self) -> Option<&LocalBackend> {
        self._local.as_ref()
    }

    /// Reads the TLS certificate and key again (SIGHUP); without TLS there is nothing to do.
    pub fn reload_tls(&self) -> Result<(), String> {
        self.tls.as_ref().map_or(Ok(()), |t| t.reload())
    }

    /// Says not ready for the shutdown delay (still serving, so that the connections a load
    /// balancer sends until it has noticed are served), then stops accepting, lets in-flight
    /// requests finish and waits up to the grace period.
    pub async fn shutdown(self) {
        self.stopping.store(true, Ordering::Release);
        if !self.delay.is_zero() {
            tracing::info!(
                seconds = self.delay.as_secs(),
                "not ready; still accepting before the drain"
            );
            tokio::time::sleep(self.delay).await;
        }
        let _ = self.shutdown.send(true);
        tokio::select! {
            () = self.connections.all_done() => {}
            () = tokio::time::sleep(self.grace) => {
                tracing::warn!(open = self.connections.count(),
                    "grace period over; closing remaining connections at exit");
            }
        }
        // A complete or copy the backend is still carrying out is waited for past the grace
        // period (each ends by `complete_timeout`): its object is not finished without it. The
        // process goes on meanwhile, and so do the other requests still in flight.
        let underway = &self.gateway.underway;
        if underway.count() > 0 {
            tracing::warn!(
                underway = underway.count(),
                open = self.connections.count(),
                "waiting for completes and copies the backends are still carrying out, \
                 the other open connections with them (a second signal stops at once, \
                 leaving their objects without what they asked)"
            );
            underway.all_done().await;
        }
    }
}

/// Starts the local backend (if configured), resolves remote backends, binds both listeners.
pub async fn start(cfg: Config) -> std::io::Result<RunningGateway> {
    let cfg = Arc::new(cfg);
    let mut local = None;
    let mut backends = crate::ConfigMap::default();
    for b in cfg.backends.values() {
        backends.insert(b.name.to_string(), backend_runtime(b, &mut local).await?);
    }

    let metrics = Arc::new(Metrics::new());
    metrics.expect_backends(backends.keys().map(String::as_str));
    // (A local backend's key file is made here, by the serving process, on its first start.)
    let binding = cfg.upload_binding.secret().map_err(std::io::Error::other)?;
    let gateway = Arc::new(Gateway::new(
        cfg.clone(),
        backends,
        metrics.clone(),
        &binding,
    ));
    let send = SendLimit {
        limit: cfg.client_send_timeout,
        min_rate: cfg.client_send_min_rate,
        timeouts: metrics.client_timeouts.with_label_values(&["send"]),
    };
    let ready = Arc::new(AtomicBool::new(false));
    let health = gateway.health.clone();
    let stopping = gateway.stopping.clone();
    let admin = Arc::new(Admin {
        metrics,
        ready: ready.clone(),
        stopping: stopping.clone(),
        health: health.clone(),
        judges_backends: cfg.readiness == crate::config::Readiness::Backends,
        store_broken: local.as_ref().and_then(|l| l.broken.clone()),
        exchange_deadline: cfg.client_header_timeout.min(ADMIN_EXCHANGE),
    });

    let tls = load_tls(&cfg)?;
    let s3_listener = bind("server.listen", cfg.listen).await?;
    let admin_listener = bind("server.admin_listen", cfg.admin_listen).await?;
    let s3_addr = s3_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let (shutdown, watch_rx) = watch::channel(false);
    let connections = Arc::new(InFlight::default());
    let limit = Some(ConnectionLimit::new(cfg.max_connections, &admin.metrics));
    let first_wait = cfg.client_header_timeout.as_secs().max(1);
    // The admin listener answers first: `/readyz` 503 while the backends are probed and the
    // records buckets prepared (up to seconds).
    let admin_wait = first_wait.min(ADMIN_EXCHANGE.as_secs());
    let (admin_runs, admin_rx) = watch::channel(false);
    let admin_send = (send.limit, admin_rx);
    tokio::spawn(serve_admin(admin_listener, admin, admin_send, admin_wait));
    health.probe_all().await;
    prepare_records(&gateway).await;
    tokio::spawn(accept_loop(
        (s3_listener, limit),
        gateway.clone(),
        tls.clone(),
        send.clone(),
        watch_rx.clone(),
        connections.clone(),
        first_wait,
    ));
    tokio::spawn(health.run(watch_rx));
    ready.store(true, Ordering::Release);
    Ok(RunningGateway {
        s3_addr,
        admin_addr,
        gateway,
        tls,
        shutdown,
        connections,
        grace: cfg.shutdown_grace,
        delay: cfg.shutdown_delay,
        stopping,
        _local: local,
        _admin_runs: admin_runs,
    })
}

/// The S3 listener's certificate and key, where TLS is configured.
fn load_tls(cfg: &Config) -> std::io::Result<Option<Arc<ServerTls>>> {
    let Some((cert, key)) = &cfg.tls else {
        return Ok(None);
    };
    let tls = ServerTls::load(cert, key).map_err(|e| {
        std::io::Error::other(format!("{} / {}: {e}", cert.display(), key.display()))
    })?;
    Ok(Some(tls))
}

/// The admin listener's accept loop: places of its own, and connections shutdown does not
/// wait for (a scraper's idle one would hold every shutdown for the whole grace period); a
/// send limit of its own, whose timeouts are no S3 client's (not counted among theirs).
/// (Probes reach it however many clients the S3 listener holds.)
async fn serve_admin(
    listener: TcpListener,
    admin: Arc<Admin>,
    (send_limit, shutdown): (Duration, watch::Receiver<bool>),
    first_wait: u64,
) {
    let send = SendLimit {
        limit: send_limit,
        min_rate: 0,
        timeouts: prometheus::IntCounter::new("admin_send_timeouts", "not exported")
            .expect("a valid counter"),
    };
    let mut places = ConnectionLimit::unmetered(ADMIN_CONNECTIONS);
    places.per_peer = Some(Arc::new(PeerShares {
        most: ADMIN_CONNECTIONS_PER_PEER,
        held: std::sync::Mutex::default(),
    }));
    let uncounted = Arc::new(InFlight::default());
    accept_loop(
        (listener, Some(places)),
        admin,
        None,
        send,
        shutdown,
        uncounted,
        first_wait,
    )
    .await;
}

/// The tenants' records buckets (labeled holds, owners), created if missing before the first
/// request (for at most 5 s: a backend that cannot be reached now gets its bucket with the
/// first record written).
async fn prepare_records(gateway: &Gateway) {
    let preparing = gateway.prepare_records();
    if tokio::time::timeout(Duration::from_secs(5), preparing)
        .await
        .is_err()
    {
        tracing::warn!("gateway records: the buckets could not be checked within 5 s");
    }
}

/// A listener, or an error that names the setting and the address.
async fn bind(setting: &str, addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("{setting} {addr}: {e}")))
}

/// One backend made ready for requests: the embedded store started, or a remote endpoint
/// resolved with its TLS client and credentials.
async fn backend_runtime(
    b: &crate::config::Backend,
    local: &mut Option<LocalBackend>,
) -> std::io::Result<BackendRuntime> {
    let mut tls = None;
    let mut dns_name = None;
    let (addr, authority, credentials) = match &b.target {
        BackendTarget::Local { data_dir, engine } => {
            let l = LocalBackend::start(data_dir, *engine).await?;
            let secret = crate::request::authenticate::SecretKey::new(l.secret_key.clone());
            let credentials = BackendCredentials::fixed(l.access_key.clone(), secret, None);
            let rt = (l.addr, l.addr.to_string(), credentials);
            *local = Some(l);
            rt
        }
        BackendTarget::Remote { endpoint, keys } => {
            // A name that does not resolve yet (a Service created with the gateway) leaves the
            // backend unreachable — `/readyz` says so — until the probe resolves it.
            use crate::backend::health::{addresses_of, reachable, Reach, PROBE_INTERVAL};
            let addrs = addresses_of(endpoint.address(), endpoint.port)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(backend = %b.name, "cannot resolve {}: {e}", endpoint.host);
                    Vec::new()
                });
            let timeout = b.connect_timeout.min(PROBE_INTERVAL);
            let addr = reachable(&addrs, timeout)
                .await
                .unwrap_or_else(|| Reach::placeholder(endpoint.port));
            if endpoint.tls {
                let client =
                    crate::server::tls::ClientTls::new(endpoint.address(), b.ca_file.as_deref())
                        .map_err(|e| std::io::Error::other(format!("backend {}: {e}", b.name)))?;
                tls = Some(Arc::new(client));
            }
            if endpoint.address().parse::<std::net::IpAddr>().is_err() {
                dns_name = Some((endpoint.address().to_string(), endpoint.port));
            }
            let credentials = match keys {
                RemoteKeys::Static {
                    access_key,
                    secret_key,
                    token,
                } => {
                    BackendCredentials::fixed(access_key.clone(), secret_key.clone(), token.clone())
                }
                RemoteKeys::AwsChain => BackendCredentials::aws_chain(&b.region).await,
            };
            (addr, endpoint.authority(), credentials)
        }
    };
    // (`Endpoint::parse` admits only hosts of visible ASCII; a socket address is one too.)
    let authority =
        crate::config::HeaderText::new(authority).expect("a validated authority is a header value");
    let reach = Reach {
        name: b.name.to_string(),
        resolved: arc_swap::ArcSwap::from_pointee(addr),
        dns_name,
        timeout: b.connect_timeout,
        http: tls.is_none(),
    };
    Ok(BackendRuntime {
        settings: b.clone(),
        reach: Arc::new(reach),
        authority,
        credentials: Arc::new(credentials),
        tls,
        counters: crate::observe::metrics::BackendCounters::unregistered(),
    })
}

/// What serves a listener's connections: one HTTP/1.1 exchange at a time, read, answered, and
/// the connection handed back for the next one (or not).
pub trait Exchanges: Send + Sync + 'static {
    /// `first`: the connection's first exchange (the gateway's requires its request to arrive
    /// whole within `client_header_timeout_seconds`, with no keep-alive wait before it; the
    /// admin listener's probes are not held to it).
    fn exchange<'a>(
        self: &'a Arc<Self>,
        session: ServerSession,
        shutdown: &'a watch::Receiver<bool>,
        first: bool,
    ) -> impl std::future::Future<Output = Option<ReusedHttpStream>> + Send + 'a;
}

/// The gateway's exchange is its own `async fn`, awaited in place: no box per request (pingora's
/// `HttpServerApp` boxes each exchange's future).
impl Exchanges for Gateway {
    fn exchange<'a>(
        self: &'a Arc<Self>,
        session: ServerSession,
        shutdown: &'a watch::Receiver<bool>,
        first: bool,
    ) -> impl std::future::Future<Output = Option<ReusedHttpStream>> + Send + 'a {
        self.exchange_on(session, shutdown, first)
    }
}

/// The admin listener is one of pingora's apps, each exchange bounded whole in time, and in
/// the bytes it reads from the client: a probe's or a scrape's request is a few hundred bytes,
/// where pingora would take up to 1 MiB of header section into a buffer (`head_budget`).
impl Exchanges for Admin {
    async fn exchange<'a>(
        self: &'a Arc<Self>,
        session: ServerSession,
        shutdown: &'a watch::Receiver<bool>,
        _first: bool,
    ) -> Option<ReusedHttpStream> {
        let exchange = head_budget::limited(
            (ADMIN_READ_BYTES, ADMIN_READ_BYTES),
            None,
            self.process_new_http(session, shutdown),
        );
        tokio::time::timeout(self.exchange_deadline, exchange)
            .await
            .ok()
            .and_then(|(reused, _, _)| reused)
    }
}

/// The most an admin connection's exchange reads from its client.
const ADMIN_READ_BYTES: usize = 16 * 1024;

/// One connection's HTTP/1.1 exchanges, one after the other while the app hands the connection
/// back for reuse. This is pingora's `ServerApp::process_new` without its HTTP/2 and custom
/// protocol paths, which the gateway never offers (its TLS offers `http/1.1` alone): pingora's
/// future keeps room for an HTTP/2 handshake and a session in every connection's task, about
/// 4 KiB per idle connection, where this loop keeps the exchange in progress.
async fn serve_http1<A: Exchanges>(
    app: &Arc<A>,
    stream: Stream,
    shutdown: &watch::Receiver<bool>,
    first_wait: u64,
) {
    let mut session = ServerSession::new_http1(stream);
    // A new connection's first request must arrive within `client_header_timeout_seconds`
    // (pingora closes a connection whose read waits longer; the exchange times the section):
    // one that sends nothing holds its place of `max_connections` that long, not the keep-alive
    // time a served client gets. The gateway's exchanges set their own keep-alive for the
    // requests after it.
    session.set_keepalive((!*shutdown.borrow()).then_some(first_wait));
    // (One call site: the exchange's future has one place in this one.)
    let mut first = true;
    loop {
        let Some((stream, settings)) = app
            .exchange(session, shutdown, std::mem::take(&mut first))
            .await
            .map(ReusedHttpStream::consume)
        else {
            return;
        };
        session = ServerSession::new_http1(stream);
        if let Some(settings) = settings {
            settings.apply_to_session(&mut session);
        }
    }
}

/// The S3 listener's bound on open client connections (`server.max_connections`): a place is
/// taken before a connection is accepted and given back when it closes; while none is free
/// the listener accepts nothing, and clients wait in the kernel's accept queue (nginx's
/// `worker_connections`). A connection's memory is bounded (its header section by
/// `head_budget`); this bounds how many there are.
struct ConnectionLimit {
    /// `None`: no limit (the connections are counted all the same).
    places: Option<Arc<tokio::sync::Semaphore>>,
    /// What one peer address may hold of them (`None`: no share).
    per_peer: Option<Arc<PeerShares>>,
    open: prometheus::IntGauge,
    reached: prometheus::IntCounter,
}

/// The places each peer address holds, at most `most` each.
struct PeerShares {
    most: usize,
    held: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One of a peer's places, given back when its connection closes.
struct PeerPlace {
    shares: Arc<PeerShares>,
    peer: std::net::IpAddr,
}

impl PeerShares {
    /// A place of `peer`'s share; `None` where it holds its whole share.
    fn take(self: &Arc<Self>, peer: std::net::IpAddr) -> Option<PeerPlace> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = held.entry(peer).or_insert(0);
        if *count >= self.most {
            return None;
        }
        *count += 1;
        Some(PeerPlace {
            shares: self.clone(),
            peer,
        })
    }
}

impl Drop for PeerPlace {
    fn drop(&mut self) {
        let mut held = self
            .shares
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.peer);
            }
        }
    }
}

/// A connection's place, given back (and its count) when the connection closes.
struct Place {
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Set once the place's connection is accepted and counted.
    open: Option<prometheus::IntGauge>,
}

impl Place {
    /// The place's connection was accepted: counted open until it closes.
    fn taken(&mut self, open: &prometheus::IntGauge) {
        open.inc();
        self.open = Some(open.clone());
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(open) = &self.open {
            open.dec();
        }
    }
}

impl ConnectionLimit {
    /// No limit for 0.
    fn new(max: usize, metrics: &Metrics) -> ConnectionLimit {
        ConnectionLimit {
            places: (max > 0).then(|| Arc::new(tokio::sync::Semaphore::new(max))),
            per_peer: None,
            open: metrics.client_connections.clone(),
            reached: metrics.connection_limit_reached.clone(),
        }
    }

    /// A bound counted by no metric (the admin listener's).
    fn unmetered(max: usize) -> ConnectionLimit {
        ConnectionLimit {
            places: Some(Arc::new(tokio::sync::Semaphore::new(max))),
            per_peer: None,
            open: prometheus::IntGauge::new("admin_connections", "unregistered").expect("valid"),
            reached: prometheus::IntCounter::new("admin_limit", "unregistered").expect("valid"),
        }
    }

    /// Whether a peer past its share may take the place it holds: [`ADMIN_RESERVED`] places are
    /// free besides.
    fn spares_the_reserve(&self) -> bool {
        self.places
            .as_ref()
            .is_some_and(|p| p.available_permits() >= ADMIN_RESERVED)
    }

    /// A free place, waiting for one if need be; `None` once the gateway shuts down.
    async fn place(&self, shutdown: &mut watch::Receiver<bool>) -> Option<Place> {
        let permit = match &self.places {
            None => None,
            Some(places) => Some(match places.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    self.reached.inc();
                    tokio::select! {
                        permit = places.clone().acquire_owned() => permit.ok()?,
                        _ = shutdown.changed() => return None,
                    }
                }
            }),
        };
        Some(Place {
            _permit: permit,
            open: None,
        })
    }
}

async fn accept_loop<A>(
    listener: (TcpListener, Option<ConnectionLimit>),
    app: Arc<A>,
    tls: Option<Arc<ServerTls>>,
    send: SendLimit,
    mut shutdown: watch::Receiver<bool>,
    connections: Arc<InFlight>,
    first_wait: u64,
) where
    A: Exchanges,
{
    let (listener, limit) = listener;
    loop {
        let mut place = match &limit {
            Some(limit) => match limit.place(&mut shutdown).await {
                Some(place) => Some(place),
                None => break,
            },
            None => None,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        // (A peer past its share takes a place only while the reserve stays free; else it is
        // closed at once: its place goes to the next.)
        let share = limit.as_ref().and_then(|l| l.per_peer.as_ref());
        let peer_place = match share.map(|shares| shares.take(peer.ip())) {
            Some(None)
                if !limit
                    .as_ref()
                    .is_some_and(ConnectionLimit::spares_the_reserve) =>
            {
                if let Some(limit) = &limit {
                    limit.reached.inc();
                }
                continue;
            }
            taken => taken.flatten(),
        };
        if let (Some(place), Some(limit)) = (place.as_mut(), &limit) {
            place.taken(&limit.open);
        }
        let _ = tcp.set_nodelay(true);
        let guard = connections.begin();
        let app = app.clone();
        let watch = shutdown.clone();
        let tls = tls.clone();
        let send = SendDeadline::new(send.clone());
        tokio::spawn(async move {
            let _guard = guard;
            let _place = (place, peer_place);
            let stream: Stream = match tls {
                None => {
                    let digest = crate::server::tls::peer_digest(tcp.as_raw_fd(), peer);
                    Box::new(crate::server::coalesce::Coalesced::client(
                        tcp, digest, send,
                    ))
                }
                Some(tls) => {
                    // Boxed, so that plain connections do not carry room for a handshake.
                    let accept = tls.accept(tcp, peer, send);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, Box::pin(accept)).await {
                        Ok(Ok(conn)) => Box::new(conn),
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            serve_http1(&app, stream, &watch, first_wait).await;
        });
    }
}
