//! Request bodies, verified while they stream: the signed SHA-256 of a plain body, `Content-MD5`,
//! `x-amz-checksum-*` headers, and aws-chunked bodies (chunk signatures chained from the seed
//! signature, trailing checksums and the trailer signature).
//!
//! [`BodyVerifier::push`] releases decoded bytes only once they are verified (a signed chunk
//! after its signature matched); whole-body checks are decided in [`BodyVerifier::finish`], so
//! the caller holds back the last released piece until then.

use base64::Engine as _;
use bytes::Bytes;
use md5::Md5;
use pingora::http::RequestHeader;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::hcp::errors::{HcpCode, HcpError};
use crate::request::authenticate::{ChunkSigner, Payload};
use crate::request::held::Held;
use crate::sig::v4 as sigv4;

/// The `Content-MD5` of a body the gateway holds whole and sends itself (Base64 of its MD5).
pub fn content_md5(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(body))
}

/// The `Content-MD5` of an empty body: [`content_md5`] of nothing.
pub const EMPTY_MD5: &str = "1B2M2Y8AsgTpgAmY7PhCfg==";

/// Longest chunk header or trailer line accepted (MinIO uses the same bound).
const MAX_LINE: usize = 4096;

/// Most bytes of trailer lines accepted after the final chunk, their CRLFs included: the
/// trailers S3 defines (one checksum and the trailer's signature) take a few hundred. The
/// trailer is held until the body ends and counts toward no declared length, so without this
/// bound a client could grow it line by line for as long as it keeps sending.
const MAX_TRAILER: usize = 4 * MAX_LINE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    /// The algorithm named by an `x-amz-checksum-*` header name.
    pub fn from_header(name: &str) -> Option<Self> {
        Some(match name.strip_prefix("x-amz-checksum-")? {
            "crc32" => ChecksumAlgorithm::Crc32,
            "crc32c" => ChecksumAlgorithm::Crc32c,
            "crc64nvme" => ChecksumAlgorithm::Crc64Nvme,
            "sha1" => ChecksumAlgorithm::Sha1,
            "sha256" => ChecksumAlgorithm::Sha256,
            _ => return None,
        })
    }

    /// The name of its `x-amz-checksum-*` header (and trailer).
    pub fn header_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// Its name in `x-amz-sdk-checksum-algorithm`.
    pub fn sdk_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// The digest's length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }

    /// A running digest of this algorithm.
    pub fn digest(self) -> Digester {
        Digester(self.hasher())
    }

    fn hasher(self) -> Hasher {
        use crc_fast::CrcAlgorithm::*;
        match self {
            ChecksumAlgorithm::Crc32 => Hasher::Crc(crc_fast::Digest::new(Crc32IsoHdlc), 4),
            ChecksumAlgorithm::Crc32c => Hasher::Crc(crc_fast::Digest::new(Crc32Iscsi), 4),
            ChecksumAlgorithm::Crc64Nvme => Hasher::Crc(crc_fast::Digest::new(Crc64Nvme), 8),
            ChecksumAlgorithm::Sha1 => Hasher::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => Hasher::Sha256(Sha256::new()),
        }
    }
}

/// A running checksum of one of S3's algorithms, for a body the gateway frames itself
/// (`backend::aws_chunked`).
pub struct Digester(Hasher);

impl Digester {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest, big-endian, as S3 sends it (Base64 of these bytes).
    pub fn finish(self) -> Vec<u8> {
        self.0.finish()
    }
}

/// A running digest of the decoded body.
enum Hasher {
    /// CRC state and its width in bytes (the value is sent big-endian).
    Crc(crc_fast::Digest, usize),
    Sha1(Sha1),
    Sha256(Sha256),
    Md5(Md5),
}

impl Hasher {
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc(d, _) => d.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Md5(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Crc(d, width) => d.finalize().to_be_bytes()[8 - width..].to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Md5(h) => h.finalize().to_vec(),
        }
    }
}

/// A whole-body digest to compare at the end, and the answer if it differs.
struct Check {
    hasher: Hasher,
    expected: Vec<u8>,
    what: &'static str,
}

