//! The gateway as operators run it: the binary in its own process, driven by signals. SIGHUP
//! reloads users without touching open connections; SIGTERM lets a large download finish and
//! exits within the grace period; every request leaves one JSON access-log line and no line of
//! the whole run holds a secret.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::process::Process;
use common::raw::{request_head, send, Connection, V4};
use common::*;
use hcp_s3_gateway::sig::v4 as sigv4;

const NEWBIE: &str = "newbie";
const NEWBIE_PASSWORD: &str = "newbie-password";

fn config(extra_user: bool, data: &std::path::Path) -> String {
    let mut text = format!(
        "{}\n[[backends]]\nname = \"b\"\nkind = \"local\"\ndata_dir = {:?}\n",
        base_config(""),
        data.display().to_string()
    )
    .replace(
        "log_level = \"warn\"",
        "log_level = \"info\"\nlog_format = \"json\"",
    );
    if extra_user {
        text.push_str(&format!(
            "\n[[users]]\nusername = \"{NEWBIE}\"\npassword = \"{NEWBIE_PASSWORD}\"\npermissions = [{{ tenant = \"*\", buckets = \"*\", allow = [\"read\"] }}]\n"
        ));
    }
    text
}

fn list_buckets_headers(addr: &str, user: &str, password: &str) -> Vec<(String, String)> {
    let (ak, sk) = keys(user, password);
    V4 {
        access_key: &ak,
        secret_key: &sk,
        host: addr,
        when: SystemTime::now(),
        payload_hash: sigv4::EMPTY_SHA256,
        date_header: None,
    }
    .sign("GET", b"/", &[])
}

/// `request`'s answer once it is `status` — a reload is taken a moment after its signal or its
/// files' change — asked every 100 ms for at most 10 s (`what` fails the test past them).
async fn once_answered<F, A>(status: u16, what: &str, mut request: F) -> common::raw::RawResponse
where
    F: FnMut() -> A,
    A: std::future::Future<Output = common::raw::RawResponse>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = request().await;
        if r.status == status {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {} {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGHUP: a user added to the configuration can sign requests at once, a connection opened
/// before keeps serving, and a broken configuration is refused while the running one stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_users_and_leaves_connections_open() {
    let p = start_process();
    let mut open = Connection::open(&p.s3).await;
    let r = open
        .request("GET", b"/", &list_buckets_headers(&p.s3, USER, PASSWORD))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let newbie = |s3: String| async move {
        send(
            &s3,
            "GET",
            b"/",
            &list_buckets_headers(&s3, NEWBIE, NEWBIE_PASSWORD),
            vec![],
        )
        .await
    };
    assert_eq!(newbie(p.s3.clone()).await.code(), "InvalidAccessKeyId");

    let data = p.config.parent().unwrap().join("data");
    std::fs::write(&p.config, config(true, &data)).unwrap();
    p.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = newbie(p.s3.clone()).await;
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new user was never accepted: {}",
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = open
        .request("GET", b"/", &list_buckets_headers(&p.s3, USER, PASSWORD))
        .await;
    assert_eq!(r.status, 200, "the open connection still serves");

    std::fs::write(&p.config, "[server\nbroken").unwrap();
    p.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        newbie(p.s3.clone()).await.status,
        200,
        "the running users stay"
    );
    assert!(
        p.lines().iter().any(|l| l.contains("reload refused")),
        "{:?}",
        p.lines()
    );
}

