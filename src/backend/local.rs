//! The embedded local backend: the s3s-fs S3 server, inside the gateway process on a private
//! loopback port, storing objects in a directory. The gateway reaches it through the same
//! forwarding, signing and normalisation as any remote backend.
//!
//! s3s-fs is wrapped in [`LocalS3`], which closes the gaps where it would not behave like an S3
//! server at all: it would delete a bucket together with its objects, list the parts of an
//! upload that does not exist, and refuse parts of an aborted upload as `AccessDenied`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use md5::Digest as _;
use rand::RngCore;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use tokio::net::TcpListener;

use crate::backend::store::s3::AUTOMATIC_ABORT;
use crate::config::LocalEngine;
use tokio::sync::watch;

/// The most headers the store's server takes on one request: the client's most (pingora's
/// 256) and the gateway's own beside them.
const STORE_MAX_HEADERS: usize = 512;

pub struct LocalBackend {
    pub addr: SocketAddr,
    pub access_key: String,
    pub secret_key: String,
    /// The embedded store's flag of a metadata database broken by an I/O failure (none for
    /// s3s-fs): `/healthz` answers 503 once it is set.
    pub broken: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    stop: watch::Sender<bool>,
}

impl LocalBackend {
    /// Starts the server on `127.0.0.1:0`, its secret key generated for this process only.
    pub async fn start(data_dir: &Path, engine: LocalEngine) -> std::io::Result<LocalBackend> {
        let named = |e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("data_dir {}: {e}", data_dir.display()))
        };
        std::fs::create_dir_all(data_dir).map_err(named)?;
        // (The access key is the same at every start: s3s-fs records an upload's initiator by
        // it and refuses the upload's complete to any other — an upload begun before a restart
        // could never be completed. The secret is this process's alone.)
        let access_key = LOCAL_ACCESS_KEY.to_string();
        let secret_key = random_hex(20);
        let auth = SimpleAuth::from_single(access_key.clone(), secret_key.clone());
        let (mut sweeper, mut broken) = (None, None);
        let service = match engine {
            LocalEngine::S3sFs => {
                let fs = s3s_fs::FileSystem::new(data_dir)
                    .map_err(|e| named(std::io::Error::other(format!("{e:?}"))))?;
                let fs = LocalS3 {
                    turns: std::sync::Mutex::default(),
                    fs,
                    root: data_dir.canonicalize().map_err(named)?,
                };
                let mut b = S3ServiceBuilder::new(fs);
                b.set_auth(auth);
                b.set_access(KeysStayInBuckets);
                b.build()
            }
            LocalEngine::Store => {
                // A directory of its own: data_dir may hold s3s-fs's buckets (one may be named
                // `tmp` or `blobs`), which the store's cleaning must never touch.
                let objects =
                    crate::backend::store::objects::Objects::open(&data_dir.join("store"))
                        .map_err(|e| named(std::io::Error::other(format!("{e:?}"))))?;
                broken = Some(objects.broken());
                let objects = std::sync::Arc::new(objects);
                warn_of_s3s_fs_buckets(data_dir);
                let store = crate::backend::store::s3::StoreS3::new(objects.clone());
                sweeper = Some(crate::backend::store::s3::StoreS3::new(objects.clone()));
                let mut b = S3ServiceBuilder::new(store);
                b.set_auth(auth);
                b.set_access(SignedOnly);
                b.set_route(crate::backend::store::cors::Preflight { objects });
                b.build()
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        if let Some(store) = sweeper {
            tokio::spawn(abort_abandoned_uploads(store, stop.subscribe()));
        }
        tokio::spawn(async move {
            let mut http = ConnBuilder::new(TokioExecutor::new());
            // (hyper's 100 headers would refuse — 431 — a PUT the gateway accepts: pingora
            // takes 256 of the client's, to which the gateway adds its own.)
            http.http1().max_headers(STORE_MAX_HEADERS);
            // On stop, open connections finish their request and close, so that the store is
            // let go of (its database lock with it) soon after the gateway stops.
            let graceful = hyper_util::server::graceful::GracefulShutdown::new();
            loop {
                let socket = tokio::select! {
                    r = accepted(&listener) => match r {
                        Some(s) => s,
                        None => continue,
                    },
                    _ = stopped.changed() => break,
                };
                let _ = socket.set_nodelay(true);
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            drop(listener);
            drop(service);
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(5), graceful.shutdown()).await;
        });
        Ok(LocalBackend {
            addr,
            access_key,
            secret_key,
            broken,
            stop,
        })
    }
}

