//! A multi-object delete where retention is kept: HCP's "You cannot use this method … to delete
//! objects that are under retention [or] on hold". The backend would add a delete marker over
//! such an object (S3 Object Lock allows that), hiding it; so each object named without a
//! version is judged first, as a single DELETE is (`validate::probes::check_retained`), and one
//! under retention or on hold is left out of the backend's document and reported in the answer
//! as not deleted. So is a version named of such an object ("nor any version of that object"):
//! judged on the object as it is now, whose hold or retention an old version need not carry.

use super::*;
use quick_xml::events::{BytesEnd, BytesStart, Event};
use quick_xml::{Reader, Writer};

/// One `<Object>` of a `<Delete>` document: its key, version and conditions, as read.
struct Entry {
    /// `Key`, `VersionId`, `ETag`, `LastModifiedTime`, `Size` — each at most once.
    fields: Vec<(&'static str, String)>,
}

impl Entry {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The object it names: its key and the version named.
    fn named(&self) -> (&str, Option<&str>) {
        (self.get("Key").unwrap_or_default(), self.get("VersionId"))
    }
}

const OBJECT_FIELDS: [&str; 5] = ["Key", "VersionId", "ETag", "LastModifiedTime", "Size"];

/// The objects of a `<Delete>` document and its `Quiet`, read strictly: what is judged is what
/// is sent again ([`document`]), so nothing may be read two ways — an unknown element, a field
/// given twice, text outside a field or a carriage return (which XML parsers turn into a line
/// feed) makes it unreadable. Text, CDATA and references all count.
fn parse(doc: &[u8]) -> Option<(Vec<Entry>, bool)> {
    let mut reader = Reader::from_reader(doc);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let (mut entries, mut quiet): (Vec<Entry>, Option<bool>) = (Vec::new(), None);
    let mut text = String::new();
    loop {
        let event = reader.read_event().ok()?;
        let depth = path.len();
        match &event {
            Event::Start(e) => {
                let name = e.name().as_ref().to_vec();
                let fits = match depth {
                    0 => name == b"Delete",
                    1 => name == b"Object" || name == b"Quiet",
                    2 => path[1] == b"Object" && OBJECT_FIELDS.iter().any(|f| f.as_bytes() == name),
                    _ => false,
                };
                if !fits {
                    return None;
                }
                if depth == 1 && name == b"Object" {
                    entries.push(Entry { fields: Vec::new() });
                }
                text.clear();
                path.push(name);
            }
            Event::Empty(_) => return None,
            Event::End(_) => {
                let name = path.pop()?;
                match (depth, name.as_slice()) {
                    (3, field) => {
                        let field = OBJECT_FIELDS.into_iter().find(|f| f.as_bytes() == field)?;
                        let entry = entries.last_mut()?;
                        if entry.get(field).is_some() || text.contains('\r') {
                            return None;
                        }
                        entry.fields.push((field, std::mem::take(&mut text)));
                    }
                    (2, b"Quiet") => {
                        if quiet.is_some() {
                            return None;
                        }
                        // (xs:boolean: `true` or `1`.)
                        let t = text.trim();
                        quiet = Some(t.eq_ignore_ascii_case("true") || t == "1");
                        text.clear();
                    }
                    (2, b"Object") if entries.last()?.get("Key").is_none() => return None,
                    _ => {}
                }
            }
            Event::Text(t) => {
                let decoded = t.decode().ok()?;
                let inside_field = depth == 3 || (depth == 2 && path[1] == b"Quiet");
                if inside_field {
                    text.push_str(&decoded);
                } else if !decoded.trim().is_empty() {
                    return None;
                }
            }
            Event::CData(c) => {
                if !(depth == 3 || (depth == 2 && path[1] == b"Quiet")) {
                    return None;
                }
                text.push_str(std::str::from_utf8(c).ok()?);
            }
            Event::GeneralRef(r) => {
                if !(depth == 3 || (depth == 2 && path[1] == b"Quiet")) {
                    return None;
                }
                let name = std::str::from_utf8(r).ok()?;
                text.push_str(&quick_xml::escape::unescape(&format!("&{name};")).ok()?);
            }
            Event::Eof => {
                return (path.is_empty() && !entries.is_empty())
                    .then_some((entries, quiet.unwrap_or(false)));
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            _ => return None,
        }
    }
}

/// The `<Delete>` document of `entries`, built anew from what [`parse`] read.
fn document(entries: &[&Entry], quiet: bool) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    let element = |w: &mut Writer<Vec<u8>>, name: &str, text: &str| {
        let _ = crate::hcp::xml::leaf(w, name, text);
    };
    let _ = w.write_event(Event::Start(BytesStart::new("Delete")));
    if quiet {
        element(&mut w, "Quiet", "true");
    }
    for e in entries {
        let _ = w.write_event(Event::Start(BytesStart::new("Object")));
        for (name, value) in &e.fields {
            element(&mut w, name, value);
        }
        let _ = w.write_event(Event::End(BytesEnd::new("Object")));
    }
    let _ = w.write_event(Event::End(BytesEnd::new("Delete")));
    w.into_inner()
}

/// The `<Error>` entries of the objects kept back, for the answer's `DeleteResult`.
pub(in crate::request) fn kept_errors(kept: &[Kept]) -> String {
    let mut w = Writer::new(Vec::new());
    for kept in kept {
        let _ = w.write_event(Event::Start(BytesStart::new("Error")));
        let key = crate::hcp::xml::displayed_name(&kept.key);
        // (The client's own text, as its key is: a control character in it is shown
        // percent-encoded, never raw in the document.)
        let version = kept.version.as_deref().map(crate::hcp::xml::displayed_name);
        let message = match kept.why {
            HcpCode::AccessDenied => "Access Denied",
            _ => "The object is under retention or on hold.",
        };
        let fields = [
            Some(("Key", key.as_ref())),
            version.as_deref().map(|v| ("VersionId", v)),
            Some(("Code", kept.why.as_str())),
            Some(("Message", message)),
        ];
        for (name, text) in fields.into_iter().flatten() {
            let _ = crate::hcp::xml::leaf(&mut w, name, text);
        }
        let _ = w.write_event(Event::End(BytesEnd::new("Error")));
    }
    String::from_utf8(w.into_inner()).unwrap_or_default()
}

/// An object a multi-object delete names is one its backend may be asked of (a HEAD, its
/// ACL), as a request naming it is (`route::route`: its key within the backend's limit, and
/// under virtual-host addressing not beginning with the backend's own API paths) — else the
/// whole list is refused.
fn named_at_backend(call: &Call<'_>, object: &Target) -> Result<(), HcpError> {
    crate::request::route::route(call.route.tenant, Some(call.route.backend), object).map(drop)
}

/// How many of a multi-object delete's objects are judged at once (a HEAD each).
const JUDGED_AT_ONCE: usize = 8;

/// An entry of a multi-object delete kept back: its key, the version it named, and why —
/// `AccessDenied` (the caller may not delete it) or `OperationAborted` (under retention or
/// on hold).
#[derive(Debug, Clone)]
pub(in crate::request) struct Kept {
    key: String,
    version: Option<String>,
    why: HcpCode,
}

/// A multi-object delete its bucket does not let `caller` make (`None`: anonymous): HCP lets
/// it delete the objects whose owner it is or whose ACL grants it delete.
#[derive(Debug, Clone)]
pub(in crate::request) struct EachObject {
    pub(in crate::request) caller: Option<crate::request::owners::Owner>,
}

/// What the backend may be asked to delete.
pub(in crate::request) struct Judged {
    /// The document to send instead of the client's: what was read, less what is kept back.
    pub(in crate::request) document: Vec<u8>,
    /// Whether anything is left to send.
    pub(in crate::request) any_left: bool,
    /// The entries kept back: objects the caller may not delete, under retention or on hold.
    pub(in crate::request) kept: Vec<Kept>,
    /// `<Quiet>true</Quiet>`: the answer names only what was not deleted.
    pub(in crate::request) quiet: bool,
}

impl Gateway {
    /// Reads a multi-object delete strictly; in a tenant with retention, judges each object it
    /// names, with or without a version (a HEAD each object, a few at a time); an object
    /// whose retention cannot be read makes the whole request 503 (nothing is deleted), as for
    /// a single DELETE.
    pub(in crate::request) async fn judge_deletes(
        &self,
        call: &Call<'_>,
        doc: &[u8],
    ) -> Result<Judged, HcpError> {
        // Read strictly and built again in every tenant: the backend's XML reader may read what
        // the gateway's checks did not (Go's, MinIO's, matches `<x:VersionId>` by its local
        // name: a purge the purge check never saw).
        let Some((entries, quiet)) = parse(doc) else {
            return Err(HcpError::new(HcpCode::MalformedXML).with_message(
                "The Delete document names its objects only with Object, Key, VersionId, \
                 ETag, LastModifiedTime, Size and Quiet, each once.",
            ));
        };
        // S3's conditions on an entry (its ETag, LastModifiedTime, Size) are AWS's: the
        // embedded store, MinIO and Ceph RGW would delete the object whatever it is now.
        let conditional = entries.iter().any(|e| {
            e.get("ETag")
                .or(e.get("LastModifiedTime"))
                .or(e.get("Size"))
                .is_some()
        });
        if conditional && call.route.backend.dialect != crate::hcp::mapping::Dialect::Aws {
            return Err(HcpError::new(HcpCode::NotImplemented).with_message(
                "Deleting objects on condition (ETag, LastModifiedTime, Size) is not offered here.",
            ));
        }
        // (s3s-fs keeps no versions and reads no version id: it would delete the object.)
        let s3s_fs = call.route.backend.target.engine() == Some(crate::config::LocalEngine::S3sFs);
        if s3s_fs
            && entries
                .iter()
                .any(|e| e.get("VersionId").is_some_and(|v| v != "null"))
        {
            return Err(HcpError::new(HcpCode::NotImplemented)
                .with_message("This namespace keeps no versions to delete."));
        }
        // First whether the caller may delete each: what it may not is not judged further
        // (its retention is none of the caller's business).
        let denied = match &call.deletes_each {
            Some(each) => {
                self.not_deletable(call, each.caller.as_ref(), &entries)
                    .await?
            }
            None => std::collections::HashSet::new(),
        };
        let allowed: Vec<&Entry> = entries
            .iter()
            .filter(|e| !denied.contains(&e.named()))
            .collect();
        // (Where no HCP retention is kept, S3's Object Lock is judged all the same, in a
        // bucket that may keep it: `probes::check_retained`.)
        let bucket = At {
            target: call.target,
            route: call.route,
        };
        let retention = call.route.tenant.retention.mode != crate::config::RetentionMode::Off
            || crate::request::validate::probes::Probe::may_keep_locks(self, bucket).await;
        let judged = match retention {
            true => self.judge_objects(call, &allowed).await?,
            false => std::collections::HashMap::new(),
        };
        // Suspended versioning: an entry naming no version replaces its key's `null` version,
        // a purge where that is an old one (`probes::check_null_version`, as a single DELETE).
        let suspended = !call.may_purge
            && crate::request::validate::probes::Probe::replaces_null_version(self, bucket).await;
        let purges = match suspended {
            true => self.old_null_versions(call, &allowed).await?,
            false => std::collections::HashSet::new(),
        };
        let mut kept = Vec::new();
        let mut left = Vec::new();
        for entry in &entries {
            let (key, version) = entry.named();
            let why =
                if denied.contains(&(key, version)) || version.is_none() && purges.contains(key) {
                    HcpCode::AccessDenied
                } else if judged.get(&(key, version.is_some())) == Some(&true) {
                    HcpCode::OperationAborted
                } else {
                    left.push(entry);
                    continue;
                };
            kept.push(Kept {
                key: key.to_string(),
                version: version.map(str::to_string),
                why,
            });
        }
        // (Sent as read and judged, never the client's own bytes.)
        Ok(Judged {
            document: document(&left, quiet),
            any_left: !left.is_empty(),
            kept,
            quiet,
        })
    }
}

impl Gateway {
    /// Whether each object the entries name is under retention or on hold, by (key, whether a
    /// version is named): each judged once however many of its versions are named — a purge
    /// apart from a delete, since an empty folder's marker excuses only the latter — a few at
    /// a time (a purge of many keys' versions would otherwise wait on each HEAD in turn).
    async fn judge_objects<'e>(
        &self,
        call: &Call<'_>,
        entries: &[&'e Entry],
    ) -> Result<std::collections::HashMap<(&'e str, bool), bool>, HcpError> {
        use futures_util::StreamExt as _;
        let mut asked = std::collections::HashMap::new();
        for entry in entries {
            let (key, version) = entry.named();
            asked.entry((key, version.is_some())).or_insert(version);
        }
        let judging: Vec<_> = asked
            .into_iter()
            .map(|((key, _), version)| self.retained(call, key, version))
            .collect();
        let judged: Vec<_> = futures_util::stream::iter(judging)
            .buffer_unordered(JUDGED_AT_ONCE)
            .collect()
            .await;
        judged.into_iter().collect()
    }