/// Without a signal: a changed users file, or a password given as a file (as a Kubernetes
/// Secret mounted as files changes in place), is reloaded within `reload_check_seconds` — a user
/// added can sign requests, a rotated password replaces the old one, a user removed cannot sign
/// any more — and files that have not changed reload nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_users_and_secret_files_are_reloaded_without_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let (users, secret) = (dir.path().join("users.toml"), dir.path().join("newbie.pw"));
    let newbie = format!(
        "[[users]]\nusername = \"{NEWBIE}\"\npassword = {{ file = \"newbie.pw\" }}\npermissions = [{{ tenant = \"*\", buckets = \"*\", allow = [\"read\"] }}]\n"
    );
    std::fs::write(&users, "").unwrap();
    std::fs::write(&secret, NEWBIE_PASSWORD).unwrap();
    let text = config(false, &dir.path().join("data"))
        .replacen("[server]\n", "[server]\nreload_check_seconds = 1\n", 1)
        .replacen("[auth]\n", "[auth]\nusers_file = \"users.toml\"\n", 1);
    let p = Process::start(&text, dir, &[]);
    let answer = |s3: String, password: &'static str| async move {
        send(
            &s3,
            "GET",
            b"/",
            &list_buckets_headers(&s3, NEWBIE, password),
            vec![],
        )
        .await
        .status
    };
    let until = |password: &'static str, status: u16| {
        let s3 = p.s3.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            while answer(s3.clone(), password).await != status {
                assert!(
                    Instant::now() < deadline,
                    "{password}: never answered {status}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // (Written whole at once, as Kubernetes swaps a Secret's files.)
    let replace = |file: &std::path::Path, text: &str| {
        let staged = file.with_extension("new");
        std::fs::write(&staged, text).unwrap();
        std::fs::rename(&staged, file).unwrap();
    };
    assert_eq!(
        answer(p.s3.clone(), NEWBIE_PASSWORD).await,
        403,
        "not a user yet"
    );
    replace(&users, &newbie);
    until(NEWBIE_PASSWORD, 200).await;
    replace(&secret, "rotated-password");
    until("rotated-password", 200).await;
    assert_eq!(
        answer(p.s3.clone(), NEWBIE_PASSWORD).await,
        403,
        "the old password"
    );
    replace(&users, "");
    until("rotated-password", 403).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let reloads = || {
        p.lines()
            .iter()
            .filter(|l| l.contains("configuration files changed"))
            .count()
    };
    while reloads() < 3 {
        assert!(Instant::now() < deadline, "{:?}", p.lines());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A users file changed while the gateway starts — here while it probes a backend that takes
/// connections and never answers (about 2 s): the file is emptied when the probe connects,
/// which is after the start read it — is reloaded at the first look, as a later change is: a
/// user removed then cannot sign once the gateway serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_the_gateway_starts_is_reloaded() {
    // (The kernel takes the probe's connection; nothing ever answers it.)
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    let newbie = format!(
        "[[users]]\nusername = \"{NEWBIE}\"\npassword = \"{NEWBIE_PASSWORD}\"\npermissions = [{{ tenant = \"*\", buckets = \"*\", allow = [\"read\"] }}]\n"
    );
    std::fs::write(&users, &newbie).unwrap();
    let text = format!(
        "{}[[backends]]\nname = \"silent\"\nkind = \"s3\"\nendpoint = \"http://{}\"\naccess_key = \"a\"\nsecret_key = \"s\"\n",
        config(false, &dir.path().join("data")),
        silent.local_addr().unwrap()
    )
    .replacen("[server]\n", "[server]\nreload_check_seconds = 1\n", 1)
    .replacen("[auth]\n", "[auth]\nusers_file = \"users.toml\"\n", 1);
    // Removed when the probe connects (held unanswered until the gateway serves).
    let removed = {
        let users = users.clone();
        std::thread::spawn(move || {
            let (probe, _) = silent.accept().unwrap();
            std::fs::write(users.with_extension("new"), "").unwrap();
            std::fs::rename(users.with_extension("new"), &users).unwrap();
            (Instant::now(), probe, silent)
        })
    };
    let p = Process::start(&text, dir, &[]);
    let serving = Instant::now();
    let (removed_at, _probe, _silent) = removed.join().unwrap();
    assert!(
        removed_at < serving,
        "changed only once the gateway served: this shows nothing"
    );
    let newbie_lists = || {
        let s3 = p.s3.clone();
        async move {
            let headers = list_buckets_headers(&s3, NEWBIE, NEWBIE_PASSWORD);
            send(&s3, "GET", b"/", &headers, vec![]).await
        }
    };
    let still = "the user removed while the gateway started still signs";
    let r = once_answered(403, still, newbie_lists).await;
    r.assert_hcp_error(403, "InvalidAccessKeyId");
    assert!(
        p.lines()
            .iter()
            .any(|l| l.contains("configuration files changed")),
        "{:?}",
        p.lines()
    );
}

/// A backend's static keys given as files (a Kubernetes Secret mounted as files, rotated in
/// place — as OBS's temporary credentials must be) are put in place by the reload that finds
/// them changed, without a restart: the gateway signs with them from then on, and the reload
/// counts `ok`. Against RGW, which checks the gateway's signatures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_backend_keys_are_taken_without_a_restart() {
    let get = |k: &str| std::env::var(format!("RGW_{k}")).ok();
    let (Some(endpoint), Some(access_key), Some(secret_key)) =
        (get("ENDPOINT"), get("ACCESS_KEY"), get("SECRET_KEY"))
    else {
        assert_eq!(
            std::env::var("HCP_GW_SKIP_EXTERNAL").as_deref(),
            Ok("1"),
            "RGW_ENDPOINT/RGW_ACCESS_KEY/RGW_SECRET_KEY are not set: run through scripts/test.sh"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("backend-secret");
    std::fs::write(&secret, "the secret before the rotation").unwrap();
    let text = format!(
        "{}\n[[backends]]\nname = \"b\"\nkind = \"s3\"\ndialect = \"ceph\"\nendpoint = {endpoint:?}\naccess_key = {access_key:?}\nsecret_key = {{ file = \"backend-secret\" }}\nregion = \"us-east-1\"\n",
        base_config("rotated-")
    )
    .replacen("[server]\n", "[server]\nreload_check_seconds = 1\n", 1)
    .replace("log_level = \"warn\"", "log_level = \"info\"");
    let p = Process::start(&text, dir, &[]);
    let list = || {
        let s3 = p.s3.clone();
        async move {
            let headers = list_buckets_headers(&s3, USER, PASSWORD);
            send(&s3, "GET", b"/", &headers, vec![]).await
        }
    };
    list().await.assert_hcp_error(500, "InternalError");
    std::fs::write(secret.with_extension("new"), &secret_key).unwrap();
    std::fs::rename(secret.with_extension("new"), &secret).unwrap();
    let r = once_answered(200, "the rotated keys were never taken", list).await;
    assert!(r.text().contains("<ListAllMyBucketsResult"), "{}", r.text());
    let lines = p.lines();
    assert!(
        lines.iter().any(|l| l.contains("backend keys replaced")),
        "{lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("takes effect on a restart")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains(&secret_key)),
        "a line holds the backend's secret"
    );
}

/// SIGHUP replaces the tenants' anonymous grants too (a revoked anonymous write is refused at
/// once), and names each changed setting that waits for a restart, counting the reload
/// `partial`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_anonymous_grants_and_names_what_needs_a_restart() {
    let p = start_process();
    let s3 = p.client(USER, PASSWORD);
    let bucket = new_bucket(&s3, "dropbox").await;
    let anonymous_put = |key: &'static str| {
        let (addr, target) = (p.s3.clone(), format!("/{bucket}/{key}"));
        async move {
            let headers = vec![
                ("host".to_string(), addr.clone()),
                ("content-length".to_string(), "4".to_string()),
            ];
            send(
                &addr,
                "PUT",
                target.as_bytes(),
                &headers,
                vec![b"data".to_vec()],
            )
            .await
        }
    };
    assert_eq!(anonymous_put("before").await.status, 200);

    let data = p.config.parent().unwrap().join("data");
    let revoked = config(false, &data)
        .replace(r#", { buckets = "dropbox-*", access = "read-write" }"#, "")
        .replace("shutdown_grace_seconds = 2", "shutdown_grace_seconds = 3");
    assert!(!revoked.contains("dropbox-*"), "{revoked}");
    std::fs::write(&p.config, revoked).unwrap();
    p.signal("HUP");
    let never = "the anonymous write was never revoked";
    let r = once_answered(403, never, || anonymous_put("after")).await;
    r.assert_hcp_error(403, "AccessDenied");
    // (The reload names what waits for a restart after it put the grants in place: its line
    // may follow the refusal by a moment.)
    let named = |lines: &[String]| {
        lines
            .iter()
            .any(|l| l.contains("takes effect on a restart") && l.contains("[server]"))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !named(&p.lines()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines = p.lines();
    assert!(named(&lines), "{lines:?}");
    let metrics = scrape(&p).await;
    assert!(
        metrics.contains(r#"hcp_gateway_config_reloads_total{result="partial"} 1"#),
        "{metrics}"
    );
}

/// A tenant a reload's configuration no longer has serves nobody until a restart: a user whose
/// grants name every tenant (`*`) is refused there as the anonymous caller is — a browser's
/// preflight too, and a browser's request gets none of the bucket's CORS headers — and its
/// users elsewhere are served as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_removed_by_a_reload_serves_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // (Tenants sharing a backend each need a prefix.)
    let first = config(false, &data).replacen("bucket_prefix = \"\"", "bucket_prefix = \"t-\"", 1);
    assert!(first.contains("\"t-\""), "{first}");
    let second = "[[tenants]]\nname = \"u\"\nbackend = \"b\"\nbucket_prefix = \"u-\"\n";
    let p = Process::start(&format!("{first}{second}"), dir, &[]);
    let origin = ("origin", "https://app.example");
    let signed = |host: &'static str, method: &'static str, target: String, body: &'static str| {
        let s3 = p.s3.clone();
        async move {
            let (ak, sk) = keys(USER, PASSWORD);
            let md5 = content_md5(body.as_bytes());
            let length = body.len().to_string();
            let mut extra = vec![origin, ("content-length", length.as_str())];
            if !body.is_empty() {
                extra.push(("content-md5", md5.as_str()));
            }
            let headers = V4 {
                access_key: &ak,
                secret_key: &sk,
                host,
                when: SystemTime::now(),
                payload_hash: &sigv4::sha256_hex(body.as_bytes()),
                date_header: None,
            }
            .sign(method, target.as_bytes(), &extra);
            send(&s3, method, target.as_bytes(), &headers, vec![body.into()]).await
        }
    };
    let preflight = || {
        let s3 = p.s3.clone();
        async move {
            let headers = [
                ("host", "u.hcp.test"),
                origin,
                ("access-control-request-method", "GET"),
            ];
            let headers: Vec<(String, String)> = headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            send(&s3, "OPTIONS", b"/kept/k", &headers, vec![]).await
        }
    };
    let rules = "<CORSConfiguration><CORSRule><AllowedOrigin>https://app.example</AllowedOrigin>\
        <AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
    assert_eq!(
        signed("u.hcp.test", "PUT", "/kept".into(), "").await.status,
        200
    );
    let r = signed("u.hcp.test", "PUT", "/kept?cors".into(), rules).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        signed("u.hcp.test", "GET", "/".into(), "").await.status,
        200
    );
    let r = preflight().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    std::fs::write(&p.config, first).unwrap();
    p.signal("HUP");
    let listing = || signed("u.hcp.test", "GET", "/".into(), "");
    let r = once_answered(403, "the removed tenant still serves", listing).await;
    r.assert_hcp_error(403, "AccessDenied");
    assert_eq!(r.header("access-control-allow-origin"), None);
    // A browser's read of the bucket with rules: refused without them; its preflight too.
    let r = signed("u.hcp.test", "GET", "/kept/k".into(), "").await;
    r.assert_hcp_error(403, "AccessDenied");
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = preflight().await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(
        signed("t.hcp.test", "GET", "/".into(), "").await.status,
        200
    );
}

/// The admin listener's `/metrics`, whole.
async fn scrape(p: &Process) -> String {
    let head = b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n";
    let mut admin = tokio::net::TcpStream::connect(&p.admin).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut admin, head)
        .await
        .unwrap();
    let mut metrics = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut admin, &mut metrics)
        .await
        .unwrap();
    metrics
}

