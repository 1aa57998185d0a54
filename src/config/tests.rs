use super::*;
use crate::request::authenticate::Permission;
use std::path::Path;

/// A configuration's text as the tests give it, served under a domain unless it says otherwise
/// (without a domain or a default tenant no request names a tenant: see
/// `a_tenant_no_host_can_name_is_refused`).
fn parse(text: &str, base: &Path) -> Result<Config, Vec<String>> {
    if text.contains("[addressing]") {
        Config::parse(text, base)
    } else {
        // (After the text: the lines the tests name stay where they are.)
        Config::parse(
            &format!("{text}\n[addressing]\ndomains = [\"hcp.test\"]\n"),
            base,
        )
    }
}

#[test]
fn hcp_convention_matches_documented_examples() {
    assert_eq!(hcp_access_key("lgreen"), "bGdyZWVu");
    assert_eq!(hcp_access_key(DEMO_USERNAME), "ZGVtby11c2Vy");
    assert_eq!(
        hcp_secret_key(DEMO_PASSWORD),
        "4b4d9529148d8d9440d7e20c78287f69"
    );
}

#[test]
fn unknown_keys_are_rejected() {
    let err = parse(
        "[server]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n",
        Path::new("."),
    )
    .unwrap_err();
    assert!(err[0].contains("unknown field `bogus`"), "{err:?}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
        [server]
        listen = "nowhere"
        host_id = "two\nlines"
        max_held_bytes = 1048576
        [addressing]
        default_tenant = "ghost"
        [[users]]
        username = "u"
        [[tenants]]
        name = "t"
        backend = "missing"

        [[backends]]
        name = "b"
        kind = "s3"
        [[backends]]
        name = "chain"
        kind = "s3"
        endpoint = "https://s3.eu-west-1.amazonaws.com"
        credentials = "aws"
        access_key = "AKIA"
        [[backends]]
        name = "not-obs"
        kind = "s3"
        endpoint = "http://127.0.0.1:9000"
        access_key = "a"
        secret_key = "s"
        signing = "obs"
        [[backends]]
        name = "long-keys"
        kind = "s3"
        endpoint = "http://127.0.0.1:9000"
        access_key = "a"
        secret_key = "s"
        max_key_bytes = 4096
        [[backends]]
        name = "embedded-long-keys"
        kind = "local"
        max_key_bytes = 2048
        engine = "s3s-fs"
        conditional_writes = true
        [[backends]]
        name = "store-too-long"
        kind = "local"
        max_key_bytes = 4096
        [[backends]]
        name = "credentials-in-host"
        kind = "s3"
        endpoint = "http://user:secret@127.0.0.1:9000"
        access_key = "a"
        secret_key = "s"
    "#;
    let errors = parse(text, Path::new(".")).unwrap_err();
    let all = errors.join("\n");
    for needle in [
        "server.listen",
        "server.host_id: no control characters",
        "server.max_held_bytes (1048576) must be 0 or at least what one request may hold, 67108864",
        "ghost",
        "users[0]",
        "backend \"missing\"",
        "endpoint is required",
        "access_key is required",
        "credentials = \"aws\" takes no access_key",
        "signing = \"obs\" is for backends of kind \"obs\"",
        "backends.long-keys: max_key_bytes must be from 1 to 4095",
        "backends.embedded-long-keys: max_key_bytes must be from 1 to 1024",
        "backends.embedded-long-keys: s3s-fs does not honour conditional_writes",
        "backends.store-too-long: max_key_bytes must be from 1 to 4095",
        "backends.credentials-in-host: endpoint \"http://…@127.0.0.1:9000\" has an invalid host",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert!(
        !all.contains("secret@"),
        "an endpoint's user info is not shown:\n{all}"
    );
}

/// s3s-fs keeps no Object Lock: a namespace keeping retention on it is refused, named.
#[test]
fn retention_is_not_kept_on_s3s_fs() {
    let text = |engine: &str, retention: &str| {
        format!(
            r#"
            [[tenants]]
            name = "t"
            backend = "local"
            retention = "{retention}"
            [[backends]]
            name = "local"
            kind = "local"
            engine = "{engine}"
            "#
        )
    };
    let errors = parse(&text("s3s-fs", "enterprise"), Path::new(".")).unwrap_err();
    let needle = "tenants.t: retention needs S3 Object Lock, which s3s-fs does not keep";
    assert!(errors.iter().any(|e| e.contains(needle)), "{errors:?}");
    for (engine, retention) in [("s3s-fs", "off"), ("store", "enterprise")] {
        let parsed = parse(&text(engine, retention), Path::new("."));
        assert!(parsed.is_ok(), "{engine} {retention}: {:?}", parsed.err());
    }
}

/// What only a remote backend reads, given to a local one, is a problem: taken without a word,
/// it would look in force.
#[test]
fn a_local_backend_takes_no_remote_settings() {
    for setting in [
        "credentials = \"aws\"",
        "ca_file = \"ca.pem\"",
        "security_token = \"t\"",
        "addressing = \"virtual\"",
    ] {
        let text = format!("[[backends]]\nname = \"l\"\nkind = \"local\"\n{setting}\n");
        let errors = parse(&text, Path::new(".")).unwrap_err();
        let needle = "backends.l: a local backend takes data_dir only, not endpoint, keys, credentials, ca_file or virtual-host addressing";
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "{setting}: {errors:?}"
        );
    }
}

#[test]
fn secrets_come_from_value_file_or_env() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sk"), "from-file\n").unwrap();
    std::env::set_var("HCP_GW_TEST_SECRET", "from-env");
    let text = r#"
        [[users]]
        access_key = "a1"
        secret_key = "inline"
        [[users]]
        access_key = "a2"
        secret_key = { file = "sk" }
        [[users]]
        access_key = "a3"
        secret_key = { env = "HCP_GW_TEST_SECRET" }
        [[users]]
        username = "demo-user"
        password = { value = "demo-password" }
        [[tenants]]
        name = "t"
        backend = "l"
        [[backends]]
        name = "l"
        kind = "local"
    "#;
    let cfg = parse(text, dir.path()).unwrap();
    assert_eq!(cfg.users.get("a1").unwrap().secret.expose(), "inline");
    assert_eq!(cfg.users.get("a2").unwrap().secret.expose(), "from-file");
    assert_eq!(cfg.users.get("a3").unwrap().secret.expose(), "from-env");
    assert!(cfg.serves_demo_user);
    // A secret pasted where a backend names how its credentials are found is not repeated.
    let pasted = "[[tenants]]\nname = \"t\"\nbackend = \"b\"\n[[backends]]\nname = \"b\"\nkind = \"s3\"\nendpoint = \"http://h:9000\"\ncredentials = \"wJalrXUtnFEMIsecret\"\n";
    let err = parse(pasted, dir.path()).unwrap_err().join("\n");
    assert!(err.contains("credentials"), "{err}");
    assert!(err.contains("expected"), "{err}");
    assert!(!err.contains("wJalr"), "{err}");
}