/// Aborts the store's uploads left open past [`AUTOMATIC_ABORT`], at start and hourly, until
/// the backend stops: their parts would otherwise stay on disk for ever.
async fn abort_abandoned_uploads(
    store: crate::backend::store::s3::StoreS3,
    mut stopped: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stopped.changed() => return,
        }
        let aborted = store.abort_uploads_older_than(AUTOMATIC_ABORT).await;
        if aborted > 0 {
            tracing::info!(
                aborted,
                "multipart uploads open past the 30-day automatic abort time were aborted"
            );
        }
    }
}

/// Buckets s3s-fs left in `data_dir` (the embedded default before the store) are not the
/// store's: said once at start, so that nobody thinks them lost.
fn warn_of_s3s_fs_buckets(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            e.path().is_dir()
                && !matches!(name.to_str(), Some("store" | "lost+found"))
                && !name.to_string_lossy().starts_with('.')
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if !names.is_empty() {
        names.sort();
        names.truncate(10);
        tracing::warn!(
            "{} holds directories the store does not serve ({}): s3s-fs buckets? They are \
             served with engine = \"s3s-fs\"",
            data_dir.display(),
            names.join(", ")
        );
    }
}

impl Drop for LocalBackend {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The gateway's access key toward its embedded backend (its secret is generated at start).
const LOCAL_ACCESS_KEY: &str = "HCPGATEWAYEMBEDDED01";

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Whether s3s-fs may be given `key`: s3s-fs joins bucket and key into a filesystem path below
/// its data root, so a key with a `.` or `..` segment, or an absolute one, could name another
/// bucket's file (another tenant's, as all tenants' buckets share the root). Such keys are
/// refused here whatever the gateway in front checked.
pub fn key_stays_in_bucket(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('/')
        && !key.contains('\0')
        && !key.split('/').any(|s| s == "." || s == "..")
}

fn key_outside_bucket() -> s3s::S3Error {
    s3_error!(
        InvalidArgument,
        "The object name is not allowed by this store."
    )
}

fn check_key(key: &str) -> S3Result<()> {
    if key_stays_in_bucket(key) {
        Ok(())
    } else {
        Err(key_outside_bucket())
    }
}

/// The longest file name s3s-fs can write (Linux's `NAME_MAX`).
const NAME_MAX: usize = 255;

/// Whether s3s-fs can name `key`'s files in `bucket`: each of the key's path segments is a
/// file name, and so are the key's metadata files — `.bucket-<bucket>.object-<key>
/// .metadata.json` and `….internal.json` (bucket and key in unpadded base64), and for an
/// upload (`upload`) `….upload-<uuid>.metadata.json`. Past that s3s-fs fails only after it
/// has moved a PUT's data into place, or written an upload's record: a 500 over an object
/// stored without its metadata.
pub fn names_fit(bucket: &str, key: &str, upload: bool) -> bool {
    // (`.internal.json` is as long as `.metadata.json`; an upload's id is a UUID.)
    let tail = match upload {
        true => ".upload-00000000-0000-0000-0000-000000000000.metadata.json",
        false => ".metadata.json",
    };
    object_file_name(bucket, key, tail).len() <= NAME_MAX
        && key.split('/').all(|segment| segment.len() <= NAME_MAX)
}

/// The name s3s-fs gives a key's file of `tail` in its root: `.bucket-<bucket>.object-<key>`
/// and `tail`, bucket and key in unpadded URL-safe base64.
fn object_file_name(bucket: &str, key: &str, tail: &str) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(".bucket-{}.object-{}{tail}", b64(bucket), b64(key))
}