enum State {
    /// Reading `hex-size[;chunk-signature=sig]\r\n`.
    ChunkHeader,
    /// Reading `remaining` bytes of chunk data.
    Data {
        remaining: usize,
    },
    /// Expecting the `\r\n` after chunk data.
    DataEnd,
    /// Reading trailer lines until the empty line.
    Trailers,
    Done,
}

/// The aws-chunked decoder and its verification state.
struct Chunked {
    state: State,
    line: Vec<u8>,
    /// The signed chunk being read (it grows as its bytes arrive, to its size at most).
    data: Vec<u8>,
    /// The size its header gave the chunk being read.
    size: usize,
    chunk_signature: Option<String>,
    signer: Option<std::sync::Arc<ChunkSigner>>,
    previous_signature: String,
    /// The trailing checksum that `x-amz-trailer` announced, and its running digest.
    trailer: Option<(String, ChecksumAlgorithm, Option<Hasher>)>,
    trailer_text: String,
    /// Bytes of trailer lines read so far (at most [`MAX_TRAILER`]).
    trailer_bytes: usize,
    trailer_signature: Option<String>,
    trailer_value: Option<String>,
    max_chunk: usize,
    /// The decoded bytes the chunks announced so far leave of the declared length: a chunk
    /// announcing more is refused at its header, before any of it is held.
    left: u64,
    /// The bytes of the last chunk released: counted until its caller has sent it on
    /// (`BodyVerifier::taken`) or, for the one completing the body, held it back until the
    /// whole-body checks (`needs_hold_back`).
    released: usize,
    /// The bytes of the chunks released before it, sent on after the read that released the
    /// last one: counted until the next push, which comes after that write.
    prior: usize,
    /// The chunk being read and those released and not yet sent: their share of the bytes all
    /// requests may hold.
    held: Held,
}

pub struct BodyVerifier {
    chunked: Option<Chunked>,
    checks: Vec<Check>,
    decoded: u64,
    declared: Option<u64>,
}

fn invalid(message: &'static str) -> HcpError {
    HcpError::new(HcpCode::InvalidArgument).with_message(message)
}

fn bad_digest(what: &str) -> HcpError {
    HcpError::new(HcpCode::BadDigest).with_message(format!(
        "The {what} you specified did not match what was received."
    ))
}

/// (A chunk forged under a signed seed: credentials that failed, as a header's would — the
/// connection closes after the answer, once what is left of the body is drained.)
fn chunk_signature_mismatch() -> HcpError {
    HcpError::new(HcpCode::SignatureDoesNotMatch)
        .with_message("The chunk signature does not match the chunk's contents.")
        .closing()
}

