//! One HTTP/1.1 exchange with a backend on a (possibly pooled) connection: the signed request's
//! header written, its body framed by its Content-Length or chunked, the answer's header parsed
//! by httparse and its body read by the answer's framing (RFC 9112 §6.3).
//!
//! The gateway's own in place of pingora's client session, whose per-exchange work (a digest
//! box, a header buffer, a case map with every answer header name copied twice) was about a
//! seventh of a GET's instructions. Stricter where a backend's answer would reach a client: a
//! header value with control characters (an obsolete line fold included) is refused, and a
//! connection whose answer was framed ambiguously (Content-Length beside Transfer-Encoding) or
//! left bytes beyond its end is never pooled again.

use std::mem::MaybeUninit;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};
use pingora::http::ResponseHeader;
use pingora::protocols::Stream;
use pingora::{Error, ErrorType, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backend::head::RequestHead;

/// The largest answer header read (S3 answers are a few hundred bytes; user metadata is at most
/// 2 KiB).
const MAX_HEAD: usize = 64 * 1024;
/// The most header fields an answer may have.
const MAX_FIELDS: usize = 256;
/// The longest chunk-size line (with its extensions) and the largest trailer section accepted.
const MAX_CHUNK_LINE: usize = 4 * 1024;
const MAX_TRAILER: usize = 16 * 1024;
/// How much is read at once: the first read of an answer, and each read of a larger body.
const FIRST_READ: usize = 4 * 1024;
const BODY_READ: usize = 64 * 1024;
/// The most informational (1xx) answers passed over before the answer.
const MAX_INFORMATIONAL: u8 = 8;
/// A chunk of a request body at most this long leaves with its framing in one write (and the
/// buffer that holds them stays within what a thread keeps).
const CHUNK_COPIED: usize = crate::kept::LIMIT - 32;

thread_local! {
    /// The buffer a request header is written into before it is sent.
    static WIRE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The buffer a session reads its answer into, and the map its answer's fields are put
    /// in: each lent to a session and given back when it ends (`BackendSession`'s `Drop`),
    /// for the thread's next one.
    static READ_BUF: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
    static ANSWER_FIELDS: std::cell::RefCell<HeaderMap> = std::cell::RefCell::new(HeaderMap::new());
}

/// Names S3 servers answer with that the `http` crate does not know: made once, so that reading
/// them allocates nothing.
static KNOWN: [HeaderName; 16] = [
    HeaderName::from_static("x-amz-request-id"),
    HeaderName::from_static("x-amz-id-2"),
    HeaderName::from_static("x-amz-version-id"),
    HeaderName::from_static("x-amz-delete-marker"),
    HeaderName::from_static("x-amz-server-side-encryption"),
    HeaderName::from_static("x-amz-storage-class"),
    HeaderName::from_static("x-amz-object-lock-mode"),
    HeaderName::from_static("x-amz-object-lock-retain-until-date"),
    HeaderName::from_static("x-amz-object-lock-legal-hold"),
    HeaderName::from_static("x-amz-expiration"),
    HeaderName::from_static("x-amz-mp-parts-count"),
    HeaderName::from_static("x-amz-bucket-region"),
    HeaderName::from_static("x-amz-tagging-count"),
    HeaderName::from_static("x-amz-checksum-crc32"),
    HeaderName::from_static("x-rgw-object-type"),
    HeaderName::from_static("x-amz-abort-date"),
];

/// What is left to write of the request's body.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Writer {
    /// This many bytes (its Content-Length).
    Length(u64),
    /// Chunks, until the last chunk.
    Chunked,
    /// The body ended.
    Finished,
    /// A write failed: the backend may hold part of a request.
    Broken,
}

/// Where reading the answer is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reader {
    /// Its header is not read yet.
    Head,
    /// This many body bytes are still to come.
    Length(u64),
    /// A chunked body, at this point of it.
    Chunked(Chunk),
    /// The body ends where the backend closes the connection.
    UntilClose,
    /// The body was read whole.
    Done,
    /// The answer could not be read: nothing more is.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// Within a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    /// After the last chunk: trailer fields, then an empty line.
    Trailer,
}

