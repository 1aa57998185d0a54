//! HCP lists an object's versions "in ascending chronological order by last-modified time"
//! (manual, listing versions); S3 servers list them newest first. [`oldest_first`] turns each
//! key's run of `Version` and `DeleteMarker` entries round.
//!
//! A page cut off in the middle of a key's versions (a truncated listing whose last key goes on
//! on the next page) keeps that last run in the backend's order: turning only the part on this
//! page round would put it out of order with the rest on the next page.
//!
//! A server that writes all its delete markers apart from its versions (s3s, which serves the
//! embedded store, writes every `DeleteMarker` before the other elements and every `Version`
//! after them) has its entries merged first: by key, then a key's entries newest first by
//! `LastModified` (the latest first of two alike in time, else the backend's order), so that a delete marker stands
//! between the versions written before and after it, as HCP lists it. Entries that come as one
//! run keep the backend's order of keys.

use std::ops::Range;

use quick_xml::events::Event;
use quick_xml::Reader;

/// One `Version` or `DeleteMarker` element, whole, and the key it is of.
struct Entry {
    /// The key's text as the document has it (references and all).
    key: Vec<u8>,
    /// Its `LastModified` text (ISO 8601 in UTC, alike in every entry: compared as text).
    modified: Vec<u8>,
    /// `IsLatest`: of two alike in time, this one is the newer.
    latest: bool,
    /// Where the element is in the document (it is copied as it is: no event of it is kept,
    /// so that a page costs its text and no more — a key of 4,000 `&lt;` is 4,000 events).
    span: Range<usize>,
}

/// The entries of a listing and where in the rest of the document they go.
#[derive(Default)]
struct Read {
    /// The document but its entries: where its pieces are.
    outside: Vec<Range<usize>>,
    /// Where the entries go in `outside`: at the first one.
    slot: Option<usize>,
    entries: Vec<Entry>,
    /// How many runs the entries came in (other elements between them end a run).
    runs: usize,
    /// Whether keys are URL-encoded (`EncodingType` url).
    url: bool,
    /// `NextKeyMarker`'s text as the document has it: the key a truncated page goes on with.
    next_key: Option<Vec<u8>>,
    /// Whether the page is cut off (`IsTruncated` true).
    truncated: bool,
}

/// A `ListVersionsResult` with each key's versions oldest first; `None` if it cannot be read.
/// `resumed`: the key the request's `key-marker` names where it has a `version-id-marker` too —
/// the page then begins with the rest of that key's versions, whose first ones were on the
/// page before. `minio`: the next key marker may name MinIO's listing cache after the key
/// (`rewrite::minio_marker`).
pub fn oldest_first(body: &[u8], resumed: Option<&[u8]>, minio: bool) -> Option<Vec<u8>> {
    let read = read_entries(body)?;
    let truncated = read.truncated;
    // (The key a truncated page may go on with: the one its next key marker names, or where
    // it names none, the last.)
    let goes_on = match (truncated, read.next_key) {
        (false, _) => GoesOn::None,
        (true, Some(key)) if minio => GoesOn::Key(super::rewrite::minio_marker(&key).to_vec()),
        (true, Some(key)) => GoesOn::Key(key),
        (true, None) => GoesOn::Last,
    };
    let pages = Pages {
        goes_on,
        resumed,
        url: read.url,
    };
    let entries = in_hcp_order(read.entries, read.runs > 1, &pages);
    let slot = read.slot.unwrap_or(read.outside.len());
    let mut out = Vec::with_capacity(body.len());
    let mut outside = read.outside.into_iter();
    for piece in outside.by_ref().take(slot) {
        out.extend_from_slice(&body[piece]);
    }
    for entry in entries {
        out.extend_from_slice(&body[entry.span]);
    }
    for piece in outside {
        out.extend_from_slice(&body[piece]);
    }
    Some(out)
}

