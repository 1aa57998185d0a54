//! What a reload (SIGHUP) can put in place, and what it cannot: users, their permissions and
//! the tenants' anonymous grants are replaced in the running gateway; every other setting
//! takes effect on a restart, and a reload that finds one changed names it.

use super::binding::{BindingSource, UploadBinding};
use super::runtime::{BackendTarget, Config, RemoteKeys, Tenant};

/// The settings of `new` that differ from the running ones and need a restart, by name.
pub fn restart_needed(running: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut compare = |name: &'static str, a: String, b: String| {
        if a != b {
            changed.push(name);
        }
    };
    compare("[server]", server(running), server(new));
    compare(
        "[addressing]",
        format!("{:?} {:?}", running.domains, running.default_tenant),
        format!("{:?} {:?}", new.domains, new.default_tenant),
    );
    compare(
        "auth.clock_skew_seconds",
        format!("{:?}", running.clock_skew),
        format!("{:?}", new.clock_skew),
    );
    compare(
        "[limits]",
        format!("{:?}", running.limits),
        format!("{:?}", new.limits),
    );
    compare("[[tenants]]", tenants(running), tenants(new));
    // (Secrets are redacted from what Debug shows: compared by value, never shown.)
    compare("[[backends]]", backends(running), backends(new));
    if backend_secrets(running) != backend_secrets(new) {
        changed.push("[[backends]] keys");
    }
    if binding(&running.upload_binding) != binding(&new.upload_binding) {
        changed.push("auth.upload_binding_secret");
    }
    changed.dedup();
    changed
}

fn server(c: &Config) -> String {
    format!(
        "{:?} {:?} {:?} {} {:?} {:?} {:?} {:?} {:?} {:?} {} {} {} {} {} {} {} {:?} {:?} {:?} {:?} {} {:?} {:?} {:?}",
        c.listen,
        c.admin_listen,
        c.tls,
        c.threads,
        c.shutdown_grace,
        c.shutdown_delay,
        c.keepalive,
        c.client_body,
        c.client_header_timeout,
        c.client_send_timeout,
        c.client_send_min_rate,
        c.max_connections,
        c.max_concurrent_requests,
        c.max_concurrent_requests_per_client,
        c.max_buffered_response_bytes,
        c.max_chunk_bytes,
        c.max_held_bytes,
        c.complete_keepalive_after,
        c.complete_timeout,
        c.host_id,
        c.log_format,
        c.log_level,
        c.log_keys,
        c.readiness,
        c.reload_check,
    )
}

/// The tenants' settings but their anonymous grants (which a reload replaces).
fn tenants(c: &Config) -> String {
    let mut names: Vec<&String> = c.tenants.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let Tenant {
                name,
                backend,
                bucket_prefix,
                anonymous: _,
                overwrite,
                folders,
                retention,
                records_bucket,
                anonymous_acls,
            } = &c.tenants[name];
            format!(
                "{name} {backend} {bucket_prefix} {overwrite:?} {folders} {retention:?} \
                 {records_bucket:?} {anonymous_acls}\n"
            )
        })
        .collect()
}

/// The backends' settings, by name (secrets redacted: see `backend_secrets`).
fn backends(c: &Config) -> String {
    let mut names: Vec<&String> = c.backends.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|name| format!("{:?}\n", c.backends[name]))
        .collect()
}

fn backend_secrets(c: &Config) -> Vec<(String, String, Option<String>)> {
    let mut secrets: Vec<_> = c
        .backends
        .iter()
        .filter_map(|(name, b)| match &b.target {
            BackendTarget::Remote {
                keys:
                    RemoteKeys::Static {
                        secret_key, token, ..
                    },
                ..
            } => Some((
                name.clone(),
                secret_key.expose().to_string(),
                token.as_ref().map(|t| t.expose().to_string()),
            )),
            _ => None,
        })
        .collect();
    secrets.sort();
    secrets
}

fn binding(b: &UploadBinding) -> Vec<String> {
    match b {
        UploadBinding::Configured(secret) => vec![secret.expose().to_string()],
        UploadBinding::Derived(sources) => sources
            .iter()
            .map(|(name, source)| match source {
                BindingSource::Secret(secret) => format!("{name} {}", secret.expose()),
                BindingSource::Endpoint(endpoint) => format!("{name} {endpoint}"),
                BindingSource::KeyFile(dir) => format!("{name} {}", dir.display()),
            })
            .collect(),
    }
}