/// A new object's key whose files s3s-fs could not name: HCP's 400 KeyTooLong, before
/// anything is written.
fn check_names(bucket: &str, key: &str, upload: bool) -> S3Result<()> {
    if names_fit(bucket, key, upload) {
        Ok(())
    } else {
        Err(s3_error!(
            KeyTooLongError,
            "The object name is longer than this store can keep with this bucket's name."
        ))
    }
}

/// A bucket name that is one directory of the data root.
fn check_bucket(bucket: &str) -> S3Result<()> {
    if !bucket.is_empty() && !bucket.contains(['/', '\\', '\0']) && bucket != "." && bucket != ".."
    {
        Ok(())
    } else {
        Err(s3_error!(InvalidBucketName))
    }
}

fn check_copy_source(source: &CopySource) -> S3Result<()> {
    match source {
        CopySource::Bucket { bucket, key, .. } => {
            check_bucket(bucket)?;
            check_key(key)
        }
        _ => Err(key_outside_bucket()),
    }
}

/// Every request's path key is checked before s3s-fs sees it (the keys in bodies and headers —
/// copy sources, multi-object deletes, form uploads — are checked by [`LocalS3`]).
struct KeysStayInBuckets;

#[async_trait::async_trait]
impl s3s::access::S3Access for KeysStayInBuckets {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3_error!(AccessDenied));
        }
        match cx.s3_path() {
            s3s::path::S3Path::Object { bucket, key } => {
                check_bucket(bucket)?;
                check_key(key)
            }
            s3s::path::S3Path::Bucket { bucket } => check_bucket(bucket),
            s3s::path::S3Path::Root => Ok(()),
        }
    }
}

/// The gateway's own store needs no key check (no key is a path there): only signed requests.
struct SignedOnly;

#[async_trait::async_trait]
impl s3s::access::S3Access for SignedOnly {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> S3Result<()> {
        match cx.credentials() {
            Some(_) => Ok(()),
            None => Err(s3_error!(AccessDenied)),
        }
    }
}

/// Open uploads' turns, by upload id.
type Turns =
    std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::RwLock<()>>>>;

/// A request's hold on its upload's turn: given back when dropped — answered, or abandoned by
/// its client midway — and the upload's entry gone with the last request that held or
/// awaited it (no entry outlives its requests).
struct Turn<'a> {
    turns: &'a Turns,
    id: String,
    lock: std::sync::Arc<tokio::sync::RwLock<()>>,
}

impl<'a> Turn<'a> {
    fn of(turns: &'a Turns, id: &str) -> Turn<'a> {
        let mut map = turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let lock = map.entry(id.to_string()).or_default().clone();
        Turn {
            turns,
            id: id.to_string(),
            lock,
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut map = self
            .turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // (The map's and this request's: no other request holds or awaits it.)
        if std::sync::Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.id);
        }
    }
}

/// s3s-fs with S3's answers where it has none of its own.
struct LocalS3 {
    fs: s3s_fs::FileSystem,
    root: PathBuf,
    /// Each open upload's turns: its parts are written sharing one, a complete or an abort
    /// takes it alone — so that a part still being written cannot land on a place a complete
    /// has numbered, nor a part be written while its upload is joined (s3s-fs checks the
    /// upload only when a part begins). An entry lives while a request holds or awaits it
    /// ([`Turn`]).
    turns: Turns,
}

impl LocalS3 {
    /// Runs `work` in the upload's turn: alone (`exclusive`) or beside the upload's other
    /// parts being written.
    async fn in_turn<T>(
        &self,
        upload_id: &str,
        exclusive: bool,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let turn = Turn::of(&self.turns, upload_id);
        if exclusive {
            let _alone = turn.lock.write().await;
            work.await
        } else {
            let _shared = turn.lock.read().await;
            work.await
        }
    }