/// Reads the document: its entries apart, the rest in order.
fn read_entries(body: &[u8]) -> Option<Read> {
    let mut reader = Reader::from_reader(body);
    let mut read = Read::default();
    let mut entry: Option<Entry> = None;
    let mut in_run = false;
    let (mut encoding, mut latest, mut truncated) = (Vec::new(), Vec::new(), Vec::new());
    let mut path: Vec<Vec<u8>> = Vec::new();
    let at = |reader: &Reader<&[u8]>| usize::try_from(reader.buffer_position()).ok();
    loop {
        let start = at(&reader)?;
        let event = reader.read_event().ok()?;
        let span = start..at(&reader)?;
        let depth = path.len();
        if let Event::Start(e) = &event {
            let name = e.local_name().as_ref().to_vec();
            let is_entry = matches!(name.as_slice(), b"Version" | b"DeleteMarker");
            if depth == 1 && is_entry {
                entry = Some(Entry {
                    key: Vec::new(),
                    modified: Vec::new(),
                    latest: false,
                    span: span.clone(),
                });
                read.runs += usize::from(!in_run);
                in_run = true;
                read.slot.get_or_insert(read.outside.len());
            } else if depth == 1 {
                in_run = false;
            }
            path.push(name);
        } else if let Event::End(_) = &event {
            path.pop();
        }
        // The text of the fields read, whole: a key's comes in pieces around its references —
        // `John&#39;s` is `John`, `#39`, `s` —, and the whole of it, raw, tells keys apart.
        let field = path
            .last()
            .map(Vec::as_slice)
            .filter(|_| path.len() == depth);
        let sink = match (depth, field, entry.as_mut()) {
            (3, Some(b"Key"), Some(e)) => Some(&mut e.key),
            (3, Some(b"LastModified"), Some(e)) => Some(&mut e.modified),
            (3, Some(b"IsLatest"), Some(_)) => Some(&mut latest),
            (2, Some(b"NextKeyMarker"), None) => Some(read.next_key.get_or_insert_with(Vec::new)),
            (2, Some(b"EncodingType"), None) => Some(&mut encoding),
            (2, Some(b"IsTruncated"), None) => Some(&mut truncated),
            _ => None,
        };
        match (&event, sink) {
            (Event::Text(t), Some(sink)) => sink.extend_from_slice(bytes(t)),
            (Event::GeneralRef(r), Some(sink)) => {
                sink.push(b'&');
                sink.extend_from_slice(r);
                sink.push(b';');
            }
            (Event::Eof, _) => break,
            _ => {}
        }
        let Some(current) = entry.as_mut() else {
            // (Whitespace between the document's elements is left out; the document is
            // re-indented if asked.)
            let blank = matches!(&event, Event::Text(t) if bytes(t).trim_ascii().is_empty());
            if !(blank && depth == 1) {
                match read.outside.last_mut() {
                    Some(last) if last.end == span.start => last.end = span.end,
                    _ => read.outside.push(span),
                }
            }
            continue;
        };
        if matches!(event, Event::End(_)) && path.len() == 1 {
            current.span.end = span.end;
            let mut done = entry.take().expect("an entry");
            done.latest = std::mem::take(&mut latest).trim_ascii() == b"true";
            read.entries.push(done);
        }
    }
    read.url = encoding.trim_ascii().eq_ignore_ascii_case(b"url");
    read.truncated = truncated.trim_ascii() == b"true";
    Some(read)
}

/// Where a page stands among its listing's pages: which of its keys goes on on the next page
/// and which went on from the page before, whose versions there would be out of order with
/// those here turned round, so they keep the backend's order.
struct Pages<'a> {
    goes_on: GoesOn,
    resumed: Option<&'a [u8]>,
    /// Whether keys are URL-encoded (`EncodingType` url).
    url: bool,
}

/// Which key of a page may go on on the next page: its versions there would be out of order
/// with those here turned round, so they keep the backend's order.
enum GoesOn {
    None,
    /// The one a truncated page's `NextKeyMarker` names (its text as the document has it).
    Key(Vec<u8>),
    /// The last (a truncated page that names no next key).
    Last,
}

