//! HCP's error vocabulary and the one writer of HCP's error document (seed 002).
//!
//! Every error the gateway answers, whether it found the fault itself or translated a backend's,
//! is an [`HcpError`] rendered by [`HcpError::to_xml`].

use std::borrow::Cow;

use bytes::Bytes;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, Event};
use quick_xml::Writer;

include!(concat!(env!("OUT_DIR"), "/hcp_codes.rs"));

/// An error as HCP answers it: a code from the table, the status to send, and the body's details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HcpError {
    pub code: HcpCode,
    /// Usually `code.status()`; differs where HCP answers the same code with another status
    /// (304 or 200 for `PreconditionFailed`).
    pub status: u16,
    pub message: Cow<'static, str>,
    /// Rendered only for `NoSuchBucket`, as seed 002 prescribes.
    pub bucket: Option<String>,
    /// Rendered only for `NoSuchKey`, as seed 002 prescribes.
    pub key: Option<String>,
    /// Why, in the gateway's words, for the access log's `cause` only: never rendered.
    pub cause: Option<String>,
    /// The answer closes the connection (saying so): a client whose credentials failed, or an
    /// anonymous one refused, holds no place of `max_connections` for the keep-alive time.
    pub closes: bool,
}

impl HcpError {
    pub fn new(code: HcpCode) -> Self {
        HcpError {
            code,
            status: code.status(),
            message: Cow::Borrowed(code.default_message()),
            bucket: None,
            key: None,
            cause: None,
            closes: false,
        }
    }

    /// The answer closes the connection ([`HcpError::closes`]).
    pub fn closing(mut self) -> Self {
        self.closes = true;
        self
    }

    /// Notes why the error happened, for the access log (the client sees only the code).
    pub fn with_cause(mut self, cause: impl Into<String>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = message.into();
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn with_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = Some(bucket.into());
        self
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Renders HCP's error document: declaration, `Error` with `Code`, `Message`, `RequestId`,
    /// `HostId`, plus `BucketName` only for `NoSuchBucket` and `Key` only for `NoSuchKey`.
    pub fn to_xml(&self, request_id: &str, host_id: &str, pretty: bool) -> Bytes {
        let mut writer = if pretty {
            Writer::new_with_indent(Vec::with_capacity(512), b' ', 2)
        } else {
            Writer::new(Vec::with_capacity(512))
        };
        let w = &mut writer;
        // Writing into a Vec cannot fail.
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
            .unwrap();
        if !pretty {
            w.get_mut().push(b'\n');
        }
        w.write_event(Event::Start(BytesStart::new("Error")))
            .unwrap();
        let mut element = |name: &str, text: &str| {
            crate::hcp::xml::leaf(w, name, text).expect("a Vec takes any write");
        };
        element("Code", self.code.as_str());
        // (A message may name what a client sent: no character XML 1.0 cannot carry.)
        element("Message", &crate::hcp::xml::displayed_name(&self.message));
        element("RequestId", request_id);
        element("HostId", host_id);
        if self.code == HcpCode::NoSuchBucket {
            if let Some(bucket) = &self.bucket {
                element("BucketName", bucket);
            }
        }
        if self.code == HcpCode::NoSuchKey {
            if let Some(key) = &self.key {
                element("Key", &crate::hcp::xml::displayed_name(key));
            }
        }
        w.write_event(Event::End(BytesEnd::new("Error"))).unwrap();
        let mut out = writer.into_inner();
        out.push(b'\n');
        Bytes::from(out)
    }
}

impl std::fmt::Display for HcpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status,
            self.code.as_str(),
            self.message
        )
    }
}

impl std::error::Error for HcpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_every_status_class_of_seed_001() {
        let statuses: std::collections::BTreeSet<u16> =
            HcpCode::ALL.iter().map(|c| c.status()).collect();
        for s in [
            200, 400, 403, 404, 405, 409, 411, 412, 413, 416, 500, 501, 503,
        ] {
            assert!(
                statuses.contains(&s),
                "status {s} missing from tables/hcp_codes.tsv"
            );
        }
        // Seed 001's 39, and S3 Object Lock's two not-found answers.
        assert_eq!(HcpCode::ALL.len(), 41, "seed 001 has 39 distinct codes");
        for code in HcpCode::ALL {
            assert_eq!(HcpCode::from_name(code.as_str()), Some(code));
        }
    }

    #[test]
    fn body_has_seed_002_shape() {
        let xml = HcpError::new(HcpCode::NoSuchBucket)
            .with_bucket("b1")
            .with_key("ignored")
            .to_xml("REQ", "HOST", false);
        let s = std::str::from_utf8(&xml).unwrap();
        assert!(
            s.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>"),
            "{s}"
        );
        assert!(s.contains("<Code>NoSuchBucket</Code>"));
        assert!(s.contains("<RequestId>REQ</RequestId><HostId>HOST</HostId>"));
        assert!(s.contains("<BucketName>b1</BucketName>"));
        assert!(!s.contains("<Key>"), "Key only for NoSuchKey: {s}");
    }

    #[test]
    fn key_only_for_no_such_key_and_text_is_escaped() {
        let xml = HcpError::new(HcpCode::NoSuchKey)
            .with_bucket("b")
            .with_key("a<&>b")
            .to_xml("R", "H", false);
        let s = std::str::from_utf8(&xml).unwrap();
        assert!(s.contains("<Key>a&lt;&amp;&gt;b</Key>"), "{s}");
        assert!(!s.contains("<BucketName>"), "{s}");
    }

    #[test]
    fn pretty_output_is_indented() {
        let xml = HcpError::new(HcpCode::AccessDenied).to_xml("R", "H", true);
        let s = std::str::from_utf8(&xml).unwrap();
        assert!(s.contains("\n  <Code>AccessDenied</Code>"), "{s}");
    }
}
