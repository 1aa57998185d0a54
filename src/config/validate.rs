//! From the file layer to the runtime layer: every problem collected, secrets resolved from
//! their sources, users, tenants and backends built and checked against each other.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::binding::{BindingSource, UploadBinding};
use super::file::*;
use super::runtime::*;
use crate::hcp::mapping::Dialect;
use crate::request::authenticate::{Grant, Permission, SecretKey, User, UserStore};
use crate::ConfigMap;

/// The id answers carry as `HostId`: the configured one (checked with the server's settings),
/// else the host's name, else the product's.
fn host_id(configured: Option<String>) -> HostId {
    match configured {
        Some(id) => HostId::new(id).expect("checked: a header value"),
        None => std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .and_then(HostId::new)
            .unwrap_or_else(|| HostId::new("hcp-s3-gateway".into()).expect("a header value")),
    }
}

impl Config {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, Vec<String>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base)
    }

    /// Parses and validates configuration text; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Config, Vec<String>> {
        let (file, mut problems) = super::structure::read::<FileConfig>(text)?;
        match Self::from_file(file, base) {
            Ok(cfg) if problems.is_empty() => Ok(cfg),
            Ok(_) => Err(problems),
            Err(more) => {
                problems.extend(more);
                Err(problems)
            }
        }
    }

    pub fn from_file(file: FileConfig, base: &Path) -> Result<Config, Vec<String>> {
        READ.with_borrow_mut(Vec::clear);
        let mut errors = Vec::new();
        let s = &file.server;
        let (listen, tls, admin_listen) = check_server(&file, base, &mut errors);

        let domains = build_domains(&file.addressing.domains, &mut errors);

        let user_entries = read_users(file.users, &file.auth, base, &mut errors);
        let mut users = build_users(&user_entries, base, &mut errors);
        let upload_binding_secret = file.auth.upload_binding_secret.as_ref().and_then(|s| {
            let secret = resolve_secret("auth.upload_binding_secret", s, base, &mut errors)?;
            if secret.len() < 16 {
                errors.push("auth.upload_binding_secret: use at least 16 characters".into());
            }
            Some(secret)
        });
        let serves_demo_user = users.iter().any(|u| {
            u.access_key == hcp_access_key(DEMO_USERNAME)
                && u.secret.expose() == hcp_secret_key(DEMO_PASSWORD)
        });

        let backends = build_backends(&file.backends, base, &mut errors);
        let tenants = build_tenants(&file.tenants, &file.backends, &backends, &mut errors);
        check_prefixes(&tenants, &backends, &mut errors);
        let mut warnings = Vec::new();
        assign_home_tenants(&mut users, &tenants, (&mut errors, &mut warnings));
        let default_tenant = check_addressing(&file.addressing, &domains, &tenants, &mut errors);
        let upload_binding = upload_binding(
            upload_binding_secret,
            &file.backends,
            &backends,
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        let upload_binding = upload_binding.expect("checked: no errors");
        let host_id = host_id(s.host_id.clone());
        Ok(Config {
            listen: listen.unwrap(),
            tls,
            admin_listen: admin_listen.unwrap(),
            threads: s.threads,
            shutdown_grace: Duration::from_secs(s.shutdown_grace_seconds),
            shutdown_delay: Duration::from_secs(s.shutdown_delay_seconds),
            keepalive: Duration::from_secs(s.keepalive_seconds),
            client_body: crate::backend::upstream::BodyPace {
                pause: Duration::from_secs(s.client_body_timeout_seconds.max(1)),
                min_rate: s.client_body_min_rate_bytes_per_second,
            },
            client_header_timeout: Duration::from_secs(s.client_header_timeout_seconds.max(1)),
            client_send_timeout: Duration::from_secs(s.client_send_timeout_seconds.max(1)),
            client_send_min_rate: s.client_send_min_rate_bytes_per_second,
            max_connections: s.max_connections,
            max_concurrent_requests: s.max_concurrent_requests,
            max_concurrent_requests_per_client: s.max_concurrent_requests_per_client,
            max_buffered_response_bytes: s.max_buffered_response_bytes,
            max_chunk_bytes: s.max_chunk_bytes,
            max_held_bytes: s.max_held_bytes,
            complete_keepalive_after: Duration::from_millis(s.complete_keepalive_ms),
            complete_timeout: Duration::from_secs(s.complete_timeout_seconds.max(1)),
            host_id,
            log_format: s.log_format,
            log_keys: s.log_keys,
            readiness: s.readiness,
            reload_check: (s.reload_check_seconds > 0)
                .then(|| Duration::from_secs(s.reload_check_seconds)),
            files_read: READ.take(),
            log_level: s.log_level.clone(),
            domains,
            default_tenant,
            clock_skew: Duration::from_secs(file.auth.clock_skew_seconds),
            limits: file.limits.clone(),
            users: Arc::new(UserStore::new(users)),
            upload_binding,
            tenants,
            backends,
            serves_demo_user,
            warnings,
        })
    }
}

/// `[addressing]`'s default tenant, which must be a tenant; and some way for a request to name
/// a tenant at all.
fn check_addressing(
    addressing: &AddressingSection,
    domains: &[String],
    tenants: &ConfigMap<String, Tenant>,
    errors: &mut Vec<String>,
) -> Option<String> {
    let default_tenant = addressing
        .default_tenant
        .as_ref()
        .map(|t| t.to_ascii_lowercase());
    if let Some(t) = &default_tenant {
        if !tenants.contains_key(t) {
            errors.push(format!(
                "addressing.default_tenant {t:?} is not a defined tenant"
            ));
        }
    }
    // A host under no domain is the default tenant's: with neither, no request could name
    // a tenant, and every one would be refused.
    if domains.is_empty() && default_tenant.is_none() && !tenants.is_empty() {
        errors.push(
            "addressing: give domains or a default_tenant (with neither, no request names a \
             tenant and every one is refused)"
                .into(),
        );
    }
    default_tenant
}