/// The entries in HCP's order: by key (merged by key first where they came in several runs),
/// each key's oldest first — but for the key that may go on on the next page, and the one that
/// went on from the page before (`pages`).
fn in_hcp_order(mut entries: Vec<Entry>, merge: bool, pages: &Pages<'_>) -> Vec<Entry> {
    let url = pages.url;
    if merge {
        // (Stable: a key's entries keep the backend's order until sorted by time.)
        entries.sort_by_cached_key(|e| listed_key(&e.key, url));
    }
    let mut groups: Vec<Vec<Entry>> = Vec::new();
    for e in entries {
        match groups.last_mut() {
            Some(g) if g[0].key == e.key => g.push(e),
            _ => groups.push(vec![e]),
        }
    }
    let count = groups.len();
    let mut ordered = Vec::new();
    for (i, mut group) in groups.into_iter().enumerate() {
        if merge {
            group.sort_by(|a, b| (&b.modified, b.latest).cmp(&(&a.modified, a.latest)));
        }
        let continues = match &pages.goes_on {
            GoesOn::None => false,
            GoesOn::Key(key) => group[0].key == *key,
            GoesOn::Last => i + 1 == count,
        };
        let went_on = i == 0
            && pages
                .resumed
                .is_some_and(|key| listed_key(&group[0].key, url) == key);
        if !continues && !went_on {
            group.reverse();
        }
        ordered.extend(group);
    }
    ordered
}

/// The key an entry names, as S3 orders keys: its text with XML's references replaced and,
/// in a URL-encoded listing, decoded.
fn listed_key(raw: &[u8], url: bool) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let unescaped =
        quick_xml::escape::unescape(&text).map_or_else(|_| text.to_string(), |k| k.into_owned());
    crate::request::object_owners::listed_key(&unescaped, url)
}

