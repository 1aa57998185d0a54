//! Small XML reading helpers shared by every parser of client and backend documents.

use quick_xml::events::BytesRef;

/// The namespace of S3's documents, and of HCP's.
pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Appends what an entity or character reference stands for. quick-xml reports `&amp;`,
/// `&quot;` and `&#34;` as events of their own, between the text pieces around them.
/// Returns false for a reference XML does not define.
pub fn push_reference(text: &mut String, reference: &BytesRef<'_>) -> bool {
    if let Ok(Some(c)) = reference.resolve_char_ref() {
        text.push(c);
        return true;
    }
    match reference
        .decode()
        .ok()
        .and_then(|n| quick_xml::escape::resolve_xml_entity(&n))
    {
        Some(v) => {
            text.push_str(v);
            true
        }
        None => false,
    }
}

/// The text of the first element named `leaf` (by its local name) in `doc`, references
/// resolved; `None` if there is none or the document cannot be read.
pub fn leaf_text(doc: &[u8], leaf: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(doc);
    let mut inside = false;
    let mut text = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => inside = e.local_name().as_ref() == leaf.as_bytes(),
            Event::Text(t) if inside => text.push_str(&t.decode().ok()?),
            Event::CData(c) if inside => text.push_str(std::str::from_utf8(&c).ok()?),
            Event::GeneralRef(r) if inside && !push_reference(&mut text, &r) => return None,
            Event::End(_) if inside => return Some(text),
            Event::Eof => return None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::events::Event;

    #[test]
    fn references_resolve_between_text_pieces() {
        let mut reader = quick_xml::Reader::from_str("<a>&quot;x&amp;&#34;&#x41;</a>");
        let mut text = String::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Text(t) => text.push_str(&t.decode().unwrap()),
                Event::GeneralRef(r) => assert!(push_reference(&mut text, &r)),
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(text, "\"x&\"A");
    }
}