/// A header's value, trimmed. (Named by a constant where the name is fixed: a `&str` is parsed
/// and checked on every lookup.)
fn trimmed_header(req: &RequestHeader, name: impl http::header::AsHeaderName) -> Option<&str> {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Whether a request names a digest of its body that the gateway verifies: Content-MD5, an
/// `x-amz-checksum-*` of an algorithm it computes, or, for an aws-chunked body with a trailer,
/// the trailing checksum `x-amz-trailer` announces. (A header of another name under the prefix
/// — `x-amz-checksum-algorithm`, `-type`, `-mode` — holds no digest; nor does `x-amz-trailer`
/// beside a payload mode without a trailer, whose trailer lines are never read.)
pub fn names_a_digest(headers: &http::HeaderMap) -> bool {
    let trailed = headers
        .get("x-amz-content-sha256")
        .is_some_and(|v| TRAILER_PAYLOADS.contains(&v.as_bytes()));
    headers.keys().any(|n| {
        n.as_str() == "content-md5"
            || ChecksumAlgorithm::from_header(n.as_str()).is_some()
            || (trailed && n.as_str() == "x-amz-trailer")
    })
}

/// The payload modes whose aws-chunked body ends with the trailer `x-amz-trailer` announces
/// (the only ones read as [`Payload::Chunked`] with `trailer`).
const TRAILER_PAYLOADS: [&[u8]; 2] = [
    b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    b"STREAMING-UNSIGNED-PAYLOAD-TRAILER",
];

/// The checks that headers ask for: Content-MD5 and `x-amz-checksum-*` (unless `object_s`:
/// a multipart complete's `x-amz-checksum-*` are the object's checksums, not its document's).
fn header_checks(req: &RequestHeader, object_s: bool) -> Result<Vec<Check>, HcpError> {
    let mut checks = Vec::new();
    let md5 = const { http::HeaderName::from_static("content-md5") };
    if let Some(md5) = req.headers.get(&md5) {
        // (A value that is not text is no digest: not a header to pass over unread.)
        let md5 = md5
            .to_str()
            .map_err(|_| HcpError::new(HcpCode::InvalidDigest))?;
        let expected = base64::engine::general_purpose::STANDARD
            .decode(md5.trim())
            .ok()
            .filter(|d| d.len() == 16)
            .ok_or_else(|| HcpError::new(HcpCode::InvalidDigest))?;
        checks.push(Check {
            hasher: Hasher::Md5(Md5::new()),
            expected,
            what: "Content-MD5",
        });
    }
    for (name, value) in req.headers.iter().filter(|_| !object_s) {
        if let Some(algorithm) = ChecksumAlgorithm::from_header(name.as_str()) {
            let expected = decode_checksum(algorithm, value.to_str().unwrap_or_default())
                .ok_or_else(|| {
                    invalid("An x-amz-checksum-* header is not a valid checksum value.")
                })?;
            checks.push(Check {
                hasher: algorithm.hasher(),
                expected,
                what: "checksum",
            });
        }
    }
    Ok(checks)
}

/// The trailing checksum that `x-amz-trailer` announces for an aws-chunked body.
fn announced_trailer(
    req: &RequestHeader,
) -> Result<(String, ChecksumAlgorithm, Option<Hasher>), HcpError> {
    let name = trimmed_header(req, "x-amz-trailer")
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| invalid("A trailer payload needs the x-amz-trailer header."))?;
    let algorithm = ChecksumAlgorithm::from_header(&name)
        .ok_or_else(|| invalid("x-amz-trailer names no supported checksum."))?;
    Ok((name, algorithm, Some(algorithm.hasher())))
}

impl BodyVerifier {
    /// The algorithm of the trailing checksum an aws-chunked body announced, if any.
    pub fn trailer_algorithm(&self) -> Option<ChecksumAlgorithm> {
        let chunked = self.chunked.as_ref()?;
        chunked.trailer.as_ref().map(|(_, algorithm, _)| *algorithm)
    }

    /// Builds the checks the request's signature and headers call for.
    pub fn new(
        payload: &Payload,
        req: &RequestHeader,
        max_chunk: usize,
    ) -> Result<BodyVerifier, HcpError> {
        Self::with_checksums_of(payload, req, max_chunk, false)
    }

    /// [`new`](Self::new), where `object_s` says the `x-amz-checksum-*` headers are the
    /// object's (a multipart complete's), left to the backend, not checked against the body.
    pub fn with_checksums_of(
        payload: &Payload,
        req: &RequestHeader,
        max_chunk: usize,
        object_s: bool,
    ) -> Result<BodyVerifier, HcpError> {
        let length =
            |name: http::HeaderName| trimmed_header(req, name).and_then(|v| v.parse::<u64>().ok());
        let mut checks = header_checks(req, object_s)?;
        let (chunked, declared) = match payload {
            Payload::Plain { sha256 } => {
                if let Some(d) = sha256 {
                    checks.push(Check {
                        hasher: Hasher::Sha256(Sha256::new()),
                        expected: d.to_vec(),
                        what: "x-amz-content-sha256",
                    });
                }
                (None, length(http::header::CONTENT_LENGTH))
            }
            Payload::Chunked { signer, trailer } => {
                let declared =
                    length(const { http::HeaderName::from_static("x-amz-decoded-content-length") })
                        .ok_or_else(|| {
                            HcpError::new(HcpCode::MissingContentLength).with_message(
                                "An aws-chunked body needs x-amz-decoded-content-length.",
                            )
                        })?;
                let trailer = if *trailer {
                    Some(announced_trailer(req)?)
                } else {
                    None
                };
                let chunked = Chunked {
                    state: State::ChunkHeader,
                    line: Vec::new(),
                    data: Vec::new(),
                    size: 0,
                    released: 0,
                    prior: 0,
                    chunk_signature: None,
                    previous_signature: signer
                        .as_ref()
                        .map(|s| s.seed_signature.clone())
                        .unwrap_or_default(),
                    signer: signer.clone(),
                    trailer,
                    trailer_text: String::new(),
                    trailer_bytes: 0,
                    trailer_signature: None,
                    trailer_value: None,
                    max_chunk,
                    left: declared,
                    held: Held::unbounded(),
                };
                (Some(chunked), Some(declared))
            }
        };
        Ok(BodyVerifier {
            chunked,
            checks,
            decoded: 0,
            declared,
        })
    }

