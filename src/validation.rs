//! Validation by HCP's rules, before anything reaches the backend.

use pingora::http::RequestHeader;

use crate::addressing::Target;
use crate::errors::{HcpCode, HcpError};
use crate::operation::Operation;

/// HCP bucket names: 3–63 characters, letters, digits and hyphens, no leading or trailing hyphen,
/// not starting with `xn--` (HCP 9.2 "Bucket and object properties").
pub fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.to_ascii_lowercase().starts_with("xn--")
}

pub fn check(op: Operation, target: &Target, req: &RequestHeader) -> Result<(), HcpError> {
    if op == Operation::CreateBucket {
        let name = target.bucket.as_deref().unwrap_or_default();
        if !valid_bucket_name(name) {
            return Err(HcpError::new(HcpCode::InvalidBucketName));
        }
    }
    if op.has_object_body() {
        let has_length = req.headers.contains_key(http::header::CONTENT_LENGTH)
            || req.headers.contains_key("x-amz-decoded-content-length");
        if !has_length {
            return Err(HcpError::new(HcpCode::MissingContentLength));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_by_hcp_rules() {
        for ok in ["abc", "finance", "a-b-c", "ABC123", &"a".repeat(63)] {
            assert!(valid_bucket_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "a.b.c",
            "a_b",
            "xn--abc",
            &"a".repeat(64),
            "with space",
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }
}