/// One exchange with a backend.
pub struct BackendSession {
    /// (Taken only by [`Self::reuse`], which ends the session.)
    stream: Option<Stream>,
    /// How long any one read may wait (the backend's answer and each piece of its body).
    pub read_timeout: Option<Duration>,
    /// How long any one write may wait.
    pub write_timeout: Option<Duration>,
    /// The request was a HEAD (its answer has no body whatever it declares).
    asked_head: bool,
    /// The request said `Connection: close`.
    asked_close: bool,
    writer: Writer,
    answer: Option<ResponseHeader>,
    /// What was read and not yet consumed: in the thread's buffer, lent (`READ_BUF`).
    buf: BytesMut,
    /// The buffer was made room in for more than one first read: it may be larger than a
    /// thread keeps, and is not given back.
    grown: bool,
    /// The piece of the body `read_body_ref` returned last.
    piece: BytesMut,
    reader: Reader,
    /// The answer lets the connection carry another exchange.
    keep_alive: bool,
    /// Informational answers passed over.
    informational: u8,
    /// How much of the buffer was searched for the empty line that ends a header or trailer
    /// section (each byte is searched once, however the backend cuts its sends).
    scanned: usize,
}

impl BackendSession {
    pub fn new(stream: Stream) -> Self {
        BackendSession {
            stream: Some(stream),
            read_timeout: None,
            write_timeout: None,
            asked_head: false,
            asked_close: false,
            writer: Writer::Finished,
            answer: None,
            buf: crate::kept::lend(&READ_BUF),
            grown: false,
            piece: BytesMut::new(),
            reader: Reader::Head,
            keep_alive: false,
            informational: 0,
            scanned: 0,
        }
    }

    /// Writes the request's header (and flushes it, so that a corked connection holds it for
    /// the body: `server::coalesce`). Its body, if any, follows through [`Self::write_body`].
    pub async fn write_request_header(&mut self, req: &RequestHead) -> Result<()> {
        self.asked_head = req.method == Method::HEAD;
        self.asked_close = has_token(req.get_all(CONNECTION.as_str()), "close");
        self.writer = Writer::Broken;
        let framing = request_framing(req)?;
        let mut wire = crate::kept::lend(&WIRE);
        let sent = match req.write_to(&mut wire) {
            Ok(()) => self.send(&wire, "writing the request header").await,
            Err(why) => Err(Error::explain(ErrorType::InvalidHTTPHeader, why)),
        };
        crate::kept::give_back(&WIRE, wire);
        sent?;
        self.flush().await?;
        self.writer = framing;
        Ok(())
    }

    /// Writes a piece of the request's body; more than its Content-Length declared is refused
    /// (never cut: what reaches the backend is what was declared and verified).
    pub async fn write_body(&mut self, piece: &[u8]) -> Result<()> {
        if piece.is_empty() {
            return Ok(());
        }
        let state = std::mem::replace(&mut self.writer, Writer::Broken);
        let next = match state {
            Writer::Length(left) if piece.len() as u64 <= left => {
                self.send(piece, "writing the request body").await?;
                Writer::Length(left - piece.len() as u64)
            }
            Writer::Chunked => {
                self.send_chunk(piece).await?;
                Writer::Chunked
            }
            _ => {
                // (Nothing of it was sent, but the request can no longer be what its header
                // declared: it is not finished, nor its connection pooled.)
                return Err(Error::explain(
                    ErrorType::WriteError,
                    "request body longer than its Content-Length",
                ));
            }
        };
        self.writer = next;
        Ok(())
    }

    /// Ends the request's body (the last chunk of a chunked one); a body shorter than its
    /// Content-Length, or one a write failed in, is an error.
    pub async fn finish_body(&mut self) -> Result<()> {
        match std::mem::replace(&mut self.writer, Writer::Broken) {
            Writer::Length(0) | Writer::Finished => {}
            Writer::Length(left) => {
                return Err(Error::explain(
                    ErrorType::WriteError,
                    format!("request body {left} bytes short of its Content-Length"),
                ))
            }
            Writer::Chunked => self.send(b"0\r\n\r\n", "ending the request body").await?,
            Writer::Broken => {
                return Err(Error::explain(
                    ErrorType::WriteError,
                    "request not written whole",
                ))
            }
        }
        self.flush().await?;
        self.writer = Writer::Finished;
        Ok(())
    }

