//! AWS Signature Version 4 for S3: canonical request, string to sign, key derivation and signature.
//!
//! One module serves both directions: verifying what clients signed and signing what the gateway
//! sends to backends, so the two can never disagree about canonical form. S3's rules apply: each
//! path segment is URI-encoded once and the path is never normalised (`.`, `..` and `//` are
//! meaningful in keys).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// SHA-256 of the empty string, the payload hash of a request without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

type HmacSha256 = Hmac<Sha256>;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn push_escaped(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[(b >> 4) as usize] as char);
    out.push(HEX[(b & 15) as usize] as char);
}

/// URI-encodes raw bytes by SigV4's rules: everything but `A-Z a-z 0-9 - _ . ~` becomes `%XX`
/// (upper-case hex), and `/` is kept when `keep_slash` is set (paths).
pub fn uri_encode(bytes: &[u8], keep_slash: bool, out: &mut String) {
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            push_escaped(out, b);
        }
    }
}

/// Brings text as it appeared on the wire into canonical encoding without decoding it first:
/// existing `%XX` escapes stay (hex upper-cased), bytes that need encoding are encoded. A client's
/// signature is thus checked against exactly the path and query it sent; for text the gateway
/// encoded itself this is the identity. (Runs of bytes kept as they are — escapes already in
/// upper-case hex among them — are appended whole, not a byte at a time: most of a signed
/// query is such runs, a presigned credential's `%2F`s included.)
pub fn canonicalize_encoded(raw: &[u8], keep_slash: bool, out: &mut String) {
    let kept = if keep_slash {
        UNRESERVED | SLASH
    } else {
        UNRESERVED
    };
    // The input as text, validated once (a run's bounds are next to ASCII bytes or at its
    // ends: boundaries of its text), so that each run is copied without a check of its own.
    let text = std::str::from_utf8(raw).ok();
    let mut i = 0;
    while i < raw.len() {
        let end = i + canonical_run(&raw[i..], kept);
        if end > i {
            let run = match text {
                Some(text) => &text[i..end],
                None => std::str::from_utf8(&raw[i..end]).expect("kept bytes are ASCII"),
            };
            out.push_str(run);
            i = end;
            continue;
        }
        let b = raw[i];
        if b == b'%'
            && i + 2 < raw.len()
            && raw[i + 1].is_ascii_hexdigit()
            && raw[i + 2].is_ascii_hexdigit()
        {
            out.push('%');
            out.push(raw[i + 1].to_ascii_uppercase() as char);
            out.push(raw[i + 2].to_ascii_uppercase() as char);
            i += 3;
            continue;
        }
        push_escaped(out, b);
        i += 1;
    }
}

/// [`BYTE_CLASS`]' bits: SigV4's unreserved bytes, `/`, and upper-case hex digits.
const UNRESERVED: u8 = 1;
const SLASH: u8 = 2;
const UPPER_HEX: u8 = 4;

/// Each byte's classes for [`canonicalize_encoded`] (a table, not a chain of comparisons per
/// byte); `byte_classes_are_the_rule_s` checks it against [`is_unreserved`].
static BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
            table[b] |= UNRESERVED;
        }
        if c == b'/' {
            table[b] |= SLASH;
        }
        if c.is_ascii_digit() || matches!(c, b'A'..=b'F') {
            table[b] |= UPPER_HEX;
        }
        b += 1;
    }
    table
};

/// The canonical URI of a raw request path (S3: encoded once, not normalised).
pub fn canonical_uri(raw_path: &[u8]) -> String {
    let mut out = String::with_capacity(raw_path.len() + 8);
    canonical_uri_into(raw_path, &mut out);
    out
}

/// [`canonical_uri`], appended to `out`.
pub fn canonical_uri_into(raw_path: &[u8], out: &mut String) {
    if raw_path.is_empty() {
        out.push('/');
    } else {
        canonicalize_encoded(raw_path, true, out);
    }
}

