//! A body sent to the backend in aws-chunked framing with a checksum trailer the gateway
//! computes (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`): how S3 gets an integrity checksum for a body
//! whose digest is not known before it is sent. S3 takes a PUT with Object Lock settings only
//! with one (`Content-MD5` or a checksum), which an HCP client does not send — CRC32 then —,
//! and a part of an upload begun with a checksum algorithm only with that algorithm's, which a
//! client sending it in a trailer gets carried on in its algorithm (`request::forward`).
//!
//! The chunks are of a fixed size but the last, so that the framed length — the request's
//! `Content-Length` — follows from the decoded length alone, before the first byte.

use bytes::Bytes;

pub use crate::request::body::ChecksumAlgorithm;

/// The decoded bytes in each chunk but the last.
pub const CHUNK: u64 = 64 * 1024;

/// `x-amz-content-sha256` for such a body.
pub const PAYLOAD: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// The bytes after the last data chunk: the final chunk, the trailer with its checksum (Base64
/// of the digest's bytes), and the end of the trailer section.
fn end_len(algorithm: ChecksumAlgorithm) -> u64 {
    let base64 = algorithm.digest_len().div_ceil(3) * 4;
    ("0\r\n".len() + algorithm.header_name().len() + ":".len() + base64 + "\r\n\r\n".len()) as u64
}

/// Hexadecimal digits of `n`.
fn hex_digits(n: u64) -> u64 {
    u64::from((64 - n.leading_zeros()).div_ceil(4).max(1))
}

/// One chunk of `n` bytes with its framing: size line, data, CRLF.
fn chunk_len(n: u64) -> u64 {
    hex_digits(n) + 2 + n + 2
}

/// The framed length of a body of `decoded` bytes with a trailer of `algorithm`.
pub fn framed_length(decoded: u64, algorithm: ChecksumAlgorithm) -> u64 {
    let (full, rest) = (decoded / CHUNK, decoded % CHUNK);
    let last = if rest > 0 { chunk_len(rest) } else { 0 };
    full * chunk_len(CHUNK) + last + end_len(algorithm)
}

/// Frames a body of a declared length as it passes: each piece goes out as the slices of it
/// that fall in chunks, each chunk opened by its size line and closed by CRLF; the trailer
/// closes the body. No byte of the body is copied.
pub struct Chunker {
    /// Bytes of the body not framed yet.
    remaining: u64,
    /// Bytes left in the open chunk.
    in_chunk: u64,
    algorithm: ChecksumAlgorithm,
    digest: crate::request::body::Digester,
}

impl Chunker {
    pub fn new(decoded: u64, algorithm: ChecksumAlgorithm) -> Chunker {
        Chunker {
            remaining: decoded,
            in_chunk: 0,
            algorithm,
            digest: algorithm.digest(),
        }
    }

    /// The framing of `piece`, in order, into `out`; `false` when the piece goes past the
    /// declared length (nothing of the excess is framed).
    pub fn push(&mut self, mut piece: Bytes, out: &mut Vec<Bytes>) -> bool {
        while !piece.is_empty() {
            if self.in_chunk == 0 {
                if self.remaining == 0 {
                    return false;
                }
                self.in_chunk = self.remaining.min(CHUNK);
                out.push(Bytes::from(format!("{:x}\r\n", self.in_chunk)));
            }
            let take = usize::try_from(self.in_chunk)
                .unwrap_or(usize::MAX)
                .min(piece.len());
            let data = piece.split_to(take);
            self.digest.update(&data);
            out.push(data);
            self.in_chunk -= take as u64;
            self.remaining -= take as u64;
            if self.in_chunk == 0 {
                out.push(Bytes::from_static(b"\r\n"));
            }
        }
        true
    }

    /// The final chunk and the trailer; `None` when the body was shorter than declared.
    pub fn finish(self) -> Option<Bytes> {
        use base64::Engine as _;
        if self.remaining > 0 || self.in_chunk > 0 {
            return None;
        }
        let name = self.algorithm.header_name();
        let value = base64::engine::general_purpose::STANDARD.encode(self.digest.finish());
        Some(Bytes::from(format!("0\r\n{name}:{value}\r\n\r\n")))
    }