    /// One chunk of a chunked body: with its framing in one write when it is small.
    async fn send_chunk(&mut self, piece: &[u8]) -> Result<()> {
        let mut size = [0u8; 18];
        let line = chunk_size_line(piece.len(), &mut size);
        if piece.len() > CHUNK_COPIED {
            self.send(line, "writing the request body").await?;
            self.send(piece, "writing the request body").await?;
            return self.send(b"\r\n", "writing the request body").await;
        }
        let mut wire = crate::kept::lend(&WIRE);
        // (Room for all three at once: grown piece by piece, the buffer could double past
        // what a thread keeps.)
        wire.reserve(line.len() + piece.len() + 2);
        wire.extend_from_slice(line);
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
        let sent = self.send(&wire, "writing the request body").await;
        crate::kept::give_back(&WIRE, wire);
        sent
    }

    /// Reads the answer's header (informational answers are passed over); after an error,
    /// only errors.
    pub async fn read_response(&mut self) -> Result<()> {
        let read = self.read_head().await;
        if read.is_err() {
            self.reader = Reader::Failed;
        }
        read
    }

    async fn read_head(&mut self) -> Result<()> {
        match self.reader {
            Reader::Head => {}
            Reader::Failed => return Err(failed()),
            _ => return Ok(()),
        }
        loop {
            if self.parse_head()? {
                return Ok(());
            }
            if self.buf.len() > MAX_HEAD {
                return Err(too_long("answer header"));
            }
            if self.read_more(FIRST_READ).await? == 0 {
                return Err(Error::explain(
                    ErrorType::ConnectionClosed,
                    "backend closed the connection before its answer",
                ));
            }
        }
    }

    /// The answer's header, once read.
    pub fn resp_header(&self) -> Option<&ResponseHeader> {
        self.answer.as_ref()
    }

    /// The next piece of the answer's body, or `None` at its end.
    pub async fn read_body_ref(&mut self) -> Result<Option<&[u8]>> {
        // (The last piece is dropped first, so that the buffer can be reused in place.)
        self.piece = BytesMut::new();
        match self.next_piece().await? {
            Some(piece) => {
                self.piece = piece;
                Ok(Some(&self.piece[..]))
            }
            None => Ok(None),
        }
    }

    /// Whether the answer's body was read whole (a bodiless answer's at once).
    pub fn is_body_done(&self) -> bool {
        self.reader == Reader::Done
    }

    /// Whether the answer's body ends where the backend closes the connection (neither a
    /// length nor chunks): its end and its being cut short look the same.
    pub fn body_until_close(&self) -> bool {
        self.reader == Reader::UntilClose
    }

    /// The connection, if it can carry another exchange: the request was written whole, the
    /// answer was read whole, allowed it, and left nothing behind.
    pub fn reuse(mut self) -> Option<Stream> {
        let whole = self.writer == Writer::Finished && self.reader == Reader::Done;
        if whole && self.keep_alive && self.buf.is_empty() {
            self.stream.take()
        } else {
            None
        }
    }

    async fn send(&mut self, bytes: &[u8], what: &'static str) -> Result<()> {
        within(
            self.write_timeout,
            open(&mut self.stream).write_all(bytes),
            what,
        )
        .await
    }

    /// Flushes what the connection holds (the corked header; TLS records), within the write
    /// timeout.
    async fn flush(&mut self) -> Result<()> {
        let what = "flushing the request";
        within(self.write_timeout, open(&mut self.stream).flush(), what).await
    }

    /// Reads what the backend sent next into the buffer, making room for `want` bytes; 0 at
    /// the connection's end.
    async fn read_more(&mut self, want: usize) -> Result<usize> {
        if self.buf.capacity() - self.buf.len() < want / 4 {
            // (Room for one first read in an empty buffer takes the buffer's space back, or
            // a new one of that size; anything more may grow it.)
            self.grown |= want > FIRST_READ || !self.buf.is_empty();
            self.buf.reserve(want);
        }
        let read = open(&mut self.stream).read_buf(&mut self.buf);
        let read = match self.read_timeout {
            Some(limit) => crate::deadline::within(limit, read).await.map_err(|_| {
                Error::explain(ErrorType::ReadTimedout, "reading the backend's answer")
            })?,
            None => read.await,
        };
        read.map_err(|e| Error::because(ErrorType::ReadError, "reading the backend's answer", e))
    }

