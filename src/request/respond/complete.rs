//! HCP's CompleteMultipartUpload rules, checked by the gateway before the backend completes:
//! the part list must be well-formed and ascending, and every part but the last at least HCP's
//! minimum (1 MiB) and the backend's own (5 MiB on AWS and MinIO, 100 KiB on OBS). HCP answers
//! these with 200 and an Error document (seed 001); the upload stays open.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::hcp::errors::{HcpCode, HcpError};

/// One `<Part>` of the client's list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListedPart {
    pub number: u32,
    pub etag: String,
    /// The part's checksums (`ChecksumCRC32` …), by element name, as given.
    pub checksums: Vec<(&'static str, String)>,
}

/// The checksums a part may name (S3's CompleteMultipartUpload).
const CHECKSUMS: [&str; 5] = [
    "ChecksumCRC32",
    "ChecksumCRC32C",
    "ChecksumCRC64NVME",
    "ChecksumSHA1",
    "ChecksumSHA256",
];

fn malformed(message: &'static str) -> HcpError {
    HcpError::new(HcpCode::MalformedXML).with_message(message)
}

const NOT_WELL_FORMED: &str = "The XML you provided was not well-formed.";

/// A field of a `<Part>`: its element name (one of S3's), or `None`.
fn field(name: &[u8]) -> Option<&'static str> {
    ["PartNumber", "ETag"]
        .into_iter()
        .chain(CHECKSUMS)
        .find(|f| f.as_bytes() == name)
}

/// Parses `<CompleteMultipartUpload><Part><PartNumber/><ETag/></Part>…` strictly, by local
/// names: no element S3 does not define, no field given twice, no text outside a field. What
/// is read is all the backend gets ([`to_xml`]): a reader that counted parts another way than
/// the backend's (`<s3:Part>` it did not see, a field left over from one part into the next)
/// would judge one list and complete another.
pub fn parse(body: &[u8]) -> Result<Vec<ListedPart>, HcpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(HcpError::new(HcpCode::MissingRequestBodyError));
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = Reader::from_reader(body);
    let mut list = Reading::default();
    loop {
        match reader
            .read_event()
            .map_err(|_| malformed(NOT_WELL_FORMED))?
        {
            Event::Start(e) => list.start(e.local_name().as_ref(), false)?,
            Event::Empty(e) => list.start(e.local_name().as_ref(), true)?,
            Event::Text(t) => {
                list.text(&t.decode().map_err(|_| malformed("The XML is not UTF-8."))?)?;
            }
            Event::CData(c) => {
                list.text(
                    std::str::from_utf8(&c).map_err(|_| malformed("The XML is not UTF-8."))?,
                )?;
            }
            Event::GeneralRef(r) => {
                let mut text = String::new();
                if !crate::hcp::xml::push_reference(&mut text, &r) {
                    return Err(malformed("The XML holds an undefined reference."));
                }
                list.text(&text)?;
            }
            Event::End(_) => list.end()?,
            Event::DocType(_) => return Err(malformed(NOT_WELL_FORMED)),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof if list.rooted && list.depth == 0 => break,
            Event::Eof => return Err(malformed(NOT_WELL_FORMED)),
        }
    }
    if list.parts.is_empty() {
        return Err(malformed("The part list is empty."));
    }
    Ok(list.parts)
}

