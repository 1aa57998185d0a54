//! What became of one request, for the access log and the metrics: written by the phases,
//! read by nothing but [`Gateway::record`] — except [`Reply`], fixed when the request is read
//! and read by whatever writes an answer.

use super::*;

/// How every answer to one request is written: fixed when its head is read, before any phase
/// (but for the CORS headers a backend's error answer brought).
#[derive(Default)]
pub(super) struct Reply {
    /// `x-amz-request-id` and the error document's `RequestId` (the access log shows it too).
    pub(super) id: RequestId,
    /// `x-hcp-pretty-print: true`: documents the gateway writes or rewrites are indented.
    pub(super) pretty: bool,
    /// The CORS headers the bucket's rules give the answer (`Access-Control-*`, `Vary`:
    /// `request::cors`), written on whatever is answered — an error too: a browser reads one
    /// only with them.
    pub(super) cors: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// What became of one request: the access log line and the metrics are made from it. Phases
/// write its fields; only [`Gateway::record`] reads them (`reply` is the exception, above).
#[derive(Default)]
pub(super) struct Exchange {
    pub(super) reply: Reply,
    /// The client's address (the connection's peer).
    pub(super) client: Option<std::net::IpAddr>,
    pub(super) operation: Option<Operation>,
    /// For a sub-resource operation (`BucketSubresource`, `ObjectSubresource`), which one.
    pub(super) sub_resource: Option<&'static str>,
    /// (The names below are shared with the configuration and the request's target: nothing
    /// is copied for a record that the log level may never write.)
    pub(super) tenant: Arc<str>,
    pub(super) backend: Arc<str>,
    /// The verified caller (the access log shows its access key).
    pub(super) caller: Option<Arc<crate::request::authenticate::User>>,
    /// The access key a refused request claimed (unverified: anyone can write any key).
    pub(super) claimed_access_key: Option<String>,
    pub(super) scheme: &'static str,
    pub(super) bucket: Option<Arc<str>>,
    pub(super) key: Option<NamedKey>,
    pub(super) status: u16,
    pub(super) code: Option<HcpCode>,
    pub(super) backend_status: Option<u16>,
    pub(super) backend_code: Option<String>,
    pub(super) backend_request_id: Option<BackendRequestId>,
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
    pub(super) cause: Option<String>,
    /// From sending the request to the backend to its answer's headers (on a pooled
    /// connection from taking it, the same reading of the clock: `forward::transmit`).
    pub(super) backend_elapsed: Option<std::time::Duration>,
}

/// The object key a request named, for the access log: as the client encoded it in the path
/// (decoded only when a line is written), or a form's field.
pub(super) enum NamedKey {
    Path(Arc<[u8]>),
    Form(String),
}

impl NamedKey {
    /// The decoded key (invalid UTF-8 replaced).
    fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            NamedKey::Path(raw) => crate::request::address::decoded_lossy(raw),
            NamedKey::Form(k) => k.as_str().into(),
        }
    }
}

impl Exchange {
    /// Notes the error the client is answered with: its code, and why — the error's own cause,
    /// else one a phase noted before, else the message the client reads.
    pub(super) fn note_error(&mut self, err: &HcpError) {
        self.code = Some(err.code);
        self.cause = err
            .cause
            .clone()
            .or_else(|| self.cause.take())
            .or_else(|| Some(err.message.to_string()));
    }
}

impl Gateway {
    pub(super) fn record(&self, x: &Exchange, started: Instant) {
        let elapsed = started.elapsed();
        // Each sub-resource operation is its own series: `BucketSubresource?cors`.
        let op: std::borrow::Cow<'static, str> = match (x.operation, x.sub_resource) {
            (Some(op), Some(sub)) => format!("{}?{sub}", op.name()).into(),
            (op, _) => op.map_or("Unknown", Operation::name).into(),
        };
        let op = op.as_ref();
        let code = x.code.map_or("", HcpCode::as_str);
        self.metrics
            .request_done(&crate::observe::metrics::RequestDone {
                operation: op,
                tenant: &x.tenant,
                backend: &x.backend,
                status: x.status,
                code,
                elapsed,
                backend_elapsed: x.backend_elapsed,
                bytes_in: x.bytes_in,
                bytes_out: x.bytes_out,
            });
        // Every field a client can influence is quoted and escaped in the text format, so that
        // a key holding `" status=200` or a newline cannot forge fields or lines (the JSON
        // format escapes strings itself).
        let text = self.cfg.log_format == crate::config::LogFormat::Text;
        let q = |v| Quoted(v, text);
        tracing::info!(
            target: "access",
            request_id = %x.reply.id,
            client = %Client(x.client),
            access_key = %q(x.caller.as_deref().map_or("-", |u| u.access_key.as_str())),
            claimed_access_key = %q(x.claimed_access_key.as_deref().unwrap_or("-")),
            auth = x.scheme,
            tenant = %q(&x.tenant),
            operation = op,
            bucket = %q(&shown(x.bucket.as_deref().unwrap_or("-"), LOGGED_BUCKET_CHARS)),
            key = %q(&logged_key(x.key.as_ref().map(NamedKey::text).as_deref(), self.cfg.log_keys)),
            status = x.status,
            code = code,
            backend = %x.backend,
            backend_status = x.backend_status.unwrap_or(0),
            backend_code = %q(x.backend_code.as_deref().unwrap_or("")),
            backend_request_id = %q(x.backend_request_id.as_ref().map_or("", BackendRequestId::as_str)),
            bytes_in = x.bytes_in,
            bytes_out = x.bytes_out,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            cause = %q(capped(x.cause.as_deref().unwrap_or(""), 512)),
        );
    }
}

