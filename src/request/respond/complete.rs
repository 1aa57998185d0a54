//! HCP's CompleteMultipartUpload rules, checked by the gateway before the backend completes:
//! the part list must be well-formed and ascending, and every part but the last at least HCP's
//! minimum (1 MiB) and the backend's own (5 MiB on AWS and MinIO, 100 KiB on OBS). HCP answers
//! these with 200 and an Error document (seed 001); the upload stays open.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::hcp::errors::{HcpCode, HcpError};

/// One `<Part>` of the client's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPart {
    pub number: u32,
    pub etag: String,
}

fn malformed(message: &'static str) -> HcpError {
    HcpError::new(HcpCode::MalformedXML).with_message(message)
}

/// Parses `<CompleteMultipartUpload><Part><PartNumber/><ETag/></Part>…`.
pub fn parse(body: &[u8]) -> Result<Vec<ListedPart>, HcpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(HcpError::new(HcpCode::MissingRequestBodyError));
    }
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut parts = Vec::new();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let (mut number, mut etag): (Option<u32>, Option<String>) = (None, None);
    let mut root_seen = false;
    loop {
        match reader
            .read_event()
            .map_err(|_| malformed("The XML you provided was not well-formed."))?
        {
            Event::Start(e) => {
                let name = e.name().as_ref().to_vec();
                if path.is_empty() {
                    if name != b"CompleteMultipartUpload" {
                        return Err(malformed(
                            "The root element must be CompleteMultipartUpload.",
                        ));
                    }
                    root_seen = true;
                }
                path.push(name);
            }
            Event::Text(t) => {
                let text = t
                    .decode()
                    .map_err(|_| malformed("The XML is not UTF-8."))?
                    .into_owned();
                match path.last().map(Vec::as_slice) {
                    Some(b"PartNumber") => {
                        number = Some(
                            text.trim()
                                .parse()
                                .map_err(|_| malformed("A PartNumber is not a number."))?,
                        )
                    }
                    Some(b"ETag") => etag = Some(etag.take().unwrap_or_default() + &text),
                    _ => {}
                }
            }
            Event::GeneralRef(r) if path.last().map(Vec::as_slice) == Some(b"ETag") => {
                let etag = etag.get_or_insert_with(String::new);
                if !crate::hcp::xml::push_reference(etag, &r) {
                    return Err(malformed("The XML holds an undefined reference."));
                }
            }
            Event::End(_) => {
                let closed = path.pop();
                if closed.as_deref() == Some(b"Part") {
                    match (number.take(), etag.take()) {
                        (Some(n), Some(e)) => parts.push(ListedPart { number: n, etag: e }),
                        _ => return Err(malformed("Each Part needs a PartNumber and an ETag.")),
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen || !path.is_empty() {
        return Err(malformed("The XML you provided was not well-formed."));
    }
    if parts.is_empty() {
        return Err(malformed("The part list is empty."));
    }
    Ok(parts)
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
                    etag: "\"a\"".into()
                },
                ListedPart {
                    number: 3,
                    etag: "\"b\"".into()
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
