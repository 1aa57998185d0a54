//! S3 Object Lock's request documents — a `PUT ?retention`'s `<Retention>`, a `PUT
//! ?object-lock`'s `<ObjectLockConfiguration>`, a `PUT ?legal-hold`'s `<LegalHold>` — and a
//! `PUT ?versioning`'s `<VersioningConfiguration>` (which decides what a delete keeps), read
//! strictly into what they say, judged, and built again: the backend gets the gateway's
//! document, never the client's bytes (MinIO reads `ExcludedPrefixes` in a versioning document
//! as prefixes where nothing is kept: deletes there would purge with `delete` alone). A value
//! the gateway could read one way and the backend another (CDATA, character references, an
//! element it does not know, a field given twice, a date it cannot parse) is refused, so that the
//! date judged (`LATEST_UNTIL`: Ceph RGW keeps dates in 32-bit seconds and wraps a later one
//! round to the past) is the date the backend keeps.

use crate::hcp::errors::{HcpCode, HcpError};
use crate::hcp::retention::{self, LockMode};
use crate::request::classify::Operation;

const XMLNS: &str = "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";

/// How long a bucket's default retention keeps a new object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Days(u32),
    Years(u32),
}

/// What a lock document says, as the gateway read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockDocument {
    /// `<Retention>`: a mode and its retain-until date (seconds, nanoseconds), or neither (a
    /// governance retention removed, with the bypass).
    Retention(Option<(LockMode, time::OffsetDateTime)>),
    /// `<ObjectLockConfiguration>`: Object Lock enabled, and the default retention if any.
    Configuration(Option<(LockMode, Period)>),
    /// `<LegalHold>`: on or off.
    LegalHold(bool),
    /// `<VersioningConfiguration>`: enabled (or suspended).
    Versioning(bool),
}

fn malformed(why: &str) -> HcpError {
    HcpError::new(HcpCode::MalformedXML)
        .with_message("The XML you provided was not well-formed or did not validate.")
        .with_cause(format!("lock document: {why}"))
}

fn invalid(message: &'static str) -> HcpError {
    HcpError::new(HcpCode::InvalidArgument).with_message(message)
}

/// The elements each document may hold, by their path below the root.
fn known(op: Operation, path: &[Vec<u8>]) -> bool {
    let names: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
    match op {
        Operation::PutObjectRetention => matches!(
            names.as_slice(),
            [b"Retention"] | [b"Retention", b"Mode" | b"RetainUntilDate"]
        ),
        Operation::PutObjectLockConfiguration => matches!(
            names.as_slice(),
            [b"ObjectLockConfiguration"]
                | [b"ObjectLockConfiguration", b"ObjectLockEnabled" | b"Rule"]
                | [b"ObjectLockConfiguration", b"Rule", b"DefaultRetention"]
                | [
                    b"ObjectLockConfiguration",
                    b"Rule",
                    b"DefaultRetention",
                    b"Mode" | b"Days" | b"Years"
                ]
        ),
        Operation::PutObjectLegalHold => {
            matches!(names.as_slice(), [b"LegalHold"] | [b"LegalHold", b"Status"])
        }
        Operation::PutBucketVersioning => matches!(
            names.as_slice(),
            [b"VersioningConfiguration"]
                | [
                    b"VersioningConfiguration",
                    b"Status" | b"MfaDelete" | b"MFADelete"
                ]
        ),
        _ => false,
    }
}

/// The leaves of a lock document of `op` (name → text), read strictly
/// ([`super::strict_xml`]).
fn leaves(op: Operation, doc: &[u8]) -> Result<Vec<(Vec<u8>, String)>, HcpError> {
    let mut leaves = Leaves {
        op,
        leaves: Vec::new(),
        seen: Vec::new(),
    };
    super::strict_xml::read(doc, &mut leaves, malformed)?;
    Ok(leaves.leaves)
}

/// A lock document's elements as they are read: each known, each once.
struct Leaves {
    op: Operation,
    leaves: Vec<(Vec<u8>, String)>,
    seen: Vec<Vec<Vec<u8>>>,
}