/// What a configuration holds that is allowed but likely a mistake — permissions on a tenant
/// it does not define (a misspelt name: they allow nothing) — is said at start, where the logs
/// are (the configuration is read before logging starts), and by `--check-config`. A
/// certificate a reload cannot take (the current one stays, served until it expires) makes the
/// reload count as an `error`, not `ok`; a good one is `ok`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_warnings_are_said_and_a_refused_certificate_is_a_reload_error() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = test_certificate_files(dir.path(), "listener");
    let tls = format!(
        "shutdown_grace_seconds = 2\nreload_check_seconds = 0\ntls_cert_file = {:?}\ntls_key_file = {:?}",
        cert.display().to_string(),
        key.display().to_string()
    );
    let misspelt = "\n[[users]]\nusername = \"typo\"\npassword = \"typo-password\"\n\
        permissions = [{ tenant = \"tt\", buckets = \"*\", allow = [\"read\"] }]\n";
    let text =
        config(false, &dir.path().join("data")).replacen("shutdown_grace_seconds = 2", &tls, 1)
            + misspelt;
    // (In a JSON line the tenant's quotes are escaped.)
    let said = "which is not a defined tenant: they allow nothing";
    let path = dir.path().join("checked.toml");
    std::fs::write(&path, &text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hcp-s3-gateway"))
        .args(["--check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("tenant \"tt\", {said}")),
        "{stderr}"
    );
    let p = Process::start(&text, dir, &[]);
    let warned = |lines: &[String]| {
        let line = lines.iter().find(|l| l.contains(said));
        line.is_some_and(|l| l.contains("tt") && l.contains("WARN"))
    };
    assert!(warned(&p.lines()), "{:?}", p.lines());
    let reloads = |metrics: &str, result: &str| {
        let series = format!("hcp_gateway_config_reloads_total{{result=\"{result}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.parse::<f64>().ok())
            .unwrap_or_default()
    };
    let reloaded = |(result, times): (&'static str, f64)| {
        let p = &p;
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let metrics = scrape(p).await;
                if reloads(&metrics, result) >= times {
                    return metrics;
                }
                assert!(Instant::now() < deadline, "no {result} reload: {metrics}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // A configuration naming a certificate it cannot read is refused.
    std::fs::write(&cert, "not a certificate").unwrap();
    p.signal("HUP");
    let metrics = reloaded(("error", 1.0)).await;
    assert_eq!(reloads(&metrics, "ok"), 0.0, "{metrics}");
    // One naming new files (taken on a restart) is read whole, while the listener's own
    // files, read again, are refused: the reload's error too, not `partial`.
    let (good, good_key, _) = test_certificate_files(cert.parent().unwrap(), "again");
    let moved = text.replace(&*cert.to_string_lossy(), &good.to_string_lossy());
    let moved = moved.replace(&*key.to_string_lossy(), &good_key.to_string_lossy());
    std::fs::write(&p.config, &moved).unwrap();
    p.signal("HUP");
    let metrics = reloaded(("error", 2.0)).await;
    assert_eq!(reloads(&metrics, "partial"), 0.0, "{metrics}");
    std::fs::write(&p.config, &text).unwrap();
    std::fs::copy(&good, &cert).unwrap();
    std::fs::copy(&good_key, &key).unwrap();
    p.signal("HUP");
    let metrics = reloaded(("ok", 1.0)).await;
    assert_eq!(reloads(&metrics, "error"), 2.0, "{metrics}");
}

/// SIGHUP switches `anonymous_acls` as it replaces anonymous grants: once off (or its tenant
/// removed), an anonymous read a public-read ACL allowed is refused at once, not at the next
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_switches_anonymous_acls() {
    let dir = tempfile::tempdir().unwrap();
    let line = "bucket_prefix = \"\"\n";
    let records = unique_bucket("gw-records");
    let keeping = |on: bool| {
        let tenant = format!("{line}records_bucket = \"{records}\"\nanonymous_acls = {on}\n");
        config(false, &dir.path().join("data")).replacen(line, &tenant, 1)
    };
    let first = keeping(true);
    let (path, revoked) = (dir.path().join("config.toml"), keeping(false));
    let p = Process::start(&first, dir, &[]);
    let s3 = p.client(USER, PASSWORD);
    // (A name no anonymous grant of the tenant's covers: its ACL alone admits.)
    let bucket = new_bucket(&s3, "acl-open").await;
    let public = aws_sdk_s3::types::ObjectCannedAcl::PublicRead;
    let put = s3.put_object().bucket(&bucket).key("k").acl(public);
    put.body(b"open".to_vec().into()).send().await.unwrap();
    let anonymous_get = || {
        let (addr, target) = (p.s3.clone(), format!("/{bucket}/k"));
        async move {
            let headers = vec![("host".to_string(), addr.clone())];
            send(&addr, "GET", target.as_bytes(), &headers, vec![]).await
        }
    };
    let r = anonymous_get().await;
    assert_eq!((r.status, r.text().as_str()), (200, "open"));
    assert_eq!(path, p.config);
    std::fs::write(&p.config, revoked).unwrap();
    p.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = anonymous_get().await;
        if r.status == 403 {
            r.assert_hcp_error(403, "AccessDenied");
            break;
        }
        assert!(Instant::now() < deadline, "never revoked: {}", r.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The size of the object [`download_begun`] stores.
const SIZE: usize = 64 * 1024 * 1024;

/// A connection on which the download of a new 64 MiB object (`pattern(SIZE, seed)`, in a
/// new bucket) has been asked for, its answer not read yet.
async fn download_begun(p: &Process, tag: &str, seed: u64) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let s3 = p.client(USER, PASSWORD);
    let bucket = new_bucket(&s3, tag).await;
    s3.put_object()
        .bucket(&bucket)
        .key("big")
        .body(pattern(SIZE, seed).into())
        .send()
        .await
        .unwrap();
    let (ak, sk) = keys(USER, PASSWORD);
    let target = format!("/{bucket}/big");
    let headers = V4 {
        access_key: &ak,
        secret_key: &sk,
        host: &p.s3,
        when: SystemTime::now(),
        payload_hash: sigv4::EMPTY_SHA256,
        date_header: None,
    }
    .sign("GET", target.as_bytes(), &[]);
    let mut conn = tokio::net::TcpStream::connect(&p.s3).await.unwrap();
    conn.write_all(&request_head("GET", target.as_bytes(), &headers))
        .await
        .unwrap();
    conn
}

/// SIGTERM with a large download in flight: the download completes byte for byte, new
/// connections are refused, and the process exits within its grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_large_download_finish() {
    use tokio::io::AsyncReadExt;
    let mut p = start_process();
    let mut conn = download_begun(&p, "drain", 3).await;
    let mut received = vec![0u8; 1024 * 1024];
    conn.read_exact(&mut received).await.unwrap();

    let stopped = Instant::now();
    p.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(&p.s3).await.is_err(),
        "the listener closes at SIGTERM"
    );
    // The admin listener answers while the process drains: alive, not ready.
    let host = [("host".to_string(), p.admin.clone())];
    for (path, status) in [("/healthz", 200), ("/readyz", 503)] {
        let r = send(&p.admin, "GET", path.as_bytes(), &host, vec![]).await;
        assert_eq!(r.status, status, "{path}");
    }
    conn.read_to_end(&mut received).await.unwrap();
    let split = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        received.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        &received[..64]
    );
    assert_eq!(received.len() - split, SIZE, "the whole object arrived");
    assert!(received[split..] == pattern(SIZE, 3)[..]);
    let status = loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(4),
            "no exit within the 2 s grace period"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

/// A second SIGTERM during the drain stops the gateway at once, requests still running cut off
/// (it does not wait out `shutdown_grace_seconds`), with a failure status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_stops_at_once() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let text = config(false, &dir.path().join("data")).replacen(
        "shutdown_grace_seconds = 2",
        "shutdown_grace_seconds = 60",
        1,
    );
    let mut p = Process::start(&text, dir, &[]);
    // A download that is read no further: the drain would wait for it.
    let mut conn = download_begun(&p, "second-term", 5).await;
    let mut first = vec![0u8; 1024];
    conn.read_exact(&mut first).await.unwrap();
    p.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "draining the download"
    );
    let second = Instant::now();
    p.signal("TERM");
    let status = loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            second.elapsed() < Duration::from_secs(3),
            "still draining after the second signal"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "{status:?}");
    drop(conn);
}