/// The canonical query string of a raw query (without `?`): each name and value canonically
/// encoded, `name=` for a parameter without value, sorted by name then value. Parameters named
/// in `skip` are left out (`X-Amz-Signature` when verifying a presigned URL).
pub fn canonical_query(raw_query: &[u8], skip: &[&str]) -> String {
    let mut out = String::new();
    canonical_query_into(raw_query, skip, &mut out);
    out
}

/// [`canonical_query`], appended to `out`. A query already in canonical form — each part
/// `name=value` in canonical encoding, in canonical order, as SDKs write presigned URLs — is
/// copied as it is (less the parameters in `skip`); any other is encoded and sorted in buffers
/// kept per thread (the request's own allocations: none). Both give the same text
/// (`a_canonical_query_is_copied_as_sorting_would_write_it`).
pub fn canonical_query_into(raw_query: &[u8], skip: &[&str], out: &mut String) {
    if raw_query.is_empty() {
        return;
    }
    let start = out.len();
    if copy_canonical_query(raw_query, skip, out) {
        return;
    }
    out.truncate(start);
    canonical_query_by_sorting_into(raw_query, skip, out);
}

/// Appends `raw_query` less the parameters in `skip`, and answers whether that is its canonical
/// query: every non-empty part `name=value` with name and value in canonical encoding (so that
/// encoding them again is the identity) and the parts in order of (name, value). Where it
/// answers `false`, what it appended is to be dropped.
fn copy_canonical_query(raw_query: &[u8], skip: &[&str], out: &mut String) -> bool {
    // (Bytes that pass are ASCII, `&` and `=` too: the whole query is text when it passes.)
    let Ok(text) = std::str::from_utf8(raw_query) else {
        return false;
    };
    let mut previous: Option<(&str, &str)> = None;
    let mut at = 0;
    while at < raw_query.len() {
        let end = memchr::memchr(b'&', &raw_query[at..]).map_or(raw_query.len(), |i| at + i);
        let part = &raw_query[at..end];
        let from = at;
        at = end + 1;
        if part.is_empty() {
            continue;
        }
        let eq = canonical_run(part, UNRESERVED);
        if part.get(eq) != Some(&b'=') {
            return false;
        }
        let value_bytes = &part[eq + 1..];
        if canonical_run(value_bytes, UNRESERVED) != value_bytes.len() {
            return false;
        }
        let name = &text[from..from + eq];
        let value = &text[from + eq + 1..end];
        if skip.contains(&name) {
            continue;
        }
        if previous.is_some_and(|p| p > (name, value)) {
            return false;
        }
        if previous.is_some() {
            out.push('&');
        }
        out.push_str(&text[from..end]);
        previous = Some((name, value));
    }
    true
}

/// The length of `bytes`' longest prefix in canonical encoding: bytes of the classes `kept`
/// ([`UNRESERVED`], with [`SLASH`] in a path) and `%XX` escapes in upper-case hex.
fn canonical_run(bytes: &[u8], kept: u8) -> usize {
    let class = |b: u8| BYTE_CLASS[usize::from(b)];
    let mut i = 0;
    while i < bytes.len() {
        if class(bytes[i]) & kept != 0 {
            i += 1;
        } else if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && class(bytes[i + 1]) & UPPER_HEX != 0
            && class(bytes[i + 2]) & UPPER_HEX != 0
        {
            i += 3;
        } else {
            break;
        }
    }
    i
}

/// [`canonical_query_into`] by encoding each parameter and sorting them, whatever the query's
/// form.
#[doc(hidden)]
pub fn canonical_query_by_sorting_into(raw_query: &[u8], skip: &[&str], out: &mut String) {
    crate::kept::with(&PAIRS, |pairs| {
        for part in raw_query.split(|&b| b == b'&') {
            if part.is_empty() {
                continue;
            }
            let (name, value) = match memchr::memchr(b'=', part) {
                Some(eq) => (&part[..eq], &part[eq + 1..]),
                None => (part, &b""[..]),
            };
            pairs.push(
                |out| canonicalize_encoded(name, false, out),
                |out| canonicalize_encoded(value, false, out),
                skip,
            );
        }
        pairs.join_into(out);
    });
}