#[test]
fn an_empty_password_is_refused_however_it_is_given() {
    // Its secret key would be the MD5 of "", which anyone can sign with.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "\n").unwrap();
    std::env::set_var("HCP_GW_TEST_EMPTY_PASSWORD", "");
    let text = r#"
        [[users]]
        username = "u0"
        password = ""
        [[users]]
        username = "u1"
        password = { file = "pw" }
        [[users]]
        username = "u2"
        password = { env = "HCP_GW_TEST_EMPTY_PASSWORD" }
        [[users]]
        username = "u3"
        password = { value = "" }
        [[users]]
        username = "u4"
        password = "p4ssword"
        [[tenants]]
        name = "t"
        backend = "l"
        [[backends]]
        name = "l"
        kind = "local"
    "#;
    let err = parse(text, dir.path()).unwrap_err();
    for i in 0..4 {
        let expected = format!("users[{i}].password must not be empty");
        assert!(err.contains(&expected), "{err:?}");
    }
    assert_eq!(err.len(), 4, "{err:?}");
}

#[test]
fn users_come_from_a_file_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.toml"),
        "[[users]]\nusername = \"from-file\"\npassword = \"pw\"\npermissions = [{ buckets = \"logs-*\", allow = [\"read\"] }]\n",
    )
    .unwrap();
    let text = "[auth]\nusers_file = \"users.toml\"\n[[tenants]]\nname = \"t\"\nbackend = \"l\"\n[[backends]]\nname = \"l\"\nkind = \"local\"\n";
    let cfg = parse(text, dir.path()).unwrap();
    let user = cfg.users.get(&hcp_access_key("from-file")).unwrap();
    assert!(user.grants[0].allows("t", Some("logs-1"), Permission::Read));
    assert!(!user.grants[0].allows("t", Some("data"), Permission::Read));
    std::fs::write(dir.path().join("users.toml"), "[[users]]\nbogus = 1\n").unwrap();
    let err = parse(text, dir.path()).unwrap_err();
    assert!(
        err[0].contains("auth.users_file") && err[0].contains("bogus"),
        "{err:?}"
    );
    // A password of the wrong shape, or a line that does not parse, is named, not shown.
    for users in [
        "[[users]]\nusername = \"u\"\npassword = 5551234987\n",
        "[[users]]\nusername = \"u\"\npassword = \"5551234987\n",
    ] {
        std::fs::write(dir.path().join("users.toml"), users).unwrap();
        let err = parse(text, dir.path()).unwrap_err().join("\n");
        assert!(err.contains("line 3"), "{err}");
        assert!(!err.contains("5551234987"), "{err}");
    }
}

