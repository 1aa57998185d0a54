//! HCP lists an object's versions "in ascending chronological order by last-modified time"
//! (manual, listing versions); S3 servers list them newest first. [`oldest_first`] turns each
//! key's run of `Version` and `DeleteMarker` entries round.
//!
//! A page cut off in the middle of a key's versions (a truncated listing whose last key goes on
//! on the next page) keeps that last run in the backend's order: turning only the part on this
//! page round would put it out of order with the rest on the next page.

use quick_xml::events::Event;
use quick_xml::{Reader, Writer};

/// One `Version` or `DeleteMarker` element, whole, and the key it is of.
struct Entry {
    key: Vec<u8>,
    events: Vec<Event<'static>>,
}

/// A `ListVersionsResult` with each key's versions oldest first; `None` if it cannot be read.
pub fn oldest_first(body: &[u8]) -> Option<Vec<u8>> {
    let mut reader = Reader::from_reader(body);
    let mut writer = Writer::new(Vec::with_capacity(body.len()));
    let truncated = is_truncated(body);
    let mut run: Vec<Entry> = Vec::new();
    let mut entry: Option<Entry> = None;
    let mut path: Vec<Vec<u8>> = Vec::new();
    loop {
        let event = reader.read_event().ok()?.into_owned();
        let depth = path.len();
        match &event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_vec();
                if depth == 1 && matches!(name.as_slice(), b"Version" | b"DeleteMarker") {
                    entry = Some(Entry {
                        key: Vec::new(),
                        events: Vec::new(),
                    });
                } else if depth == 1 {
                    flush(&mut writer, &mut run, truncated)?;
                }
                path.push(name);
            }
            Event::End(_) => {
                path.pop();
            }
            // (A key's text comes in pieces around its references — `John&#39;s` is `John`,
            // `#39`, `s` —: the whole of it, raw, tells keys apart.)
            Event::Text(t) if depth == 3 && path.last().map(Vec::as_slice) == Some(b"Key") => {
                if let Some(e) = entry.as_mut() {
                    e.key.extend_from_slice(bytes(t));
                }
            }
            Event::GeneralRef(r)
                if depth == 3 && path.last().map(Vec::as_slice) == Some(b"Key") =>
            {
                if let Some(e) = entry.as_mut() {
                    e.key.push(b'&');
                    e.key.extend_from_slice(r);
                    e.key.push(b';');
                }
            }
            Event::Eof => break,
            _ => {}
        }
        let Some(current) = entry.as_mut() else {
            // (Whitespace between entries is left out; the document is re-indented if asked.)
            let blank = matches!(&event, Event::Text(t) if bytes(t).trim_ascii().is_empty());
            if !blank || run.is_empty() {
                if depth <= 1 && matches!(event, Event::End(_)) {
                    flush(&mut writer, &mut run, truncated)?;
                }
                writer.write_event(event).ok()?;
            }
            continue;
        };
        let closes = matches!(event, Event::End(_)) && path.len() == 1;
        current.events.push(event);
        if closes {
            run.push(entry.take().expect("an entry"));
        }
    }
    flush(&mut writer, &mut run, truncated)?;
    Some(writer.into_inner())
}

/// Writes the entries read so far, each key's run turned round — but for the last key of a
/// truncated page (`last_may_go_on`), which may continue on the next page.
fn flush(writer: &mut Writer<Vec<u8>>, run: &mut Vec<Entry>, last_may_go_on: bool) -> Option<()> {
    let entries = std::mem::take(run);
    let mut groups: Vec<Vec<Entry>> = Vec::new();
    for e in entries {
        match groups.last_mut() {
            Some(g) if g[0].key == e.key => g.push(e),
            _ => groups.push(vec![e]),
        }
    }
    let count = groups.len();
    for (i, mut group) in groups.into_iter().enumerate() {
        if !(last_may_go_on && i + 1 == count) {
            group.reverse();
        }
        for e in group {
            for event in e.events {
                writer.write_event(event).ok()?;
            }
        }
    }
    Some(())
}

fn bytes<'a>(t: &'a quick_xml::events::BytesText<'_>) -> &'a [u8] {
    t
}

fn is_truncated(body: &[u8]) -> bool {
    let mut reader = Reader::from_reader(body);
    let mut in_flag = false;
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                in_flag = depth == 2 && e.local_name().as_ref() == b"IsTruncated";
            }
            Ok(Event::End(_)) => {
                depth = depth.saturating_sub(1);
                in_flag = false;
            }
            Ok(Event::Text(t)) if in_flag => return bytes(&t).trim_ascii() == b"true",
            Ok(Event::Eof) | Err(_) => return false,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(key: &str, id: &str) -> String {
        format!("<Version><Key>{key}</Key><VersionId>{id}</VersionId></Version>")
    }

    fn ids(doc: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(doc)
            .split("<VersionId>")
            .skip(1)
            .map(|s| s.split('<').next().unwrap().to_string())
            .collect()
    }

    fn listing(truncated: bool, entries: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?><ListVersionsResult><Name>b</Name>\
             <IsTruncated>{truncated}</IsTruncated>{entries}\
             <CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes></ListVersionsResult>"
        )
    }

    #[test]
    fn each_keys_versions_oldest_first() {
        let marker = "<DeleteMarker><Key>a</Key><VersionId>a3</VersionId></DeleteMarker>";
        let entries = format!(
            "{marker}{}{}{}{}",
            version("a", "a2"),
            version("a", "a1"),
            version("b", "b2"),
            version("b", "b1")
        );
        let out = oldest_first(listing(false, &entries).as_bytes()).unwrap();
        assert_eq!(ids(&out), ["a1", "a2", "a3", "b1", "b2"]);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes>"));
        assert!(text.contains("<DeleteMarker><Key>a</Key><VersionId>a3</VersionId>"));
        assert!(text.starts_with("<?xml") && text.ends_with("</ListVersionsResult>"));
        // Truncated: the last key's run may go on, so it keeps the backend's order.
        let out = oldest_first(listing(true, &entries).as_bytes()).unwrap();
        assert_eq!(ids(&out), ["a1", "a2", "a3", "b2", "b1"]);
    }

    #[test]
    fn keys_that_differ_only_after_escaping_stay_apart() {
        let entries = format!(
            "{}{}{}",
            version("a&amp;b", "x2"),
            version("a&amp;b", "x1"),
            version("a", "y1")
        );
        let out = oldest_first(listing(false, &entries).as_bytes()).unwrap();
        assert_eq!(ids(&out), ["x1", "x2", "y1"]);
        // Keys that end alike after a reference are two keys, each kept in its place.
        let entries = format!(
            "{}{}{}",
            version("a&amp;z", "a2"),
            version("a&amp;z", "a1"),
            version("b&amp;z", "b1")
        );
        let out = oldest_first(listing(false, &entries).as_bytes()).unwrap();
        assert_eq!(ids(&out), ["a1", "a2", "b1"]);
    }
}