thread_local! {
    /// [`canonical_query_into`]'s parameters, encoded and sorted.
    static PAIRS: std::cell::RefCell<EncodedPairs> =
        std::cell::RefCell::new(EncodedPairs::default());
    /// [`Canonical::digest`]'s canonical request.
    static CANONICAL_TEXT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Encoded query parameters in one buffer (names and values one after another) with where each
/// is, so that a canonical query costs two allocations and its result, not two per parameter.
#[derive(Default)]
pub struct EncodedPairs {
    text: String,
    /// (name start, value start, value end) in `text`.
    spans: Vec<(usize, usize, usize)>,
}

impl EncodedPairs {
    pub fn with_capacity(bytes: usize) -> Self {
        EncodedPairs {
            text: String::with_capacity(bytes + bytes / 4),
            spans: Vec::with_capacity(8),
        }
    }

    /// Adds a parameter whose name and value the two closures write (encoded); a name in
    /// `skip` is left out.
    pub fn push(
        &mut self,
        name: impl FnOnce(&mut String),
        value: impl FnOnce(&mut String),
        skip: &[&str],
    ) {
        let start = self.text.len();
        name(&mut self.text);
        if skip.contains(&&self.text[start..]) {
            self.text.truncate(start);
            return;
        }
        let eq = self.text.len();
        value(&mut self.text);
        self.spans.push((start, eq, self.text.len()));
    }

    /// The canonical query string: sorted by name then value, `name=value` joined by `&`.
    pub fn joined(mut self) -> String {
        let mut out = String::with_capacity(self.text.len() + 2 * self.spans.len());
        self.join_into(&mut out);
        out
    }

    /// [`EncodedPairs::joined`], appended to `out`.
    fn join_into(&mut self, out: &mut String) {
        let text = &self.text;
        let pair = |&(s, e, end): &(usize, usize, usize)| (&text[s..e], &text[e..end]);
        // (Equal pairs are equal text: their order does not show.)
        self.spans.sort_unstable_by(|a, b| pair(a).cmp(&pair(b)));
        for (i, span) in self.spans.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            let (n, v) = pair(span);
            out.push_str(n);
            out.push('=');
            out.push_str(v);
        }
    }
}

impl crate::kept::Kept for EncodedPairs {
    fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
    }

    /// The text's and the spans' (a query of empty parameters writes no text but a span for
    /// each).
    fn kept_bytes(&self) -> usize {
        self.text.capacity() + self.spans.capacity() * std::mem::size_of::<(usize, usize, usize)>()
    }
}