    /// The answer's header from the buffer, if it is there whole: `false` when more must be
    /// read.
    fn parse_head(&mut self) -> Result<bool> {
        loop {
            if !empty_line_seen(&self.buf, &mut self.scanned) {
                return Ok(false);
            }
            let parsed = {
                let mut fields = [const { MaybeUninit::uninit() }; MAX_FIELDS];
                let mut head = httparse::Response::new(&mut []);
                match parser().parse_response_with_uninit_headers(&mut head, &self.buf, &mut fields)
                {
                    Ok(httparse::Status::Complete(length)) if length <= MAX_HEAD => {
                        ParsedHead::of(&head, &self.buf, length)
                    }
                    Ok(httparse::Status::Complete(_)) => return Err(too_long("answer header")),
                    Ok(httparse::Status::Partial) => return Ok(false),
                    Err(e) => return Err(invalid("backend answer header", e)),
                }
            };
            let length = parsed.length;
            match parsed.status {
                101 => {
                    return Err(Error::explain(
                        ErrorType::InvalidHTTPHeader,
                        "backend switched protocols unasked",
                    ))
                }
                100..=199 if self.informational < MAX_INFORMATIONAL => {
                    self.informational += 1;
                    self.buf.advance(length);
                    self.scanned = 0;
                }
                100..=199 => {
                    return Err(Error::explain(
                        ErrorType::InvalidHTTPHeader,
                        "backend sent too many informational answers",
                    ))
                }
                _ => {
                    let head = self.buf.split_to(length).freeze();
                    self.scanned = 0;
                    self.take_head(head, &parsed)?;
                    return Ok(true);
                }
            }
        }
    }

    /// The answer's header from its bytes (values share them) as `parsed` found it (parsed
    /// once, before the bytes were split off), its body's framing and whether the connection
    /// may be kept.
    fn take_head(&mut self, bytes: Bytes, parsed: &ParsedHead) -> Result<()> {
        // (The thread's map, emptied, with room for every field: its capacity then counts the
        // values of a repeated name too, which `kept` measures it by.)
        let mut headers = crate::kept::lend(&ANSWER_FIELDS);
        headers.reserve(parsed.spans.len());
        for &[name, name_end, value, value_end] in &parsed.spans {
            let value =
                HeaderValue::from_maybe_shared(bytes.slice(value as usize..value_end as usize))
                    .map_err(|e| invalid("backend answer header value", e))?;
            headers.append(
                header_name(&bytes[name as usize..name_end as usize])?,
                value,
            );
        }
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.status = http::StatusCode::from_u16(parsed.status)
            .map_err(|e| invalid("backend answer status", e))?;
        parts.version = if parsed.http10 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        parts.headers = headers;
        let mut answer = ResponseHeader::from(parts);
        let framing = answer_framing(&mut answer, self.asked_head)?;
        self.reader = framing.reader;
        self.keep_alive = framing.reusable && !self.asked_close && keeps_alive(&answer);
        self.answer = Some(answer);
        Ok(())
    }

    /// The next piece of the body (a part of the buffer), reading as needed; after an error,
    /// only errors.
    async fn next_piece(&mut self) -> Result<Option<BytesMut>> {
        let next = self.read_piece().await;
        if next.is_err() {
            self.reader = Reader::Failed;
        }
        next
    }

