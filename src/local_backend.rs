//! The embedded local backend: the s3s-fs S3 server, inside the gateway process on a private
//! loopback port, storing objects in a directory. The gateway reaches it through the same
//! forwarding, signing and normalisation as any remote backend.

use std::net::SocketAddr;
use std::path::Path;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use rand::RngCore;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub struct LocalBackend {
    pub addr: SocketAddr,
    pub access_key: String,
    pub secret_key: String,
    stop: watch::Sender<bool>,
}

impl LocalBackend {
    /// Starts the server on `127.0.0.1:0` with keys generated for this process only.
    pub async fn start(data_dir: &Path) -> std::io::Result<LocalBackend> {
        std::fs::create_dir_all(data_dir)?;
        let fs = s3s_fs::FileSystem::new(data_dir)
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let access_key = random_hex(10).to_uppercase();
        let secret_key = random_hex(20);
        let service = {
            let mut b = S3ServiceBuilder::new(fs);
            b.set_auth(SimpleAuth::from_single(
                access_key.clone(),
                secret_key.clone(),
            ));
            b.build()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let socket = tokio::select! {
                    r = listener.accept() => match r {
                        Ok((s, _)) => s,
                        Err(e) => {
                            tracing::warn!("local backend accept failed: {e}");
                            continue;
                        }
                    },
                    _ = stopped.changed() => break,
                };
                let _ = socket.set_nodelay(true);
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Ok(LocalBackend {
            addr,
            access_key,
            secret_key,
            stop,
        })
    }
}

impl Drop for LocalBackend {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}