/// A canonical request fit for a debug log: the values of headers and query parameters that
/// carry secrets (session tokens, SSE-C keys, signatures, credentials) are replaced.
pub fn redacted_canonical(canonical: &str) -> String {
    fn secret(name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        n.contains("security-token")
            || n.ends_with("customer-key")
            || n == "authorization"
            || n == "x-amz-signature"
            || n == "x-amz-credential"
            || n == "signature"
    }
    let mut out = String::with_capacity(canonical.len());
    for (i, line) in canonical.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if i == 2 {
            let params: Vec<String> = line
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((n, _)) if secret(n) => format!("{n}=REDACTED"),
                    _ => p.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
            continue;
        }
        match line.split_once(':') {
            Some((n, _)) if i > 2 && secret(n) => {
                out.push_str(n);
                out.push_str(":REDACTED");
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// A header value in canonical form: trimmed, with runs of spaces collapsed to one. False
/// where the value is no UTF-8 text, written lossily: such a value's canonical form is not its
/// own (`\xC3(` and `\xFF(` both read `\u{FFFD}(`).
pub fn canonical_header_value(value: &[u8], out: &mut String) -> bool {
    if memchr::memchr2(b' ', b'\t', value).is_none() {
        // (Most values: nothing to trim or collapse, and valid text.)
        if let Ok(text) = std::str::from_utf8(value) {
            out.push_str(text);
            return true;
        }
    }
    let text = String::from_utf8_lossy(value);
    let whole = matches!(text, std::borrow::Cow::Borrowed(_));
    let mut first = true;
    for word in text.split([' ', '\t']).filter(|w| !w.is_empty()) {
        if !first {
            out.push(' ');
        }
        out.push_str(word);
        first = false;
    }
    whole
}

/// Builds the canonical request. `headers` yields `(lower-case name, value)` for every header
/// named in `signed_headers` (repeated names are joined with commas, in order of appearance).
pub fn canonical_request<'a, V: IntoIterator<Item = &'a [u8]>>(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    signed_headers: &str,
    headers: impl Fn(&str) -> V,
    payload_hash: &str,
) -> String {
    let mut out = String::with_capacity(256 + canonical_uri.len() + canonical_query.len());
    Canonical {
        method,
        uri: |out: &mut String| out.push_str(canonical_uri),
        query: |out: &mut String| out.push_str(canonical_query),
        signed_headers,
        headers,
        payload_hash,
    }
    .write(&mut out);
    out
}

/// A canonical request's parts, its URI and query written by closures (canonicalising a
/// client's text, or copying the gateway's own canonical text).
pub struct Canonical<'s, U, Q, H> {
    pub method: &'s str,
    pub uri: U,
    pub query: Q,
    pub signed_headers: &'s str,
    pub headers: H,
    pub payload_hash: &'s str,
}

impl<'s, U, Q, H> Canonical<'s, U, Q, H>
where
    U: FnOnce(&mut String),
    Q: FnOnce(&mut String),
    H: CanonicalHeaders,
{
    /// SHA-256 of the canonical request, written into a buffer kept per thread (the request's
    /// own allocations: none) — what the string to sign holds of it.
    pub fn digest(self) -> [u8; 32] {
        self.digest_of_text().0
    }

    /// [`digest`](Self::digest), and whether every header value in it was UTF-8 text (a
    /// client's request whose signed values are not has no canonical form of its own).
    pub fn digest_of_text(self) -> ([u8; 32], bool) {
        crate::kept::with(&CANONICAL_TEXT, |text| {
            let whole = self.write(text);
            (Sha256::digest(text.as_bytes()).into(), whole)
        })
    }

    /// Appends the canonical request to `out`; false if a header value was no UTF-8 text.
    pub fn write(self, out: &mut String) -> bool {
        let Canonical {
            method,
            uri,
            query,
            signed_headers,
            headers,
            payload_hash,
        } = self;
        out.push_str(method);
        out.push('\n');
        uri(out);
        out.push('\n');
        query(out);
        out.push('\n');
        let whole = headers.write_lines(signed_headers, out);
        out.push('\n');
        out.push_str(signed_headers);
        out.push('\n');
        out.push_str(payload_hash);
        whole
    }
}

/// Where a canonical request's header lines come from.
pub trait CanonicalHeaders {
    /// Appends the header lines of the names in `signed_headers`, each `name:value\n` (a
    /// repeated name's values joined by commas, in order of appearance); false if a value was no
    /// UTF-8 text ([`canonical_header_value`]).
    fn write_lines(&self, signed_headers: &str, out: &mut String) -> bool;
}

/// A lookup by name, for each name `signed_headers` lists (what a client signed, checked).
impl<'a, F, V> CanonicalHeaders for F
where
    F: Fn(&str) -> V,
    V: IntoIterator<Item = &'a [u8]>,
{
    fn write_lines(&self, signed_headers: &str, out: &mut String) -> bool {
        let mut whole = true;
        for name in signed_headers.split(';') {
            out.push_str(name);
            out.push(':');
            for (i, v) in self(name).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                whole &= canonical_header_value(v, out);
            }
            out.push('\n');
        }
        whole
    }
}

/// The headers to sign already in canonical order — (lower-case name, value) sorted by name, a
/// repeated name's values next to each other in order of appearance — which are what
/// `signed_headers` lists (the gateway's own request, whose header map it walked once): written
/// without a lookup per name.
pub struct SortedHeaders<'h>(pub &'h [(&'h str, &'h [u8])]);