    async fn read_piece(&mut self) -> Result<Option<BytesMut>> {
        loop {
            match self.reader {
                Reader::Head => {
                    return Err(Error::explain(
                        ErrorType::InvalidHTTPHeader,
                        "body read before the answer header",
                    ))
                }
                Reader::Failed => return Err(failed()),
                Reader::Done => return Ok(None),
                Reader::Length(0) => self.reader = Reader::Done,
                Reader::Length(left) => {
                    if self.buf.is_empty() {
                        self.read_body_bytes(left, "before the end of its Content-Length")
                            .await?;
                    }
                    let n = left.min(self.buf.len() as u64);
                    self.reader = Reader::Length(left - n);
                    return Ok(Some(self.buf.split_to(n as usize)));
                }
                Reader::UntilClose => {
                    if self.buf.is_empty() && self.read_more(BODY_READ).await? == 0 {
                        self.reader = Reader::Done;
                        return Ok(None);
                    }
                    return Ok(Some(self.buf.split()));
                }
                Reader::Chunked(Chunk::Data(left)) => {
                    if self.buf.is_empty() {
                        self.read_body_bytes(left, "within a chunk").await?;
                    }
                    let n = left.min(self.buf.len() as u64);
                    self.reader = Reader::Chunked(if n == left {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left - n)
                    });
                    return Ok(Some(self.buf.split_to(n as usize)));
                }
                Reader::Chunked(state) => {
                    // (A trailer section is parsed once its end is there.)
                    let partial_trailer = state == Chunk::Trailer
                        && !self.buf.starts_with(b"\r\n")
                        && !empty_line_seen(&self.buf, &mut self.scanned);
                    let next = if partial_trailer {
                        None
                    } else {
                        chunk_step(state, &mut self.buf)?
                    };
                    if let Some(next) = next {
                        self.reader = next;
                    } else {
                        let limit = if state == Chunk::Trailer {
                            MAX_TRAILER
                        } else {
                            MAX_CHUNK_LINE
                        };
                        if self.buf.len() > limit {
                            return Err(too_long("chunk framing"));
                        }
                        self.read_body_bytes(1, "within its chunked framing")
                            .await?;
                    }
                }
            }
        }
    }

    /// Reads more of a body of which `left` bytes are still expected; the connection's end is
    /// an error here.
    async fn read_body_bytes(&mut self, left: u64, at: &'static str) -> Result<()> {
        let want = left.clamp(FIRST_READ as u64, BODY_READ as u64) as usize;
        if self.read_more(want).await? == 0 {
            return Err(Error::explain(
                ErrorType::ConnectionClosed,
                format!("backend closed the connection {at}"),
            ));
        }
        Ok(())
    }
}

/// A write (or flush) given at most `limit` to wait (most never wait: no clock is read for
/// them, `deadline`).
async fn within(
    limit: Option<Duration>,
    write: impl std::future::Future<Output = std::io::Result<()>>,
    what: &'static str,
) -> Result<()> {
    let written = match limit {
        Some(limit) => crate::deadline::within(limit, write)
            .await
            .map_err(|_| Error::explain(ErrorType::WriteTimedout, what))?,
        None => write.await,
    };
    written.map_err(|e| Error::because(ErrorType::WriteError, what, e))
}

/// httparse as pingora's client read answers: spaces before a field's colon are passed over.
/// (Obsolete line folds are refused: such a value would carry a line break.)
fn parser() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config.allow_spaces_after_header_name_in_responses(true);
    config
}

fn invalid(
    what: &'static str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> Box<Error> {
    Error::because(ErrorType::InvalidHTTPHeader, what, e)
}

fn too_long(what: &'static str) -> Box<Error> {
    Error::explain(
        ErrorType::InvalidHTTPHeader,
        format!("backend {what} too long"),
    )
}

fn failed() -> Box<Error> {
    Error::explain(ErrorType::ReadError, "the backend's answer already failed")
}

/// The read buffer and the answer's field map go back to the thread for its next session: the
/// map emptied first, since its values share the buffer (which the next session takes back in
/// place, without an allocation, once nothing else holds a part of it — the client's answer
/// copies some of the values).
impl Drop for BackendSession {
    fn drop(&mut self) {
        if let Some(answer) = self.answer.take() {
            let mut fields = http::response::Parts::from(answer).headers;
            fields.clear();
            crate::kept::give_back(&ANSWER_FIELDS, fields);
        }
        if !self.grown {
            crate::kept::give_back(&READ_BUF, std::mem::take(&mut self.buf));
        }
    }
}

/// The session's stream (a field of its own, so that the buffer can be borrowed beside it).
fn open(stream: &mut Option<Stream>) -> &mut Stream {
    stream
        .as_mut()
        .expect("the stream is taken only by `reuse`, which ends the session")
}

/// A field name: one of the `http` crate's, one of [`KNOWN`], or a new one.
fn header_name(name: &[u8]) -> Result<HeaderName> {
    if name.len() > 2 && name[..2].eq_ignore_ascii_case(b"x-") {
        if let Some(known) = KNOWN.iter().find(|k| {
            k.as_str().len() == name.len() && k.as_str().as_bytes().eq_ignore_ascii_case(name)
        }) {
            return Ok(known.clone());
        }
    }
    HeaderName::from_bytes(name).map_err(|e| invalid("backend answer header name", e))
}

/// What parsing an answer's header found, by offsets into its bytes: so that the header is
/// parsed once, before its bytes are split off the buffer and shared by the values.
struct ParsedHead {
    /// The header's length, its empty line included.
    length: usize,
    status: u16,
    http10: bool,
    /// Where each field's name and value lie: `[name, name end, value, value end]` (on the
    /// stack for as many fields as S3 answers have; no zeroed array of the most fields).
    spans: smallvec::SmallVec<[[u32; 4]; 24]>,
}