/// One JSON access-log line per request, with what operators need and never a secret: not the
/// user's secret key or password, not a presigned URL's signature, not the binding secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_is_json_and_holds_no_secret() {
    let p = start_process();
    let s3 = p.client(USER, PASSWORD);
    let bucket = new_bucket(&s3, "logs").await;
    s3.put_object()
        .bucket(&bucket)
        .key("k")
        .body(b"v".to_vec().into())
        .send()
        .await
        .unwrap();
    let presigned = s3
        .get_object()
        .bucket(&bucket)
        .key("k")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(60)).unwrap(),
        )
        .await
        .unwrap();
    let url = presigned.uri().to_string();
    let signature = url.split("X-Amz-Signature=").nth(1).unwrap().to_string();
    let path = url.splitn(4, '/').nth(3).unwrap();
    let r = send(
        &p.s3,
        "GET",
        format!("/{path}").as_bytes(),
        &[("host".into(), p.s3.clone())],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    let _ = p.client(USER, "wrong-password").list_buckets().send().await;
    // HCP's Active Directory scheme, with no AD here: refused as HCP refuses credentials it
    // cannot verify; the log names the user, never the password.
    let ad_password = "AD-PASSWORD-p4sswOrd";
    let ad = [
        ("host".to_string(), p.s3.clone()),
        (
            "authorization".to_string(),
            format!("AD lgreen@example.com:{ad_password}"),
        ),
    ];
    let r = send(&p.s3, "GET", format!("/{bucket}/k").as_bytes(), &ad, vec![]).await;
    r.assert_hcp_error(403, "AccessDenied");
    let missing = s3.get_object().bucket(&bucket).key("missing").send().await;
    assert_eq!(sdk_error(&missing.unwrap_err()).1, "NoSuchKey");
    let requests = 6;
    // A head the admin listener cannot read logs nothing of it (pingora's app would log it at
    // error level, with what the client sent).
    let head = b"GET /metrics HTTP/1.1\r\nHost: a\r\nX-Forged\x01Marker-7f3: v\r\n\r\n";
    let mut admin = tokio::net::TcpStream::connect(&p.admin).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut admin, head)
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut admin, &mut answer).await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = p.lines();
    // (Every line is one JSON object: the banner too.)
    let access: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v: &serde_json::Value| v["target"] == "access")
        .collect();
    assert_eq!(access.len(), requests, "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.contains("Marker-7f3")),
        "the admin client's bytes are in the log: {lines:?}"
    );
    let put = access
        .iter()
        .find(|v| v["operation"] == "PutObject")
        .unwrap();
    for field in [
        "request_id",
        "access_key",
        "tenant",
        "bucket",
        "key",
        "status",
        "code",
        "backend_status",
        "bytes_in",
        "bytes_out",
        "duration_ms",
    ] {
        assert!(put.get(field).is_some(), "{field} missing: {put}");
    }
    assert_eq!(put["access_key"], keys(USER, PASSWORD).0.as_str());
    let refused = access
        .iter()
        .find(|v| v["code"] == "SignatureDoesNotMatch")
        .unwrap();
    assert_eq!(refused["status"], 403);
    // A refusal names the scheme and key that were tried, the client, and why.
    assert_eq!(refused["auth"], "sigv4", "{refused}");
    assert_eq!(
        refused["claimed_access_key"],
        keys(USER, PASSWORD).0.as_str()
    );
    assert_eq!(refused["access_key"], "-", "unverified: {refused}");
    assert_eq!(refused["client"], "127.0.0.1", "{refused}");
    assert!(
        refused["cause"].as_str().is_some_and(|c| !c.is_empty()),
        "{refused}"
    );
    // The embedded backend's answers carry their cause too.
    let not_found = access.iter().find(|v| v["code"] == "NoSuchKey").unwrap();
    let cause = not_found["cause"].as_str().unwrap_or_default();
    assert!(
        cause.starts_with("backend answered 404 NoSuchKey"),
        "{not_found}"
    );
    let ad = access.iter().find(|v| v["auth"] == "ad").unwrap();
    assert_eq!(ad["claimed_access_key"], "lgreen@example.com", "{ad}");
    let (_, secret_key) = keys(USER, PASSWORD);
    for secret in [
        secret_key.as_str(),
        PASSWORD,
        &signature,
        BINDING_SECRET,
        ad_password,
    ] {
        assert!(
            !lines.iter().any(|l| l.contains(secret)),
            "a secret is in the log: {secret}"
        );
    }
}

