//! Structured logs: text or one JSON object per line, level from configuration or `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber once; later calls (tests starting several gateways) are no-ops.
///
/// pingora's `HttpServerApp` (the admin listener's exchange) logs a client's faults — a head it
/// cannot read, a closed connection — at error level with up to 2 KiB of what the client sent:
/// off, as the S3 listener's own reads log none.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{level},s3s=off,s3s_fs=warn,pingora_core=warn,pingora_core::apps::http_app=off"
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(std::io::stdout().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