impl ParsedHead {
    /// `head` as httparse parsed it from `buf`, whose first `length` bytes (at most
    /// [`MAX_HEAD`]) are the header: every name and value httparse gives is a part of them (an
    /// empty value lies nowhere and is kept as an empty span).
    fn of(head: &httparse::Response<'_, '_>, buf: &[u8], length: usize) -> Self {
        let at = |piece: &[u8]| -> [u32; 2] {
            if piece.is_empty() {
                return [0, 0];
            }
            let start = (piece.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
            let end = start.wrapping_add(piece.len());
            assert!(start <= end && end <= length, "a field outside its header");
            // (Within MAX_HEAD, so within u32.)
            [start as u32, end as u32]
        };
        let spans = head
            .headers
            .iter()
            .map(|field| {
                let [name, name_end] = at(field.name.as_bytes());
                let [value, value_end] = at(field.value);
                [name, name_end, value, value_end]
            })
            .collect();
        ParsedHead {
            length,
            status: head.code.unwrap_or(0),
            http10: head.version == Some(0),
            spans,
        }
    }
}

/// Whether `buf` holds an empty line (the end of a header or trailer section), searching only
/// what was not searched before (`scanned`, which it advances).
fn empty_line_seen(buf: &[u8], scanned: &mut usize) -> bool {
    let from = (*scanned).min(buf.len()).saturating_sub(2);
    *scanned = buf.len();
    let tail = &buf[from..];
    memchr::memchr_iter(b'\n', tail)
        .any(|i| matches!(tail[i + 1..], [b'\n', ..] | [b'\r', b'\n', ..]))
}

/// Whether any of the comma-separated tokens of these fields is `token`.
fn has_token<'a>(values: impl IntoIterator<Item = &'a [u8]>, token: &str) -> bool {
    values.into_iter().any(|v| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Whether the message's transfer coding is chunked and nothing else (the one coding S3
/// servers use, and the one the gateway can take off: a body under any other would reach the
/// client still coded).
fn chunked<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> bool {
    let mut codings = values
        .into_iter()
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty());
    codings
        .next()
        .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"))
        && codings.next().is_none()
}

/// The one length all Content-Length fields (and their comma-separated values) give, `None`
/// without any; differing or unreadable lengths are an error.
fn content_length<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Result<Option<u64>> {
    let mut length = None;
    for value in values {
        for item in value.split(|&b| b == b',') {
            let item = item.trim_ascii();
            let parsed = (!item.is_empty() && item.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(item).ok()?.parse::<u64>().ok())
                .flatten();
            match (parsed, length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => {
                    return Err(Error::explain(
                        ErrorType::InvalidHTTPHeader,
                        "invalid or conflicting Content-Length",
                    ))
                }
            }
        }
    }
    Ok(length)
}

/// How the request's body is framed, by the headers the gateway signed: chunked, or by its
/// Content-Length — never both, nor another coding.
fn request_framing(req: &RequestHead) -> Result<Writer> {
    if req.contains(TRANSFER_ENCODING.as_str()) {
        if !chunked(req.get_all(TRANSFER_ENCODING.as_str()))
            || req.contains(CONTENT_LENGTH.as_str())
        {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                "request framed by Transfer-Encoding other than chunked alone, or by both",
            ));
        }
        return Ok(Writer::Chunked);
    }
    Ok(Writer::Length(
        content_length(req.get_all(CONTENT_LENGTH.as_str()))?.unwrap_or(0),
    ))
}

/// How an answer's body is read, and whether its connection could be pooled again.
struct Framing {
    reader: Reader,
    reusable: bool,
}