impl CanonicalHeaders for SortedHeaders<'_> {
    fn write_lines(&self, _signed_headers: &str, out: &mut String) -> bool {
        let mut whole = true;
        let mut previous: Option<&str> = None;
        for &(name, value) in self.0 {
            if previous == Some(name) {
                out.push(',');
            } else {
                if previous.is_some() {
                    out.push('\n');
                }
                out.push_str(name);
                out.push(':');
            }
            whole &= canonical_header_value(value, out);
            previous = Some(name);
        }
        if previous.is_some() {
            out.push('\n');
        }
        whole
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex_string(&Sha256::digest(data))
}

/// `bytes` in lowercase hex, as a string of its own.
fn hex_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// Appends `bytes` in lowercase hex, SigV4's encoding of digests and signatures: through a
/// buffer on the stack (`hex::encode` collects the digits one `char` at a time into a new
/// string, a measurable share of a request's CPU with four digests per request).
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(buf.len() / 2) {
        let digits = &mut buf[..chunk.len() * 2];
        hex::encode_to_slice(chunk, digits).expect("the buffer holds two digits per byte");
        out.push_str(std::str::from_utf8(digits).expect("hex digits are ASCII"));
    }
}

/// The credential scope `yyyymmdd/region/service/aws4_request`.
pub fn scope(date: &str, region: &str, service: &str) -> String {
    scope_pieces(date, region, service).concat()
}

/// [`scope`] in the pieces it is made of, for a signature that needs no string of it.
pub fn scope_pieces<'a>(date: &'a str, region: &'a str, service: &'a str) -> [&'a str; 6] {
    [date, "/", region, "/", service, "/aws4_request"]
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let mut out = String::with_capacity(160);
    out.push_str(ALGORITHM);
    out.push('\n');
    out.push_str(amz_date);
    out.push('\n');
    out.push_str(scope);
    out.push('\n');
    push_hex(&mut out, &Sha256::digest(canonical_request.as_bytes()));
    out
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Derives the signing key `HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")`.
pub fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut k = String::with_capacity(4 + secret.len());
    k.push_str("AWS4");
    k.push_str(secret);
    let k_date = hmac_sha256(k.as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// A derived signing key with its HMAC keyed: the key's two padded blocks (HMAC's inner and
/// outer pads) hashed once, when the key is derived or kept, so that each signature made with
/// it hashes only its message — two SHA-256 blocks fewer per signature, and every request
/// verifies one and makes one. Equal when their key bytes are (compared in constant time);
/// never shown.
#[derive(Clone)]
pub struct SigningKey {
    bytes: [u8; 32],
    mac: HmacSha256,
}

impl SigningKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        SigningKey {
            bytes,
            mac: <HmacSha256 as KeyInit>::new_from_slice(&bytes)
                .expect("HMAC takes any key length"),
        }
    }

    /// The signing key of `secret` for a scope ([`derive_signing_key`]), keyed.
    pub fn derive(secret: &str, date: &str, region: &str, service: &str) -> Self {
        SigningKey::new(derive_signing_key(secret, date, region, service))
    }

    /// The key's HMAC, keyed and ready for a message.
    pub fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }

    /// The HMAC of `data` under this key.
    pub fn hmac(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.bytes.ct_eq(&other.bytes))
    }
}

impl Eq for SigningKey {}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The hex signature of a string to sign.
pub fn signature(signing_key: &SigningKey, string_to_sign: &str) -> String {
    hex_string(&signing_key.hmac(string_to_sign.as_bytes()))
}