type ListenerFiles = (
    Option<SocketAddr>,
    Option<(PathBuf, PathBuf)>,
    Option<SocketAddr>,
);

/// `[server]` (and the key limit): the listeners, the TLS files, the bounds and the log level.
fn check_server(file: &FileConfig, base: &Path, errors: &mut Vec<String>) -> ListenerFiles {
    let s = &file.server;
    let listen = parse_addr("server.listen", &s.listen, errors);
    let tls = match (&s.tls_cert_file, &s.tls_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let (cert, key) = (base.join(cert), base.join(key));
            if let Err(e) = crate::server::tls::certified_key(&cert, &key) {
                errors.push(format!("server.tls_cert_file/tls_key_file: {e}"));
            }
            Some((cert, key))
        }
        _ => {
            errors.push("server: give both tls_cert_file and tls_key_file, or neither".into());
            None
        }
    };
    let admin_listen = parse_addr("server.admin_listen", &s.admin_listen, errors);
    listeners_apart(listen, admin_listen, errors);
    // (Sent in every answer's `x-amz-id-2`: a value no header can carry would fail each one.)
    if let Some(id) = &s.host_id {
        if HostId::new(id.clone()).is_none() {
            errors.push("server.host_id: no control characters (it is sent as a header)".into());
        }
    }
    if file.limits.max_key_bytes == 0 || file.limits.max_key_bytes > 4095 {
        errors.push("limits.max_key_bytes must be from 1 to HCP's 4095".into());
    }
    if s.max_buffered_response_bytes < 64 * 1024 {
        errors.push("server.max_buffered_response_bytes must be at least 65536".into());
    }
    let most = most_one_request_holds(file);
    if s.max_held_bytes != 0 && s.max_held_bytes < most {
        errors.push(format!(
            "server.max_held_bytes ({}) must be 0 or at least what one request may hold, {most} \
             (the largest of server.max_buffered_response_bytes, twice server.max_chunk_bytes \
             and 128 KiB, \
             server.max_chunk_bytes and limits.max_control_body_bytes together, and twice \
             limits.max_post_object_bytes)",
            s.max_held_bytes
        ));
    }
    if file.server.max_connections > tokio::sync::Semaphore::MAX_PERMITS {
        errors.push(format!(
            "server.max_connections must be at most {}",
            tokio::sync::Semaphore::MAX_PERMITS
        ));
    }
    if s.log_level
        .parse::<tracing_subscriber::filter::LevelFilter>()
        .is_err()
    {
        errors.push(format!(
            "server.log_level {:?} is not a log level",
            s.log_level
        ));
    }
    (listen, tls, admin_listen)
}

