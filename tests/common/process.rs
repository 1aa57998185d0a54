//! The gateway binary in a process of its own, for what only a process shows: signals, its
//! environment (the AWS credential chain), its whole output.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{keys, sdk_client};

/// A gateway process and everything it printed.
pub struct Process {
    pub child: Child,
    pub s3: String,
    /// The admin listener's address.
    pub admin: String,
    output: Arc<Mutex<Vec<String>>>,
    pub config: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Runs the gateway binary on `config` (written into `dir`), with `env` added to its
    /// environment and the caller's AWS credential variables removed.
    pub fn start(config: &str, dir: tempfile::TempDir, env: &[(&str, String)]) -> Process {
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_hcp-s3-gateway"));
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
        ] {
            command.env_remove(var);
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));
        let mut child = command
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    output.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let (s3, admin) = loop {
            // (A text line, or a JSON object's message: over `http://` or `https://`.)
            let found = output.lock().unwrap().iter().find_map(|l| {
                let s3 = l.split("serving S3 on http").nth(1)?;
                let s3 = s3.trim_start_matches('s').strip_prefix("://")?;
                let admin = l.split("(admin: http://").nth(1)?;
                Some((
                    s3.split_whitespace().next()?.to_string(),
                    admin.split(')').next()?.to_string(),
                ))
            });
            if let Some(addrs) = found {
                break addrs;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not start: {:?}",
                output.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Process {
            child,
            s3,
            admin,
            output,
            config: path,
            _dir: dir,
        }
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    pub fn client(&self, user: &str, password: &str) -> aws_sdk_s3::Client {
        let (ak, sk) = keys(user, password);
        sdk_client(&format!("http://{}", self.s3), &ak, &sk)
    }

    pub fn lines(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