/// A client-influenced field of the access log: quoted and escaped in the text format (the
/// JSON writer escapes strings itself), written into the line without a copy.
struct Quoted<'a>(&'a str, bool);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.1 {
            write!(f, "{:?}", self.0)
        } else {
            f.write_str(self.0)
        }
    }
}

/// The client's address as the access log shows it (`-` when unknown), written into the line.
struct Client(Option<std::net::IpAddr>);

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => std::fmt::Display::fmt(&ip, f),
            None => f.write_str("-"),
        }
    }
}

/// At most `max` characters of `s` (a cause can quote a client's or a backend's words).
fn capped(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// The most of a bucket name the access log shows (HCP's are at most 63 characters; a longer
/// one is refused, and shown cut).
const LOGGED_BUCKET_CHARS: usize = 64;

/// The most of an object key the access log shows: a refused request's key, or one of
/// control characters that the log escapes several-fold, makes no line longer than a log
/// collector takes whole (CRI splits lines at 16 KiB; a piece of a line split there would
/// read as a line of its own).
const LOGGED_KEY_CHARS: usize = 1024;

/// At most `max` characters of `s`; a longer one cut, marked with `…`.
fn shown(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &s[..end]).into(),
        None => s.into(),
    }
}

/// An object key as the access log shows it (`server.log_keys`; a long one cut).
pub(super) fn logged_key(
    key: Option<&str>,
    how: crate::config::LogKeys,
) -> std::borrow::Cow<'_, str> {
    use crate::config::LogKeys;
    match (key, how) {
        (None, _) | (Some(_), LogKeys::Omit) => "-".into(),
        (Some(k), LogKeys::Full) => shown(k, LOGGED_KEY_CHARS),
        (Some(k), LogKeys::Hash) => sigv4::sha256_hex(k.as_bytes())[..16].to_string().into(),
    }
}

/// The backend's id for a request, for the access log: the value of its request-id header
/// (kept as it came, no copy), or the `RequestId` of its error document.
pub(super) enum BackendRequestId {
    /// A header value that is visible ASCII (others are not kept).
    Header(http::HeaderValue),
    Document(String),
}

impl BackendRequestId {
    /// The header's value, if it is visible ASCII.
    pub(super) fn of_header(value: &http::HeaderValue) -> Option<BackendRequestId> {
        value
            .to_str()
            .is_ok()
            .then(|| BackendRequestId::Header(value.clone()))
    }

    pub(super) fn as_str(&self) -> &str {
        match self {
            BackendRequestId::Header(value) => value.to_str().unwrap_or_default(),
            BackendRequestId::Document(text) => text,
        }
    }
}

/// How many request ids' header values share one block of the thread's (512 bytes: an answer
/// a client keeps open holds its block, little beside the backend's read buffer a download in
/// progress holds).
const IDS_PER_BLOCK: usize = 32;

/// A request's id: 16 upper-case hex digits, kept on the stack; its header value is made where
/// an answer needs it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId([u8; 16]);