    /// The verifier, the signed chunks it holds until they are verified counted in `held`
    /// (the share of the budget all requests hold from, `request::held`).
    #[must_use]
    pub fn holding_within(mut self, held: Held) -> BodyVerifier {
        self.hold_within(held);
        self
    }

    /// [`Self::holding_within`], in place.
    pub fn hold_within(&mut self, held: Held) {
        if let Some(chunked) = self.chunked.as_mut() {
            chunked.held = held;
        }
    }

    /// The pieces released so far are the caller's own now (a reader of the whole body, which
    /// counts them itself): no longer counted here.
    pub fn taken(&mut self) {
        if let Some(chunked) = self.chunked.as_mut() {
            chunked.released = 0;
            chunked.prior = 0;
            let _ = chunked.held.set(chunked.data.capacity());
        }
    }

    /// Whether it holds chunks until they are verified (a signed aws-chunked body).
    pub fn holds_chunks(&self) -> bool {
        self.chunked.as_ref().is_some_and(|c| c.signer.is_some())
    }

    /// The length of the decoded body, where it is known up front.
    pub fn decoded_length(&self) -> Option<u64> {
        self.declared
    }

    /// Whether whole-body checks decide at the end, so the last piece must be held back.
    pub fn needs_hold_back(&self) -> bool {
        !self.checks.is_empty() || self.chunked.is_some()
    }

    /// Feeds raw body bytes; verified decoded bytes are appended to `out`.
    pub fn push(&mut self, raw: Bytes, out: &mut Vec<Bytes>) -> Result<(), HcpError> {
        match self.chunked.as_mut() {
            None => {
                self.decoded += raw.len() as u64;
                for c in &mut self.checks {
                    c.hasher.update(&raw);
                }
                out.push(raw);
            }
            Some(chunked) => {
                let start = out.len();
                chunked.feed(&raw, out)?;
                for piece in &out[start..] {
                    self.decoded += piece.len() as u64;
                    for c in &mut self.checks {
                        c.hasher.update(piece);
                    }
                }
            }
        }
        if self.declared.is_some_and(|d| self.decoded > d) {
            return Err(invalid("The body is longer than its declared length."));
        }
        Ok(())
    }

    /// Decides the whole-body checks once the body has ended.
    /// Framing first, then length, then signatures and digests: the first fault is the answer.
    /// Returns the share of the budget the chunks held, for the caller to keep while it still
    /// holds the last piece released.
    pub fn finish(self) -> Result<Held, HcpError> {
        if self
            .chunked
            .as_ref()
            .is_some_and(|c| !matches!(c.state, State::Done))
        {
            return Err(invalid(
                "The aws-chunked body ended before its final chunk.",
            ));
        }
        if self.declared.is_some_and(|d| d != self.decoded) {
            return Err(invalid("The body is shorter than its declared length."));
        }
        let held = match self.chunked {
            Some(chunked) => chunked.finish()?,
            None => Held::unbounded(),
        };
        for c in self.checks {
            if c.hasher.finish() != c.expected {
                return Err(bad_digest(c.what));
            }
        }
        Ok(held)
    }
}

fn decode_checksum(algorithm: ChecksumAlgorithm, value: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
        .filter(|d| d.len() == algorithm.digest_len())
}

