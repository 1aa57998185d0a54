//! A backend request's head as the gateway builds it (`request::sign`) and the backend session
//! writes it: the method, the origin-form target and the header fields in the order they were
//! added. Names and values live in one byte buffer and the fields are spans of it, kept on the
//! stack up to twelve; the buffer is the thread's, lent to each head and given back when it is
//! dropped: no allocation for a SigV4 request's head without many metadata headers (unless
//! another head holds the buffer meanwhile: each then has its own), where a `RequestHeader`
//! with its `HeaderMap` took five (the box, the map's two tables, the target, the
//! `Authorization` value). A name or value that no header line can
//! carry, or a target that is not plain origin form, is not taken: the head is marked
//! malformed, and neither the gateway (`request::forward`) nor the session sends it.

use http::Method;
use smallvec::SmallVec;

thread_local! {
    /// The buffer of the thread's last head, for its next (a head is dropped once it was
    /// written, or its request was given up).
    static BYTES: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One field: its name is `bytes[start..name_end]`, its value `bytes[name_end..end]`.
#[derive(Debug, Clone, Copy)]
struct Field {
    start: u32,
    name_end: u32,
    end: u32,
}

/// A backend request's head (see the module's documentation). Its `Debug` shows the method,
/// the target and the fields' names, never a value (one is the backend's signature).
pub struct RequestHead {
    pub method: Method,
    /// The target, then each field's name and value.
    bytes: Vec<u8>,
    target_end: usize,
    fields: SmallVec<[Field; 12]>,
    /// A name or value was refused (see [`Self::append`]).
    malformed: bool,
}

impl Drop for RequestHead {
    fn drop(&mut self) {
        crate::kept::give_back(&BYTES, std::mem::take(&mut self.bytes));
    }
}

impl RequestHead {
    /// A head for `method` to `target` (origin form), with room for about `room` bytes of
    /// names and values besides.
    pub fn new(method: Method, target: &[u8], room: usize) -> RequestHead {
        // (The thread's buffer, lent: given back when the head is dropped.)
        let mut bytes = crate::kept::lend(&BYTES);
        bytes.reserve(target.len() + room);
        bytes.extend_from_slice(target);
        // Origin form of visible ASCII: no byte that ends, splits or folds the request line
        // (no space, tab or other control byte, nothing past ASCII), and no fragment.
        let malformed = !target.starts_with(b"/")
            || !target
                .iter()
                .all(|&b| (0x21..=0x7e).contains(&b) && b != b'#');
        RequestHead {
            method,
            target_end: bytes.len(),
            bytes,
            fields: SmallVec::new(),
            malformed,
        }
    }

    /// The request target as the request line carries it.
    pub fn raw_path(&self) -> &[u8] {
        &self.bytes[..self.target_end]
    }

    /// Adds the field `name: value` after the others. `name` is a header name in lower case;
    /// `value` holds no control character but tab. Anything else is not added, and the head
    /// is then malformed ([`Self::is_malformed`]).
    pub fn append(&mut self, name: &str, value: &[u8]) {
        self.append_parts(name, &[value]);
    }

    /// [`Self::append`] of a value given in pieces, joined without separators.
    pub fn append_parts(&mut self, name: &str, value: &[&[u8]]) {
        if !is_name(name.as_bytes()) || !value.iter().all(|piece| is_value(piece)) {
            self.malformed = true;
            return;
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(name.as_bytes());
        let name_end = self.bytes.len();
        for piece in value {
            self.bytes.extend_from_slice(piece);
        }
        let end = self.bytes.len();
        let (Ok(start), Ok(name_end), Ok(end)) = (
            u32::try_from(start),
            u32::try_from(name_end),
            u32::try_from(end),
        ) else {
            self.malformed = true;
            return;
        };
        self.fields.push(Field {
            start,
            name_end,
            end,
        });
    }

    /// Replaces every field named `name` with `name: value` (added last).
    pub fn insert(&mut self, name: &str, value: &[u8]) {
        self.remove(name);
        self.append(name, value);
    }

    /// Takes out every field named `name`. (Its bytes stay in the buffer, unused.)
    pub fn remove(&mut self, name: &str) {
        let bytes = &self.bytes;
        self.fields
            .retain(|f| &bytes[f.start as usize..f.name_end as usize] != name.as_bytes());
    }

    /// The fields in order, as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.fields_as_bytes().map(|(name, value)| {
            // (Names are checked to be ASCII when added.)
            (std::str::from_utf8(name).unwrap_or_default(), value)
        })
    }

    /// [`Self::iter`] with the names as bytes, for lookups.
    fn fields_as_bytes(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields.iter().map(|f| {
            (
                &self.bytes[f.start as usize..f.name_end as usize],
                &self.bytes[f.name_end as usize..f.end as usize],
            )
        })
    }

    /// The values of the fields named `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields_as_bytes()
            .filter(move |(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// The first value of a field named `name`.
    pub fn get<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        self.get_all(name).next()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Whether a name or value was refused ([`Self::append`]), or the target is not one a
    /// request line can carry in origin form.
    pub fn is_malformed(&self) -> bool {
        self.malformed
    }

    /// The head as HTTP/1.1 puts it on the wire, names in lower case; `Err` for a malformed
    /// head (nothing is written).
    pub fn write_to(&self, wire: &mut Vec<u8>) -> Result<(), &'static str> {
        if self.malformed {
            return Err("a request head with a name, value or target no request can carry");
        }
        wire.reserve(self.bytes.len() + 16 + 4 * self.fields.len());
        wire.extend_from_slice(self.method.as_str().as_bytes());
        wire.push(b' ');
        wire.extend_from_slice(self.raw_path());
        wire.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in self.fields_as_bytes() {
            wire.extend_from_slice(name);
            wire.extend_from_slice(b": ");
            wire.extend_from_slice(value);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// The fields as a header map (for OBS's signature, which reads them as a client's
    /// request's, and for tests).
    pub(crate) fn header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::with_capacity(self.fields.len());
        for (name, value) in self.iter() {
            // (Both were checked when added.)
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_bytes(value),
            ) {
                map.append(name, value);
            }
        }
        map
    }
}

