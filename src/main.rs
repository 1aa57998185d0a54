//! `hcp-s3-gateway --config FILE [--check-config]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hcp_s3_gateway::config::{self, Config};
use hcp_s3_gateway::{observe::logging, server};

/// mimalloc (its 2.x line, see Cargo.toml): per-thread free lists make the many small,
/// short-lived allocations of a request cheaper than glibc malloc's arenas, and it returns memory
/// to the system promptly (flat RSS).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "An S3 gateway that answers like Hitachi Content Platform"
)]
struct Cli {
    /// The configuration file (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Validate the configuration, print every problem, and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{}: {} problem(s):", cli.config.display(), errors.len());
            for e in &errors {
                eprintln!("  - {e}");
            }
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        for w in &cfg.warnings {
            eprintln!("  warning: {w}");
        }
        println!(
            "{}: OK ({} tenant(s), {} backend(s), {} user(s))",
            cli.config.display(),
            cfg.tenants.len(),
            cfg.backends.len(),
            cfg.users.len()
        );
        return ExitCode::SUCCESS;
    }
    // What the files hold as the start read them, looked at right after: a change made while
    // the gateway starts (its backends' probes, its records buckets: seconds) is the first
    // look's to reload. (One made while they were read and checked, milliseconds, is not.)
    let read = files_of(&cli.config, &cfg.files_read, &cfg.tls);
    let started = (digest_of(&read), read);
    logging::init(cfg.log_format, &cfg.log_level);
    // (Found while the configuration was read, before there was a log to say them in.)
    log_warnings(&cfg, &cli.config);
    server::open_files::raise(cfg.max_connections, cfg.max_concurrent_requests);
    // One thread needs no work-stealing scheduler: its cross-thread queues and wake-ups cost
    // CPU on every request (measured in BENCHMARKS.md).
    let mut rt = if cfg.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    if cfg.threads > 1 {
        rt.worker_threads(cfg.threads);
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(cfg, cli.config, started))
}

async fn run(cfg: Config, path: PathBuf, started: (u64, Vec<PathBuf>)) -> ExitCode {
    let demo = cfg.serves_demo_user;
    // Before anything says the gateway serves: a SIGTERM right after the banner is a clean stop,
    // never the default kill.
    let mut signals = Signals::install();
    let gw = match server::start(cfg).await {
        Ok(gw) => gw,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let format = gw.gateway.cfg.log_format;
    logging::announce(
        format,
        &format!(
            "hcp-s3-gateway serving S3 on {}://{}  (admin: http://{})",
            if gw.tls.is_some() { "https" } else { "http" },
            gw.s3_addr,
            gw.admin_addr
        ),
    );
    if demo {
        logging::announce(
            format,
            &format!(
                "demo user {:?}: access key {}  secret key {}",
                config::DEMO_USERNAME,
                config::hcp_access_key(config::DEMO_USERNAME),
                config::hcp_secret_key(config::DEMO_PASSWORD)
            ),
        );
        warn_of_demo_user(gw.s3_addr);
    }
    serve_until_stopped(&gw, &path, &mut signals, started).await;
    tracing::info!("shutting down");
    // A second SIGTERM or SIGINT stops at once, not waiting out the grace period.
    tokio::select! {
        () = gw.shutdown() => ExitCode::SUCCESS,
        _ = signals.term.recv() => second_signal(),
        _ = signals.int.recv() => second_signal(),
    }
}

/// A second SIGTERM or SIGINT during the drain: the requests still running are cut off.
fn second_signal() -> ExitCode {
    tracing::warn!("a second signal: stopping at once, requests still running cut off");
    ExitCode::FAILURE
}

/// The signals the gateway answers: SIGTERM and SIGINT stop it, SIGHUP reloads.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            term: signal(SignalKind::terminate()).expect("SIGTERM handler"),
            int: signal(SignalKind::interrupt()).expect("SIGINT handler"),
            hup: signal(SignalKind::hangup()).expect("SIGHUP handler"),
        }
    }
}