/// The answer's framing (RFC 9112 §6.3). Its Transfer-Encoding is taken out of the header the
/// callers see — the session decodes it, and what passes on is the body — and so is a
/// Content-Length beside it, which the coding overrides.
fn answer_framing(answer: &mut ResponseHeader, asked_head: bool) -> Result<Framing> {
    let status = answer.status.as_u16();
    let bodiless = asked_head || status == 204 || status == 304;
    let coded = answer.headers.contains_key(TRANSFER_ENCODING);
    let mut reusable = true;
    if coded {
        // (A bodiless answer may name the coding its body would have had.)
        if !bodiless && !chunked(values(&answer.headers, &TRANSFER_ENCODING)) {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                "backend transfer coding other than chunked",
            ));
        }
        // (Both framings at once is how requests get smuggled, and HTTP/1.0 has no chunks:
        // the connection is not kept.)
        reusable =
            !answer.headers.contains_key(CONTENT_LENGTH) && answer.version != Version::HTTP_10;
        answer.remove_header(&TRANSFER_ENCODING);
        answer.remove_header(&CONTENT_LENGTH);
    }
    let reader = if bodiless {
        Reader::Done
    } else if coded {
        Reader::Chunked(Chunk::Size)
    } else {
        match content_length(values(&answer.headers, &CONTENT_LENGTH))? {
            Some(0) => Reader::Done,
            Some(n) => Reader::Length(n),
            None => {
                reusable = false;
                Reader::UntilClose
            }
        }
    };
    Ok(Framing { reader, reusable })
}

/// Whether the answer lets the connection be kept: HTTP/1.1 unless it says `close`, HTTP/1.0
/// only when it says `keep-alive`.
fn keeps_alive(answer: &ResponseHeader) -> bool {
    let connection = answer.headers.get_all(CONNECTION);
    if has_token(connection.iter().map(HeaderValue::as_bytes), "close") {
        return false;
    }
    answer.version != Version::HTTP_10
        || has_token(connection.iter().map(HeaderValue::as_bytes), "keep-alive")
}

/// One step of a chunked body's framing from the buffer: the next state, or `None` when more
/// must be read first.
fn chunk_step(state: Chunk, buf: &mut BytesMut) -> Result<Option<Reader>> {
    let framing = |what: &'static str| Error::explain(ErrorType::InvalidHTTPHeader, what);
    match state {
        Chunk::Size => {
            if buf.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                return Err(framing("backend chunk size missing"));
            }
            match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((used, _))) if used > MAX_CHUNK_LINE => {
                    Err(too_long("chunk-size line"))
                }
                Ok(httparse::Status::Complete((used, size))) => {
                    buf.advance(used);
                    Ok(Some(Reader::Chunked(if size == 0 {
                        Chunk::Trailer
                    } else {
                        Chunk::Data(size)
                    })))
                }
                Ok(httparse::Status::Partial) => Ok(None),
                Err(_) => Err(framing("invalid backend chunk size")),
            }
        }
        Chunk::DataEnd => {
            if buf.len() < 2 {
                return match buf.first() {
                    None | Some(b'\r') => Ok(None),
                    Some(_) => Err(framing("backend chunk longer than its size")),
                };
            }
            if &buf[..2] != b"\r\n" {
                return Err(framing("backend chunk longer than its size"));
            }
            buf.advance(2);
            Ok(Some(Reader::Chunked(Chunk::Size)))
        }
        Chunk::Trailer => {
            if buf.starts_with(b"\r\n") {
                buf.advance(2);
                return Ok(Some(Reader::Done));
            }
            let mut fields = [httparse::EMPTY_HEADER; 32];
            match httparse::parse_headers(buf, &mut fields) {
                Ok(httparse::Status::Complete((used, _))) if used > MAX_TRAILER => {
                    Err(too_long("chunk trailer"))
                }
                Ok(httparse::Status::Complete((used, _))) => {
                    buf.advance(used);
                    Ok(Some(Reader::Done))
                }
                Ok(httparse::Status::Partial) => Ok(None),
                Err(_) => Err(framing("invalid backend chunk trailer")),
            }
        }
        Chunk::Data(_) => unreachable!("data is read by next_piece"),
    }
}

/// A chunk's size line (`{size:x}\r\n`) in `out`.
fn chunk_size_line(size: usize, out: &mut [u8; 18]) -> &[u8] {
    let mut n = 0;
    let mut rest = size;
    let mut digits = [0u8; 16];
    loop {
        digits[n] = b"0123456789abcdef"[rest % 16];
        n += 1;
        rest /= 16;
        if rest == 0 {
            break;
        }
    }
    for (i, d) in digits[..n].iter().rev().enumerate() {
        out[i] = *d;
    }
    out[n..n + 2].copy_from_slice(b"\r\n");
    &out[..n + 2]
}

/// The values of the fields named `name`.
fn values<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers.get_all(name).into_iter().map(HeaderValue::as_bytes)
}

#[cfg(test)]
mod tests;