impl Chunked {
    /// Decodes `raw`: a signed chunk's data is held until its signature is checked, an
    /// unsigned one's passes on as it arrives (slices of `raw`, not copies).
    fn feed(&mut self, raw: &Bytes, out: &mut Vec<Bytes>) -> Result<(), HcpError> {
        if self.prior > 0 {
            // (Sent before this push.)
            self.prior = 0;
            let _ = self.held.set(self.released + self.data.capacity());
        }
        let mut input: &[u8] = raw;
        while !input.is_empty() {
            match self.state {
                State::ChunkHeader | State::Trailers | State::DataEnd => {
                    let Some(line) = self.take_line(&mut input)? else {
                        return Ok(());
                    };
                    match self.state {
                        State::ChunkHeader => self.chunk_header(&line)?,
                        State::DataEnd => {
                            if !line.is_empty() {
                                return Err(invalid(
                                    "aws-chunked framing is broken after chunk data.",
                                ));
                            }
                            self.chunk_end(out)?;
                        }
                        _ => self.trailer_line(&line)?,
                    }
                }
                State::Data { remaining } => {
                    let n = remaining.min(input.len());
                    if self.signer.is_some() {
                        crate::request::held::grow_within(&mut self.data, n, self.size);
                        self.held
                            .set(self.prior + self.released + self.data.capacity())
                            .map_err(crate::request::held::Full::error)?;
                        self.data.extend_from_slice(&input[..n]);
                    } else {
                        let at = raw.len() - input.len();
                        let piece = raw.slice(at..at + n);
                        if let Some((_, _, Some(h))) = self.trailer.as_mut() {
                            h.update(&piece);
                        }
                        out.push(piece);
                    }
                    input = &input[n..];
                    self.state = if n == remaining {
                        State::DataEnd
                    } else {
                        State::Data {
                            remaining: remaining - n,
                        }
                    };
                }
                State::Done => {
                    return Err(invalid("Data follows the end of the aws-chunked body."))
                }
            }
        }
        Ok(())
    }

    /// A chunk's data has ended: a signed one is verified and released (counted until the next
    /// one is: the caller holds it back until then).
    fn chunk_end(&mut self, out: &mut Vec<Bytes>) -> Result<(), HcpError> {
        if self.signer.is_none() {
            // (Its bytes passed on as they came; the trailer's digest has them.)
            self.state = State::ChunkHeader;
            return Ok(());
        }
        let kept = self.data.capacity();
        let data = Bytes::from(std::mem::take(&mut self.data));
        self.verify_chunk(&data)?;
        if let Some((_, _, Some(h))) = self.trailer.as_mut() {
            h.update(&data);
        }
        out.push(data);
        // (The ones before it go to the backend after this read: all counted until then.)
        self.prior += self.released;
        self.released = kept;
        let _ = self.held.set(self.prior + kept);
        self.state = State::ChunkHeader;
        Ok(())
    }