/// A gateway process on the embedded backend, logging JSON.
fn start_process() -> Process {
    let dir = tempfile::tempdir().unwrap();
    let text = config(false, &dir.path().join("data"));
    Process::start(&text, dir, &[])
}

/// The text access log quotes and escapes every field a client controls, so a key holding
/// `" status=200 …` and a newline forges neither a field nor a line; at debug level a SigV4
/// mismatch logs its canonical request with the session token and the SSE-C key redacted.
/// Debug asked by `RUST_LOG` quiets the same libraries the configured level does: no
/// signature of the gateway's own requests to its embedded store (s3s logs each whole).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_cannot_be_forged_and_debug_holds_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(false, &dir.path().join("data")).replace(
        "log_level = \"info\"\nlog_format = \"json\"",
        "log_level = \"debug\"\nlog_format = \"text\"",
    );
    let p = Process::start(&text, dir, &[("RUST_LOG", "debug".to_string())]);
    let s3 = p.client(USER, PASSWORD);
    let bucket = new_bucket(&s3, "forged").await;
    let (ak, sk) = keys(USER, PASSWORD);
    let forged_key = "a%22%20status%3D200%20forged%3D1%0Aforged%20line%20status%3D200";
    let r = common::raw::send_signed(
        &p.s3,
        (&ak, &sk),
        "PUT",
        &format!("/{bucket}/{forged_key}"),
        b"v",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // A request signed with the wrong secret, carrying a session token and an SSE-C key.
    let token = "TOKEN-SECRET-VALUE-0123";
    let sse_key = "U1NFQy1TRUNSRVQtS0VZLTAxMjM0NTY3ODkwMTIzNDU=";
    let headers = V4::unsigned(&ak, "wrong-secret", &p.s3).sign(
        "GET",
        format!("/{bucket}/k?X-Amz-Security-Token={token}").as_bytes(),
        &[
            ("x-amz-security-token", token),
            ("x-amz-server-side-encryption-customer-key", sse_key),
        ],
    );
    let target = format!("/{bucket}/k?X-Amz-Security-Token={token}");
    let r = send(&p.s3, "GET", target.as_bytes(), &headers, vec![]).await;
    assert_eq!(r.status, 403, "{}", r.text());

    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = p.lines();
    let forged: Vec<&String> = lines.iter().filter(|l| l.contains("forged=1")).collect();
    assert_eq!(forged.len(), 1, "{forged:?}");
    assert!(
        forged[0].contains(r#"\" status=200 forged=1\nforged line"#),
        "{}",
        forged[0]
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.trim_start().starts_with("forged line")),
        "a forged line: {lines:?}"
    );
    let mismatch: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("SigV4 mismatch"))
        .collect();
    assert_eq!(mismatch.len(), 1, "the debug line is written: {lines:?}");
    assert!(mismatch[0].contains("REDACTED"), "{}", mismatch[0]);
    for secret in [token, sse_key, sk.as_str(), "Signature="] {
        assert!(
            !lines.iter().any(|l| l.contains(secret)),
            "{secret} is in the log"
        );
    }
}

