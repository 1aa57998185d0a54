//! A copy's and a complete's result names the object's ETag as HCP does: quoted (HCP's
//! examples: `<ETag>"6ed7…"</ETag>`, `<ETag>&quot;e879…-6&quot;</ETag>`). Ceph RGW writes a
//! copy's unquoted and a complete's empty; the gateway quotes the one and, for the other,
//! names the ETag S3 gives the object the complete made of the parts it sent.

use quick_xml::events::{BytesText, Event};
use quick_xml::{Reader, Writer};

use super::complete::ListedPart;

/// The ETag S3 gives the object a complete makes of `parts`, quoted (`crate::etag::of_parts`).
pub fn of_parts(parts: &[ListedPart]) -> Option<String> {
    let etags = parts.iter().map(|p| p.etag.as_str());
    crate::etag::of_parts(etags).map(|etag| format!("\"{etag}\""))
}

/// The result document with its `ETag` (the root's child) quoted, or where it is empty,
/// `made` (a complete's, [`of_parts`]); `None` where nothing changes — an ETag quoted
/// already, none to fill in, or a document that cannot be read (the rewrite judges it).
pub fn quoted(body: &[u8], made: Option<&str>) -> Option<Vec<u8>> {
    let text = etag_text(body)?;
    let replaced = match text.trim() {
        "" => made?.to_string(),
        t if t.starts_with('"') => return None,
        t => format!("\"{t}\""),
    };
    let mut reader = Reader::from_reader(body);
    let mut writer = Writer::new(Vec::with_capacity(body.len() + 40));
    let mut depth = 0usize;
    let mut in_etag = false;
    loop {
        let event = reader.read_event().ok()?;
        match &event {
            Event::Eof => break,
            Event::Start(e) => {
                depth += 1;
                in_etag = depth == 2 && e.local_name().as_ref() == b"ETag";
                if in_etag {
                    writer.write_event(event.borrow()).ok()?;
                    writer
                        .write_event(Event::Text(BytesText::new(&replaced)))
                        .ok()?;
                    continue;
                }
            }
            Event::Empty(e) if depth == 1 && e.local_name().as_ref() == b"ETag" => {
                let start = e.to_end().into_owned();
                writer.write_event(Event::Start(e.borrow())).ok()?;
                writer
                    .write_event(Event::Text(BytesText::new(&replaced)))
                    .ok()?;
                writer.write_event(Event::End(start)).ok()?;
                continue;
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                in_etag = false;
            }
            // (The ETag's own text and references: replaced as a whole.)
            Event::Text(_) | Event::GeneralRef(_) | Event::CData(_) if in_etag => continue,
            _ => {}
        }
        writer.write_event(event).ok()?;
    }
    Some(writer.into_inner())
}

/// The text of the `ETag` under the root (references resolved); `None` where there is none or
/// the document cannot be read.
fn etag_text(body: &[u8]) -> Option<String> {
    let mut reader = Reader::from_reader(body);
    let mut depth = 0usize;
    let mut in_etag = false;
    let mut text = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Eof => return None,
            Event::Start(e) => {
                depth += 1;
                in_etag = depth == 2 && e.local_name().as_ref() == b"ETag";
            }
            Event::Empty(e) if depth == 1 && e.local_name().as_ref() == b"ETag" => {
                return Some(String::new());
            }
            Event::End(_) if in_etag => return Some(text),
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) if in_etag => text.push_str(&t.decode().ok()?),
            Event::GeneralRef(r) if in_etag => {
                let resolved = match r.resolve_char_ref().ok()? {
                    Some(c) => c.to_string(),
                    None => {
                        quick_xml::escape::resolve_predefined_entity(&r.decode().ok()?)?.to_string()
                    }
                };
                text.push_str(&resolved);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: u32, etag: &str) -> ListedPart {
        ListedPart {
            number,
            etag: etag.to_string(),
            checksums: Vec::new(),
        }
    }

    #[test]
    fn a_complete_s_etag_is_s3_s() {
        // (RGW's own, for one part of "hi\n": its listing names this ETag for the object.)
        let one = [part(1, "\"764efa883dda1e11db47671c4a3bbd9e\"")];
        assert_eq!(
            of_parts(&one).as_deref(),
            Some("\"b86583435871b60756e260201377bb9c-1\"")
        );
        assert_eq!(of_parts(&[part(1, "not-an-md5")]), None);
        assert_eq!(of_parts(&[part(1, "\"764efa88\"")]), None);
    }

    #[test]
    fn results_name_a_quoted_etag() {
        let text = |doc: &[u8], made| quoted(doc, made).map(|d| String::from_utf8(d).unwrap());
        let copy = b"<?xml version=\"1.0\"?><CopyObjectResult xmlns=\"urn:x\"><LastModified>d</LastModified><ETag>764e</ETag></CopyObjectResult>";
        assert_eq!(
            text(copy, None).unwrap(),
            "<?xml version=\"1.0\"?><CopyObjectResult xmlns=\"urn:x\"><LastModified>d</LastModified><ETag>&quot;764e&quot;</ETag></CopyObjectResult>"
        );
        // Quoted already, as a reference or as it is: unchanged.
        let quoted_ref = b"<CopyObjectResult><ETag>&quot;764e&quot;</ETag></CopyObjectResult>";
        assert_eq!(text(quoted_ref, None), None);
        let quoted_raw = b"<CopyObjectResult><ETag>\"764e\"</ETag></CopyObjectResult>";
        assert_eq!(text(quoted_raw, Some("\"x\"")), None);
        // Empty: the complete's own, where known.
        let done = b"<CompleteMultipartUploadResult><Key>k</Key><ETag></ETag></CompleteMultipartUploadResult>";
        assert_eq!(text(done, None), None);
        assert_eq!(
            text(done, Some("\"m-1\"")).unwrap(),
            "<CompleteMultipartUploadResult><Key>k</Key><ETag>&quot;m-1&quot;</ETag></CompleteMultipartUploadResult>"
        );
        let empty = b"<CompleteMultipartUploadResult><ETag/></CompleteMultipartUploadResult>";
        assert_eq!(
            text(empty, Some("\"m-1\"")).unwrap(),
            "<CompleteMultipartUploadResult><ETag>&quot;m-1&quot;</ETag></CompleteMultipartUploadResult>"
        );
        // Only the root's child: a nested ETag is none of it.
        let nested = b"<R><Part><ETag>x</ETag></Part></R>";
        assert_eq!(text(nested, Some("\"m\"")), None);
        // Not a document: left to the rewrite.
        assert_eq!(text(b"<R><ETag>x</R>", None), None);
    }
}
