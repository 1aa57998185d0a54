//! A multi-object delete where retention is kept: HCP's "You cannot use this method … to delete
//! objects that are under retention [or] on hold". The backend would add a delete marker over
//! such an object (S3 Object Lock allows that), hiding it; so each object named without a
//! version is judged first, as a single DELETE is (`validate::probes::check_retained`), and one
//! under retention or on hold is left out of the backend's document and reported in the answer
//! as not deleted. A version named is the backend's lock to keep.

use super::*;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

/// One `<Object>` of a `<Delete>` document.
struct Entry {
    key: String,
    version: Option<String>,
}

/// The objects of a (validated) `<Delete>` document and its `Quiet`.
fn parse(doc: &[u8]) -> Option<(Vec<Entry>, bool)> {
    let mut reader = Reader::from_reader(doc);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let (mut entries, mut quiet) = (Vec::new(), false);
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                if path.len() == 1 && e.name().as_ref() == b"Object" {
                    entries.push(Entry {
                        key: String::new(),
                        version: None,
                    });
                }
                path.push(e.name().as_ref().to_vec());
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let text = t.decode().ok()?.into_owned();
                let text = quick_xml::escape::unescape(&text).ok()?.into_owned();
                match (path.len(), path.last().map(Vec::as_slice)) {
                    (3, Some(b"Key")) => entries.last_mut()?.key.push_str(&text),
                    (3, Some(b"VersionId")) => entries.last_mut()?.version = Some(text),
                    (2, Some(b"Quiet")) => quiet = text.trim().eq_ignore_ascii_case("true"),
                    _ => {}
                }
            }
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(&r).into_owned();
                let text = quick_xml::escape::unescape(&format!("&{name};"))
                    .ok()?
                    .into_owned();
                if path.len() == 3 && path.last().map(Vec::as_slice) == Some(b"Key") {
                    entries.last_mut()?.key.push_str(&text);
                }
            }
            Event::Eof => return Some((entries, quiet)),
            _ => {}
        }
    }
}

/// The `<Delete>` document of `entries`, built anew.
fn document(entries: &[&Entry], quiet: bool) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    let element = |w: &mut Writer<Vec<u8>>, name: &str, text: &str| {
        let _ = w.write_event(Event::Start(BytesStart::new(name)));
        let _ = w.write_event(Event::Text(BytesText::new(text)));
        let _ = w.write_event(Event::End(BytesEnd::new(name)));
    };
    let _ = w.write_event(Event::Start(BytesStart::new("Delete")));
    if quiet {
        element(&mut w, "Quiet", "true");
    }
    for e in entries {
        let _ = w.write_event(Event::Start(BytesStart::new("Object")));
        element(&mut w, "Key", &e.key);
        if let Some(v) = &e.version {
            element(&mut w, "VersionId", v);
        }
        let _ = w.write_event(Event::End(BytesEnd::new("Object")));
    }
    let _ = w.write_event(Event::End(BytesEnd::new("Delete")));
    w.into_inner()
}

/// The `<Error>` entries of the objects kept, for the answer's `DeleteResult`.
pub(in crate::request) fn kept_errors(kept: &[String]) -> String {
    let mut w = Writer::new(Vec::new());
    for key in kept {
        let _ = w.write_event(Event::Start(BytesStart::new("Error")));
        for (name, text) in [
            ("Key", key.as_str()),
            ("Code", HcpCode::OperationAborted.as_str()),
            ("Message", "The object is under retention or on hold."),
        ] {
            let _ = w.write_event(Event::Start(BytesStart::new(name)));
            let _ = w.write_event(Event::Text(BytesText::new(text)));
            let _ = w.write_event(Event::End(BytesEnd::new(name)));
        }
        let _ = w.write_event(Event::End(BytesEnd::new("Error")));
    }
    String::from_utf8(w.into_inner()).unwrap_or_default()
}

/// What the backend may be asked to delete.
pub(in crate::request) struct Judged {
    /// The document to send instead (`None`: nothing was kept back, the client's stands).
    pub(in crate::request) document: Option<Vec<u8>>,
    /// Whether anything is left to send.
    pub(in crate::request) any_left: bool,
    /// The keys kept back: under retention or on hold.
    pub(in crate::request) kept: Vec<String>,
}

impl Gateway {
    /// Judges each object a multi-object delete names without a version, one after the other
    /// (a HEAD each); an object whose retention cannot be read makes the whole request 503
    /// (nothing is deleted), as for a single DELETE.
    pub(in crate::request) async fn judge_deletes(
        &self,
        call: &Call<'_>,
        doc: &[u8],
    ) -> Result<Judged, HcpError> {
        let untouched = || Judged {
            document: None,
            any_left: true,
            kept: Vec::new(),
        };
        if call.route.tenant.retention.mode == crate::config::RetentionMode::Off {
            return Ok(untouched());
        }
        let Some((entries, quiet)) = parse(doc) else {
            return Ok(untouched());
        };
        let mut kept = Vec::new();
        let mut left = Vec::new();
        for entry in &entries {
            if entry.version.is_none() && self.retained(call, &entry.key).await? {
                kept.push(entry.key.clone());
            } else {
                left.push(entry);
            }
        }
        if kept.is_empty() {
            return Ok(untouched());
        }
        Ok(Judged {
            document: Some(document(&left, quiet)),
            any_left: !left.is_empty(),
            kept,
        })
    }
}

impl Gateway {
    /// Whether the object is under retention or on hold, as a single DELETE of it would find.
    async fn retained(&self, call: &Call<'_>, key: &str) -> Result<bool, HcpError> {
        let mut raw_key = String::new();
        sigv4::uri_encode(key.as_bytes(), true, &mut raw_key);
        let object = Target {
            raw_key: Some(raw_key.into_bytes()),
            ..call.target.clone()
        };
        let at = At {
            target: &object,
            route: call.route,
        };
        let params = Params::default();
        let op = Operation::DeleteObject;
        match crate::request::validate::probes::check_retained(self, op, &params, at).await {
            Ok(()) => Ok(false),
            Err(e) if e.code == HcpCode::OperationAborted => Ok(true),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_read_and_built_again() {
        let doc = b"<Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object>\
            <Object><Key>c</Key><VersionId>v1</VersionId></Object></Delete>";
        let (entries, quiet) = parse(doc).unwrap();
        assert!(quiet);
        assert_eq!(entries[0].key, "a&b");
        assert_eq!(entries[1].version.as_deref(), Some("v1"));
        let rebuilt = document(&[&entries[1]], quiet);
        assert_eq!(
            String::from_utf8(rebuilt).unwrap(),
            "<Delete><Quiet>true</Quiet><Object><Key>c</Key><VersionId>v1</VersionId></Object></Delete>"
        );
        let errors = kept_errors(&["x<y".into()]);
        assert!(
            errors.contains("<Key>x&lt;y</Key><Code>OperationAborted</Code>"),
            "{errors}"
        );
    }
}