#[test]
fn endpoints_parse() {
    // An unspecified address names no backend (Linux would connect to this host).
    for unspecified in ["http://0.0.0.0:9000", "http://[::]:9000"] {
        let e = Endpoint::parse(unspecified).unwrap_err();
        assert!(e.contains("names no host"), "{e}");
    }
    assert_eq!(
        Endpoint::parse("http://127.0.0.1:7480").unwrap(),
        Endpoint {
            tls: false,
            host: "127.0.0.1".into(),
            port: 7480
        }
    );
    assert_eq!(
        Endpoint::parse("https://s3.eu-west-1.amazonaws.com/")
            .unwrap()
            .port,
        443
    );
    assert!(Endpoint::parse("s3.amazonaws.com").is_err());
    assert!(Endpoint::parse("http://h/path").is_err());
    // Hosts as DNS, IPv6 literals and container names give them.
    for (ok, host, port) in [
        ("http://my_minio-1.svc:9000", "my_minio-1.svc", 9000),
        ("http://[::1]:7480", "[::1]", 7480),
        ("https://[fe80::1]", "[fe80::1]", 443),
        ("http://minio", "minio", 80),
    ] {
        let e = Endpoint::parse(ok).expect(ok);
        assert_eq!((e.host.as_str(), e.port), (host, port), "{ok}");
        // (Looked up and named to TLS without an IPv6 literal's brackets.)
        assert_eq!(
            e.address(),
            host.trim_start_matches('[').trim_end_matches(']')
        );
    }
    for bad_port in [
        "http://h:",
        "http://h:x",
        "http://[::1]x",
        "http://[::1]:99999",
    ] {
        assert!(Endpoint::parse(bad_port).is_err(), "{bad_port}");
    }
    // Anything else is no host: it would be sent as one in every request's `Host`.
    for bad in [
        "http://user:secret@minio:9000",
        "http://a b:80",
        "http://h\u{1}:80",
        "http://h\u{e9}:80",
        "http://h?x:80",
        "http://:80",
        "http://h\"x",
        "http://[::1",
        "http://user:secret@h:x",
    ] {
        let err = Endpoint::parse(bad).expect_err(bad);
        assert!(!err.contains("secret"), "{err}");
        assert!(
            err.contains("invalid host") || err.contains("port"),
            "{bad}: {err}"
        );
    }
    // (User info is hidden whatever else is wrong: a scheme forgotten or misspelt.)
    for bad in [
        "user:secret@h:9000",
        "http:/user:secret@h",
        "https//user:secret@h",
    ] {
        let err = Endpoint::parse(bad).expect_err(bad);
        assert!(!err.contains("secret"), "{err}");
    }
}

#[test]
fn structural_and_semantic_problems_are_reported_in_one_run() {
    let text = r#"
        [server]
        listen = "nowhere"
        threads = "many"
        [[backends]]
        name = "b"
        kind = "s3"
        endpont = "http://127.0.0.1:9000"
    "#;
    let errors = parse(text, Path::new(".")).unwrap_err();
    let all = errors.join("\n");
    for needle in [
        "line 4: server.threads: invalid type",
        "line 8: backends[0].endpont: unknown field `endpont`",
        "server.listen",
        "backends.b: endpoint is required",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
}

#[test]
fn the_embedded_store_needs_a_usable_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let config = |data_dir: &Path| {
        format!(
            "[[backends]]\nname = \"l\"\nkind = \"local\"\ndata_dir = {:?}\n",
            data_dir.display().to_string()
        )
    };
    for (data_dir, expected) in [
        (file.clone(), "is not a directory"),
        (file.join("sub"), "cannot be created"),
    ] {
        let errors = parse(&config(&data_dir), Path::new(".")).unwrap_err();
        let all = errors.join("\n");
        assert!(
            all.contains(&data_dir.display().to_string()) && all.contains(expected),
            "{data_dir:?}: {all}"
        );
    }
    // A directory that does not exist yet is created at start.
    let fresh = dir.path().join("new").join("data");
    let errors = parse(&config(&fresh), Path::new(".")).unwrap_err();
    assert!(!errors.iter().any(|e| e.contains("data_dir")), "{errors:?}");
}

/// A backend's key limit: HCP's 4,095 bytes on the embedded store (it takes long keys in a
/// header), 1,024 on s3s-fs and on remote backends unless said.
#[test]
fn key_limits_are_the_backends_own() {
    let text = |engine: &str| {
        format!(
            r#"
            [[tenants]]
            name = "t"
            backend = "local"
            [[backends]]
            name = "local"
            kind = "local"
            engine = "{engine}"
            [[backends]]
            name = "rgw"
            kind = "s3"
            endpoint = "http://127.0.0.1:9000"
            access_key = "a"
            secret_key = "s"
            [[backends]]
            name = "wide"
            kind = "s3"
            endpoint = "http://127.0.0.1:9000"
            access_key = "a"
            secret_key = "s"
            max_key_bytes = 4095
            "#
        )
    };
    for (engine, local) in [("store", (4095, true)), ("s3s-fs", (1024, false))] {
        let config = parse(&text(engine), Path::new(".")).unwrap();
        let limit = |name: &str| {
            let b = &config.backends[name];
            (b.max_key_bytes, b.long_keys_in_header())
        };
        assert_eq!(limit("local"), local, "{engine}");
        assert_eq!(limit("rgw"), (1024, false));
        assert_eq!(limit("wide"), (4095, false));
    }
}

