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
