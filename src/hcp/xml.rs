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

/// Writes `<name>text</name>` (the text escaped): every document the gateway writes or
/// rewrites writes its leaves so. (`None` only where the writer's sink fails: never for a
/// `Vec`.)
pub fn leaf<W: std::io::Write>(
    writer: &mut quick_xml::Writer<W>,
    name: &str,
    text: &str,
) -> Option<()> {
    use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
    writer
        .write_event(Event::Start(BytesStart::new(name)))
        .ok()?;
    writer.write_event(Event::Text(BytesText::new(text))).ok()?;
    writer.write_event(Event::End(BytesEnd::new(name))).ok()
}

/// An object's name as HCP displays it back in a document of its own: "non-ASCII,
/// nonprintable characters" percent-encoded (their UTF-8 bytes) — the control characters,
/// which XML 1.0 cannot carry but for tab and line ends (and would be lost to a reader's line
/// end handling), and U+FFFE / U+FFFF, which it cannot carry at all. Other text as it is.
pub fn displayed_name(name: &str) -> std::borrow::Cow<'_, str> {
    let shown = |c: char| !c.is_control() && !matches!(c, '\u{FFFE}' | '\u{FFFF}');
    if name.chars().all(shown) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if shown(c) {
            out.push(c);
            continue;
        }
        let mut bytes = [0u8; 4];
        for b in c.encode_utf8(&mut bytes).bytes() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A listed name as S3's listings encode it where asked (`encoding-type=url`): every byte
/// but `A-Z a-z 0-9 - _ . ~` and `/` percent-encoded.
pub fn url_encoded_name(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    crate::sig::v4::uri_encode(name, true, &mut out);
    out
}

/// A name as a client may give it back after [`displayed_name`] showed it: each
/// percent-encoded character that `displayed_name` encodes is the character again ("you can
/// access it either by its original name or by the names with the percent-encoded
/// characters"); any other `%` is the name's own.
pub fn stored_name(given: &str) -> std::borrow::Cow<'_, str> {
    if !given.contains('%') {
        return std::borrow::Cow::Borrowed(given);
    }
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = given.as_bytes();
    let mut out = String::with_capacity(given.len());
    let mut at = 0;
    while at < bytes.len() {
        // The longest run of %XX here that is one character displayed encoded (1 to 4 bytes).
        let mut decoded = Vec::new();
        let mut end = at;
        let mut matched = false;
        while decoded.len() < 4 && bytes.get(end) == Some(&b'%') {
            let (Some(h), Some(l)) = (
                bytes.get(end + 1).copied().and_then(hex),
                bytes.get(end + 2).copied().and_then(hex),
            ) else {
                break;
            };
            decoded.push((h * 16 + l) as u8);
            end += 3;
            if let Ok(c) = std::str::from_utf8(&decoded) {
                if displayed_name(c) != c {
                    out.push_str(c);
                    (at, matched) = (end, true);
                }
                break;
            }
        }
        if matched {
            continue;
        }
        let c = given[at..].chars().next().expect("a character");
        out.push(c);
        at += c.len_utf8();
    }
    std::borrow::Cow::Owned(out)
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

    /// Every name, as displayed, is text an XML 1.0 document can carry — and read back as
    /// written (no control character a reader would drop or turn into another).
    #[test]
    fn displayed_names_are_xml_text() {
        let cases = [
            ("plain/name é 日本", "plain/name é 日本"),
            ("a\u{1}b", "a%01b"),
            ("tab\there\r\n", "tab%09here%0D%0A"),
            ("del\u{7F}c1\u{85}", "del%7Fc1%C2%85"),
            ("nc\u{FFFE}\u{FFFF}", "nc%EF%BF%BE%EF%BF%BF"),
            ("100% sure", "100% sure"),
        ];
        for (name, shown) in cases {
            assert_eq!(displayed_name(name), shown, "{name:?}");
        }
        // Given back, a displayed name is the name (`%` of its own left as it is).
        for (name, _) in cases {
            assert_eq!(stored_name(&displayed_name(name)), name, "{name:?}");
        }
        assert_eq!(stored_name("a%2x%0"), "a%2x%0");
        assert_eq!(stored_name("a%41%C3%A9"), "a%41%C3%A9");
        // The oracle: over every character class, the text written reads back the same.
        for c in (0u32..0x300)
            .chain(0xFFF0..0x10000)
            .filter_map(char::from_u32)
        {
            let name = format!("k{c}k");
            let shown = displayed_name(&name);
            let doc = format!("<Key>{}</Key>", quick_xml::escape::escape(shown.as_ref()));
            assert!(
                shown
                    .chars()
                    .all(|c| !c.is_control() && c != '\u{FFFE}' && c != '\u{FFFF}'),
                "{c:?}"
            );
            assert_eq!(
                leaf_text(doc.as_bytes(), "Key").as_deref(),
                Some(shown.as_ref())
            );
            assert_eq!(stored_name(&shown), name, "{c:?}");
        }
    }
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