    /// Whether s3s-fs knows the upload (it keeps one `.upload-<uuid>.json` per open upload).
    fn upload_exists(&self, upload_id: &str) -> bool {
        upload_id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-')
            && self
                .root
                .join(format!(".upload-{upload_id}.json"))
                .is_file()
    }

    /// The upload, of this object: S3's NoSuchUpload for an id "not associated with the
    /// object specified in the request" (HCP's manual) — s3s-fs knows an upload by its id
    /// alone, and would take a part, complete or abort under any key.
    fn check_upload(&self, upload_id: &str, (bucket, key): (&str, &str)) -> S3Result<()> {
        if !self.upload_exists(upload_id) {
            return Err(s3_error!(NoSuchUpload));
        }
        match std::fs::read(self.upload_object_path(upload_id)) {
            Ok(named) if named != upload_object(bucket, key) => Err(s3_error!(NoSuchUpload)),
            // (An upload begun before its object was recorded: its id alone, as before.)
            _ => Ok(()),
        }
    }

    /// Where the object an upload was begun for is recorded.
    fn upload_object_path(&self, upload_id: &str) -> PathBuf {
        self.root
            .join(format!(".upload-{upload_id}.gateway-object"))
    }

    /// The file s3s-fs keeps part `number` of an upload in.
    fn part_path(&self, upload_id: &str, number: i32) -> PathBuf {
        self.root
            .join(format!(".upload_id-{upload_id}.part-{number}"))
    }

    /// S3's checks of a complete's part list, which s3s-fs skips or makes only once it has
    /// ended the upload (a refused complete lost it, and wrote its attributes over the key's
    /// object): ascending part numbers, every part uploaded with the ETag given (s3s-fs's part
    /// ETag is the part file's MD5), every part but the last at least S3's 5 MiB.
    fn check_listed_parts(&self, upload_id: &str, parts: &[CompletedPart]) -> S3Result<()> {
        let numbers: Vec<i32> = parts.iter().map(|p| p.part_number.unwrap_or(0)).collect();
        if numbers.windows(2).any(|w| w[0] >= w[1]) {
            return Err(s3_error!(InvalidPartOrder));
        }
        let last = numbers.len().saturating_sub(1);
        for (i, (part, number)) in parts.iter().zip(numbers).enumerate() {
            let path = self.part_path(upload_id, number);
            let size = std::fs::metadata(&path)
                .map_err(|_| s3_error!(InvalidPart))?
                .len();
            if i < last && size < 5 << 20 {
                return Err(s3_error!(EntityTooSmall));
            }
            let actual = md5_of_file(&path).map_err(|_| s3_error!(InvalidPart))?;
            let given = part
                .e_tag
                .as_ref()
                .map(|e| e.value().trim_matches('"').to_ascii_lowercase());
            if given.as_deref() != Some(actual.as_str()) {
                return Err(s3_error!(InvalidPart));
            }
        }
        Ok(())
    }

    /// Where a part the complete does not list is kept while the listed ones take its number
    /// (a name s3s-fs does not read as a part's).
    fn aside_path(&self, upload_id: &str, number: i32) -> PathBuf {
        self.root
            .join(format!(".upload_id-{upload_id}.aside-{number}"))
    }

    /// A complete's parts numbered as s3s-fs joins them, 1 to n (it refuses any other list
    /// once it has ended the upload; HCP's parts "do not need to start at one and do not need
    /// to be consecutive"): each listed part's file renamed to its place in the list — in
    /// ascending order, so that no listed part's file is renamed over another's; a part not
    /// listed that holds the place is kept aside. Returns the steps taken, for
    /// [`LocalS3::renumbered_back`].
    fn number_parts_from_one(
        &self,
        upload_id: &str,
        parts: &mut [CompletedPart],
    ) -> S3Result<Vec<(i32, i32)>> {
        let mut steps = Vec::new();
        for (place, part) in (1..).zip(parts.iter_mut()) {
            let number = part.part_number.unwrap_or(0);
            if number == place {
                continue;
            }
            let to = self.part_path(upload_id, place);
            let mut step = || -> std::io::Result<()> {
                if to.exists() {
                    std::fs::rename(&to, self.aside_path(upload_id, place))?;
                    // (0: the part at `place` set aside.)
                    steps.push((0, place));
                }
                std::fs::rename(self.part_path(upload_id, number), &to)?;
                steps.push((number, place));
                Ok(())
            };
            if let Err(e) = step() {
                self.renumbered_back(upload_id, &steps);
                return Err(s3_error!(
                    InternalError,
                    "numbering the upload's parts: {e}"
                ));
            }
            part.part_number = Some(place);
        }
        Ok(steps)
    }