/// OBS's WORM keeps compliance retention only: a tenant emulating HCP's enterprise mode on it
/// is a configuration error, not a run of refused requests.
#[test]
fn enterprise_retention_needs_governance() {
    let text = |mode: &str| {
        format!(
            r#"
            [[tenants]]
            name = "t"
            backend = "obs"
            retention = "{mode}"
            [[backends]]
            name = "obs"
            kind = "obs"
            endpoint = "https://obs.example.com"
            access_key = "a"
            secret_key = "s"
            "#
        )
    };
    let errors = parse(&text("enterprise"), Path::new(".")).unwrap_err();
    assert!(
        errors.iter().any(|e| e.contains("OBS's WORM")),
        "{errors:?}"
    );
    assert!(parse(&text("compliance"), Path::new(".")).is_ok());
}

/// A backend whose secret cannot be read still has its other settings judged, and so do its
/// tenants' rules that depend on it, in the same run — and no upload binding is said to be
/// missing for the backend list its problem shortened.
#[test]
fn a_backend_s_problems_are_all_reported_with_its_tenants() {
    let text = r#"
        [[tenants]]
        name = "t"
        backend = "b"
        retention = "enterprise"
        [[backends]]
        name = "b"
        kind = "obs"
        endpoint = "https://obs.example.com"
        access_key = "a"
        secret_key = { file = "/nonexistent/secret" }
        dialect = "ceph"
        max_retries = 50
        connect_timeout_ms = 0
    "#;
    let errors = parse(text, Path::new(".")).unwrap_err();
    for problem in [
        "/nonexistent/secret",
        "max_retries",
        "dialect",
        "timeouts",
        "OBS's WORM",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(problem)),
            "{problem}: {errors:?}"
        );
    }
    assert!(
        !errors.iter().any(|e| e.contains("upload_binding_secret")),
        "{errors:?}"
    );
}

/// Tenant `t` (prefix `t-`, `retention`, `setting` = `bucket`) and `u` (prefix `other_prefix`)
/// on one S3 backend, and `o` (compliance, `setting` = `obs_bucket`) on OBS.
fn gateway_bucket_text(
    setting: &str,
    (retention, bucket, other_prefix): (&str, &str, &str),
    obs_bucket: &str,
) -> String {
    format!(
        r#"
        [[tenants]]
        name = "t"
        backend = "s3"
        bucket_prefix = "t-"
        retention = "{retention}"
        {setting} = "{bucket}"
        [[tenants]]
        name = "u"
        backend = "s3"
        bucket_prefix = "{other_prefix}"
        [[tenants]]
        name = "o"
        backend = "obs"
        retention = "compliance"
        {setting} = "{obs_bucket}"
        [[backends]]
        name = "s3"
        kind = "s3"
        endpoint = "http://127.0.0.1:9000"
        access_key = "a"
        secret_key = "s"
        [[backends]]
        name = "obs"
        kind = "obs"
        endpoint = "https://obs.example.com"
        access_key = "a"
        secret_key = "s"
        "#
    )
}

/// A labeled-holds bucket: only where retention is kept, a bucket name, no legal holds on OBS,
/// and out of every other tenant's reach on the same storage — all reported at once.
#[test]
fn labeled_holds_bucket_rules() {
    let text = |retention: &str, bucket: &str, other_prefix: &str| {
        gateway_bucket_text(
            "labeled_holds_bucket",
            (retention, bucket, other_prefix),
            "o-labels",
        )
    };
    let errors = parse(&text("off", "u-Labels", "u-"), Path::new(".")).unwrap_err();
    for expected in [
        "tenants.t: labeled_holds_bucket needs retention",
        "tenants.t: labeled_holds_bucket \"u-Labels\" is not a bucket name",
        "tenants.o: labeled_holds_bucket needs legal holds",
        "tenants.t: labeled_holds_bucket \"u-Labels\" is within tenants.u's bucket_prefix",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{expected}: {errors:?}"
        );
    }
    let errors = parse(&text("enterprise", "t-labels", "u-"), Path::new(".")).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("within the tenant's own bucket_prefix")),
        "{errors:?}"
    );
    let errors = parse(&text("enterprise", "gw-labels", "u-"), Path::new(".")).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("tenants.o"), "{errors:?}");
}