/// A request's signature: [`signature`] of [`string_to_sign`] for the canonical request whose
/// SHA-256 is `canonical_digest` ([`Canonical::digest`]) and whose credential scope is the
/// pieces of `scope` one after another ([`scope_pieces`]), the string to sign fed to the HMAC
/// piece by piece and the signature written on the stack — neither made a string of its own
/// (a request verifies one signature and makes one).
pub fn request_signature(
    signing_key: &SigningKey,
    amz_date: &str,
    scope: &[&str],
    canonical_digest: &[u8; 32],
) -> Hex32 {
    let mut mac = signing_key.mac();
    for part in [ALGORITHM, "\n", amz_date, "\n"] {
        mac.update(part.as_bytes());
    }
    for piece in scope {
        mac.update(piece.as_bytes());
    }
    mac.update(b"\n");
    mac.update(Hex32::of(canonical_digest).as_str().as_bytes());
    Hex32::of(&mac.finalize().into_bytes().into())
}

/// 32 bytes (a SHA-256 digest, a signature) in lowercase hex, on the stack.
#[derive(Clone, Copy)]
pub struct Hex32([u8; 64]);

impl Hex32 {
    pub fn of(bytes: &[u8; 32]) -> Self {
        let mut digits = [0u8; 64];
        hex::encode_to_slice(bytes, &mut digits).expect("two digits per byte");
        Hex32(digits)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

/// A secret key with the signing keys derived from it lately, kept beside it: looking one up
/// compares the scope's few bytes with each kept one under a read lock — no string composed,
/// none hashed, no allocation. At most [`DERIVED_PER_SECRET`] scopes per secret (the least
/// recently used is replaced); a scope longer than [`SCOPE_MAX`] bytes, or with a newline in a
/// part (where its parts would be ambiguous), is derived each time, never kept. A derived key
/// is a pure function of the secret and its scope, so a kept one never goes stale; a rotated
/// secret is a new `Secret` with nothing kept.
pub struct Secret {
    secret: Box<str>,
    derived: std::sync::RwLock<DerivedKeys>,
    /// Counts lookups, to tell which kept scope was used last.
    uses: std::sync::atomic::AtomicU64,
}

/// How many scopes (date, region, service) a secret keeps the derived key of.
pub const DERIVED_PER_SECRET: usize = 4;
/// The longest `date\nregion\nservice` whose key is kept.
pub const SCOPE_MAX: usize = 64;

#[derive(Default)]
struct DerivedKeys {
    kept: [Option<Derived>; DERIVED_PER_SECRET],
}

struct Derived {
    scope: ScopeKey,
    key: SigningKey,
    /// The secret's use count when this key was last looked up.
    used: std::sync::atomic::AtomicU64,
}

/// A scope as `date\nregion\nservice` on the stack: what a kept key is found by.
#[derive(Clone, Copy)]
struct ScopeKey {
    bytes: [u8; SCOPE_MAX],
    len: u8,
}

impl ScopeKey {
    /// `None` when the scope is too long to keep or a part holds the separator.
    fn of(date: &str, region: &str, service: &str) -> Option<Self> {
        if [date, region, service].iter().any(|p| p.contains('\n')) {
            return None;
        }
        let parts = [date, "\n", region, "\n", service];
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut bytes = [0u8; SCOPE_MAX];
        let mut at = 0;
        for p in parts {
            bytes
                .get_mut(at..at + p.len())?
                .copy_from_slice(p.as_bytes());
            at += p.len();
        }
        Some(ScopeKey {
            bytes,
            len: u8::try_from(len).ok()?,
        })
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Secret {
    pub fn new(secret: impl Into<Box<str>>) -> Self {
        Secret {
            secret: secret.into(),
            derived: std::sync::RwLock::default(),
            uses: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn expose(&self) -> &str {
        &self.secret
    }

    fn tick(&self) -> u64 {
        self.uses.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    /// The key kept for this scope, if any; `mark` records the use (only a use whose key is
    /// known good: the gateway's own, or a verified client's — [`Secret::keep`]).
    fn lookup(&self, scope: &ScopeKey, mark: bool) -> Option<SigningKey> {
        self.find(scope, mark, |key| key.clone())
    }

    /// Whether a key is kept for this scope; records the use.
    fn is_kept(&self, scope: &ScopeKey) -> bool {
        self.find(scope, true, |_| ()).is_some()
    }

    /// `read` of the key kept for this scope, if any, under the read lock; `mark` records the
    /// use.
    fn find<R>(
        &self,
        scope: &ScopeKey,
        mark: bool,
        read: impl FnOnce(&SigningKey) -> R,
    ) -> Option<R> {
        use std::sync::atomic::Ordering::Relaxed;
        let kept = self
            .derived
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = kept
            .kept
            .iter()
            .flatten()
            .find(|d| d.scope.as_bytes() == scope.as_bytes())?;
        if mark {
            found.used.fetch_max(self.tick(), Relaxed);
        }
        Some(read(&found.key))
    }

    /// The key kept for this scope, if any (the lookup is not counted as a use).
    pub fn kept_key(&self, date: &str, region: &str, service: &str) -> Option<SigningKey> {
        self.lookup(&ScopeKey::of(date, region, service)?, false)
    }

    /// Keeps `key` as this scope's (derived from this secret, and known good: the gateway's
    /// own, or one a signature matched), in place of the least recently used kept scope; if the
    /// scope is kept already, records the use.
    pub fn keep(&self, date: &str, region: &str, service: &str, key: &SigningKey) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(scope) = ScopeKey::of(date, region, service) else {
            return;
        };
        // (Kept already, the common case: under the read lock.)
        if self.is_kept(&scope) {
            return;
        }
        let mut kept = self
            .derived
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept
            .kept
            .iter()
            .flatten()
            .any(|d| d.scope.as_bytes() == scope.as_bytes())
        {
            return;
        }
        let slot = kept
            .kept
            .iter_mut()
            .min_by_key(|d| d.as_ref().map_or(0, |d| d.used.load(Relaxed)))
            .expect("slots");
        *slot = Some(Derived {
            scope,
            key: key.clone(),
            used: self.tick().into(),
        });
    }

    /// The signing key for this scope and whether it was kept: the kept one, else derived now
    /// (not kept). `mark` counts the lookup as a use of the kept key (see [`Secret::lookup`]).
    fn signing_key(
        &self,
        date: &str,
        region: &str,
        service: &str,
        mark: bool,
    ) -> (SigningKey, bool) {
        let kept = ScopeKey::of(date, region, service).and_then(|scope| self.lookup(&scope, mark));
        match kept {
            Some(key) => (key, true),
            None => (
                SigningKey::derive(&self.secret, date, region, service),
                false,
            ),
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Counts the lookups of derived signing keys (kept beside each [`Secret`]) in
/// `hcp_gateway_cache_lookups_total{cache="signing_key"}`. Verifying a client and signing a
/// backend request both look up: the four HMACs run once per secret and scope. A client's key
/// is kept only once its signature matched ([`Secret::keep`], by the authenticator), so a caller
/// who does not know the secret cannot push the user's keys out.
#[derive(Default)]
pub struct SigningKeyCache {
    /// The hit and miss counters, when the gateway counts.
    lookups: Option<(prometheus::IntCounter, prometheus::IntCounter)>,
}

impl SigningKeyCache {
    /// A cache whose hits and misses are counted in `lookups` (labels cache, result).
    pub fn counted(lookups: &prometheus::IntCounterVec) -> Self {
        SigningKeyCache {
            lookups: Some((
                lookups.with_label_values(&["signing_key", "hit"]),
                lookups.with_label_values(&["signing_key", "miss"]),
            )),
        }
    }

    /// The gateway's own key for this scope (a backend's credentials): kept once derived.
    pub fn get(&self, secret: &Secret, date: &str, region: &str, service: &str) -> SigningKey {
        let (key, hit) = secret.signing_key(date, region, service, true);
        self.count(hit);
        if !hit {
            secret.keep(date, region, service, &key);
        }
        key
    }

    /// The key to check a client's signature with; kept, and its use recorded, only by
    /// [`Secret::keep`] once the signature matched (a caller without the secret neither adds a scope nor keeps one
    /// from being replaced).
    pub fn to_verify(
        &self,
        secret: &Secret,
        date: &str,
        region: &str,
        service: &str,
    ) -> SigningKey {
        let (key, hit) = secret.signing_key(date, region, service, false);
        self.count(hit);
        key
    }

    fn count(&self, hit: bool) {
        if let Some((hits, misses)) = &self.lookups {
            if hit { hits } else { misses }.inc();
        }
    }
}

/// Compares two signatures in constant time.
pub fn signatures_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A SigV4 signature's length in hex digits.
const SIGNATURE_LEN: usize = 64;

/// `Authorization`'s value written before its signature is known, in the one string it ends
/// as: the credential's scope and the signed headers a signature needs are read back from it
/// ([`Self::scope`], [`Self::signed_headers`]), so they need no strings of their own.
pub struct Authorization {
    text: String,
    scope: std::ops::Range<usize>,
    signed_headers: std::ops::Range<usize>,
}

impl Authorization {
    /// Everything but the signature: the access key, the scope of `date`, `region` and
    /// `service`, and `signed_names` (sorted, distinct, lower-case) joined with `;`.
    /// The value is written in `text` (emptied first), which [`Self::finish`] gives back: a
    /// signer that keeps a buffer writes without allocating.
    pub fn begin_in(
        mut text: String,
        access_key: &str,
        (date, region, service): (&str, &str, &str),
        signed_names: &[&str],
    ) -> Authorization {
        // Room for the value with its 64-digit signature, reserved at once.
        let names = signed_names
            .iter()
            .map(|n| n.len() + 1)
            .sum::<usize>()
            .saturating_sub(1);
        let scope: usize = scope_pieces(date, region, service)
            .iter()
            .map(|p| p.len())
            .sum();
        text.clear();
        text.reserve_exact(
            ALGORITHM.len()
                + " Credential=/".len()
                + access_key.len()
                + scope
                + ", SignedHeaders=".len()
                + names
                + ", Signature=".len()
                + SIGNATURE_LEN,
        );
        text.push_str(ALGORITHM);
        text.push_str(" Credential=");
        text.push_str(access_key);
        text.push('/');
        let start = text.len();
        for piece in scope_pieces(date, region, service) {
            text.push_str(piece);
        }
        let scope = start..text.len();
        text.push_str(", SignedHeaders=");
        let start = text.len();
        for (i, name) in signed_names.iter().enumerate() {
            if i > 0 {
                text.push(';');
            }
            text.push_str(name);
        }
        let signed_headers = start..text.len();
        text.push_str(", Signature=");
        Authorization {
            text,
            scope,
            signed_headers,
        }
    }

    /// `yyyymmdd/region/service/aws4_request`.
    pub fn scope(&self) -> &str {
        &self.text[self.scope.clone()]
    }

    /// The signed headers' names, joined with `;`.
    pub fn signed_headers(&self) -> &str {
        &self.text[self.signed_headers.clone()]
    }

    /// The whole value, with `signature`.
    pub fn finish(mut self, signature: &str) -> String {
        debug_assert_eq!(signature.len(), SIGNATURE_LEN);
        self.text.push_str(signature);
        self.text
    }
}

/// Formats the `Authorization` header value (the tests' clients sign with it; [`Authorization`]
/// is checked against it).
pub fn authorization(
    access_key: &str,
    scope: &str,
    signed_headers: &str,
    signature: &str,
) -> String {
    [
        ALGORITHM,
        " Credential=",
        access_key,
        "/",
        scope,
        ", SignedHeaders=",
        signed_headers,
        ", Signature=",
        signature,
    ]
    .concat()
}

#[cfg(test)]
mod tests;