    /// A complete s3s-fs refused before it ended the upload (its record still there): the
    /// parts under the numbers they were uploaded with again, those set aside back.
    fn renumbered_back(&self, upload_id: &str, steps: &[(i32, i32)]) {
        for &(number, place) in steps.iter().rev() {
            let from = self.part_path(upload_id, place);
            let _ = match number {
                0 => std::fs::rename(self.aside_path(upload_id, place), from),
                _ => std::fs::rename(from, self.part_path(upload_id, number)),
            };
        }
    }

    /// The files of an upload that has ended: its parts, those set aside.
    async fn parts_gone(&self, upload_id: &str) {
        let prefix = format!(".upload_id-{upload_id}.");
        if let Ok(mut entries) = tokio::fs::read_dir(&self.root).await {
            while let Ok(Some(entry)) = entries.next_entry().await {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = tokio::fs::remove_file(entry.path()).await;
                }
            }
        }
    }

    /// After a complete: the parts it did not list are gone with the upload (s3s-fs leaves
    /// their files), and the object's checksums are its own — s3s-fs keeps the ones of the
    /// object the key held before beside the new ETag, and would answer them.
    async fn after_complete(&self, upload_id: &str, (bucket, key): (&str, &str)) {
        self.parts_gone(upload_id).await;
        let info = self
            .root
            .join(object_file_name(bucket, key, ".internal.json"));
        let read = std::fs::read(&info).ok();
        let fields = read.and_then(|r| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&r).ok()
        });
        if let Some(e_tag) = fields.as_ref().and_then(|f| f.get("e_tag")) {
            let own = serde_json::json!({ "e_tag": e_tag });
            let _ = std::fs::write(&info, own.to_string());
        }
    }

    /// Whether a bucket directory holds any object file (empty directories left behind by
    /// deleted keys do not count).
    fn bucket_has_objects(&self, bucket: &str) -> bool {
        if bucket.contains(['/', '\\']) || bucket.starts_with('.') {
            return false;
        }
        let mut stack = vec![self.root.join(bucket)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                match entry.file_type() {
                    Ok(t) if t.is_dir() => stack.push(entry.path()),
                    Ok(_) => return true,
                    Err(_) => {}
                }
            }
        }
        false
    }
}

/// The MD5 of a file as hex, read in blocks (parts can be gigabytes).
fn md5_of_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = md5::Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// s3s-fs echoes `encoding-type=url` but leaves names unencoded, so clients that decode them
/// (botocore) turn `+` into a space.
fn wants_url_encoding(encoding: Option<&EncodingType>) -> bool {
    encoding.is_some_and(|e| e.as_str() == EncodingType::URL)
}

fn url_encode(s: &str) -> String {
    crate::hcp::xml::url_encoded_name(s.as_bytes())
}

fn url_encode_listing(
    contents: &mut Option<Vec<Object>>,
    prefixes: &mut Option<Vec<CommonPrefix>>,
) {
    for key in contents.iter_mut().flatten().filter_map(|o| o.key.as_mut()) {
        *key = url_encode(key);
    }
    for p in prefixes
        .iter_mut()
        .flatten()
        .filter_map(|p| p.prefix.as_mut())
    {
        *p = url_encode(p);
    }
}