fn bytes<'a>(t: &'a quick_xml::events::BytesText<'_>) -> &'a [u8] {
    t
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
        let out = oldest_first(listing(false, &entries).as_bytes(), None, false).unwrap();
        assert_eq!(ids(&out), ["a1", "a2", "a3", "b1", "b2"]);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes>"));
        assert!(text.contains("<DeleteMarker><Key>a</Key><VersionId>a3</VersionId>"));
        assert!(text.starts_with("<?xml") && text.ends_with("</ListVersionsResult>"));
        // Truncated: the last key's run may go on, so it keeps the backend's order.
        let out = oldest_first(listing(true, &entries).as_bytes(), None, false).unwrap();
        assert_eq!(ids(&out), ["a1", "a2", "a3", "b2", "b1"]);
        // Unless the page names the key it goes on with, and that is another: a common prefix
        // after the entries (both keys whole), or the first key.
        for (next, expected) in [
            ("p/", ["a1", "a2", "a3", "b1", "b2"]),
            ("a", ["a3", "a2", "a1", "b1", "b2"]),
        ] {
            let page = listing(true, &entries).replace(
                "<CommonPrefixes>",
                &format!("<NextKeyMarker>{next}</NextKeyMarker><CommonPrefixes>"),
            );
            assert_eq!(
                ids(&oldest_first(page.as_bytes(), None, false).unwrap()),
                expected,
                "{next}"
            );
        }
    }

    fn entry(kind: &str, key: &str, id: &str, at: &str) -> String {
        format!(
            "<{kind}><Key>{key}</Key><VersionId>{id}</VersionId>\
             <LastModified>2026-12-05T10:00:0{at}.000Z</LastModified></{kind}>"
        )
    }

    /// s3s (the embedded store) writes every delete marker before the other elements and every
    /// version after them: merged, each key's entries are in the order they were written.
    #[test]
    fn delete_markers_written_apart_are_merged_by_key_and_time() {
        let markers = [
            entry("DeleteMarker", "a", "a2", "2"),
            entry("DeleteMarker", "b", "b2", "5"),
            entry("DeleteMarker", "c&amp;d", "c1", "1"),
        ]
        .concat();
        let versions = [
            entry("Version", "a", "a3", "3"),
            entry("Version", "a", "a1", "1"),
            entry("Version", "b", "b1", "4"),
        ]
        .concat();
        let doc = format!(
            "<?xml version=\"1.0\"?><ListVersionsResult>{markers}<IsTruncated>false</IsTruncated>\
             <Name>b</Name>{versions}</ListVersionsResult>"
        );
        let out = oldest_first(doc.as_bytes(), None, false).unwrap();
        assert_eq!(ids(&out), ["a1", "a2", "a3", "b1", "b2", "c1"]);
        // Of a delete marker and a version written in one millisecond, the latest is newer.
        let doc = format!(
            "<ListVersionsResult>{}<Name>b</Name>{}{}</ListVersionsResult>",
            entry("DeleteMarker", "a", "m", "2"),
            entry("Version", "a", "v2", "2").replace("<Key>", "<IsLatest>true</IsLatest><Key>"),
            entry("Version", "a", "v1", "1"),
        );
        assert_eq!(
            ids(&oldest_first(doc.as_bytes(), None, false).unwrap()),
            ["v1", "m", "v2"]
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("</DeleteMarker><IsTruncated>false</IsTruncated><Name>b</Name></ListVersionsResult>"), "{text}");
        // URL-encoded keys are ordered as the keys they stand for: "a b" (%20) before "a+" (%2B).
        let markers = entry("DeleteMarker", "a%2B", "p1", "1");
        let versions = entry("Version", "a%20b", "s1", "2");
        let doc = format!(
            "<ListVersionsResult><EncodingType>url</EncodingType>{markers}<Name>b</Name>{versions}</ListVersionsResult>"
        );
        assert_eq!(
            ids(&oldest_first(doc.as_bytes(), None, false).unwrap()),
            ["s1", "p1"]
        );
    }

    #[test]
    fn keys_that_differ_only_after_escaping_stay_apart() {
        let entries = format!(
            "{}{}{}",
            version("a&amp;b", "x2"),
            version("a&amp;b", "x1"),
            version("a", "y1")
        );
        let out = oldest_first(listing(false, &entries).as_bytes(), None, false).unwrap();
        assert_eq!(ids(&out), ["x1", "x2", "y1"]);
        // Keys that end alike after a reference are two keys, each kept in its place.
        let entries = format!(
            "{}{}{}",
            version("a&amp;z", "a2"),
            version("a&amp;z", "a1"),
            version("b&amp;z", "b1")
        );
        let out = oldest_first(listing(false, &entries).as_bytes(), None, false).unwrap();
        assert_eq!(ids(&out), ["a1", "a2", "b1"]);
    }

    /// A page that goes on inside a key (`key-marker` with `version-id-marker`) begins with
    /// the rest of that key's versions: kept in the backend's order, as their first ones were
    /// on the page before (`v4 v3 | v2 v1`, never `v4 v3 v1 v2`).
    #[test]
    fn a_key_resumed_from_the_page_before_keeps_its_order() {
        let entries = format!(
            "{}{}{}",
            version("k&amp;1", "v2"),
            version("k&amp;1", "v1"),
            version("m", "m1")
        );
        let doc = listing(false, &entries);
        let out = oldest_first(doc.as_bytes(), Some(b"k&1"), false).unwrap();
        assert_eq!(ids(&out), ["v2", "v1", "m1"]);
        // (Another key than the marker's is turned round as ever; so is the marker's key
        // where it is not first.)
        let out = oldest_first(doc.as_bytes(), Some(b"j"), false).unwrap();
        assert_eq!(ids(&out), ["v1", "v2", "m1"]);
        let out = oldest_first(doc.as_bytes(), Some(b"m"), false).unwrap();
        assert_eq!(ids(&out), ["v1", "v2", "m1"]);
    }

    /// A page costs about its text while it is turned round, whatever its keys hold: a key of
    /// 1,000 `&lt;` is 2,001 XML events, which held one by one cost some thirty times its text.
    #[test]
    fn a_page_is_turned_round_in_about_its_own_size() {
        let key = "&lt;".repeat(1000);
        let entries: String = (0..200)
            .map(|i| version(&format!("{key}{i:03}"), &format!("v{i}")))
            .collect();
        let doc = listing(false, &entries);
        let mut out = None;
        let counted =
            allocation_counter::measure(|| out = oldest_first(doc.as_bytes(), None, false));
        assert_eq!(out.map(|o| o.len()), Some(doc.len()));
        let held = counted.bytes_max;
        assert!(
            held < 3 * doc.len() as u64,
            "{held} bytes for {}",
            doc.len()
        );
    }
}
