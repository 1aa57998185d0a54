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
    let ours = level.to_string();
    let asked = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    // (A `RUST_LOG` that cannot be read is the configuration's level, its quieted parts too.)
    let filter = asked
        .and_then(|asked| EnvFilter::try_new(capped(&asked)).ok())
        .unwrap_or_else(|| EnvFilter::new(capped(&ours)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(std::io::stdout().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// A line the gateway always prints on standard output (that it serves, and where): as it is,
/// or — where logs are JSON — as one JSON object like a log line's, so that every line of the
/// stream is one.
pub fn announce(format: LogFormat, line: &str) {
    match format {
        LogFormat::Text => println!("{line}"),
        LogFormat::Json => {
            let now = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let object = serde_json::json!({
                "timestamp": now,
                "level": "INFO",
                "message": line,
                "target": "hcp_s3_gateway",
            });
            println!("{object}");
        }
    }
}

/// The libraries whose debug and trace lines hold secrets: the AWS SDK's orchestrator prints
/// each request and answer whole (the web identity token it sends STS, the role's keys STS
/// answers), SigV4 its canonical request (a session token), HTTP/2 and hyper the headers they
/// frame.
const CAPPED: [&str; 6] = ["aws_", "h2", "hyper", "hyper_util", "rustls", "tower"];

/// Libraries quieted further, at most at the level given: s3s (the embedded store's server)
/// logs each request whole at debug — its path, so the object's key, and the gateway's
/// signature —; pingora's `HttpServerApp` a client's unreadable head at error level; s3s-fs
/// and pingora their own detail.
const QUIETED: [(&str, tracing::level_filters::LevelFilter); 4] = [
    ("s3s", tracing::level_filters::LevelFilter::OFF),
    (
        "pingora_core::apps::http_app",
        tracing::level_filters::LevelFilter::OFF,
    ),
    ("s3s_fs", tracing::level_filters::LevelFilter::WARN),
    ("pingora_core", tracing::level_filters::LevelFilter::WARN),
];

/// `directives` (a level's, or `RUST_LOG`'s) with the [`CAPPED`] libraries at `info` at most,
/// and the [`QUIETED`] ones at theirs — at the level asked of everything where that is lower
/// —, whatever they ask: a directive of theirs (or one of a span's, which could lift them
/// inside it) is left out, and each gets its own. (One filter, as before: a second one ANDed
/// with it would cost every request the log crate's records pingora's debug lines make.)
fn capped(directives: &str) -> String {
    use tracing::level_filters::LevelFilter;
    let ours = |target: &str| {
        CAPPED.iter().any(|c| target.starts_with(c))
            || QUIETED.iter().any(|(q, _)| target.starts_with(q))
    };
    let kept = directives.split(',').map(str::trim).filter(|d| {
        let target = d.split(['=', '[']).next().unwrap_or_default();
        !d.is_empty() && !d.contains('[') && !ours(target)
    });
    // (The level of everything is a directive of a level alone; none is none: off.)
    let everything = directives
        .split(',')
        .filter_map(|d| d.trim().parse::<LevelFilter>().ok())
        .max()
        .unwrap_or(LevelFilter::OFF);
    let cap = everything.min(LevelFilter::INFO);
    let caps = CAPPED.iter().map(|c| format!("{c}={cap}"));
    let quiet = QUIETED
        .iter()
        .map(|(q, most)| format!("{q}={}", everything.min(*most)));
    kept.map(str::to_string)
        .chain(caps)
        .chain(quiet)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_stay_at_info_whatever_is_asked() {
        let asked = "trace,aws_smithy_runtime::client=trace,[{x=1}]=trace,hcp_s3_gateway=debug,\
            s3s=debug,pingora_core::apps::http_app=error";
        let directives = capped(asked);
        assert_eq!(
            directives,
            "trace,hcp_s3_gateway=debug,aws_=info,h2=info,hyper=info,hyper_util=info,rustls=info,tower=info,\
             s3s=off,pingora_core::apps::http_app=off,s3s_fs=warn,pingora_core=warn"
        );
        assert!(EnvFilter::try_new(&directives).is_ok());
        // (Never above the level asked of everything.)
        for (asked, level, most) in [
            ("warn", "warn", "WARN"),
            ("off,x=debug", "off", "DEBUG"),
            ("x=debug", "off", "DEBUG"),
        ] {
            let directives = capped(asked);
            assert!(
                directives.contains(&format!("tower={level},")),
                "{directives}"
            );
            let filter = EnvFilter::try_new(&directives).unwrap();
            let hint = format!("{:?}", filter.max_level_hint());
            assert_eq!(hint, format!("Some(LevelFilter::{most})"), "{asked}");
        }
    }
}
