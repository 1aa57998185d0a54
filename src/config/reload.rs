//! What a reload (SIGHUP) can put in place, and what it cannot: users, their permissions, the
//! tenants' anonymous grants and a backend's static keys (rotated where nothing else of the
//! backend changed) are replaced in the running gateway; every other setting takes effect on a
//! restart, and a reload that finds one changed names it.

use super::binding::{BindingSource, UploadBinding};
use super::runtime::{Backend, BackendTarget, Config, RemoteKeys, Tenant};
use crate::request::authenticate::SecretKey;

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
    // (A backend's static keys are left out: a reload puts them in place, `rotated_keys`.)
    compare("[[backends]]", backends(running), backends(new));
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

/// The tenants' settings but their anonymous grants and `anonymous_acls` (which a reload
/// replaces).
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
                anonymous_acls: _,
                removed: _,
                cors,
            } = &c.tenants[name];
            format!(
                "{name} {backend} {bucket_prefix} {overwrite:?} {folders} {retention:?} \
                 {records_bucket:?} {cors:?}\n"
            )
        })
        .collect()
}

/// The backends' settings, by name, without their static keys.
fn backends(c: &Config) -> String {
    let mut names: Vec<&String> = c.backends.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|name| format!("{:?}\n", without_keys(&c.backends[name])))
        .collect()
}

/// A backend's settings with its static keys blanked (the AWS chain is a setting, kept).
fn without_keys(b: &Backend) -> Backend {
    let mut b = b.clone();
    if let BackendTarget::Remote {
        keys: keys @ RemoteKeys::Static { .. },
        ..
    } = &mut b.target
    {
        *keys = RemoteKeys::Static {
            access_key: String::new(),
            secret_key: SecretKey::new(""),
            token: None,
        };
    }
    b
}

/// The backends whose static keys `new` gives, by name, where nothing else of the backend
/// changed (keys that come with a new endpoint belong to it: they wait for the restart that
/// takes the endpoint). Whether they differ from those held is the backend's to judge
/// (`BackendCredentials::rotate`).
pub fn rotated_keys<'n>(running: &Config, new: &'n Config) -> Vec<(&'n str, &'n RemoteKeys)> {
    new.backends
        .iter()
        .filter_map(|(name, b)| {
            let keys @ RemoteKeys::Static { .. } = (match &b.target {
                BackendTarget::Remote { keys, .. } => keys,
                BackendTarget::Local { .. } => return None,
            }) else {
                return None;
            };
            let before = running.backends.get(name)?;
            let same = format!("{:?}", without_keys(before)) == format!("{:?}", without_keys(b));
            same.then_some((name.as_str(), keys))
        })
        .collect()
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