/// A records bucket: a bucket name out of every tenant's bucket names (its own included) and
/// of the backend's API paths; it keeps labeled holds too where the tenant keeps retention and
/// names no bucket of their own (not on OBS, which keeps no legal holds).
#[test]
fn records_bucket_rules() {
    let text = |retention: &str, bucket: &str, other_prefix: &str| {
        gateway_bucket_text(
            "records_bucket",
            (retention, bucket, other_prefix),
            "o.records",
        )
    };
    let errors = parse(&text("off", "u-Records", "u-"), Path::new(".")).unwrap_err();
    for expected in [
        "tenants.t: records_bucket \"u-Records\" is not a bucket name",
        "tenants.t: records_bucket \"u-Records\" is within tenants.u's bucket_prefix",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{expected}: {errors:?}"
        );
    }
    let errors = parse(&text("off", "t-records", "u-"), Path::new(".")).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("within the tenant's own bucket_prefix"),
        "{errors:?}"
    );
    let cfg = parse(&text("enterprise", "gw.records", "u-"), Path::new(".")).unwrap();
    let (t, o) = (&cfg.tenants["t"], &cfg.tenants["o"]);
    assert_eq!(t.records_bucket.as_deref(), Some("gw.records"));
    assert_eq!(t.retention.labels_bucket.as_deref(), Some("gw.records"));
    assert_eq!(o.records_bucket.as_deref(), Some("o.records"));
    assert_eq!(o.retention.labels_bucket, None);
    let cfg = parse(&text("off", "gw.records", "u-"), Path::new(".")).unwrap();
    assert_eq!(cfg.tenants["t"].retention.labels_bucket, None);
    assert!(!cfg.tenants["t"].anonymous_acls.on());
    // ACLs admit anonymous callers only where the gateway judges ACLs: with records.
    let with_acls = text("off", "gw.records", "u-").replacen(
        "bucket_prefix = \"t-\"",
        "bucket_prefix = \"t-\"\n        anonymous_acls = true",
        1,
    );
    let cfg = parse(&with_acls, Path::new(".")).unwrap();
    assert!(cfg.tenants["t"].anonymous_acls.on());
    let without = with_acls.replacen("records_bucket = \"gw.records\"", "", 1);
    let errors = parse(&without, Path::new(".")).unwrap_err();
    assert_eq!(
        errors,
        ["tenants.t: anonymous_acls needs records_bucket (where the gateway judges ACLs)"]
    );
}

/// Without `auth.upload_binding_secret` the key that binds upload ids is derived only from what
/// outsiders cannot know: a local backend's key file (made when the gateway starts — never by a
/// check of the configuration —, mode 0600, the same on every start, a new one when removed:
/// not a function of the path), a static backend's secret key; a configuration whose backends
/// have neither must configure one.
#[test]
fn the_derived_binding_secret_is_made_of_secrets_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let local = "[[tenants]]\nname = \"t\"\nbackend = \"l\"\n[[backends]]\nname = \"l\"\nkind = \"local\"\ndata_dir = \"d\"\n";
    let key_file = dir.path().join("d").join(binding::LOCAL_BINDING_KEY);
    let checked = parse(local, dir.path()).unwrap();
    assert!(
        !key_file.exists(),
        "a check of the configuration makes no key"
    );
    let secret = |text: &str| {
        let cfg = parse(text, dir.path()).unwrap();
        cfg.upload_binding.secret().unwrap().expose().to_string()
    };
    let first = checked
        .upload_binding
        .secret()
        .unwrap()
        .expose()
        .to_string();
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(secret(local), first, "the same key on every start");
    // No draft is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path().join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        [std::ffi::OsString::from(binding::LOCAL_BINDING_KEY)]
    );
    std::fs::remove_file(&key_file).unwrap();
    assert_ne!(secret(local), first, "a new key, not one the path gives");

    let remote = |keys: &str| {
        format!(
            "[[tenants]]\nname = \"t\"\nbackend = \"r\"\n[[backends]]\nname = \"r\"\nkind = \"s3\"\n\
             endpoint = \"https://s3.eu-west-1.amazonaws.com\"\nregion = \"eu-west-1\"\n{keys}"
        )
    };
    let with_keys = |secret_key: &str| {
        remote(&format!(
            "access_key = \"a\"\nsecret_key = \"{secret_key}\"\n"
        ))
    };
    assert_ne!(
        secret(&with_keys("one secret")),
        secret(&with_keys("another"))
    );
    let chain = remote("credentials = \"aws\"\n");
    let err = parse(&chain, dir.path()).unwrap_err();
    assert!(
        err.iter()
            .any(|e| e.contains("auth.upload_binding_secret: required")),
        "{err:?}"
    );
    let configured = format!("[auth]\nupload_binding_secret = \"sixteen or more chars\"\n{chain}");
    assert_eq!(secret(&configured), "sixteen or more chars");
}

