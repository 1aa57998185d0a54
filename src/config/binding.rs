//! The key that binds multipart upload ids to their initiators (`request::uploads`):
//! `auth.upload_binding_secret`, or one derived from the backends' secrets when the gateway
//! starts serving.
//!
//! A derived key is made of secrets only — a static backend's secret key, a local backend's key
//! file — with the backends' names and other backends' endpoints beside them: names,
//! endpoints and paths are no secret (an upload id bound with a key made of them alone could
//! be forged by any user who can list uploads). A configuration whose every backend takes its
//! credentials from the AWS chain has nothing to derive a key from and must configure one.
//!
//! A local backend's key file is made by the serving process the first time it starts
//! ([`UploadBinding::secret`]), never by a check of the configuration (`--check-config`, a
//! reload), which may run as another user.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use crate::request::authenticate::SecretKey;

/// The name of a local backend's binding key file, in its `data_dir`.
pub const LOCAL_BINDING_KEY: &str = ".hcp-s3-gateway-binding-key";

/// How upload ids are bound.
#[derive(Debug, Clone)]
pub enum UploadBinding {
    /// `auth.upload_binding_secret`.
    Configured(SecretKey),
    /// Derived from these, in the backends' order by name: each backend's name and what it
    /// gives.
    Derived(Vec<(String, BindingSource)>),
}

/// What a backend gives a derived key.
#[derive(Debug, Clone)]
pub enum BindingSource {
    /// A static backend's secret key.
    Secret(SecretKey),
    /// An AWS-chain backend's endpoint (no secret: never alone).
    Endpoint(String),
    /// A local backend's key file, in its data directory.
    KeyFile(PathBuf),
}

impl UploadBinding {
    /// The derived binding, or why there can be none.
    pub fn derived(sources: Vec<(String, BindingSource)>) -> Result<UploadBinding, String> {
        let secret = |s: &BindingSource| !matches!(s, BindingSource::Endpoint(_));
        if !sources.iter().any(|(_, s)| secret(s)) {
            return Err(
                "auth.upload_binding_secret: required when no backend has a static \
                 secret key or a local data_dir (credentials from the AWS chain are nothing to \
                 derive it from); give every replica the same one, e.g. \
                 { file = \"/run/secrets/.../upload-binding-secret\" }"
                    .into(),
            );
        }
        Ok(UploadBinding::Derived(sources))
    }

    /// The key, making a local backend's key file where there is none yet.
    pub fn secret(&self) -> Result<SecretKey, String> {
        let sources = match self {
            UploadBinding::Configured(secret) => return Ok(secret.clone()),
            UploadBinding::Derived(sources) => sources,
        };
        let mut digest = sha2::Sha256::new();
        digest.update(b"hcp-s3-gateway upload binding\0");
        for (name, source) in sources {
            digest.update(name.as_bytes());
            digest.update(b"\0");
            match source {
                BindingSource::Secret(secret) => digest.update(secret.expose()),
                BindingSource::Endpoint(endpoint) => digest.update(endpoint),
                BindingSource::KeyFile(data_dir) => digest.update(local_binding_key(data_dir)?),
            }
            digest.update(b"\0");
        }
        Ok(SecretKey::new(hex::encode(digest.finalize())))
    }
}

/// A local backend's binding key: 32 random bytes (hex) kept in its data directory, readable by
/// the gateway's user only, made on the first start and read on every start after — so upload
/// ids survive restarts as the uploads themselves do, and a gateway sharing the directory shares
/// the key. It is written under a name of its own and linked into place whole, so that two
/// starts at once (even two containers with one pid) agree on one key.
fn local_binding_key(data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join(LOCAL_BINDING_KEY);
    let read = |path: &Path| -> Result<Option<String>, String> {
        match std::fs::read_to_string(path) {
            Ok(key) if key.trim().len() >= 32 => Ok(Some(key.trim().to_string())),
            Ok(_) => Err(format!(
                "{}: not a binding key (remove it and a new one is made; uploads in progress \
                 are then unknown)",
                path.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    };
    if let Some(key) = read(&path)? {
        return Ok(key);
    }
    let failed = |e: std::io::Error| format!("{}: {e}", path.display());
    std::fs::create_dir_all(data_dir).map_err(failed)?;
    let key = hex::encode(rand::random::<[u8; 32]>());
    let draft = data_dir.join(format!(
        "{LOCAL_BINDING_KEY}.{}",
        hex::encode(rand::random::<[u8; 8]>())
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&draft)
        .map_err(failed)?;
    let written = file
        .write_all(key.as_bytes())
        .and_then(|()| file.sync_all());
    let linked = written.and_then(|()| std::fs::hard_link(&draft, &path));
    let _ = std::fs::remove_file(&draft);
    match linked {
        Ok(()) => Ok(key),
        // Another start linked its key first: that one is the key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read(&path)?.ok_or_else(|| failed(e))
        }
        Err(e) => Err(failed(e)),
    }
}