/// An upload's object as its record names it: bucket and key, apart.
fn upload_object(bucket: &str, key: &str) -> Vec<u8> {
    [bucket.as_bytes(), b"\0", key.as_bytes()].concat()
}

/// Emits the `S3` impl: the `delegate` operations go to s3s-fs as they are, the rest is written
/// out. (The impl is emitted whole so that `async_trait` sees the expanded methods.)
macro_rules! local_s3 {
    (delegate { $($op:ident($input:ty) -> $output:ty;)* } $($custom:tt)*) => {
        #[async_trait::async_trait]
        impl S3 for LocalS3 {
            $(
                async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.fs.$op(req).await
                }
            )*
            $($custom)*
        }
    };
}

local_s3! {
    delegate {
        create_bucket(CreateBucketInput) -> CreateBucketOutput;
        delete_object(DeleteObjectInput) -> DeleteObjectOutput;
        get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput;
        get_object(GetObjectInput) -> GetObjectOutput;
        head_bucket(HeadBucketInput) -> HeadBucketOutput;
        head_object(HeadObjectInput) -> HeadObjectOutput;
        list_buckets(ListBucketsInput) -> ListBucketsOutput;
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        check_key(&req.input.key)?;
        check_names(&req.input.bucket, &req.input.key, false)?;
        self.fs.put_object(req).await
    }

    async fn create_multipart_upload(
        &self,
        mut req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        // (A form's type, which the gateway sends under its own name: `store::wire`.)
        let form_type = req.headers.get(crate::backend::store::wire::CONTENT_TYPE_HEADER);
        if let Some(t) = form_type.and_then(|v| v.to_str().ok()) {
            req.input.content_type = Some(t.to_string());
        }
        check_names(&req.input.bucket, &req.input.key, true)?;
        let object = upload_object(&req.input.bucket, &req.input.key);
        let resp = self.fs.create_multipart_upload(req).await?;
        if let Some(id) = resp.output.upload_id.as_deref() {
            std::fs::write(self.upload_object_path(id), object)
                .map_err(|e| s3_error!(InternalError, "recording the upload's object: {e}"))?;
        }
        Ok(resp)
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        check_key(&req.input.key)?;
        check_names(&req.input.bucket, &req.input.key, false)?;
        check_copy_source(&req.input.copy_source)?;
        self.fs.copy_object(req).await
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        for object in &req.input.delete.objects {
            check_key(&object.key)?;
        }
        self.fs.delete_objects(req).await
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        let url = wants_url_encoding(req.input.encoding_type.as_ref());
        let mut resp = self.fs.list_objects(req).await?;
        if url {
            let o = &mut resp.output;
            url_encode_listing(&mut o.contents, &mut o.common_prefixes);
            for s in [&mut o.prefix, &mut o.delimiter, &mut o.marker, &mut o.next_marker].into_iter().flatten() {
                *s = url_encode(s);
            }
        }
        Ok(resp)
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        let url = wants_url_encoding(req.input.encoding_type.as_ref());
        let mut resp = self.fs.list_objects_v2(req).await?;
        if url {
            let o = &mut resp.output;
            url_encode_listing(&mut o.contents, &mut o.common_prefixes);
            for s in [&mut o.prefix, &mut o.delimiter, &mut o.start_after].into_iter().flatten() {
                *s = url_encode(s);
            }
        }
        Ok(resp)
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        if self.bucket_has_objects(&req.input.bucket) {
            return Err(s3_error!(BucketNotEmpty));
        }
        self.fs.delete_bucket(req).await
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        self.check_upload(&req.input.upload_id, (&req.input.bucket, &req.input.key))?;
        let mut resp = self.fs.list_parts(req).await?;
        // S3 lists parts in ascending order; s3s-fs in directory order.
        if let Some(parts) = resp.output.parts.as_mut() {
            parts.sort_by_key(|p| p.part_number);
        }
        Ok(resp)
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let id = req.input.upload_id.clone();
        self.in_turn(&id, false, async {
            self.check_upload(&req.input.upload_id, (&req.input.bucket, &req.input.key))?;
            self.fs.upload_part(req).await
        })
        .await
    }

    async fn upload_part_copy(&self, req: S3Request<UploadPartCopyInput>) -> S3Result<S3Response<UploadPartCopyOutput>> {
        check_copy_source(&req.input.copy_source)?;
        let id = req.input.upload_id.clone();
        self.in_turn(&id, false, async {
            self.check_upload(&req.input.upload_id, (&req.input.bucket, &req.input.key))?;
            self.fs.upload_part_copy(req).await
        })
        .await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let id = req.input.upload_id.clone();
        self.in_turn(&id, true, self.complete_alone(req)).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let id = req.input.upload_id.clone();
        self.in_turn(&id, true, async {
            self.check_upload(&req.input.upload_id, (&req.input.bucket, &req.input.key))?;
            let record = self.upload_object_path(&req.input.upload_id);
            let resp = self.fs.abort_multipart_upload(req).await?;
            let _ = std::fs::remove_file(record);
            Ok(resp)
        })
        .await
    }
}