impl RequestId {
    /// A new random id.
    pub(super) fn new() -> RequestId {
        use rand::RngCore;
        let mut b = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut b);
        let mut id = [0u8; 16];
        hex::encode_to_slice(b, &mut id).expect("two digits per byte");
        id.make_ascii_uppercase();
        RequestId(id)
    }

    /// `x-amz-request-id`'s value: its bytes cut from a block the thread shares out among
    /// the ids of its next [`IDS_PER_BLOCK`] answers (a block is freed when the last answer
    /// made from it is), not an allocation of their own each.
    pub fn header(&self) -> http::HeaderValue {
        thread_local! {
            static BLOCK: std::cell::RefCell<bytes::BytesMut> =
                std::cell::RefCell::new(bytes::BytesMut::new());
        }
        BLOCK.with_borrow_mut(|block| {
            if block.capacity() < self.0.len() {
                *block = bytes::BytesMut::with_capacity(self.0.len() * IDS_PER_BLOCK);
            }
            block.extend_from_slice(&self.0);
            http::HeaderValue::from_maybe_shared(block.split().freeze())
                .expect("hex digits are a header value")
        })
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId([b'0'; 16])
    }
}

impl std::ops::Deref for RequestId {
    type Target = str;
    fn deref(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogKeys;

    /// Ids cut from the thread's blocks (across several) each read as their own, and still
    /// do once later ones were cut.
    #[test]
    fn request_id_values_cut_from_shared_blocks_stay_their_own() {
        let ids: Vec<RequestId> = (0..IDS_PER_BLOCK * 2 + 7)
            .map(|_| RequestId::new())
            .collect();
        let values: Vec<http::HeaderValue> = ids.iter().map(RequestId::header).collect();
        for (id, value) in ids.iter().zip(&values) {
            assert_eq!(value.as_bytes(), id.as_bytes());
            assert_eq!(value.len(), 16);
        }
        let distinct: std::collections::HashSet<_> = values.iter().map(|v| v.as_bytes()).collect();
        assert_eq!(distinct.len(), ids.len(), "random ids, each its own value");
    }

    #[test]
    fn keys_in_the_access_log_follow_the_configuration() {
        assert_eq!(logged_key(Some("a/b"), LogKeys::Full), "a/b");
        assert_eq!(logged_key(Some("a/b"), LogKeys::Omit), "-");
        let hashed = logged_key(Some("a/b"), LogKeys::Hash);
        assert_eq!(hashed.len(), 16);
        assert_eq!(hashed, &sigv4::sha256_hex(b"a/b")[..16]);
        assert_eq!(logged_key(None, LogKeys::Full), "-");
        // A long key is cut (with its mark); its hash is of the whole key.
        let long = "k".repeat(5000);
        let cut = logged_key(Some(&long), LogKeys::Full);
        assert_eq!(cut.chars().count(), LOGGED_KEY_CHARS + 1);
        assert!(cut.ends_with('…') && long.starts_with(cut.trim_end_matches('…')));
        assert_eq!(logged_key(Some(&long), LogKeys::Hash).len(), 16);
        assert_eq!(shown("bucket", LOGGED_BUCKET_CHARS), "bucket");
        assert_eq!(
            shown(&"é".repeat(70), LOGGED_BUCKET_CHARS).chars().count(),
            65
        );
    }

    /// A key named in the path is logged decoded, as a form's field is, whatever its bytes.
    #[test]
    fn a_path_key_is_logged_decoded() {
        let path = |raw: &[u8]| NamedKey::Path(raw.into()).text().into_owned();
        assert_eq!(path(b"a/b"), "a/b");
        assert_eq!(path(b"k%20x//y/"), "k x//y/");
        assert_eq!(path(b"%E2%82%AC%FF"), "\u{20ac}\u{fffd}");
        assert_eq!(NamedKey::Form("f x".into()).text(), "f x");
    }

    /// A backend's request id reaches the log as it came: a header's only when it is visible
    /// ASCII, an error document's whatever it holds — quoted and escaped in the text format.
    #[test]
    fn backend_request_ids_are_logged_as_they_came() {
        let header = |v: &[u8]| {
            BackendRequestId::of_header(&http::HeaderValue::from_bytes(v).unwrap())
                .map(|id| id.as_str().to_string())
        };
        assert_eq!(header(b"tx00-abc"), Some("tx00-abc".into()));
        assert_eq!(header(b"r\xe9q"), None);
        let document = BackendRequestId::Document("\nABC r\u{e9}q\" status=200".into());
        assert_eq!(document.as_str(), "\nABC r\u{e9}q\" status=200");
        assert_eq!(
            Quoted(document.as_str(), true).to_string(),
            r#""\nABC réq\" status=200""#
        );
        let id = RequestId::new();
        assert_eq!(id.len(), 16);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
        assert_eq!(id.header(), &*id);
        assert_eq!(id.to_string(), &*id);
    }
}