/// The most one request may hold in memory at once (`request::held`): a backend answer read
/// whole; a signed chunk being read and the one before it, held back (and the next one's
/// first bytes where they came in the same read, `READ_SLACK`); a chunk and the control
/// document it is part of; a form's file and what it decodes to.
fn most_one_request_holds(file: &FileConfig) -> usize {
    /// More than one read of a request body brings (pingora reads at most 64 KiB, the first
    /// piece after the header section at most what the head's budget let in with it).
    const READ_SLACK: usize = 128 * 1024;
    let form = file.limits.max_post_object_bytes.saturating_mul(2);
    let chunk = file.server.max_chunk_bytes;
    [
        file.server.max_buffered_response_bytes,
        chunk.saturating_mul(2).saturating_add(READ_SLACK),
        chunk.saturating_add(file.limits.max_control_body_bytes),
        usize::try_from(form).unwrap_or(usize::MAX),
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
}

/// The users of the file and of `auth.users_file`.
fn read_users(
    mut entries: Vec<UserEntry>,
    auth: &AuthSection,
    base: &Path,
    errors: &mut Vec<String>,
) -> Vec<UserEntry> {
    if let Some(path) = &auth.users_file {
        let path = base.join(path);
        note_read(&path);
        // Read like the main file: every problem, and never a secret's value.
        match std::fs::read_to_string(&path).map_err(|e| vec![e.to_string()]) {
            Ok(text) => match super::structure::read::<UsersFile>(&text) {
                Ok((more, problems)) => {
                    entries.extend(more.users);
                    let shown = path.display();
                    errors.extend(
                        problems
                            .iter()
                            .map(|p| format!("auth.users_file {shown}: {p}")),
                    );
                }
                Err(problems) => errors.extend(
                    problems
                        .iter()
                        .map(|p| format!("auth.users_file {}: {p}", path.display())),
                ),
            },
            Err(e) => errors.push(format!("auth.users_file {}: {}", path.display(), e[0])),
        }
    }
    entries
}

/// The backends by name; names are unique and at most one is the embedded store.
fn build_backends(
    entries: &[BackendEntry],
    base: &Path,
    errors: &mut Vec<String>,
) -> ConfigMap<String, Backend> {
    let mut backends = ConfigMap::default();
    for b in entries {
        if let Some(backend) = build_backend(b, base, errors) {
            if backends.insert(b.name.clone(), backend).is_some() {
                errors.push(format!("backends: name {:?} is used twice", b.name));
            }
        }
    }
    let local_backends = backends
        .values()
        .filter(|b| b.kind == BackendKind::Local)
        .count();
    if local_backends > 1 {
        errors.push("only one backend of kind \"local\" may be defined".into());
    }
    backends
}

/// A directory the embedded store can use: an existing directory it can write in, or one that
/// can be created in the nearest existing directory above it (which is tried by writing and
/// removing a file there, as permission bits alone do not tell, for root or for ACLs).
fn usable_dir(dir: &Path) -> Result<(), String> {
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(m) if !m.is_dir() => {
                return Err(if at == dir {
                    "is not a directory".into()
                } else {
                    format!("cannot be created: {} is not a directory", at.display())
                })
            }
            Ok(_) => return writable(at),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                match at.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => at = parent,
                    _ => return Ok(()),
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn writable(dir: &Path) -> Result<(), String> {
    // Named by process and by check: two checks of one directory at once (tests validating
    // configurations in parallel) must not take each other's probe for a failure.
    static CHECKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let check = CHECKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = dir.join(format!(
        ".hcp-s3-gateway-check-{}-{check}",
        std::process::id()
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| format!("{} is not writable: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The S3 and admin listeners cannot share a port where their addresses meet (the same, or
/// either unspecified): the second would fail to bind at start. (Port 0: any free one.)
fn listeners_apart(s3: Option<SocketAddr>, admin: Option<SocketAddr>, errors: &mut Vec<String>) {
    let (Some(s3), Some(admin)) = (s3, admin) else {
        return;
    };
    // (An unspecified IPv6 address takes IPv4's too — Linux's dual-stack default —; an
    // unspecified IPv4 address only IPv4's; an IPv4-mapped IPv6 address is its IPv4 one.)
    let (s3_ip, admin_ip) = (s3.ip().to_canonical(), admin.ip().to_canonical());
    let covers = |any: std::net::IpAddr, other: std::net::IpAddr| {
        any.is_unspecified() && (any.is_ipv6() || other.is_ipv4())
    };
    let meet = s3_ip == admin_ip || covers(s3_ip, admin_ip) || covers(admin_ip, s3_ip);
    if s3.port() != 0 && s3.port() == admin.port() && meet {
        errors.push(format!(
            "server.listen ({s3}) and server.admin_listen ({admin}) take the same port"
        ));
    }
}

fn parse_addr(field: &str, value: &str, errors: &mut Vec<String>) -> Option<SocketAddr> {
    match value.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errors.push(format!(
                "{field}: {value:?} is not an address like 127.0.0.1:8080"
            ));
            None
        }
    }
}

/// The key binding upload ids: the one configured, else one derived from the backends —
/// `None` where a problem was reported (a backend left out for problems of its own, which are
/// reported, that would have given a secret to derive it from is no missing binding).
fn upload_binding(
    configured: Option<String>,
    entries: &[BackendEntry],
    backends: &ConfigMap<String, Backend>,
    errors: &mut Vec<String>,
) -> Option<UploadBinding> {
    if let Some(configured) = configured {
        return Some(UploadBinding::Configured(SecretKey::new(configured)));
    }
    let left_out_with_secret = entries.iter().any(|b| {
        !backends.contains_key(&b.name) && (b.secret_key.is_some() || b.kind == BackendKind::Local)
    });
    match derived_binding(backends) {
        Ok(derived) => Some(derived),
        Err(_) if left_out_with_secret => None,
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

/// Without a configured binding secret, what one is derived from when the gateway starts
/// ([`UploadBinding`]): every backend by name, with its secret key, its key file or (for an
/// AWS-chain backend) its endpoint.
fn derived_binding(backends: &ConfigMap<String, Backend>) -> Result<UploadBinding, String> {
    let mut names: Vec<&String> = backends.keys().collect();
    names.sort();
    let sources = names
        .into_iter()
        .map(|name| {
            let source = match &backends[name].target {
                BackendTarget::Remote {
                    keys: RemoteKeys::Static { secret_key, .. },
                    ..
                } => BindingSource::Secret(secret_key.clone()),
                BackendTarget::Remote { endpoint, .. } => {
                    BindingSource::Endpoint(endpoint.authority().to_string())
                }
                BackendTarget::Local { data_dir, .. } => BindingSource::KeyFile(data_dir.clone()),
            };
            (name.clone(), source)
        })
        .collect();
    UploadBinding::derived(sources)
}

thread_local! {
    /// The files the configuration being read names and reads (its users file, secrets given
    /// as files), for `Config::files_read`.
    static READ: std::cell::RefCell<Vec<std::path::PathBuf>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The files the configuration read last on this thread named, where it was refused (a
/// configuration read whole keeps them in `Config::files_read`): a reload watches them, so
/// that a file it waited for is seen when it comes.
pub fn files_read_by_refused() -> Vec<std::path::PathBuf> {
    READ.take()
}

/// Notes a file the configuration reads (`Config::files_read`).
fn note_read(path: &Path) {
    READ.with_borrow_mut(|read| read.push(path.to_path_buf()));
}

/// Resolves a secret from its value, file or environment variable; exactly one must be given.
fn resolve_secret(
    field: &str,
    src: &SecretField,
    base: &Path,
    errors: &mut Vec<String>,
) -> Option<String> {
    let src = match src {
        SecretField::Inline(v) => return Some(v.clone()),
        SecretField::Source(s) => s,
    };
    let given = src.value.is_some() as u8 + src.file.is_some() as u8 + src.env.is_some() as u8;
    if given != 1 {
        errors.push(format!("{field}: give exactly one of value, file or env"));
        return None;
    }
    if let Some(v) = &src.value {
        return Some(v.clone());
    }
    if let Some(f) = &src.file {
        let path = base.join(f);
        note_read(&path);
        return match std::fs::read_to_string(&path) {
            Ok(v) => Some(v.trim_end_matches(['\r', '\n']).to_string()),
            Err(e) => {
                errors.push(format!("{field}: cannot read {}: {e}", path.display()));
                None
            }
        };
    }
    let var = src.env.as_ref().unwrap();
    match std::env::var(var) {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(format!("{field}: environment variable {var} is not set"));
            None
        }
    }
}

fn build_grants(label: &str, entries: &[PermissionEntry], errors: &mut Vec<String>) -> Vec<Grant> {
    let mut grants = Vec::new();
    for (j, p) in entries.iter().enumerate() {
        let mut perms = Vec::new();
        for name in &p.allow {
            match Permission::parse_list(name) {
                Some(list) => perms.extend_from_slice(list),
                None => errors.push(format!(
                    "{label}.permissions[{j}]: {name:?} is not one of {}",
                    Permission::config_names()
                )),
            }
        }
        grants.push(Grant::new(&p.tenant, &p.buckets, perms));
    }
    grants
}

/// Whether two backends are one bucket namespace: the same endpoint reached with the same keys
/// (or the AWS chain), or the embedded store (there is only one).
fn same_storage(a: Option<&Backend>, b: Option<&Backend>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return false;
    };
    match (&a.target, &b.target) {
        (BackendTarget::Local { .. }, BackendTarget::Local { .. }) => true,
        (
            BackendTarget::Remote {
                endpoint: ea,
                keys: ka,
            },
            BackendTarget::Remote {
                endpoint: eb,
                keys: kb,
            },
        ) => {
            ea.host.eq_ignore_ascii_case(&eb.host)
                && ea.port == eb.port
                && match (ka, kb) {
                    (
                        RemoteKeys::Static { access_key: x, .. },
                        RemoteKeys::Static { access_key: y, .. },
                    ) => x == y,
                    (RemoteKeys::AwsChain, RemoteKeys::AwsChain) => true,
                    _ => false,
                }
        }
        _ => false,
    }
}

fn build_users(entries: &[UserEntry], base: &Path, errors: &mut Vec<String>) -> Vec<User> {
    let mut users = Vec::new();
    let mut seen = HashSet::new();
    for (i, u) in entries.iter().enumerate() {
        let label = format!("users[{i}]");
        let grants = build_grants(&label, &u.permissions, errors);
        let user = match (&u.username, &u.password, &u.access_key, &u.secret_key) {
            (Some(name), Some(pw), None, None) => {
                let field = format!("{label}.password");
                let pw = resolve_secret(&field, pw, base, errors);
                // The secret key is the password's MD5: an empty password would make it the
                // well-known MD5 of "" (HCP has no user without a password).
                if pw.as_deref() == Some("") {
                    errors.push(format!("{field} must not be empty"));
                }
                pw.filter(|pw| !pw.is_empty()).map(|pw| {
                    User::new(
                        Some(name.clone()),
                        hcp_access_key(name),
                        hcp_secret_key(&pw),
                        u.enabled,
                        grants,
                    )
                })
            }
            (name, None, Some(ak), Some(sk)) => {
                resolve_secret(&format!("{label}.secret_key"), sk, base, errors)
                    .map(|sk| User::new(name.clone(), ak.clone(), sk, u.enabled, grants))
            }
            _ => {
                errors.push(format!(
                    "{label}: give either username + password (HCP style) or access_key + secret_key"
                ));
                None
            }
        };
        let user = user.map(|mut user| {
            user.tenant = u.tenant.as_ref().map(|t| t.to_ascii_lowercase());
            user
        });
        if let Some(user) = user {
            if user.access_key.is_empty() || user.secret.expose().is_empty() {
                errors.push(format!(
                    "{label}: access key and secret key must not be empty"
                ));
            } else if !seen.insert(user.access_key.clone()) {
                errors.push(format!(
                    "{label}: access key {} is used twice",
                    user.access_key
                ));
            } else {
                users.push(user);
            }
        }
    }
    users
}

/// The keys the gateway signs a remote backend's requests with: the AWS default chain, or
/// static keys (each a secret reference).
fn remote_keys(
    b: &BackendEntry,
    label: &str,
    base: &Path,
    errors: &mut Vec<String>,
) -> Option<RemoteKeys> {
    match b.credentials {
        CredentialSource::Aws => {
            if b.access_key.is_some() || b.secret_key.is_some() || b.security_token.is_some() {
                errors.push(format!(
                    "{label}: credentials = \"aws\" takes no access_key, secret_key or security_token"
                ));
            }
            Some(RemoteKeys::AwsChain)
        }
        CredentialSource::Static => {
            let mut required = |name: &str, value: &Option<SecretField>| match value {
                Some(s) => resolve_secret(&format!("{label}.{name}"), s, base, errors),
                None => {
                    errors.push(format!("{label}: {name} is required"));
                    None
                }
            };
            let ak = required("access_key", &b.access_key);
            let sk = required("secret_key", &b.secret_key);
            let token = b
                .security_token
                .as_ref()
                .and_then(|s| resolve_secret(&format!("{label}.security_token"), s, base, errors));
            match (ak, sk) {
                (Some(access_key), Some(sk)) => Some(RemoteKeys::Static {
                    access_key,
                    secret_key: SecretKey::new(sk),
                    token: token.map(SecretKey::new),
                }),
                _ => None,
            }
        }
    }
}

/// The backend's error dialect: the kind's own unless `dialect` names one that fits the kind.
fn backend_dialect(b: &BackendEntry, label: &str, errors: &mut Vec<String>) -> Dialect {
    match (b.kind, b.dialect) {
        (BackendKind::Local, None) => Dialect::Local,
        (BackendKind::Obs, None) => Dialect::Obs,
        (BackendKind::S3, None) => Dialect::Aws,
        (BackendKind::S3, Some(d @ (Dialect::Aws | Dialect::Minio | Dialect::Ceph))) => d,
        (_, Some(d)) => {
            errors.push(format!(
                "{label}: dialect {:?} does not fit kind {:?}",
                d.name(),
                b.kind
            ));
            Dialect::Aws
        }
    }
}

/// The embedded backend: its data directory (usable), its engine, and nothing of a remote one.
fn local_target(
    b: &BackendEntry,
    label: &str,
    base: &Path,
    errors: &mut Vec<String>,
) -> BackendTarget {
    // (Nor what only a remote backend reads: taken without a word, it would look in force.
    // Virtual-host addressing would be worse: the embedded store reads the path alone, so a key
    // `other-tenant-bucket/k` under the bucket authorised would name another bucket there.)
    let remote_only = b.security_token.is_some()
        || b.credentials != CredentialSource::Static
        || b.ca_file.is_some()
        || b.addressing == Some(AddressingStyle::Virtual);
    if b.endpoint.is_some() || b.access_key.is_some() || b.secret_key.is_some() || remote_only {
        errors.push(format!(
            "{label}: a local backend takes data_dir only, not endpoint, keys, credentials, ca_file or virtual-host addressing"
        ));
    }
    let dir = b
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("./data"));
    let data_dir = base.join(dir);
    if let Err(e) = usable_dir(&data_dir) {
        errors.push(format!("{label}.data_dir {}: {e}", data_dir.display()));
    }
    BackendTarget::Local {
        data_dir,
        engine: b.engine.unwrap_or_default(),
    }
}

/// The SHA-256 of a backend's CA file, which a reload watches (and then says the change waits
/// for a restart); empty where it cannot be read (refused apart).
fn ca_digest(path: &Path) -> String {
    note_read(path);
    std::fs::read(path).map_or_else(|_| String::new(), |pem| crate::sig::v4::sha256_hex(&pem))
}

/// A backend's settings that do not depend on where it is: its retries, dialect and timeouts.
fn backend_settings(b: &BackendEntry, label: &str, errors: &mut Vec<String>) -> Dialect {
    if b.max_retries > 10 {
        errors.push(format!("{label}: max_retries must be at most 10"));
    }
    if b.connect_timeout_ms == 0 || b.read_timeout_ms == 0 {
        errors.push(format!("{label}: timeouts must be greater than zero"));
    }
    if b.signing == Signing::Obs && b.kind != BackendKind::Obs {
        errors.push(format!(
            "{label}: signing = \"obs\" is for backends of kind \"obs\""
        ));
    }
    backend_dialect(b, label, errors)
}

fn build_backend(b: &BackendEntry, base: &Path, errors: &mut Vec<String>) -> Option<Backend> {
    let label = format!("backends.{}", b.name);
    let before = errors.len();
    let target = match b.kind {
        BackendKind::Local => local_target(b, &label, base, errors),
        BackendKind::S3 | BackendKind::Obs => {
            if b.data_dir.is_some() || b.engine.is_some() {
                errors.push(format!(
                    "{label}: data_dir and engine are only for local backends"
                ));
            }
            let endpoint = match &b.endpoint {
                Some(e) => Endpoint::parse(e)
                    .map_err(|e| errors.push(format!("{label}: {e}")))
                    .ok(),
                None => {
                    errors.push(format!("{label}: endpoint is required"));
                    None
                }
            };
            let keys = remote_keys(b, &label, base, errors);
            match (endpoint, keys) {
                (Some(endpoint), Some(keys)) => BackendTarget::Remote { endpoint, keys },
                // (Its other settings are checked all the same: every problem at once.)
                _ => {
                    backend_settings(b, &label, errors);
                    return None;
                }
            }
        }
    };
    let ca_file = b.ca_file.as_ref().map(|f| base.join(f));
    let ca_digest = ca_file.as_deref().map(ca_digest);
    if let BackendTarget::Remote { endpoint, .. } = &target {
        if endpoint.tls {
            if let Err(e) =
                crate::server::tls::ClientTls::new(endpoint.address(), ca_file.as_deref())
            {
                errors.push(format!("{label}: {e}"));
            }
        } else if ca_file.is_some() {
            errors.push(format!("{label}: ca_file needs an https:// endpoint"));
        }
    }
    let dialect = backend_settings(b, &label, errors);
    let max_key_bytes = max_key_bytes(b, &target, &label, errors);
    let conditional_writes = conditional_writes(b, &target, &label, errors);
    let object_ownership = object_ownership(b, dialect, &label, errors);
    if errors.len() > before {
        return None;
    }
    Some(Backend {
        name: b.name.clone().into(),
        kind: b.kind,
        target,
        region: b.region.clone().unwrap_or_else(|| "us-east-1".into()),
        addressing: b.addressing.unwrap_or_default(),
        dialect,
        min_part_bytes: b.min_part_bytes.unwrap_or(match b.kind {
            // s3s-fs enforces S3's 5 MiB as well.
            BackendKind::S3 | BackendKind::Local => 5 * 1024 * 1024,
            BackendKind::Obs => 100 * 1024,
        }),
        max_key_bytes,
        conditional_writes,
        object_ownership,
        ca_file,
        ca_digest,
        max_retries: b.max_retries,
        signing: b.signing,
        connect_timeout: Duration::from_millis(b.connect_timeout_ms),
        read_timeout: Duration::from_millis(b.read_timeout_ms),
    })
}

/// The Object Ownership the gateway's CreateBucket asks: one that keeps ACLs enabled (HCP's
/// buckets take them), or none; by default `ObjectWriter` on AWS, which makes buckets with ACLs
/// disabled otherwise (its CreateBucket then needs `s3:PutBucketOwnershipControls`).
fn object_ownership(
    b: &BackendEntry,
    dialect: Dialect,
    label: &str,
    errors: &mut Vec<String>,
) -> Option<&'static str> {
    match b.object_ownership.as_deref() {
        None if dialect == Dialect::Aws => Some("ObjectWriter"),
        None | Some("") => None,
        Some("ObjectWriter") => Some("ObjectWriter"),
        Some("BucketOwnerPreferred") => Some("BucketOwnerPreferred"),
        Some(other) => {
            errors.push(format!(
                "{label}: object_ownership {other:?} is not \"ObjectWriter\", \"BucketOwnerPreferred\" or \"\" (ACLs must stay enabled)"
            ));
            None
        }
    }
}

/// Whether the backend evaluates write conditions itself: said, or (by default) only the
/// embedded store, which evaluates If-None-Match and If-Match on PUT, copy and complete.
fn conditional_writes(
    b: &BackendEntry,
    target: &BackendTarget,
    label: &str,
    errors: &mut Vec<String>,
) -> bool {
    let engine = target.engine();
    let on = b
        .conditional_writes
        .unwrap_or(engine == Some(LocalEngine::Store));
    if on && engine == Some(LocalEngine::S3sFs) {
        // s3s-fs ignores the conditions: the overwrite guard would be off without a word.
        errors.push(format!(
            "{label}: s3s-fs does not honour conditional_writes"
        ));
    }
    on
}

/// The longest key a backend stores: said, or by default 1,024 (AWS, MinIO, OBS and RGW store
/// no longer keys) and HCP's 4,095 for the embedded store, which takes keys over 1,024 bytes
/// in a header of its own (`backend::store::wire`). At most 4,095; at most 1,024 for s3s-fs,
/// whose S3 parser (s3s) refuses longer keys in the path.
fn max_key_bytes(
    b: &BackendEntry,
    target: &BackendTarget,
    label: &str,
    errors: &mut Vec<String>,
) -> usize {
    let engine = target.engine();
    let (default, cap) = match engine {
        Some(LocalEngine::Store) => (4095, 4095),
        Some(LocalEngine::S3sFs) => (1024, 1024),
        None => (1024, 4095),
    };
    let max = b.max_key_bytes.unwrap_or(default);
    if max == 0 || max > cap {
        errors.push(format!("{label}: max_key_bytes must be from 1 to {cap}"));
    }
    max
}

/// `addressing.domains`, normalised, longest first (a nested domain wins over its parent).
fn build_domains(given: &[String], errors: &mut Vec<String>) -> Vec<String> {
    let mut domains = Vec::new();
    for d in given {
        let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
        if d.is_empty() || d.contains('/') || d.contains(':') {
            errors.push(format!("addressing.domains: {d:?} is not a domain name"));
        }
        domains.push(d);
    }
    domains.sort_by_key(|d| std::cmp::Reverse(d.len()));
    domains
}

/// A tenant's retention mode and classes; a class is an `A+…` offset or a special value
/// (what HCP's classes are), anything else an error.
fn tenant_retention(
    t: &TenantEntry,
    backend: Option<&BackendEntry>,
    errors: &mut Vec<String>,
) -> TenantRetention {
    use crate::hcp::retention::{Base, Value};
    // (Read from the backend's entry: judged even where the backend's own problems keep it
    // from being built.)
    let obs = backend.is_some_and(|b| b.kind == BackendKind::Obs);
    let s3s_fs = backend
        .is_some_and(|b| b.kind == BackendKind::Local && b.engine == Some(LocalEngine::S3sFs));
    if s3s_fs && t.retention != RetentionMode::Off {
        // (s3s-fs takes Object Lock's headers and keeps none: objects would be stored
        // unprotected without a word.)
        errors.push(format!(
            "tenants.{}: retention needs S3 Object Lock, which s3s-fs does not keep: use engine = \"store\"",
            t.name
        ));
    }
    let mut classes = crate::hcp::retention::Classes::new();
    for (name, value) in &t.retention_classes {
        match Value::parse(value) {
            Ok(v @ (Value::Special(_) | Value::Offset(Base::Added, _))) => {
                classes.insert(name.clone(), v);
            }
            _ => errors.push(format!(
                "tenants.{}.retention_classes.{name}: {value:?} is not an A+ offset or -1, 0, -2",
                t.name
            )),
        }
    }
    if !classes.is_empty() && t.retention == RetentionMode::Off {
        errors.push(format!(
            "tenants.{}: retention_classes need retention = \"enterprise\" or \"compliance\"",
            t.name
        ));
    }
    if t.labeled_holds_bucket.is_some() && t.retention == RetentionMode::Off {
        errors.push(format!(
            "tenants.{}: labeled_holds_bucket needs retention = \"enterprise\" or \"compliance\"",
            t.name
        ));
    }
    if obs && t.labeled_holds_bucket.is_some() {
        errors.push(format!(
            "tenants.{}: labeled_holds_bucket needs legal holds, which OBS's WORM does not keep",
            t.name
        ));
    }
    if obs && t.retention == RetentionMode::Enterprise {
        errors.push(format!(
            "tenants.{}: retention = \"enterprise\" needs governance retention, which OBS's WORM does not keep: use \"compliance\"",
            t.name
        ));
    }
    // Labeled holds are kept in the records bucket unless a bucket of their own is named
    // (where the backend keeps legal holds: OBS's WORM does not).
    let labels_bucket = t.labeled_holds_bucket.clone().or_else(|| {
        (t.retention != RetentionMode::Off && !obs)
            .then(|| t.records_bucket.clone())
            .flatten()
    });
    TenantRetention {
        mode: t.retention,
        classes,
        labels_bucket,
    }
}

/// A tenant's own buckets at its backend (`labeled_holds_bucket`, `records_bucket`), by
/// setting name.
fn gateway_buckets(t: &TenantEntry) -> impl Iterator<Item = (&'static str, &String)> {
    [
        ("labeled_holds_bucket", t.labeled_holds_bucket.as_ref()),
        ("records_bucket", t.records_bucket.as_ref()),
    ]
    .into_iter()
    .filter_map(|(setting, name)| name.map(|n| (setting, n)))
}

/// A tenant's own buckets: bucket names, out of the tenant's own bucket names (a bucket it
/// made would be adopted, and reached again if the setting went) and not an API path of the
/// backend's.
fn check_gateway_buckets(
    t: &TenantEntry,
    backends: &ConfigMap<String, Backend>,
    errors: &mut Vec<String>,
) {
    for (setting, name) in gateway_buckets(t) {
        let valid = (3..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && name.as_bytes()[0].is_ascii_alphanumeric()
            && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
        if !valid {
            errors.push(format!(
                "tenants.{}: {setting} {name:?} is not a bucket name (3 to 63 lower-case letters, digits, '-' and '.')",
                t.name
            ));
        }
        if !t.bucket_prefix.is_empty() && name.starts_with(t.bucket_prefix.as_str()) {
            errors.push(format!(
                "tenants.{}: {setting} {name:?} is within the tenant's own bucket_prefix {:?}",
                t.name, t.bucket_prefix
            ));
        }
        let dialect = backends.get(&t.backend).map(|b| b.dialect);
        if dialect.is_some_and(|d| crate::request::route::reserved_path(d, name.as_bytes())) {
            errors.push(format!(
                "tenants.{}: {setting} {name:?} is a path the backend serves its own API under",
                t.name
            ));
        }
    }
}

/// The `[[tenants]]`: names, backends, prefixes, anonymous grants.
fn build_tenants(
    entries: &[TenantEntry],
    backend_entries: &[BackendEntry],
    backends: &ConfigMap<String, Backend>,
    errors: &mut Vec<String>,
) -> ConfigMap<String, Tenant> {
    let mut tenants = ConfigMap::default();
    // (A backend with problems of its own is reported for them, not again for each tenant.)
    let backend_entry = |name: &str| backend_entries.iter().find(|b| b.name == name);
    let named = |name: &str| backend_entry(name).is_some();
    for t in entries {
        if t.name.is_empty()
            || !t
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            errors.push(format!(
                "tenants: name {:?} must be letters, digits and hyphens",
                t.name
            ));
        }
        if !backends.contains_key(&t.backend) && !named(&t.backend) {
            errors.push(format!(
                "tenants.{}: backend {:?} is not defined",
                t.name, t.backend
            ));
        }
        if !t
            .bucket_prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        {
            errors.push(format!(
                "tenants.{}: bucket_prefix {:?} may hold only lower-case letters, digits, '-' and '.'",
                t.name, t.bucket_prefix
            ));
        }
        let mut anonymous = Vec::new();
        for (i, a) in t.anonymous.iter().enumerate() {
            let perms: &[Permission] = match a.access.as_str() {
                "read" => &[Permission::Read],
                "read-write" => &[Permission::Read, Permission::Write, Permission::Delete],
                other => {
                    errors.push(format!(
                        "tenants.{}.anonymous[{i}]: access {other:?} must be \"read\" or \"read-write\"",
                        t.name
                    ));
                    continue;
                }
            };
            anonymous.push(Grant::new("*", &a.buckets, perms.iter().copied()));
        }

        let tenant = Tenant {
            name: t.name.to_ascii_lowercase().into(),
            backend: t.backend.clone(),
            bucket_prefix: t.bucket_prefix.clone(),
            anonymous: anonymous.into(),
            overwrite: t.overwrite,
            folders: t.folders,
            retention: tenant_retention(t, backend_entry(&t.backend), errors),
            records_bucket: t.records_bucket.clone(),
            anonymous_acls: t.anonymous_acls.into(),
            removed: false.into(),
            cors: tenant_cors(t, errors),
        };
        if t.anonymous_acls && t.records_bucket.is_none() {
            errors.push(format!(
                "tenants.{}: anonymous_acls needs records_bucket (where the gateway judges ACLs)",
                t.name
            ));
        }
        check_gateway_buckets(t, backends, errors);
        if tenants.insert(tenant.name.to_string(), tenant).is_some() {
            errors.push(format!("tenants: name {:?} is used twice", t.name));
        }
    }
    if tenants.is_empty() {
        errors.push("at least one [[tenants]] entry is required".into());
    }
    tenants
}

/// A tenant's CORS rules (`cors`), read as a bucket's configuration is (`PUT ?cors`).
fn tenant_cors(
    t: &TenantEntry,
    errors: &mut Vec<String>,
) -> Option<Arc<[crate::request::validate::cors_document::Rule]>> {
    let text = t.cors.as_ref()?;
    match crate::request::validate::cors_document::read(text.trim().as_bytes()) {
        Ok(doc) => Some(Arc::from(doc.0)),
        Err(e) => {
            errors.push(format!(
                "tenants.{}: cors is no CORS configuration HCP takes: {}",
                t.name, e.message
            ));
            None
        }
    }
}

/// Tenants sharing a backend share its bucket namespace: each needs a prefix that no other
/// one's starts with, or one tenant would list and reach the other's buckets.
fn check_prefixes(
    tenants: &ConfigMap<String, Tenant>,
    backends: &ConfigMap<String, Backend>,
    errors: &mut Vec<String>,
) {
    let mut sharing: Vec<&Tenant> = tenants.values().collect();
    sharing.sort_by(|a, b| a.name.cmp(&b.name));
    for (i, a) in sharing.iter().enumerate() {
        for b in &sharing[i + 1..] {
            if a.backend != b.backend
                && !same_storage(backends.get(&a.backend), backends.get(&b.backend))
            {
                continue;
            }
            let (pa, pb) = (&a.bucket_prefix, &b.bucket_prefix);
            if pa.is_empty()
                || pb.is_empty()
                || pa.starts_with(pb.as_str())
                || pb.starts_with(pa.as_str())
            {
                errors.push(format!(
                    "tenants.{} and tenants.{} share backend storage ({:?}, {:?}): each needs a bucket_prefix, and neither may start with the other ({pa:?}, {pb:?})",
                    a.name, b.name, a.backend, b.backend
                ));
            }
            // A tenant's records are the gateway's: no other tenant may reach them.
            for (owner, other) in [(a, b), (b, a)] {
                let own = [
                    (
                        "labeled_holds_bucket",
                        owner.retention.labels_bucket.as_deref(),
                    ),
                    ("records_bucket", owner.records_bucket.as_deref()),
                ];
                let mut reported = None;
                for (setting, name) in own {
                    let Some(name) = name.filter(|n| reported != Some(*n)) else {
                        continue;
                    };
                    if name.starts_with(other.bucket_prefix.as_str()) {
                        reported = Some(name);
                        errors.push(format!(
                            "tenants.{}: {setting} {name:?} is within tenants.{}'s bucket_prefix {:?}",
                            owner.name, other.name, other.bucket_prefix
                        ));
                    }
                }
            }
        }
    }
}

impl Config {
    /// The users a reload puts in place, each one's home tenant judged against the tenants
    /// `served` (a reload changes no tenant: one added waits for a restart, and must not take
    /// "the only tenant configured" away from the users whose home it is now).
    pub fn users_served_by(&self, served: &ConfigMap<String, Tenant>) -> Arc<UserStore> {
        let mut users: Vec<User> = self.users.iter().map(|u| User::clone(u)).collect();
        // (The new file's own problems were reported when it was read.)
        assign_home_tenants(&mut users, served, (&mut Vec::new(), &mut Vec::new()));
        Arc::new(UserStore::new(users))
    }
}

/// Each user's home tenant: its `tenant`, else the one tenant all its grants name, else the only
/// tenant configured (signatures that do not cover the Host are accepted there alone).
fn assign_home_tenants(
    users: &mut [User],
    tenants: &ConfigMap<String, Tenant>,
    (errors, warnings): (&mut Vec<String>, &mut Vec<String>),
) {
    let only_tenant = match tenants.keys().collect::<Vec<_>>().as_slice() {
        [only] => Some((*only).clone()),
        _ => None,
    };
    for user in users.iter_mut() {
        if let Some(t) = &user.tenant {
            if !tenants.contains_key(t) {
                errors.push(format!(
                    "users: {}'s tenant {t:?} is not a defined tenant",
                    user.access_key
                ));
            }
        }
        let mut named: Vec<&str> = user.grants.iter().map(|g| g.tenant()).collect();
        named.sort_unstable();
        named.dedup();
        // (A grant on a tenant not configured allows nothing — a misspelt name, or one a
        // reload took away: said, not refused.)
        for t in named
            .iter()
            .filter(|t| **t != "*" && !tenants.contains_key(**t))
        {
            warnings.push(format!(
                "users: {}'s permissions name tenant {t:?}, which is not a defined tenant: \
                 they allow nothing",
                user.access_key
            ));
        }
        let from_grants = match named.as_slice() {
            [one] if *one != "*" => Some(one.to_string()),
            _ => None,
        };
        user.home_tenant = user
            .tenant
            .clone()
            .or(from_grants)
            .or_else(|| only_tenant.clone());
        if user.home_tenant.is_none() && user.grants.is_empty() {
            // (It authenticates, and no tenant counts it among its users: no ACL admits it.)
            warnings.push(format!(
                "users: {} has no tenant and no permissions, and belongs to no tenant: give it \
                 a tenant",
                user.access_key
            ));
        }
    }
}