impl LocalS3 {
    /// A complete, in the upload's turn alone.
    async fn complete_alone(
        &self,
        mut req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.check_upload(&req.input.upload_id, (&req.input.bucket, &req.input.key))?;
        let id = req.input.upload_id.clone();
        let object = (req.input.bucket.clone(), req.input.key.clone());
        let parts = req
            .input
            .multipart_upload
            .as_mut()
            .and_then(|m| m.parts.as_mut());
        let parts = parts.map(Vec::as_mut_slice).unwrap_or_default();
        self.check_listed_parts(&id, parts)?;
        let renamed = self.number_parts_from_one(&id, parts)?;
        let resp = match self.fs.complete_multipart_upload(req).await {
            Ok(resp) => resp,
            Err(e) => {
                // Refused before s3s-fs ended the upload: as it was. After (its object could not
                // be written): the upload is gone, its parts with it — nothing could reach them.
                if self.upload_exists(&id) {
                    self.renumbered_back(&id, &renamed);
                } else {
                    let _ = std::fs::remove_file(self.upload_object_path(&id));
                    self.parts_gone(&id).await;
                }
                return Err(e);
            }
        };
        let _ = std::fs::remove_file(self.upload_object_path(&id));
        self.after_complete(&id, (&object.0, &object.1)).await;
        Ok(resp)
    }
}

/// A connection accepted; `None` after a failed accept (out of descriptors, say), once the
/// listener has backed off as the S3 listener does rather than spin on the error.
async fn accepted(listener: &tokio::net::TcpListener) -> Option<tokio::net::TcpStream> {
    match listener.accept().await {
        Ok((s, _)) => Some(s),
        Err(e) => {
            tracing::warn!("local backend accept failed: {e}");
            tokio::time::sleep(crate::server::ACCEPT_BACKOFF).await;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upload's turn lives while a request holds or awaits it, and no longer — also where
    /// a request is abandoned while it waits (its client gone): no entry is left behind.
    #[tokio::test]
    async fn an_upload_s_turn_outlives_no_request() {
        let turns = Turns::default();
        let entries = || turns.lock().unwrap().len();
        let (a, b) = (Turn::of(&turns, "u"), Turn::of(&turns, "u"));
        assert!(std::sync::Arc::ptr_eq(&a.lock, &b.lock));
        let other = Turn::of(&turns, "v");
        assert_eq!(entries(), 2);
        drop(a);
        assert_eq!(entries(), 2);
        drop((b, other));
        assert_eq!(entries(), 0);
        let held = Turn::of(&turns, "u");
        let alone = held.lock.write().await;
        let waiting = async {
            let turn = Turn::of(&turns, "u");
            let _shared = turn.lock.read().await;
        };
        let waited = tokio::time::timeout(std::time::Duration::from_millis(20), waiting).await;
        assert!(
            waited.is_err(),
            "a part waits while its upload is completed"
        );
        drop(alone);
        drop(held);
        assert_eq!(entries(), 0);
    }
}