impl super::strict_xml::Fields for Leaves {
    fn open(&mut self, path: &[Vec<u8>]) -> Result<(), HcpError> {
        if !known(self.op, path) {
            return Err(malformed("an element of no lock document"));
        }
        if self.seen.iter().any(|p| p == path) {
            return Err(malformed("an element given twice"));
        }
        self.seen.push(path.to_vec());
        // (A Rule given says a default retention follows: an empty one is refused, never read
        // as none — that would remove the bucket's.)
        if path.len() == 2 && path[1] == b"Rule" {
            self.leaves.push((b"Rule".to_vec(), String::new()));
        }
        Ok(())
    }

    fn is_field(&self, path: &[Vec<u8>]) -> bool {
        is_leaf(path)
    }

    fn field(&mut self, path: &[Vec<u8>], value: Option<String>) -> Result<(), HcpError> {
        // (A field opened and closed with nothing in it is no value: refused, never read as a
        // field left out — `<Mode></Mode>` would remove a retention.)
        let value = value.ok_or_else(|| malformed("an empty field"))?;
        let name = path.last().cloned().unwrap_or_default();
        self.leaves.push((name, value));
        Ok(())
    }
}

/// Whether `path` ends in a field of a lock document (an element that holds a value).
fn is_leaf(path: &[Vec<u8>]) -> bool {
    path.len() >= 2
        && matches!(
            path.last().map(Vec::as_slice),
            Some(
                b"Mode"
                    | b"RetainUntilDate"
                    | b"ObjectLockEnabled"
                    | b"Days"
                    | b"Years"
                    | b"Status"
                    | b"MfaDelete"
                    | b"MFADelete"
            )
        )
}

fn text_of<'a>(leaves: &'a [(Vec<u8>, String)], name: &[u8]) -> Option<&'a str> {
    leaves
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.as_str())
}

fn mode_of(text: &str) -> Result<LockMode, HcpError> {
    match text {
        "GOVERNANCE" => Ok(LockMode::Governance),
        "COMPLIANCE" => Ok(LockMode::Compliance),
        _ => Err(malformed("a mode of neither GOVERNANCE nor COMPLIANCE")),
    }
}

/// A positive count of days or years, digits only.
fn count_of(text: &str) -> Result<u32, HcpError> {
    let n = super::digits_u32(text).ok_or_else(|| malformed("a period that is not a number"))?;
    if n == 0 {
        return Err(invalid(
            "The default retention period must be a positive integer.",
        ));
    }
    Ok(n)
}

/// Reads a lock document of `op` and judges it at `now` (seconds): its date (or a default
/// retention's end for an object stored now) must be in the future (a retain-until date) and
/// before 2106-02-06.
pub fn read(op: Operation, doc: &[u8], now: i64) -> Result<LockDocument, HcpError> {
    let leaves = leaves(op, doc)?;
    let too_late = || invalid("Retention must end before 2106-02-06 in this storage.");
    match op {
        Operation::PutObjectRetention => {
            let mode = text_of(&leaves, b"Mode");
            let until = text_of(&leaves, b"RetainUntilDate");
            let (mode, until) = match (mode, until) {
                (None, None) => return Ok(LockDocument::Retention(None)),
                (Some(mode), Some(until)) => (mode_of(mode)?, until),
                _ => return Err(malformed("a mode without a date, or a date without a mode")),
            };
            let rfc3339 = &time::format_description::well_known::Rfc3339;
            let until = time::OffsetDateTime::parse(until, rfc3339)
                .map_err(|_| malformed("a retain-until date that is not RFC 3339"))?;
            // (Judged before it is moved to UTC: 9999-12-31T23:59:59-01:00 is past year 9999
            // there, which `time` cannot hold.)
            if until.unix_timestamp() > retention::LATEST_UNTIL {
                return Err(too_late());
            }
            let until = until
                .checked_to_offset(time::UtcOffset::UTC)
                .ok_or_else(too_late)?;
            if until.unix_timestamp() <= now {
                return Err(invalid("The retain until date must be in the future."));
            }
            Ok(LockDocument::Retention(Some((mode, until))))
        }
        Operation::PutObjectLockConfiguration => {
            if text_of(&leaves, b"ObjectLockEnabled") != Some("Enabled") {
                return Err(malformed("ObjectLockEnabled is not Enabled"));
            }
            let mode = text_of(&leaves, b"Mode");
            let days = text_of(&leaves, b"Days");
            let years = text_of(&leaves, b"Years");
            let period = match (days, years) {
                (None, None) if mode.is_none() && text_of(&leaves, b"Rule").is_none() => {
                    return Ok(LockDocument::Configuration(None))
                }
                (Some(d), None) => Period::Days(count_of(d)?),
                (None, Some(y)) => Period::Years(count_of(y)?),
                _ => {
                    return Err(malformed(
                        "a default retention needs Days or Years, not both",
                    ))
                }
            };
            let mode =
                mode_of(mode.ok_or_else(|| malformed("a default retention without a mode"))?)?;
            let end = match period {
                Period::Days(d) => now.saturating_add(i64::from(d) * 86_400),
                Period::Years(y) => now.saturating_add(i64::from(y) * 366 * 86_400),
            };
            if end > retention::LATEST_UNTIL {
                return Err(too_late());
            }
            Ok(LockDocument::Configuration(Some((mode, period))))
        }
        Operation::PutObjectLegalHold => match text_of(&leaves, b"Status") {
            Some("ON") => Ok(LockDocument::LegalHold(true)),
            Some("OFF") => Ok(LockDocument::LegalHold(false)),
            _ => Err(malformed("a legal hold's Status is not ON or OFF")),
        },
        Operation::PutBucketVersioning => versioning(&leaves),
        _ => Err(malformed("no lock document")),
    }
}