#[test]
fn a_tenant_no_host_can_name_is_refused() {
    let tenant = "[[tenants]]\nname = \"t\"\nbackend = \"l\"\n[[backends]]\nname = \"l\"\nkind = \"local\"\n";
    let dir = tempfile::tempdir().unwrap();
    let err = Config::parse(tenant, dir.path()).unwrap_err();
    assert!(
        err.iter()
            .any(|e| e.contains("addressing: give domains or a default_tenant")),
        "{err:?}"
    );
    for addressing in ["domains = [\"hcp.test\"]", "default_tenant = \"t\""] {
        let text = format!("[addressing]\n{addressing}\n{tenant}");
        assert!(Config::parse(&text, dir.path()).is_ok(), "{addressing}");
    }
}

/// Problems found by different steps of validation are reported in one run, and a problem is
/// reported once: a backend with errors of its own is not "not defined" for its tenants too.
#[test]
fn later_problems_are_reported_with_the_rest_and_once() {
    let text = r#"
        [server]
        listen = "nowhere"
        [[tenants]]
        name = "t"
        backend = "chain"
        [[tenants]]
        name = "u"
        backend = "broken"
        [[users]]
        username = "u"
        password = "p"
        permissions = [{ buckets = "*", allow = ["everything"] }]
        [[backends]]
        name = "chain"
        kind = "s3"
        endpoint = "https://s3.eu-west-1.amazonaws.com"
        region = "eu-west-1"
        credentials = "aws"
        max_retries = 11
        [[backends]]
        name = "broken"
        kind = "s3"
    "#;
    let errors = parse(text, Path::new(".")).unwrap_err();
    let all = errors.join("\n");
    for needle in [
        "server.listen",
        "auth.upload_binding_secret: required",
        "backends.chain: max_retries must be at most 10",
        "backends.broken: endpoint is required",
        "purge, privileged",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert!(!all.contains("not defined"), "{all}");
}

/// A CreateBucket asks an Object Ownership that keeps ACLs enabled, by default on AWS alone;
/// one that disables them is refused by the check.
#[test]
fn object_ownership_keeps_acls_enabled() {
    let config = |dialect: &str, setting: &str| {
        format!(
            "[[tenants]]\nname = \"t\"\nbackend = \"b\"\n[[backends]]\nname = \"b\"\nkind = \"s3\"\nendpoint = \"http://h:9000\"\naccess_key = \"a\"\nsecret_key = \"s\"\ndialect = \"{dialect}\"\n{setting}\n"
        )
    };
    let asked = |dialect: &str, setting: &str| {
        let cfg = parse(&config(dialect, setting), Path::new(".")).unwrap();
        cfg.backends.values().next().unwrap().object_ownership
    };
    assert_eq!(asked("aws", ""), Some("ObjectWriter"));
    assert_eq!(asked("ceph", ""), None);
    assert_eq!(asked("aws", "object_ownership = \"\""), None);
    let preferred = "object_ownership = \"BucketOwnerPreferred\"";
    assert_eq!(asked("minio", preferred), Some("BucketOwnerPreferred"));
    let enforced = config("aws", "object_ownership = \"BucketOwnerEnforced\"");
    let err = parse(&enforced, Path::new(".")).unwrap_err().join("\n");
    assert!(
        err.contains("object_ownership \"BucketOwnerEnforced\" is not"),
        "{err}"
    );
}

/// Listeners that would meet on one port are refused by the check, not by the start.
#[test]
fn the_listeners_take_ports_apart() {
    let config = |listen: &str, admin: &str| {
        format!(
            "[server]\nlisten = \"{listen}\"\nadmin_listen = \"{admin}\"\n[[tenants]]\nname = \"t\"\nbackend = \"l\"\n[[backends]]\nname = \"l\"\nkind = \"local\"\n"
        )
    };
    for (listen, admin) in [
        ("0.0.0.0:8080", "0.0.0.0:8080"),
        ("0.0.0.0:8080", "127.0.0.1:8080"),
        ("127.0.0.1:8080", "[::]:8080"),
        ("[::]:8080", "[::1]:8080"),
        ("[::ffff:127.0.0.1]:8080", "127.0.0.1:8080"),
    ] {
        let err = parse(&config(listen, admin), Path::new(".")).unwrap_err();
        assert!(
            err.join("\n").contains("take the same port"),
            "{listen} {admin}: {err:?}"
        );
    }
    for (listen, admin) in [
        ("127.0.0.1:0", "127.0.0.1:0"),
        ("127.0.0.1:8080", "127.0.0.2:8080"),
        ("0.0.0.0:8080", "0.0.0.0:8081"),
        ("0.0.0.0:8080", "[::1]:8080"),
    ] {
        assert!(
            parse(&config(listen, admin), Path::new(".")).is_ok(),
            "{listen} {admin}"
        );
    }
}

/// A tenant's CORS configuration is read as a bucket's is: its rules kept, a document HCP would
/// refuse reported with the rest.
#[test]
fn a_tenant_s_cors_rules_are_read_as_a_bucket_s() {
    let with = |cors: &str| {
        let text = format!(
            "[[tenants]]\nname = \"t\"\nbackend = \"l\"\ncors = '''{cors}'''\n\
             [[backends]]\nname = \"l\"\nkind = \"local\"\n"
        );
        parse(&text, Path::new("."))
    };
    let good = "<CORSConfiguration>\n <CORSRule><AllowedOrigin>https://a.example</AllowedOrigin>\
                <AllowedMethod>GET</AllowedMethod></CORSRule>\n</CORSConfiguration>\n";
    let rules = with(good).unwrap().tenants["t"].cors.clone().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].origins, ["https://a.example"]);
    for bad in [
        "<CORSConfiguration></CORSConfiguration>",
        "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH\
         </AllowedMethod></CORSRule></CORSConfiguration>",
        "not xml",
    ] {
        let errors = with(bad).unwrap_err().join("\n");
        assert!(
            errors.contains("tenants.t: cors is no CORS configuration"),
            "{errors}"
        );
    }
}