/// A part list as it is read.
#[derive(Default)]
struct Reading {
    parts: Vec<ListedPart>,
    /// 0 outside, 1 in the root, 2 in a Part, 3 in one of its fields.
    depth: usize,
    rooted: bool,
    /// The open Part: its number and ETag once read, its checksums.
    part: Option<(Option<u32>, ListedPart)>,
    field: Option<(&'static str, String)>,
}

impl Reading {
    fn start(&mut self, name: &[u8], empty: bool) -> Result<(), HcpError> {
        match self.depth {
            0 if self.rooted => return Err(malformed(NOT_WELL_FORMED)),
            0 if name != b"CompleteMultipartUpload" => {
                return Err(malformed(
                    "The root element must be CompleteMultipartUpload.",
                ));
            }
            0 => self.rooted = true,
            1 if name == b"Part" && !empty => self.part = Some((None, ListedPart::default())),
            // (An empty checksum is none: ElementTree writes `<ChecksumCRC32 />` for one.)
            2 if empty && CHECKSUMS.iter().any(|c| c.as_bytes() == name) => return Ok(()),
            2 if !empty => {
                let name = field(name)
                    .ok_or_else(|| malformed("A Part holds an element S3 does not define."))?;
                self.field = Some((name, String::new()));
            }
            _ => {
                return Err(malformed(
                    "The part list holds an element S3 does not define.",
                ))
            }
        }
        if !empty {
            self.depth += 1;
        }
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<(), HcpError> {
        match self.field.as_mut() {
            Some((_, value)) => value.push_str(text),
            None if text.trim().is_empty() => {}
            None => return Err(malformed("The part list holds text outside a field.")),
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), HcpError> {
        match self.depth {
            3 => {
                let (name, value) = self.field.take().expect("a field is open");
                let (number, part) = self.part.as_mut().expect("a part is open");
                set_field(number, part, name, value.trim())?;
            }
            2 => match self.part.take().expect("a part is open") {
                (Some(number), part) if !part.etag.is_empty() => {
                    self.parts.push(ListedPart { number, ..part });
                }
                _ => return Err(malformed("Each Part needs a PartNumber and an ETag.")),
            },
            _ => {}
        }
        self.depth = self.depth.saturating_sub(1);
        Ok(())
    }
}

/// A field's value into its part: each field once, the part number a number.
fn set_field(
    number: &mut Option<u32>,
    part: &mut ListedPart,
    name: &'static str,
    value: &str,
) -> Result<(), HcpError> {
    let twice = || malformed("A Part names one of its fields twice.");
    match name {
        "PartNumber" => {
            let n = value
                .parse()
                .map_err(|_| malformed("A PartNumber is not a number."))?;
            if number.replace(n).is_some() {
                return Err(twice());
            }
        }
        "ETag" => {
            if value.is_empty() {
                return Err(malformed("Each Part needs a PartNumber and an ETag."));
            }
            if !part.etag.is_empty() {
                return Err(twice());
            }
            part.etag = value.to_string();
        }
        _ => {
            if part.checksums.iter().any(|(n, _)| *n == name) {
                return Err(twice());
            }
            if !value.is_empty() {
                part.checksums.push((name, value.to_string()));
            }
        }
    }
    Ok(())
}

/// The part list as the backend gets it: built from what [`parse`] read, never the client's
/// bytes.
pub fn to_xml(parts: &[ListedPart]) -> Vec<u8> {
    use quick_xml::escape::escape;
    use std::fmt::Write as _;
    let mut doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload xmlns=\"{}\">",
        crate::hcp::xml::S3_NAMESPACE
    );
    for part in parts {
        let _ = write!(
            doc,
            "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag>",
            part.number,
            escape(part.etag.as_str())
        );
        for (name, value) in &part.checksums {
            let _ = write!(doc, "<{name}>{}</{name}>", escape(value.as_str()));
        }
        doc.push_str("</Part>");
    }
    doc.push_str("</CompleteMultipartUpload>");
    doc.into_bytes()
}

/// Rule 30: parts ascending by number.
pub fn check_order(parts: &[ListedPart]) -> Result<(), HcpError> {
    if parts.windows(2).any(|w| w[0].number >= w[1].number) {
        return Err(HcpError::new(HcpCode::InvalidPartOrder));
    }
    Ok(())
}

/// Rule 32: every part but the last at least `hcp_minimum` (HCP's rule) and `backend_minimum`
/// (what the backend will accept). `size_of` gives an uploaded part's size; a part it does not
/// know is left for the backend to answer (InvalidPart).
pub fn check_sizes(
    parts: &[ListedPart],
    size_of: impl Fn(u32) -> Option<u64>,
    hcp_minimum: u64,
    backend_minimum: u64,
) -> Result<(), HcpError> {
    let Some((_, all_but_last)) = parts.split_last() else {
        return Ok(());
    };
    for part in all_but_last {
        let Some(size) = size_of(part.number) else {
            continue;
        };
        if size < hcp_minimum {
            return Err(HcpError::new(HcpCode::EntityTooSmall).with_message(format!(
                "Part {} is smaller than the minimum part size of {hcp_minimum} bytes.",
                part.number
            )));
        }
        if size < backend_minimum {
            return Err(HcpError::new(HcpCode::EntityTooSmall).with_message(format!(
                "Part {} is smaller than the storage backend's minimum part size of {backend_minimum} bytes.",
                part.number
            )));
        }
    }
    Ok(())
}

/// One page of a ListParts answer: (part number, size) pairs, and the marker to continue from if
/// the listing is truncated.
pub type PartSizes = (Vec<(u32, u64)>, Option<String>);

/// Reads part sizes from a ListParts answer.
pub fn parse_list_parts(body: &[u8]) -> Option<PartSizes> {
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut sizes = Vec::new();
    let (mut number, mut size) = (None, None);
    let (mut truncated, mut next) = (false, None);
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => path.push(e.local_name().as_ref().to_vec()),
            Event::Text(t) => {
                let text = t.decode().ok()?.into_owned();
                let parent = path
                    .len()
                    .checked_sub(2)
                    .and_then(|i| path.get(i))
                    .map(Vec::as_slice);
                match (parent, path.last().map(Vec::as_slice)) {
                    (Some(b"Part"), Some(b"PartNumber")) => number = text.parse().ok(),
                    (Some(b"Part"), Some(b"Size")) => size = text.parse().ok(),
                    (_, Some(b"IsTruncated")) => truncated = text == "true",
                    (_, Some(b"NextPartNumberMarker")) => next = Some(text),
                    _ => {}
                }
            }
            Event::End(_) => {
                let closed = path.pop();
                if closed.as_deref() == Some(b"Part") {
                    if let (Some(n), Some(s)) = (number.take(), size.take()) {
                        sizes.push((n, s));
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Some((sizes, if truncated { next } else { None }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(numbers: &[u32]) -> Vec<ListedPart> {
        numbers
            .iter()
            .map(|&n| ListedPart {
                number: n,
                etag: format!("\"e{n}\""),
                checksums: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn parses_the_part_list() {
        let body = b"<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
            <Part><ETag>&quot;a&quot;</ETag><PartNumber>1</PartNumber></Part>\
            <Part><PartNumber>3</PartNumber><ETag>\"b\"</ETag></Part></CompleteMultipartUpload>";
        let p = parse(body).unwrap();
        assert_eq!(
            p,
            vec![
                ListedPart {
                    number: 1,
                    etag: "\"a\"".into(),
                    checksums: Vec::new()
                },
                ListedPart {
                    number: 3,
                    etag: "\"b\"".into(),
                    checksums: Vec::new()
                }
            ]
        );
    }

    #[test]
    fn malformed_lists() {
        assert_eq!(
            parse(b"").unwrap_err().code,
            HcpCode::MissingRequestBodyError
        );
        for bad in [
            &b"<CompleteMultipartUpload></CompleteMultipartUpload>"[..],
            b"<Other/>",
            b"<CompleteMultipartUpload><Part>",
            b"not xml",
        ] {
            assert_eq!(
                parse(bad).unwrap_err().code,
                HcpCode::MalformedXML,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let no_etag = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>";
        assert_eq!(parse(no_etag).unwrap_err().code, HcpCode::MalformedXML);
    }

    /// Prefixed, self-closed and unknown elements, fields twice, text outside a field: each
    /// is refused, never read past.
    #[test]
    fn strict_lists() {
        let part = "<Part><PartNumber>1</PartNumber><ETag>e</ETag></Part>";
        for bad in [
            format!("<CompleteMultipartUpload><Other/>{part}</CompleteMultipartUpload>"),
            format!("<CompleteMultipartUpload>{part}<Part/></CompleteMultipartUpload>"),
            format!("<CompleteMultipartUpload>{part}x</CompleteMultipartUpload>"),
            format!("<CompleteMultipartUpload>{part}</CompleteMultipartUpload><Part/>"),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><PartNumber>2</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>".into(),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag><ETag>f</ETag></Part></CompleteMultipartUpload>".into(),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag></ETag></Part></CompleteMultipartUpload>".into(),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e<x/></ETag></Part></CompleteMultipartUpload>".into(),
        ] {
            assert_eq!(parse(bad.as_bytes()).unwrap_err().code, HcpCode::MalformedXML, "{bad}");
        }
        // An empty checksum, self-closed or not, is none.
        let empty = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag>\
            <ChecksumCRC32 /><ChecksumSHA1></ChecksumSHA1></Part></CompleteMultipartUpload>";
        assert_eq!(parse(empty.as_bytes()).unwrap()[0].checksums, []);
        // By local names, as a backend reads them; with S3's checksums, sent on.
        let doc =
            "<s3:CompleteMultipartUpload xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
            <s3:Part><s3:PartNumber> 1 </s3:PartNumber><s3:ETag><![CDATA[\"a\"]]></s3:ETag>\
            <s3:ChecksumCRC32>AAAAAA==</s3:ChecksumCRC32></s3:Part></s3:CompleteMultipartUpload>";
        let parts = parse(doc.as_bytes()).unwrap();
        assert_eq!(
            parts,
            [ListedPart {
                number: 1,
                etag: "\"a\"".into(),
                checksums: vec![("ChecksumCRC32", "AAAAAA==".into())],
            }]
        );
        let sent = String::from_utf8(to_xml(&parts)).unwrap();
        assert!(
            sent.contains("<Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>"),
            "{sent}"
        );
    }

    /// A backend's lenient reading of a part list: parts and fields by local name, a field's
    /// text in all its pieces (CDATA, references, around comments), nothing carried from one
    /// part into the next.
    fn leniently(doc: &str) -> Vec<ListedPart> {
        let mut reader = Reader::from_str(doc);
        let (mut parts, mut path) = (Vec::new(), Vec::<Vec<u8>>::new());
        let mut text = String::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) => {
                    path.push(e.local_name().as_ref().to_vec());
                    text.clear();
                    if path.len() == 2 && path[1] == b"Part" {
                        parts.push(ListedPart::default());
                    }
                }
                Event::Text(t) => text.push_str(&t.decode().unwrap()),
                Event::CData(c) => text.push_str(std::str::from_utf8(&c).unwrap()),
                Event::GeneralRef(r) => assert!(crate::hcp::xml::push_reference(&mut text, &r)),
                Event::End(_) => {
                    let name = path.pop().unwrap();
                    if let (3, Some(part)) = (path.len() + 1, parts.last_mut()) {
                        let value = text.trim().to_string();
                        match name.as_slice() {
                            b"PartNumber" => part.number = value.parse().unwrap(),
                            b"ETag" => part.etag = value,
                            other => {
                                let name = field(other).unwrap();
                                part.checksums.push((name, value));
                            }
                        }
                    }
                }
                Event::Eof => return parts,
                _ => {}
            }
        }
    }

    /// The oracle: whatever list is accepted is the list a backend would read in the client's
    /// document, and the document sent reads back as that list.
    #[test]
    fn what_is_sent_is_what_was_judged() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(20261205);
        let opens = [
            ("<Part>", "</Part>"),
            (
                "<s3:Part xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
                "</s3:Part>",
            ),
            ("<Part/>", ""),
            ("<Other>", "</Other>"),
        ];
        let fields = [
            "<PartNumber>1</PartNumber>",
            "<PartNumber>2<!-- -->0</PartNumber>",
            "<PartNumber>&#51;</PartNumber>",
            "<ETag>&quot;a&quot;</ETag>",
            "<ETag><![CDATA[\"b\"]]></ETag>",
            "<ETag>c</ETag>",
            "<ChecksumSHA256>x=</ChecksumSHA256>",
            "<ChecksumCRC32C>y<!-- -->z</ChecksumCRC32C>",
            "<Size>5</Size>",
            "<!-- c -->",
            " ",
            "t",
        ];
        let mut accepted = 0;
        for _ in 0..8000 {
            let mut doc = String::from("<CompleteMultipartUpload>");
            for _ in 0..rng.gen_range(1..4) {
                let (open, close) = opens[rng.gen_range(0..opens.len())];
                doc.push_str(open);
                if !close.is_empty() {
                    for _ in 0..rng.gen_range(0..5) {
                        doc.push_str(fields[rng.gen_range(0..fields.len())]);
                    }
                    doc.push_str(close);
                }
            }
            doc.push_str("</CompleteMultipartUpload>");
            if let Ok(parts) = parse(doc.as_bytes()) {
                accepted += 1;
                assert_eq!(leniently(&doc), parts, "{doc}");
                assert_eq!(parse(&to_xml(&parts)).unwrap(), parts, "{doc}");
            }
        }
        assert!(
            accepted > 100,
            "the generator reaches accepted lists: {accepted}"
        );
    }

    #[test]
    fn order_and_sizes() {
        assert!(check_order(&parts(&[1, 2, 5])).is_ok());
        assert_eq!(
            check_order(&parts(&[2, 1])).unwrap_err().code,
            HcpCode::InvalidPartOrder
        );
        assert_eq!(
            check_order(&parts(&[1, 1])).unwrap_err().code,
            HcpCode::InvalidPartOrder
        );
        let mib = 1 << 20;
        let sizes = |n: u32| Some(if n == 1 { 2 * mib } else { 100 });
        assert!(
            check_sizes(&parts(&[1, 2]), sizes, mib, 0).is_ok(),
            "the last part may be small"
        );
        let e = check_sizes(&parts(&[2, 3]), sizes, mib, 0).unwrap_err();
        assert_eq!((e.code, e.status), (HcpCode::EntityTooSmall, 200));
        let e = check_sizes(&parts(&[1, 2]), sizes, mib, 5 * mib).unwrap_err();
        assert!(
            e.message.contains("backend's minimum part size of 5242880"),
            "{}",
            e.message
        );
    }

    #[test]
    fn reads_list_parts_answers() {
        let body = b"<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker>2</NextPartNumberMarker>\
            <Part><PartNumber>1</PartNumber><Size>10</Size></Part><Part><PartNumber>2</PartNumber><Size>20</Size></Part></ListPartsResult>";
        assert_eq!(
            parse_list_parts(body),
            Some((vec![(1, 10), (2, 20)], Some("2".into())))
        );
    }
}