/// A versioning document's leaves read: its Status, MFA delete off if named.
fn versioning(leaves: &[(Vec<u8>, String)]) -> Result<LockDocument, HcpError> {
    // (HCP has no MFA: a delete that needs it could not be made. minio-py spells the
    // element `MFADelete`; one of the two, once.)
    let mfa = text_of(leaves, b"MfaDelete");
    let minio_mfa = text_of(leaves, b"MFADelete");
    if mfa.is_some() && minio_mfa.is_some() {
        return Err(malformed("MFA delete named twice"));
    }
    match mfa.or(minio_mfa) {
        None | Some("Disabled") => {}
        Some("Enabled") => {
            return Err(
                HcpError::new(HcpCode::NotImplemented).with_message("MFA delete is not supported.")
            )
        }
        Some(_) => return Err(malformed("an MfaDelete of neither Enabled nor Disabled")),
    }
    match text_of(leaves, b"Status") {
        Some("Enabled") => Ok(LockDocument::Versioning(true)),
        Some("Suspended") => Ok(LockDocument::Versioning(false)),
        _ => Err(malformed(
            "a versioning Status of neither Enabled nor Suspended",
        )),
    }
}

impl LockDocument {
    /// The document the backend gets: built from what was read.
    pub fn to_xml(&self) -> Vec<u8> {
        let doc = match self {
            LockDocument::Retention(None) => format!("<Retention {XMLNS}/>"),
            LockDocument::Retention(Some((mode, until))) => {
                let until = until
                    .format(&time::format_description::well_known::Rfc3339)
                    .expect("a date between 1970 and 2106 formats");
                format!(
                    "<Retention {XMLNS}><Mode>{}</Mode><RetainUntilDate>{until}</RetainUntilDate></Retention>",
                    mode.as_str()
                )
            }
            LockDocument::Configuration(rule) => {
                let rule = rule.map_or(String::new(), |(mode, period)| {
                    let period = match period {
                        Period::Days(d) => format!("<Days>{d}</Days>"),
                        Period::Years(y) => format!("<Years>{y}</Years>"),
                    };
                    format!(
                        "<Rule><DefaultRetention><Mode>{}</Mode>{period}</DefaultRetention></Rule>",
                        mode.as_str()
                    )
                });
                format!(
                    "<ObjectLockConfiguration {XMLNS}><ObjectLockEnabled>Enabled</ObjectLockEnabled>{rule}</ObjectLockConfiguration>"
                )
            }
            LockDocument::LegalHold(on) => {
                let status = if *on { "ON" } else { "OFF" };
                format!("<LegalHold {XMLNS}><Status>{status}</Status></LegalHold>")
            }
            LockDocument::Versioning(enabled) => {
                let status = if *enabled { "Enabled" } else { "Suspended" };
                format!(
                    "<VersioningConfiguration {XMLNS}><Status>{status}</Status></VersioningConfiguration>"
                )
            }
        };
        doc.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::events::Event;
    use quick_xml::Reader;
    use rand::{Rng, SeedableRng};

    const NOW: i64 = 1_800_000_000; // 2027-01-15

    fn retention(date: &str) -> Result<LockDocument, HcpError> {
        let doc = format!(
            "<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>{date}</RetainUntilDate></Retention>"
        );
        read(Operation::PutObjectRetention, doc.as_bytes(), NOW)
    }

    fn default(term: &str) -> Result<LockDocument, HcpError> {
        let doc = format!("<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode>{term}</DefaultRetention></Rule></ObjectLockConfiguration>");
        read(Operation::PutObjectLockConfiguration, doc.as_bytes(), NOW)
    }

    fn code(r: Result<LockDocument, HcpError>) -> Option<HcpCode> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn lock_documents_end_before_2106() {
        assert!(retention("2106-02-05T00:00:00Z").is_ok());
        assert_eq!(
            code(retention("2106-03-01T00:00:00.000Z")),
            Some(HcpCode::InvalidArgument)
        );
        assert_eq!(
            code(retention("2020-01-01T00:00:00Z")),
            Some(HcpCode::InvalidArgument)
        );
        assert!(default("<Years>50</Years>").is_ok());
        assert_eq!(
            code(default("<Years>80</Years>")),
            Some(HcpCode::InvalidArgument)
        );
        assert_eq!(
            code(default("<Days>36500</Days>")),
            Some(HcpCode::InvalidArgument)
        );
        assert!(default("<Days>365</Days>").is_ok());
    }

    /// What could be read two ways is not read: the gateway's reading of these would not be
    /// the backend's (RGW resolves CDATA and references; a date without a time some parse).
    #[test]
    fn what_could_be_read_two_ways_is_refused() {
        let malformed = Some(HcpCode::MalformedXML);
        for date in [
            "<![CDATA[2150-01-01T00:00:00Z]]>",
            "2&#49;50-01-01T00:00:00Z",
            "2150-01-01",
            "2030-01-01T00:00:00Z</RetainUntilDate><RetainUntilDate>2150-01-01T00:00:00Z",
        ] {
            assert_eq!(code(retention(date)), malformed, "{date}");
        }
        for term in [
            "<Years>&#56;0</Years>",
            "<Years><![CDATA[80]]></Years>",
            "<Years>+1</Years>",
            "<Years>1</Years><Days>1</Days>",
            "<Years>1</Years><Extra>1</Extra>",
            "<Years>1</Years><Years>2</Years>",
            "<Years>1<!-- -->00</Years>",
            "<Years></Years>",
        ] {
            assert_eq!(code(default(term)), malformed, "{term}");
        }
        assert_eq!(
            code(default("<Days>0</Days>")),
            Some(HcpCode::InvalidArgument)
        );
        let op = Operation::PutObjectRetention;
        for doc in [
            "<Retention><Mode>governance</Mode><RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>",
            "<Retention><Mode>GOVERNANCE</Mode></Retention>",
            "<Retention/><Retention/>",
            "<Other/>",
            "<Retention>",
            "",
            // Fields present and empty are no removal.
            "<Retention><Mode></Mode><RetainUntilDate></RetainUntilDate></Retention>",
            "<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate> </RetainUntilDate></Retention>",
        ] {
            assert_eq!(code(read(op, doc.as_bytes(), NOW)), malformed, "{doc}");
        }
        let lock = Operation::PutObjectLockConfiguration;
        for doc in [
            "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule></Rule></ObjectLockConfiguration>",
            "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention></DefaultRetention></Rule></ObjectLockConfiguration>",
            "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule/></ObjectLockConfiguration>",
        ] {
            assert_eq!(code(read(lock, doc.as_bytes(), NOW)), malformed, "{doc}");
        }
        // Dates past what `time` holds once moved to UTC: refused, never a panic.
        for date in ["9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59.999-23:59"] {
            assert_eq!(
                code(retention(date)),
                Some(HcpCode::InvalidArgument),
                "{date}"
            );
        }
        // What SDKs and HCP clients send is read: prefixes, spaces around values, a BOM.
        for doc in [
            "<s3:Retention xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\"><s3:Mode>GOVERNANCE</s3:Mode><s3:RetainUntilDate>2030-01-01T00:00:00Z</s3:RetainUntilDate></s3:Retention>",
            "<Retention>\n  <Mode> GOVERNANCE </Mode>\n  <RetainUntilDate>\n2030-01-01T00:00:00Z\n</RetainUntilDate>\n</Retention>",
            "\u{feff}<?xml version=\"1.0\"?><Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>",
        ] {
            let read = read(op, doc.as_bytes(), NOW).unwrap_or_else(|e| panic!("{doc}: {e:?}"));
            assert!(matches!(read, LockDocument::Retention(Some(_))), "{doc}");
        }
        assert_eq!(
            read(op, b"<?xml version=\"1.0\"?><Retention xmlns=\"x\"/>", NOW).unwrap(),
            LockDocument::Retention(None)
        );
    }

    /// A lenient reading of a document, as a backend's XML parser gives it: each leaf's text
    /// whole, references and CDATA resolved, comments dropped.
    fn leniently(doc: &str) -> Vec<(String, String)> {
        let mut reader = Reader::from_reader(doc.as_bytes());
        let mut leaves: Vec<(String, String)> = Vec::new();
        let mut open: Option<String> = None;
        loop {
            let piece = match reader.read_event().unwrap() {
                Event::Start(e) => {
                    let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                    leaves.push((name.clone(), String::new()));
                    open = Some(name);
                    continue;
                }
                Event::End(_) => {
                    open = None;
                    continue;
                }
                Event::Text(t) => t.decode().unwrap().into_owned(),
                Event::CData(c) => String::from_utf8(c.to_vec()).unwrap(),
                Event::GeneralRef(r) => {
                    let name = std::str::from_utf8(&r).unwrap();
                    quick_xml::escape::unescape(&format!("&{name};"))
                        .unwrap()
                        .into_owned()
                }
                Event::Eof => return leaves,
                _ => continue,
            };
            if open.is_some() {
                leaves.last_mut().unwrap().1.push_str(&piece);
            }
        }
    }

    /// The oracle: whatever is accepted, the document sent says exactly what was judged —
    /// read again it gives the same values — and a backend's lenient reading of the client's
    /// document finds in it the very values judged, no other.
    #[test]
    fn what_is_sent_is_what_was_judged() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(20261204);
        let retention = [
            "<Mode>GOVERNANCE</Mode>",
            "<Mode>COMPLIANCE</Mode>",
            "<Mode>GOVERN<!-- -->ANCE</Mode>",
            "<RetainUntilDate>2030-06-01T12:00:00.5+02:00</RetainUntilDate>",
            "<RetainUntilDate>2150-01-01T00:00:00Z</RetainUntilDate>",
            "<RetainUntilDate><![CDATA[2150-01-01T00:00:00Z]]></RetainUntilDate>",
            "<RetainUntilDate>20&#51;0-01-01T00:00:00Z</RetainUntilDate>",
            "<!-- c -->",
            " ",
        ];
        let rule = [
            "<Mode>COMPLIANCE</Mode>",
            "<Days>3</Days>",
            "<Days>1<!-- -->00</Days>",
            "<Days>&#51;</Days>",
            "<Years><![CDATA[80]]></Years>",
            "<Years>2</Years>",
            "<Years>2<!---->0</Years>",
            " ",
        ];
        let versioning = [
            "<Status>Enabled</Status>",
            "<Status>Suspended</Status>",
            "<Status>Ena<!-- -->bled</Status>",
            "<Status><![CDATA[Enabled]]></Status>",
            "<Status>&#69;nabled</Status>",
            "<ExcludedPrefixes><Prefix>data/</Prefix></ExcludedPrefixes>",
            "<ExcludeFolders>true</ExcludeFolders>",
            "<MfaDelete>Disabled</MfaDelete>",
            "<MfaDelete>Enabled</MfaDelete>",
            " ",
        ];
        let hold = [
            "<Status>ON</Status>",
            "<Status>OFF</Status>",
            "<Status>O<!---->N</Status>",
            "<Status>&#79;N</Status>",
            "<Status><![CDATA[OFF]]></Status>",
            " ",
        ];
        let pick = |rng: &mut rand::rngs::StdRng, pieces: &[&str]| -> String {
            let n = rng.gen_range(0..4);
            (0..n)
                .map(|_| pieces[rng.gen_range(0..pieces.len())])
                .collect()
        };
        let mut accepted = [0, 0, 0, 0];
        for round in 0..16000 {
            let (op, doc) = match round % 4 {
                0 => (
                    Operation::PutObjectRetention,
                    format!("<Retention>{}</Retention>", pick(&mut rng, &retention)),
                ),
                1 => (
                    Operation::PutObjectLockConfiguration,
                    format!("<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>{}</DefaultRetention></Rule></ObjectLockConfiguration>", pick(&mut rng, &rule)),
                ),
                2 => (
                    Operation::PutBucketVersioning,
                    format!(
                        "<VersioningConfiguration>{}</VersioningConfiguration>",
                        pick(&mut rng, &versioning)
                    ),
                ),
                _ => (
                    Operation::PutObjectLegalHold,
                    format!("<LegalHold>{}</LegalHold>", pick(&mut rng, &hold)),
                ),
            };
            if let Ok(judged) = read(op, doc.as_bytes(), NOW) {
                accepted[round % 4] += 1;
                judged_as_read(op, &doc, &judged);
            }
        }
        assert!(
            accepted.iter().all(|&n| n > 50),
            "the generator reaches accepted documents: {accepted:?}"
        );
    }