/// Start-up failures name what failed: the setting and address of a listener that cannot be
/// bound, the path of an unusable data directory.
#[test]
fn start_up_errors_name_the_address_and_the_path() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let text = config(false, &data).replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\""),
        1,
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &text).unwrap();
    let run = |path: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hcp-s3-gateway"))
            .arg("--config")
            .arg(path)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = run(&path);
    assert!(
        stderr.contains(&format!("server.listen 127.0.0.1:{port}")),
        "{stderr}"
    );
    // A data directory that is a file: named with its path.
    let _ = std::fs::remove_dir_all(&data);
    std::fs::write(&data, b"not a directory").unwrap();
    let text = config(false, &data);
    std::fs::write(&path, &text).unwrap();
    let stderr = run(&path);
    assert!(stderr.contains(&data.display().to_string()), "{stderr}");
}

/// The ports scripts give test servers (radosgw, moto, a script's gateway) lie below the
/// kernel's ephemeral range, where no outgoing connection can take them first, and are free.
#[test]
fn test_servers_get_ports_below_the_ephemeral_range() {
    let out = std::process::Command::new("python3")
        .args(["scripts/free_port.py", "20"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let ephemeral: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let ports: Vec<u16> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(ports.len(), 20, "{ports:?}");
    let distinct: std::collections::HashSet<_> = ports.iter().collect();
    assert_eq!(distinct.len(), 20, "{ports:?}");
    for port in ports {
        assert!(
            (1024..ephemeral).contains(&port),
            "{port} (ephemeral from {ephemeral})"
        );
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
