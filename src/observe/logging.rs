//! Structured logs: text or one JSON object per line, level from configuration or `RUST_LOG`.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{EnvFilter, FilterExt as _, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

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
    let filter = filter.and(libraries_capped());
    let layer = tracing_subscriber::fmt::layer()
        .with_target(true)
        .with_ansi(std::io::stdout().is_terminal());
    let layer = match format {
        LogFormat::Json => layer.json().flatten_event(true).with_filter(filter).boxed(),
        LogFormat::Text => layer.with_filter(filter).boxed(),
    };
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// The libraries whose debug and trace lines hold secrets, at `info` at most whatever the level
/// or `RUST_LOG` asks: the AWS SDK's orchestrator prints each request and answer whole (the web
/// identity token it sends STS, the role's keys STS answers), SigV4 its canonical request (a
/// session token), HTTP/2 and hyper the headers they frame. (A filter of its own, so that no
/// more specific directive of `RUST_LOG` lifts it.)
fn libraries_capped() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(
            ["aws_", "h2", "hyper", "hyper_util", "rustls", "tower"]
                .map(|target| (target, LevelFilter::INFO)),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_stay_at_info_whatever_is_asked() {
        let caps = libraries_capped();
        for target in [
            "aws_smithy_runtime::client::orchestrator",
            "aws_sigv4::http_request::sign",
            "aws_config::web_identity_token",
            "h2::codec",
            "hyper_util::client",
        ] {
            assert!(caps.would_enable(target, &tracing::Level::INFO), "{target}");
            assert!(
                !caps.would_enable(target, &tracing::Level::DEBUG),
                "{target}"
            );
        }
        assert!(caps.would_enable("hcp_s3_gateway::request", &tracing::Level::TRACE));
    }
}