/// A configuration of one tenant on one S3 backend with static keys (what reloads change).
const ONE_S3_BACKEND: &str = r#"
        [addressing]
        default_tenant = "t"
        [[users]]
        username = "u"
        password = "p"
        [[tenants]]
        name = "t"
        backend = "s3"
        anonymous = [{ buckets = "public-*", access = "read" }]
        [[backends]]
        name = "s3"
        kind = "s3"
        endpoint = "http://127.0.0.1:9000"
        access_key = "a"
        secret_key = "first secret"
"#;

/// A reload names each changed setting that waits for a restart, and none of what it puts in
/// place itself (users, their permissions, anonymous grants, a backend's static keys); the
/// upload binding derived from a rotated secret is named, the secret never shown.
#[test]
fn a_reload_names_what_waits_for_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let text = &format!("[server]\nlisten = \"127.0.0.1:8080\"\n{ONE_S3_BACKEND}");
    let running = Config::parse(text, dir.path()).unwrap();
    let changed = |from: &str, to: &str| {
        assert!(text.contains(from), "{from}");
        let new = Config::parse(&text.replace(from, to), dir.path()).unwrap();
        reload::restart_needed(&running, &new)
    };
    assert!(changed("", "").is_empty());
    assert!(changed("password = \"p\"", "password = \"q\"").is_empty());
    assert!(changed("access = \"read\"", "access = \"read-write\"").is_empty());
    assert_eq!(changed(":8080", ":8082"), ["[server]"]);
    assert_eq!(
        changed(
            "default_tenant = \"t\"",
            "domains = [\"hcp.test\"]\ndefault_tenant = \"t\""
        ),
        ["[addressing]"]
    );
    assert_eq!(
        changed("backend = \"s3\"", "backend = \"s3\"\nfolders = true"),
        ["[[tenants]]"]
    );
    assert_eq!(changed(":9000", ":9001"), ["[[backends]]"]);
    let cors = "backend = \"s3\"\ncors = \"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>\"";
    assert_eq!(changed("backend = \"s3\"", cors), ["[[tenants]]"]);
    // (The keys a reload puts in place; the upload binding derived from them waits.)
    let rotated = changed("first secret", "second secret");
    assert_eq!(rotated, ["auth.upload_binding_secret"]);
    let shown = format!("{rotated:?}");
    assert!(
        !shown.contains("first") && !shown.contains("second"),
        "{shown}"
    );
    assert!(changed("access_key = \"a\"", "access_key = \"b\"").is_empty());
}

/// A reload gives a backend the static keys it finds rotated only where nothing else of the
/// backend changed (keys that come with a new endpoint are the endpoint's), and never to a
/// backend that takes its credentials from the AWS chain.
#[test]
fn a_reload_rotates_keys_where_nothing_else_changed() {
    let dir = tempfile::tempdir().unwrap();
    let text = &format!("[auth]\nupload_binding_secret = \"sixteen characters\"\n{ONE_S3_BACKEND}");
    let running = Config::parse(text, dir.path()).unwrap();
    let keyed = |from: &str, to: &str| {
        assert!(text.contains(from), "{from}");
        let new = Config::parse(&text.replace(from, to), dir.path()).unwrap();
        let names: Vec<String> = reload::rotated_keys(&running, &new)
            .into_iter()
            .map(|(name, keys)| match keys {
                RemoteKeys::Static {
                    access_key,
                    secret_key,
                    ..
                } => format!("{name} {access_key} {}", secret_key.expose()),
                RemoteKeys::AwsChain => format!("{name} chain"),
            })
            .collect();
        names
    };
    assert_eq!(
        keyed("first secret", "second secret"),
        ["s3 a second secret"]
    );
    let moved = "endpoint = \"http://127.0.0.1:9001\"\n        access_key = \"b\"";
    assert!(keyed(
        "endpoint = \"http://127.0.0.1:9000\"\n        access_key = \"a\"",
        moved
    )
    .is_empty());
    let chain = "credentials = \"aws\"";
    assert!(keyed(
        "access_key = \"a\"\n        secret_key = \"first secret\"",
        chain
    )
    .is_empty());
}