    /// The keys of the entries naming no version whose delete would replace an old `null`
    /// version (suspended versioning: a purge the caller may not make), a few at a time.
    async fn old_null_versions<'e>(
        &self,
        call: &Call<'_>,
        entries: &[&'e Entry],
    ) -> Result<std::collections::HashSet<&'e str>, HcpError> {
        use futures_util::StreamExt as _;
        let keys: std::collections::HashSet<&str> = entries
            .iter()
            .map(|e| e.named())
            .filter_map(|(key, version)| version.is_none().then_some(key))
            .collect();
        let judging: Vec<_> = keys
            .into_iter()
            .map(|key| self.old_null_version(call, key))
            .collect();
        let judged: Vec<_> = futures_util::stream::iter(judging)
            .buffer_unordered(JUDGED_AT_ONCE)
            .collect()
            .await;
        let mut purges = std::collections::HashSet::new();
        for judged in judged {
            purges.extend(judged?);
        }
        Ok(purges)
    }

    /// `key`, where a delete of it naming no version would replace an old `null` version.
    async fn old_null_version<'e>(
        &self,
        call: &Call<'_>,
        key: &'e str,
    ) -> Result<Option<&'e str>, HcpError> {
        let object = call.target.with_key(key.as_bytes());
        named_at_backend(call, &object)?;
        let at = At {
            target: &object,
            route: call.route,
        };
        use crate::request::validate::probes;
        if !probes::Probe::replaces_null_version(self, at).await {
            return Ok(None);
        }
        match probes::check_null_version(self, at).await {
            Ok(()) => Ok(None),
            Err(e) if e.code == HcpCode::AccessDenied => Ok(Some(key)),
            Err(e) => Err(e),
        }
    }

    /// The (key, version named) of the entries `caller` may not delete, each judged by its
    /// object's owner and ACL as a single DELETE of it is (`acls::judge`), a few at a time: one
    /// that is not there is not the caller's to delete either (nor to learn of). A backend
    /// that cannot answer makes the whole request 503 (nothing is deleted).
    async fn not_deletable<'e>(
        &self,
        call: &Call<'_>,
        caller: Option<&crate::request::owners::Owner>,
        entries: &'e [Entry],
    ) -> Result<std::collections::HashSet<(&'e str, Option<&'e str>)>, HcpError> {
        use futures_util::StreamExt as _;
        let asked: std::collections::HashSet<_> = entries.iter().map(|e| e.named()).collect();
        let judging: Vec<_> = asked
            .into_iter()
            .map(|(key, version)| self.may_delete(call, caller, key, version))
            .collect();
        let judged: Vec<_> = futures_util::stream::iter(judging)
            .buffer_unordered(JUDGED_AT_ONCE)
            .collect()
            .await;
        judged.into_iter().filter_map(Result::transpose).collect()
    }

    /// Whether `caller` may delete the object `key` (`version`): `Some` of the two where it
    /// may not.
    async fn may_delete<'e>(
        &self,
        call: &Call<'_>,
        caller: Option<&crate::request::owners::Owner>,
        key: &'e str,
        version: Option<&'e str>,
    ) -> Result<Option<(&'e str, Option<&'e str>)>, HcpError> {
        let object = call.target.with_key(key.as_bytes());
        named_at_backend(call, &object)?;
        let at = At {
            target: &object,
            route: call.route,
        };
        let delete = [crate::request::authorize::Permission::Delete];
        match self.judge(at, Some(version), caller, &delete).await {
            Ok(_) => Ok(None),
            Err(e) if e.code == HcpCode::AccessDenied => Ok(Some((key, version))),
            Err(e) => Err(e),
        }
    }

    /// Whether the object is under retention or on hold, as a single DELETE of it (naming
    /// `version`) would find; by (key, whether a version is named).
    async fn retained<'e>(
        &self,
        call: &Call<'_>,
        key: &'e str,
        version: Option<&'e str>,
    ) -> Result<((&'e str, bool), bool), HcpError> {
        let asked = (key, version.is_some());
        let object = call.target.with_key(key.as_bytes());
        named_at_backend(call, &object)?;
        let at = At {
            target: &object,
            route: call.route,
        };
        // (A privileged multi-object delete is privileged for each object, as a single one.)
        let mut params = Params::default();
        params.effects.bypass_governance = call.params.effects.bypass_governance;
        if let Some(version) = version {
            params.set("versionId", version);
        }
        let op = Operation::DeleteObject;
        match crate::request::validate::probes::check_retained(self, op, &params, at, None).await {
            Ok(()) => Ok((asked, false)),
            Err(e) if e.code == HcpCode::OperationAborted => Ok((asked, true)),
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
            <Object><Key>c<![CDATA[d]]></Key><VersionId>v1</VersionId></Object></Delete>";
        let (entries, quiet) = parse(doc).unwrap();
        assert!(quiet);
        for (text, quiet) in [("1", true), ("TRUE", true), ("false", false), ("0", false)] {
            let doc =
                format!("<Delete><Quiet>{text}</Quiet><Object><Key>k</Key></Object></Delete>");
            assert_eq!(parse(doc.as_bytes()).unwrap().1, quiet, "{text}");
        }
        assert_eq!(entries[0].get("Key"), Some("a&b"));
        assert_eq!(entries[1].get("Key"), Some("cd"));
        assert_eq!(entries[1].get("VersionId"), Some("v1"));
        let rebuilt = document(&[&entries[1]], quiet);
        assert_eq!(
            String::from_utf8(rebuilt).unwrap(),
            "<Delete><Quiet>true</Quiet><Object><Key>cd</Key><VersionId>v1</VersionId></Object></Delete>"
        );
        let kept = |key: &str, version: Option<&str>, why| Kept {
            key: key.into(),
            version: version.map(Into::into),
            why,
        };
        let errors = kept_errors(&[
            kept("x<y", None, HcpCode::OperationAborted),
            kept("k", Some("v&1"), HcpCode::OperationAborted),
            kept("mine?", None, HcpCode::AccessDenied),
            kept("c\u{1}", Some("v\u{1}"), HcpCode::OperationAborted),
        ]);
        // (A control character a client sent is shown percent-encoded: XML 1.0 cannot
        // carry it.)
        assert!(
            errors.contains("<Key>c%01</Key><VersionId>v%01</VersionId>"),
            "{errors}"
        );
        assert!(!errors.contains('\u{1}'), "{errors}");
        assert!(
            errors.contains("<Key>mine?</Key><Code>AccessDenied</Code><Message>Access Denied<"),
            "{errors}"
        );
        assert!(
            errors.contains("<Key>x&lt;y</Key><Code>OperationAborted</Code>"),
            "{errors}"
        );
        assert!(
            errors.contains("<Key>k</Key><VersionId>v&amp;1</VersionId><Code>OperationAborted"),
            "{errors}"
        );
    }

    #[test]
    fn documents_that_could_be_read_two_ways_are_not_read() {
        for doc in [
            &b"<Delete><X><Key>a</Key></X><Object><Key>locked</Key></Object></Delete>"[..],
            b"<Delete><Object><Key>locked</Key></Object><X><Key>z</Key></X></Delete>",
            b"<Delete><Object><Key>locked</Key><Key>z</Key></Object></Delete>",
            b"<Delete><Object><Key>a\r\nb</Key></Object></Delete>",
            b"<Delete><Object><Key>a&#13;b</Key></Object></Delete>",
            b"<Delete><Object><Key>a</Key><Other>1</Other></Object></Delete>",
            b"<Delete><Object><VersionId>v</VersionId></Object></Delete>",
            b"<Delete><Object>text<Key>a</Key></Object></Delete>",
            b"<Delete><Object><Key><b>a</b></Key></Object></Delete>",
            b"<Delete><Quiet>true</Quiet><Quiet>false</Quiet><Object><Key>a</Key></Object></Delete>",
            b"<Delete></Delete>",
        ] {
            assert!(parse(doc).is_none(), "{}", String::from_utf8_lossy(doc));
        }
    }
}
