//! Entity tags as conditional headers name them (`If-Match`, `If-None-Match` and a copy's
//! `x-amz-copy-source-if-…`): a comma-separated list, or `*`. Read alike by the gateway, which
//! judges conditions on a backend's answer, and by the embedded store, which judges its own.

/// Whether an `If-Match`/`If-None-Match` list names `etag`, or is `*` (the whole value: a `*`
/// among tags is no tag, and names nothing); weak and strong forms, quoted or not, compare
/// alike (S3's ETags are all strong). An empty ETag is named by nothing.
pub fn listed(list: &str, etag: &str) -> bool {
    fn bare(t: &str) -> &str {
        let t = t.trim();
        t.strip_prefix("W/").unwrap_or(t).trim_matches('"')
    }
    if list.trim() == "*" {
        return true;
    }
    let etag = bare(etag);
    !etag.is_empty() && list.split(',').any(|t| bare(t) == etag)
}

/// Whether an ETag condition's `list` names one ETag (not `*`, not a list): what a GET's or
/// HEAD's `If-Match` is sent to a backend as (`request::sign`); anything else the gateway
/// judges itself, with [`listed`].
pub fn single(list: &str) -> bool {
    let v = list.trim();
    let inner = v.strip_prefix('"').and_then(|r| r.strip_suffix('"'));
    let inner = inner.unwrap_or(v);
    !inner.is_empty() && !inner.contains(['"', ',']) && inner != "*"
}

/// The ETag S3 gives the object a multipart complete makes of parts with these ETags (quoted
/// or not), unquoted: the MD5 of their MD5s, then `-` and their count — AWS's, Ceph RGW's and
/// the embedded store's. `None` where one is no MD5.
pub fn of_parts<'a>(etags: impl ExactSizeIterator<Item = &'a str>) -> Option<String> {
    use md5::Digest as _;
    let count = etags.len();
    let mut digests = md5::Md5::new();
    for etag in etags {
        let mut one = [0u8; 16];
        hex::decode_to_slice(etag.trim().trim_matches('"'), &mut one).ok()?;
        digests.update(one);
    }
    Some(format!("{}-{count}", hex::encode(digests.finalize())))
}

#[cfg(test)]
mod tests {
    use super::{listed, single};

    /// One ETag, quoted or not, is single; `*`, a list, a weak tag and nothing are not.
    #[test]
    fn one_tag_is_single() {
        for one in ["\"abc\"", "abc", " \"abc\" "] {
            assert!(single(one), "{one}");
        }
        for other in ["*", "\"*\"", "\"a\", \"b\"", "a,b", "W/\"abc\"", "", "\"\""] {
            assert!(!single(other), "{other}");
        }
    }

    #[test]
    fn lists_name_their_tags() {
        let etag = "\"abc\"";
        for list in [
            "\"abc\"",
            "abc",
            "W/\"abc\"",
            "\"00\", \"abc\"",
            "\"00\",\"abc\"",
            "\"abc\" , \"00\"",
            "*",
            " * ",
        ] {
            assert!(listed(list, etag), "{list}");
        }
        for list in [
            "\"00\"",
            "\"00\", \"abcd\"",
            "\"ab\"",
            "",
            "\"a,bc\"",
            "\"00\", *",
        ] {
            assert!(!listed(list, etag), "{list}");
        }
        assert!(!listed("\"\"", ""), "no ETag is named by none");
        assert!(
            !listed("\"x\",", "\"\""),
            "an empty element names no empty ETag"
        );
    }
}