    /// `judged`, the reading of `doc`, is what is sent and what a backend's lenient reader finds
    /// in `doc`.
    fn judged_as_read(op: Operation, doc: &str, judged: &LockDocument) {
        let sent = judged.to_xml();
        assert_eq!(&read(op, &sent, NOW).expect("sent reads"), judged, "{doc}");
        let lenient = leniently(doc);
        let value = |name: &str| {
            lenient
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        match judged {
            LockDocument::Retention(Some((mode, until))) => {
                assert_eq!(value("Mode"), Some(mode.as_str()), "{doc}");
                let date = time::OffsetDateTime::parse(value("RetainUntilDate").unwrap(), rfc3339);
                assert_eq!(date.ok(), Some(*until), "{doc}");
            }
            LockDocument::Configuration(Some((mode, period))) => {
                assert_eq!(value("Mode"), Some(mode.as_str()), "{doc}");
                let (name, n) = match period {
                    Period::Days(d) => ("Days", *d),
                    Period::Years(y) => ("Years", *y),
                };
                assert_eq!(value(name), Some(n.to_string().as_str()), "{doc}");
            }
            LockDocument::Retention(None) | LockDocument::Configuration(None) => {
                let values = ["Mode", "RetainUntilDate", "Days", "Years"].map(value);
                assert_eq!(values, [None; 4], "{doc}");
            }
            LockDocument::LegalHold(on) => {
                assert_eq!(
                    value("Status"),
                    Some(if *on { "ON" } else { "OFF" }),
                    "{doc}"
                );
            }
            LockDocument::Versioning(enabled) => {
                let status = if *enabled { "Enabled" } else { "Suspended" };
                assert_eq!(value("Status"), Some(status), "{doc}");
                // (Nothing else a backend would act on: MFA delete is off, if named.)
                let names: Vec<&str> = lenient.iter().map(|(n, _)| n.as_str()).collect();
                assert!(
                    names.iter().all(|n| matches!(
                        *n,
                        "VersioningConfiguration" | "Status" | "MfaDelete" | "MFADelete"
                    )),
                    "{doc}"
                );
                assert!(
                    matches!(value("MfaDelete"), None | Some("Disabled")),
                    "{doc}"
                );
            }
        }
    }

    #[test]
    fn documents_are_built_again() {
        let doc = retention("2030-06-01T12:00:00.5+02:00").unwrap();
        assert_eq!(
            String::from_utf8(doc.to_xml()).unwrap(),
            format!("<Retention {XMLNS}><Mode>GOVERNANCE</Mode><RetainUntilDate>2030-06-01T10:00:00.5Z</RetainUntilDate></Retention>")
        );
        let doc = default("<Days>7</Days>").unwrap();
        assert_eq!(
            String::from_utf8(doc.to_xml()).unwrap(),
            format!("<ObjectLockConfiguration {XMLNS}><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>7</Days></DefaultRetention></Rule></ObjectLockConfiguration>")
        );
        let enabled = b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>";
        let lock = read(Operation::PutObjectLockConfiguration, enabled, NOW).unwrap();
        assert_eq!(lock, LockDocument::Configuration(None));
        // Versioning as SDKs send it (a namespace, MFA delete named off), sent with its Status
        // alone; a legal hold likewise.
        let sdk = b"<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Suspended</Status><MfaDelete>Disabled</MfaDelete></VersioningConfiguration>";
        let doc = read(Operation::PutBucketVersioning, sdk, NOW).unwrap();
        assert_eq!(
            String::from_utf8(doc.to_xml()).unwrap(),
            format!("<VersioningConfiguration {XMLNS}><Status>Suspended</Status></VersioningConfiguration>")
        );
        let doc = read(
            Operation::PutObjectLegalHold,
            b"<LegalHold><Status>ON</Status></LegalHold>",
            NOW,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(doc.to_xml()).unwrap(),
            format!("<LegalHold {XMLNS}><Status>ON</Status></LegalHold>")
        );
    }

    /// A versioning document holding anything but its Status (and MFA delete off) is refused:
    /// MinIO's `ExcludedPrefixes` and `ExcludeFolders` would keep no versions where the gateway
    /// believes every delete recoverable.
    #[test]
    fn versioning_documents_say_only_their_status() {
        let op = Operation::PutBucketVersioning;
        let read = |doc: &str| read(op, doc.as_bytes(), NOW);
        for (doc, expected) in [
            ("<VersioningConfiguration><Status>Enabled</Status><ExcludedPrefixes><Prefix>data/</Prefix></ExcludedPrefixes></VersioningConfiguration>", HcpCode::MalformedXML),
            ("<VersioningConfiguration><Status>Enabled</Status><ExcludeFolders>true</ExcludeFolders></VersioningConfiguration>", HcpCode::MalformedXML),
            ("<VersioningConfiguration><Status>Enabled</Status><Status>Suspended</Status></VersioningConfiguration>", HcpCode::MalformedXML),
            ("<VersioningConfiguration><Status>enabled</Status></VersioningConfiguration>", HcpCode::MalformedXML),
            ("<VersioningConfiguration></VersioningConfiguration>", HcpCode::MalformedXML),
            ("<VersioningConfiguration><Status>Enabled</Status><MfaDelete>Enabled</MfaDelete></VersioningConfiguration>", HcpCode::NotImplemented),
            ("<LegalHold><Status>ON</Status></LegalHold>", HcpCode::MalformedXML),
        ] {
            assert_eq!(code(read(doc)), Some(expected), "{doc}");
        }
        // minio-py's spelling.
        assert_eq!(
            read("<VersioningConfiguration><Status>Enabled</Status><MFADelete>Disabled</MFADelete></VersioningConfiguration>").unwrap(),
            LockDocument::Versioning(true)
        );
        assert_eq!(
            code(read("<VersioningConfiguration><Status>Enabled</Status><MFADelete>Disabled</MFADelete><MfaDelete>Enabled</MfaDelete></VersioningConfiguration>")),
            Some(HcpCode::MalformedXML)
        );
        assert_eq!(
            read("<s3:VersioningConfiguration xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n <s3:Status> Enabled </s3:Status>\n</s3:VersioningConfiguration>").unwrap(),
            LockDocument::Versioning(true)
        );
    }
}