/// Serves until SIGTERM or SIGINT. SIGHUP — or a change of the files a reload reads, looked at
/// every `reload_check_seconds` — reloads users, permissions and anonymous grants from the
/// configuration (its users file, secrets given as files) and the TLS certificate from its
/// files; a configuration with errors is reported and the running one kept.
///
/// What the files hold is read before each reload, so that a change made while a reload reads
/// them is seen at the next look; where a reload names other files, the next look reloads once
/// more, for the same reason. `started`: the digest of the files the start read, taken right
/// after it read them, and the files.
async fn serve_until_stopped(
    gw: &server::RunningGateway,
    path: &std::path::Path,
    signals: &mut Signals,
    started: (u64, Vec<PathBuf>),
) {
    let Signals { term, int, hup } = signals;
    let every = gw.gateway.cfg.reload_check;
    let mut check = tokio::time::interval(every.unwrap_or(std::time::Duration::from_secs(3600)));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // (The files the configuration read last, or tried to: one reloaded may name others.)
    let (start_digest, mut read) = started;
    let mut seen = Some(start_digest);
    loop {
        let asked = tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => true,
            _ = check.tick(), if every.is_some() => false,
        };
        let now = digest_of(&read);
        if !asked && Some(now) == seen {
            continue;
        }
        if !asked {
            tracing::info!(config = %path.display(), "configuration files changed: reloading");
        }
        seen = Some(now);
        let named = files_of(path, &reload(gw, path), &gw.gateway.cfg.tls);
        if named != read {
            read = named;
            seen = None;
        }
    }
}

/// Warns, loudly, where the well-known demo credentials are served beyond this machine (at
/// start, and on every reload that serves them).
fn warn_of_demo_user(addr: std::net::SocketAddr) {
    if !addr.ip().is_loopback() {
        eprintln!(
            "WARNING: the well-known demo credentials are served on non-loopback address {addr}."
        );
        eprintln!(
            "WARNING: anyone who can reach it can read and write your data. Remove the demo user."
        );
        tracing::warn!(%addr, "demo credentials served on a non-loopback address");
    }
}

/// What the configuration at `path` holds that is allowed but likely a mistake, in the log.
fn log_warnings(cfg: &Config, path: &std::path::Path) {
    for w in &cfg.warnings {
        tracing::warn!(config = %path.display(), "{w}");
    }
}

/// Reloads what a reload can put in place (`config::reload`); the files the configuration read
/// (or, refused, named).
fn reload(gw: &server::RunningGateway, path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let (read, result) = match Config::load(path) {
        Ok(cfg) => {
            log_warnings(&cfg, path);
            let result = gw.gateway.reload(&cfg);
            // (Users are what a reload puts in place: the demo user among them.)
            if cfg.serves_demo_user {
                warn_of_demo_user(gw.s3_addr);
            }
            (cfg.files_read.clone(), result)
        }
        Err(errors) => {
            for e in &errors {
                tracing::error!(config = %path.display(), "reload refused: {e}");
            }
            (hcp_s3_gateway::config::files_read_by_refused(), "error")
        }
    };
    // (The certificate is its files', not the configuration's: a renewed one is taken even
    // when the configuration has an error. One refused is the reload's error: the old one is
    // served until it expires.)
    let result = match gw.reload_tls() {
        Ok(()) => result,
        Err(e) => {
            tracing::error!("TLS certificate reload refused, the current one stays: {e}");
            "error"
        }
    };
    gw.gateway.metrics.reload(result);
    read
}

/// The files a reload reads: the configuration, the files it reads (users file, secrets), and
/// the TLS certificate and key the listener was started with (which a reload reads again).
fn files_of(
    path: &std::path::Path,
    read: &[std::path::PathBuf],
    tls: &Option<(PathBuf, PathBuf)>,
) -> Vec<std::path::PathBuf> {
    let tls = tls.iter().flat_map(|(c, k)| [c.clone(), k.clone()]);
    std::iter::once(path.to_path_buf())
        .chain(read.iter().cloned())
        .chain(tls)
        .collect()
}

/// What `files` hold now (a digest of each, or of its absence).
fn digest_of(files: &[std::path::PathBuf]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut digest = std::collections::hash_map::DefaultHasher::new();
    for file in files {
        std::fs::read(file).ok().hash(&mut digest);
    }
    digest.finish()
}