    /// A whole body framed at once (a body the gateway holds).
    pub fn frame_whole(body: &Bytes, algorithm: ChecksumAlgorithm) -> Bytes {
        let mut chunker = Chunker::new(body.len() as u64, algorithm);
        let mut out = Vec::new();
        chunker.push(body.clone(), &mut out);
        let end = chunker.finish().expect("the whole body");
        let mut framed = Vec::with_capacity(framed_length(body.len() as u64, algorithm) as usize);
        for piece in out.iter().chain([&end]) {
            framed.extend_from_slice(piece);
        }
        Bytes::from(framed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::authenticate::Payload;
    use crate::request::body::BodyVerifier;
    use rand::{Rng, SeedableRng};

    /// The oracle: for bodies of every size around the chunk boundaries and at random, split
    /// into pieces at random, the framing is exactly `framed_length` long, and the gateway's
    /// own aws-chunked reader (the one that verifies clients' uploads) reads it back as the
    /// body with its trailer verified (each of S3's algorithms in turn); framed whole, the same bytes.
    #[test]
    fn framed_bodies_read_back_with_their_checksum() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(20261205);
        let c = CHUNK as usize;
        let mut sizes = vec![
            0,
            1,
            15,
            16,
            17,
            255,
            256,
            4095,
            4096,
            c - 1,
            c,
            c + 1,
            2 * c,
        ];
        sizes.extend((0..40).map(|_| rng.gen_range(0..4 * c)));
        let algorithms = [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
            ChecksumAlgorithm::Sha1,
            ChecksumAlgorithm::Sha256,
        ];
        for (n, len) in sizes.into_iter().enumerate() {
            let algorithm = algorithms[n % algorithms.len()];
            let body: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let mut chunker = Chunker::new(len as u64, algorithm);
            let mut framed = Vec::new();
            let mut rest = Bytes::from(body.clone());
            while !rest.is_empty() {
                let n = rng.gen_range(1..=rest.len().min(3 * c));
                let mut out = Vec::new();
                assert!(chunker.push(rest.split_to(n), &mut out));
                out.iter().for_each(|p| framed.extend_from_slice(p));
            }
            framed.extend_from_slice(&chunker.finish().expect("whole"));
            let framed_len = framed_length(len as u64, algorithm);
            assert_eq!(framed.len() as u64, framed_len, "{len} {algorithm:?}");
            let whole = Chunker::frame_whole(&Bytes::from(body.clone()), algorithm);
            assert_eq!(whole, framed);
            let len_text = len.to_string();
            let mut req = pingora::http::RequestHeader::build("PUT", b"/b/k", None).unwrap();
            req.insert_header("x-amz-decoded-content-length", len_text.as_str())
                .unwrap();
            req.insert_header("x-amz-trailer", algorithm.header_name())
                .unwrap();
            let payload = Payload::Chunked {
                signer: None,
                trailer: true,
            };
            let mut verifier = BodyVerifier::new(&payload, &req, 1 << 20).unwrap();
            let mut read = Vec::new();
            for part in framed.chunks(rng.gen_range(1..=8192)) {
                let mut out = Vec::new();
                verifier
                    .push(Bytes::copy_from_slice(part), &mut out)
                    .unwrap_or_else(|e| panic!("{len}: {e:?}"));
                out.iter().for_each(|p| read.extend_from_slice(p));
            }
            verifier.finish().unwrap_or_else(|e| panic!("{len}: {e:?}"));
            assert_eq!(read, body, "{len}");
        }
    }

    /// More than declared is never framed; less never finishes.
    #[test]
    fn only_the_declared_length_is_framed() {
        let mut chunker = Chunker::new(4, ChecksumAlgorithm::Crc32);
        let mut out = Vec::new();
        assert!(!chunker.push(Bytes::from_static(b"12345"), &mut out));
        let framed: Vec<u8> = out.concat();
        assert_eq!(framed, b"4\r\n1234\r\n");
        let mut short = Chunker::new(4, ChecksumAlgorithm::Crc32);
        assert!(short.push(Bytes::from_static(b"123"), &mut Vec::new()));
        assert!(short.finish().is_none());
    }
}
