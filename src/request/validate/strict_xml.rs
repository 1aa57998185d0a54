//! The strict reading shared by the small documents the gateway rebuilds before the backend
//! gets them (`lock_document`, `cors_document`): what the gateway reads must be what any
//! backend would read, so whatever two XML readers could read two ways is refused — a second
//! root, CDATA, character and entity references, a document type, text outside a field, a
//! field's text in pieces (`<Days>1<!-- -->00</Days>` is 100 days to a backend that joins
//! them). A byte-order mark, the declaration, comments and processing instructions are
//! skipped. Elements are named by their local names (`<s3:Retention xmlns:s3=…>` is a
//! `Retention`).
//!
//! What each document holds is its own: a [`Fields`] says which elements may open where, which
//! of them hold a value, and takes each value as its field closes.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::hcp::errors::HcpError;

/// A document's own rules over what [`read`] finds.
pub(super) trait Fields {
    /// An element opens at `path` (local names, the root first): refused unless the document
    /// has one there (and, where it keeps count, not again).
    fn open(&mut self, path: &[Vec<u8>]) -> Result<(), HcpError>;
    /// Whether the element at `path` holds a value.
    fn is_field(&self, path: &[Vec<u8>]) -> bool;
    /// A field at `path` closes with its text, trimmed, or `None` for no text at all
    /// (`<F></F>`, `<F/>`).
    fn field(&mut self, path: &[Vec<u8>], value: Option<String>) -> Result<(), HcpError>;
}

/// Whose document is read: a client's, strictly, or one a backend keeps and answers — the
/// gateway's own, as the backend writes it again (its serialiser's references, `&apos;` for a
/// `'`, are read as what they stand for; CDATA and a field's text in pieces joined).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reading {
    Client,
    Backend,
}

/// Reads `doc` strictly into `fields`; a fault of the reading itself is `malformed(why)`.
pub(super) fn read(
    doc: &[u8],
    fields: &mut impl Fields,
    malformed: fn(&str) -> HcpError,
) -> Result<(), HcpError> {
    read_as(doc, fields, malformed, Reading::Client)
}

/// [`read`], for a document of `reading`'s.
pub(super) fn read_as(
    doc: &[u8],
    fields: &mut impl Fields,
    malformed: fn(&str) -> HcpError,
    reading: Reading,
) -> Result<(), HcpError> {
    let backend = reading == Reading::Backend;
    // (A byte-order mark before the declaration is no text outside a field.)
    let doc = doc.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(doc);
    let mut reader = Reader::from_reader(doc);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut rooted = false;
    // The open field's text, once it had one.
    let mut text: Option<String> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|_| malformed("not well-formed"))?;
        match event {
            Event::Start(_) | Event::Empty(_) if path.is_empty() && rooted => {
                return Err(malformed("a second root"));
            }
            Event::Start(e) => {
                path.push(e.local_name().as_ref().to_vec());
                fields.open(&path)?;
                rooted = true;
                text = None;
            }
            Event::Empty(e) => {
                path.push(e.local_name().as_ref().to_vec());
                // (An empty root is a document of nothing, an empty field one of no value;
                // an empty element that holds fields holds none of them.)
                if path.len() > 1 && !fields.is_field(&path) {
                    return Err(malformed("an empty element"));
                }
                fields.open(&path)?;
                if fields.is_field(&path) {
                    fields.field(&path, None)?;
                }
                path.pop();
                rooted = true;
            }
            Event::Text(t) => {
                let piece = t.decode().map_err(|_| malformed("text not UTF-8"))?;
                if fields.is_field(&path) && backend {
                    text.get_or_insert_with(String::new).push_str(&piece);
                } else if fields.is_field(&path) {
                    if text.is_some() {
                        return Err(malformed("a field's text in pieces"));
                    }
                    // (Sent rebuilt: the value without the spaces around it.)
                    text = Some(piece.trim().to_string());
                } else if !piece.trim().is_empty() {
                    return Err(malformed("text outside a field"));
                }
            }
            Event::End(_) => {
                if fields.is_field(&path) {
                    let value = text.take();
                    let value = if backend {
                        value.map(|v| v.trim().to_string())
                    } else {
                        value
                    };
                    fields.field(&path, value)?;
                }
                text = None;
                path.pop();
            }
            Event::GeneralRef(r) if backend && fields.is_field(&path) => {
                let text = text.get_or_insert_with(String::new);
                if !crate::hcp::xml::push_reference(text, &r) {
                    return Err(malformed("an unknown reference"));
                }
            }
            Event::CData(c) if backend && fields.is_field(&path) => {
                let piece = std::str::from_utf8(&c).map_err(|_| malformed("text not UTF-8"))?;
                text.get_or_insert_with(String::new).push_str(piece);
            }
            Event::CData(_) | Event::GeneralRef(_) => {
                return Err(malformed("CDATA or a reference"));
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(_) => return Err(malformed("a document type")),
            Event::Eof if rooted && path.is_empty() => return Ok(()),
            Event::Eof => return Err(malformed("cut off")),
        }
    }
}