impl std::fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", &self.method)
            .field("target", &String::from_utf8_lossy(self.raw_path()))
            .field("names", &self.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("malformed", &self.malformed)
            .finish()
    }
}

/// A header name as the gateway sends one: a token (RFC 9110 §5.6.2) in lower case.
fn is_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| TOKEN[usize::from(b)])
}

/// Which bytes [`is_name`] takes.
const TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    table
};

/// A field value's bytes: visible ASCII, space, tab and obs-text (as `http::HeaderValue`
/// takes them); no CR, LF, NUL or other control byte. (Judged without an early exit, which the
/// compiler turns into vector compares: a signed head's values are a few hundred bytes.)
fn is_value(value: &[u8]) -> bool {
    value.iter().fold(true, |ok, &b| {
        ok & (((b >= 0x20) & (b != 0x7f)) | (b == b'\t'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A head's buffer is the thread's: lent while the head lives, given back when it is
    /// dropped, and the next head finds it empty.
    #[test]
    fn a_head_writes_in_the_thread_s_buffer() {
        let kept = || BYTES.with_borrow(Vec::capacity);
        let mut first = RequestHead::new(Method::GET, b"/bucket/key", 64);
        first.append("x-amz-date", b"20261204T120000Z");
        assert_eq!(kept(), 0, "lent");
        let room = first.bytes.capacity();
        drop(first);
        assert_eq!(kept(), room, "given back");
        let second = RequestHead::new(Method::PUT, b"/other", 64);
        assert_eq!(kept(), 0, "lent again");
        assert_eq!(second.bytes.capacity(), room, "the same buffer");
        assert_eq!(wire(&second), "PUT /other HTTP/1.1\r\n\r\n");
    }

    fn wire(head: &RequestHead) -> String {
        let mut out = Vec::new();
        head.write_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fields_go_out_in_order_and_insert_replaces() {
        let mut head = RequestHead::new(Method::PUT, b"/b/k?uploads", 64);
        head.append("host", b"s3.example");
        head.append("if-match", b"\"client\"");
        head.append("x-amz-meta-a", b"1");
        head.append_parts("x-amz-meta-b", &[b"2", b",", b"3"]);
        head.append("if-match", b"\"again\"");
        head.insert("if-match", b"\"judged\"");
        assert_eq!(head.get("x-amz-meta-b"), Some(&b"2,3"[..]));
        assert_eq!(head.get_all("if-match").count(), 1);
        head.remove("x-amz-meta-a");
        assert!(!head.contains("x-amz-meta-a"));
        assert_eq!(
            wire(&head),
            "PUT /b/k?uploads HTTP/1.1\r\nhost: s3.example\r\nx-amz-meta-b: 2,3\r\n\
             if-match: \"judged\"\r\n\r\n"
        );
        assert_eq!(head.raw_path(), b"/b/k?uploads");
        let map = head.header_map();
        assert_eq!(map.len(), 3);
        assert_eq!(map["if-match"], "\"judged\"");
        // Its debug form names the fields and shows no value.
        head.insert("authorization", b"AWS4-HMAC-SHA256 Signature=0123abcd");
        let shown = format!("{head:?}");
        assert!(
            shown.contains("authorization") && !shown.contains("0123abcd"),
            "{shown}"
        );
    }

    /// The oracle: whatever bytes a name, value or target holds, the head written is exactly
    /// the request line and one line per field it took — no byte of a value or target ends a
    /// line or the head early — or nothing at all.
    #[test]
    fn no_name_value_or_target_splits_a_line() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let pool: &[u8] = b"aZ-_:/ \t\r\n\0\x0b\x0c\x1f\x7f\x80\xff;=%#?x\"(";
        let any = |rng: &mut rand::rngs::StdRng, n: usize| -> Vec<u8> {
            (0..rng.gen_range(0..n))
                .map(|_| pool[rng.gen_range(0..pool.len())])
                .collect()
        };
        for _ in 0..20_000 {
            let mut target = b"/".to_vec();
            target.extend(any(&mut rng, 6));
            let mut head = RequestHead::new(Method::GET, &target, 0);
            let mut taken = Vec::new();
            for _ in 0..rng.gen_range(0..4) {
                let name = String::from_utf8_lossy(&any(&mut rng, 5)).into_owned();
                let value = any(&mut rng, 6);
                let before = head.fields.len();
                head.append(&name, &value);
                let took = head.fields.len() > before;
                // Taken exactly when the http crate takes the name (in lower case) and the value.
                let http_takes = http::HeaderName::from_bytes(name.as_bytes())
                    .is_ok_and(|n| n.as_str() == name)
                    && http::HeaderValue::from_bytes(&value).is_ok();
                assert_eq!(took, http_takes, "{name:?}: {value:?}");
                if took {
                    taken.push((name, value));
                }
            }
            let mut out = Vec::new();
            match head.write_to(&mut out) {
                Err(_) => assert!(out.is_empty()),
                Ok(()) => {
                    let mut expected = b"GET ".to_vec();
                    expected.extend_from_slice(&target);
                    expected.extend_from_slice(b" HTTP/1.1\r\n");
                    for (name, value) in &taken {
                        expected.extend_from_slice(name.as_bytes());
                        expected.extend_from_slice(b": ");
                        expected.extend_from_slice(value);
                        expected.extend_from_slice(b"\r\n");
                    }
                    expected.extend_from_slice(b"\r\n");
                    assert_eq!(out, expected);
                    // One line per field and the request line, and the head ends only at the end.
                    let lines = out.windows(2).filter(|w| w == b"\r\n").count();
                    assert_eq!(lines, taken.len() + 2);
                    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), lines);
                    assert!(!out.contains(&0));
                }
            }
        }
    }

    #[test]
    fn what_no_line_can_carry_is_refused() {
        for (name, value) in [
            ("x-a", &b"1\r\nx-b: 2"[..]),
            ("x-a", b"1\n"),
            ("x-a", b"\0"),
            ("X-A", b"1"),
            ("x a", b"1"),
            ("x-a:", b"1"),
            ("", b"1"),
        ] {
            let mut head = RequestHead::new(Method::GET, b"/b", 0);
            head.append(name, value);
            assert!(head.is_malformed(), "{name:?}");
            assert!(head.write_to(&mut Vec::new()).is_err());
        }
        for target in [
            &b"/b k"[..],
            b"b",
            b"/b\r\n",
            b"/b#f",
            b"",
            b"/b\tk",
            b"/b\x0bk",
            b"/b\x0ck",
            b"/b\x7f",
            b"/b\xc3\xa9",
        ] {
            let head = RequestHead::new(Method::GET, target, 0);
            assert!(head.write_to(&mut Vec::new()).is_err(), "{target:?}");
        }
    }
}