    /// Takes one CRLF-terminated line (without the CRLF), or `None` if it is not complete yet.
    fn take_line(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, HcpError> {
        match input.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.line.extend_from_slice(&input[..i]);
                *input = &input[i + 1..];
                // (However the line arrived: whole in one read or over several.)
                if self.line.len() > MAX_LINE + 1 {
                    return Err(invalid("An aws-chunked header line is too long."));
                }
                if self.line.last() != Some(&b'\r') {
                    return Err(invalid("aws-chunked lines must end with CRLF."));
                }
                self.line.pop();
                Ok(Some(std::mem::take(&mut self.line)))
            }
            None => {
                self.line.extend_from_slice(input);
                *input = &[];
                if self.line.len() > MAX_LINE {
                    return Err(invalid("An aws-chunked header line is too long."));
                }
                Ok(None)
            }
        }
    }

    fn chunk_header(&mut self, line: &[u8]) -> Result<(), HcpError> {
        let line =
            std::str::from_utf8(line).map_err(|_| invalid("An aws-chunked header is not text."))?;
        let (size, ext) = match line.split_once(';') {
            Some((s, e)) => (s, Some(e)),
            None => (line, None),
        };
        let size = usize::from_str_radix(size.trim(), 16)
            .map_err(|_| invalid("An aws-chunked size is not hex."))?;
        if size > self.max_chunk {
            return Err(invalid(
                "An aws-chunked chunk is larger than this gateway accepts.",
            ));
        }
        self.left = self
            .left
            .checked_sub(size as u64)
            .ok_or_else(|| invalid("The body is longer than its declared length."))?;
        self.chunk_signature = match ext.map(str::trim) {
            Some(e) => Some(
                e.strip_prefix("chunk-signature=")
                    .ok_or_else(|| invalid("Unknown aws-chunked chunk extension."))?
                    .to_ascii_lowercase(),
            ),
            None => None,
        };
        if self.signer.is_some() != self.chunk_signature.is_some() {
            return Err(chunk_signature_mismatch());
        }
        if size == 0 {
            self.verify_chunk(&[])?;
            self.state = State::Trailers;
        } else {
            // (A signed chunk's buffer grows as its bytes arrive, never by what it says.)
            self.size = size;
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    /// Verifies a chunk's signature: `AWS4-HMAC-SHA256-PAYLOAD`, date, scope, the previous
    /// signature, the empty hash and the chunk's hash.
    fn verify_chunk(&mut self, data: &[u8]) -> Result<(), HcpError> {
        let Some(signer) = &self.signer else {
            return Ok(());
        };
        let given = self.chunk_signature.take().unwrap_or_default();
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{}\n{}",
            signer.amz_date,
            signer.scope,
            self.previous_signature,
            sigv4::EMPTY_SHA256,
            sigv4::sha256_hex(data)
        );
        let expected = sigv4::signature(&signer.key, &string_to_sign);
        if !sigv4::signatures_equal(&expected, &given) {
            return Err(chunk_signature_mismatch());
        }
        self.previous_signature = expected;
        Ok(())
    }

    fn trailer_line(&mut self, line: &[u8]) -> Result<(), HcpError> {
        self.trailer_bytes += line.len() + 2;
        if self.trailer_bytes > MAX_TRAILER {
            return Err(invalid(
                "The aws-chunked trailer is larger than this gateway accepts.",
            ));
        }
        if line.is_empty() {
            self.state = State::Done;
            return Ok(());
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| invalid("An aws-chunked trailer is not text."))?;
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("An aws-chunked trailer is malformed."))?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "x-amz-trailer-signature" {
            self.trailer_signature = Some(value.to_ascii_lowercase());
        } else {
            self.trailer_text.push_str(&name);
            self.trailer_text.push(':');
            self.trailer_text.push_str(value);
            self.trailer_text.push('\n');
            if self.trailer.as_ref().is_some_and(|(n, _, _)| *n == name) {
                self.trailer_value = Some(value.to_string());
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Held, HcpError> {
        if !matches!(self.state, State::Done) {
            return Err(invalid(
                "The aws-chunked body ended before its final chunk.",
            ));
        }
        if let Some((_, algorithm, hasher)) = self.trailer.take() {
            if let Some(signer) = &self.signer {
                let given = self
                    .trailer_signature
                    .take()
                    .ok_or_else(chunk_signature_mismatch)?;
                let string_to_sign = format!(
                    "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
                    signer.amz_date,
                    signer.scope,
                    self.previous_signature,
                    sigv4::sha256_hex(self.trailer_text.as_bytes())
                );
                let expected = sigv4::signature(&signer.key, &string_to_sign);
                if !sigv4::signatures_equal(&expected, &given) {
                    return Err(HcpError::new(HcpCode::SignatureDoesNotMatch)
                        .with_message("The trailer signature does not match the trailer.")
                        .closing());
                }
            }
            let value = self
                .trailer_value
                .take()
                .ok_or_else(|| invalid("The announced trailing checksum is missing."))?;
            let expected = decode_checksum(algorithm, &value)
                .ok_or_else(|| invalid("The trailing checksum is not valid."))?;
            if hasher.map(Hasher::finish) != Some(expected) {
                return Err(bad_digest("trailing checksum"));
            }
        }
        Ok(self.held)
    }
}

#[cfg(test)]
mod tests;