/// A backend's `ca_file` is a file a reload watches, compared by its contents: a CA replaced in
/// place (the backend's certificate re-issued) waits for a restart, named — not a reload that
/// counts as done while every TLS connection to the backend fails.
#[test]
fn a_changed_ca_file_waits_for_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let issue = |name: &str| {
        let issued = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        std::fs::write(&ca, issued.cert.pem()).unwrap();
    };
    issue("first.test");
    let text = r#"
        [addressing]
        default_tenant = "t"
        [[users]]
        username = "u"
        password = "p"
        [[tenants]]
        name = "t"
        backend = "s3"
        [[backends]]
        name = "s3"
        kind = "s3"
        endpoint = "https://127.0.0.1:9443"
        ca_file = "ca.pem"
        access_key = "a"
        secret_key = "s"
    "#;
    let running = Config::parse(text, dir.path()).unwrap();
    assert!(running.files_read.contains(&ca), "{:?}", running.files_read);
    let again = Config::parse(text, dir.path()).unwrap();
    assert!(reload::restart_needed(&running, &again).is_empty());
    issue("second.test");
    let new = Config::parse(text, dir.path()).unwrap();
    assert_eq!(reload::restart_needed(&running, &new), ["[[backends]]"]);
}

/// A reload that adds a tenant (which waits for a restart) leaves users' home tenants as the
/// tenants served make them: a user whose home is "the only tenant configured" keeps it.
#[test]
fn a_reload_keeps_home_tenants_of_the_tenants_served() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
        [addressing]
        domains = ["hcp.test"]
        [[users]]
        username = "u"
        password = "p"
        permissions = [{ tenant = "*", buckets = "*", allow = ["read"] }]
        [[tenants]]
        name = "t"
        backend = "s3"
        bucket_prefix = "t-"
        [[backends]]
        name = "s3"
        kind = "s3"
        endpoint = "http://127.0.0.1:9000"
        access_key = "a"
        secret_key = "s"
    "#;
    let running = Config::parse(text, dir.path()).unwrap();
    let home = |users: &crate::request::authenticate::UserStore| {
        users.iter().next().unwrap().home_tenant.clone()
    };
    assert_eq!(home(&running.users).as_deref(), Some("t"));
    let added = "[[tenants]]\nname = \"v\"\nbackend = \"s3\"\nbucket_prefix = \"v-\"\n[[tenants]]";
    let new = Config::parse(&text.replacen("[[tenants]]", added, 1), dir.path()).unwrap();
    assert_eq!(new.tenants.len(), 2);
    assert_eq!(home(&new.users), None, "two tenants: no only one");
    let reloaded = new.users_served_by(&running.tenants);
    assert_eq!(home(&reloaded).as_deref(), Some("t"));
}

/// `max_held_bytes` may be 0 (no limit) or as large as one request may hold, never less: a
/// request that could never fit would be refused on an idle gateway.
#[test]
fn the_held_bytes_budget_fits_one_request() {
    let with = |settings: &str, limits: &str| {
        let text = format!(
            "[server]\n{settings}\n[limits]\n{limits}\n[[backends]]\nname = \"b\"\nkind = \"s3\"\n\
             endpoint = \"http://127.0.0.1:9000\"\naccess_key = \"a\"\nsecret_key = \"s\"\n\
             [[tenants]]\nname = \"t\"\nbackend = \"b\"\n"
        );
        parse(&text, Path::new(".")).map(|c| c.max_held_bytes)
    };
    assert_eq!(with("", ""), Ok(64 << 20));
    assert_eq!(with("max_held_bytes = 0", ""), Ok(0));
    let small = "max_buffered_response_bytes = 65536\nmax_chunk_bytes = 65536";
    let limits = "max_control_body_bytes = 65536\nmax_post_object_bytes = 32768";
    assert_eq!(
        with(&format!("{small}\nmax_held_bytes = 262144"), limits),
        Ok(262144)
    );
    let errors = with(&format!("{small}\nmax_held_bytes = 262143"), limits).unwrap_err();
    assert!(errors
        .join("")
        .contains("at least what one request may hold, 262144"));
    for (settings, limits) in [
        ("max_chunk_bytes = 33554433", ""),
        (
            "max_chunk_bytes = 16777216",
            "max_control_body_bytes = 50331649",
        ),
        ("max_buffered_response_bytes = 70000000", ""),
        ("", "max_post_object_bytes = 33554433"),
        ("", "max_control_body_bytes = 67108865"),
    ] {
        let errors = with(settings, limits).unwrap_err().join("\n");
        assert!(
            errors.contains("server.max_held_bytes (67108864) must be 0 or at least"),
            "{settings} {limits}: {errors}"
        );
    }
}
