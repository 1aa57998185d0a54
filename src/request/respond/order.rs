//! The order of a document's elements as HCP writes them (the manual's examples, which follow
//! AWS's): the embedded store's documents, written by s3s, name each element's children in
//! alphabetical order (a listing's `Contents` as `ETag`, `Key`, `LastModified`, …, an owner's
//! `DisplayName` before its `ID`, the bucket list before its owner). Clients read by name; an
//! HCP application that reads by position, or compares documents, meets HCP's order all the
//! same.

use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};

/// Children of these elements (by local name), in HCP's order. Elements of one rank keep the
/// order they came in: a version listing's `Version` and `DeleteMarker` entries are one list
/// in key and version order, so are a multi-object delete's `Deleted` and `Error`. A child not
/// named goes last, in its order.
const ORDERS: &[(&str, &[&[&str]])] = &[
    ("ListAllMyBucketsResult", &[&["Owner"], &["Buckets"]]),
    ("Bucket", &[&["Name"], &["CreationDate"]]),
    ("Owner", &[&["ID"], &["DisplayName"]]),
    ("Initiator", &[&["ID"], &["DisplayName"]]),
    (
        "ListBucketResult",
        &[
            &["Name"],
            &["Prefix"],
            &["Marker"],
            &["NextMarker"],
            &["StartAfter"],
            &["ContinuationToken"],
            &["NextContinuationToken"],
            &["KeyCount"],
            &["MaxKeys"],
            &["Delimiter"],
            &["EncodingType"],
            &["IsTruncated"],
            &["Contents"],
            &["CommonPrefixes"],
        ],
    ),
    (
        "Contents",
        &[
            &["Key"],
            &["LastModified"],
            &["ETag"],
            &["Size"],
            &["Owner"],
            &["StorageClass"],
        ],
    ),
    (
        "ListVersionsResult",
        &[
            &["Name"],
            &["Prefix"],
            &["KeyMarker"],
            &["VersionIdMarker"],
            &["NextKeyMarker"],
            &["NextVersionIdMarker"],
            &["MaxKeys"],
            &["Delimiter"],
            &["EncodingType"],
            &["IsTruncated"],
            &["Version", "DeleteMarker"],
            &["CommonPrefixes"],
        ],
    ),
    (
        "Version",
        &[
            &["Key"],
            &["VersionId"],
            &["IsLatest"],
            &["LastModified"],
            &["ETag"],
            &["Size"],
            &["Owner"],
            &["StorageClass"],
        ],
    ),
    (
        "DeleteMarker",
        &[
            &["Key"],
            &["VersionId"],
            &["IsLatest"],
            &["LastModified"],
            &["Owner"],
        ],
    ),
    ("DeleteResult", &[&["Deleted", "Error"]]),
    (
        "Deleted",
        &[
            &["Key"],
            &["VersionId"],
            &["DeleteMarker"],
            &["DeleteMarkerVersionId"],
        ],
    ),
    (
        "Error",
        &[&["Key"], &["VersionId"], &["Code"], &["Message"]],
    ),
    (
        "ListMultipartUploadsResult",
        &[
            &["Bucket"],
            &["KeyMarker"],
            &["UploadIdMarker"],
            &["NextKeyMarker"],
            &["NextUploadIdMarker"],
            &["Prefix"],
            &["Delimiter"],
            &["MaxUploads"],
            &["EncodingType"],
            &["IsTruncated"],
            &["Upload"],
            &["CommonPrefixes"],
        ],
    ),
    (
        "Upload",
        &[
            &["Key"],
            &["UploadId"],
            &["Initiator"],
            &["Owner"],
            &["StorageClass"],
            &["Initiated"],
        ],
    ),
    (
        "ListPartsResult",
        &[
            &["Bucket"],
            &["Key"],
            &["UploadId"],
            &["Initiator"],
            &["Owner"],
            &["StorageClass"],
            &["PartNumberMarker"],
            &["NextPartNumberMarker"],
            &["MaxParts"],
            &["IsTruncated"],
            &["Part"],
        ],
    ),
    (
        "Part",
        &[&["PartNumber"], &["LastModified"], &["ETag"], &["Size"]],
    ),
    ("CopyObjectResult", &[&["LastModified"], &["ETag"]]),
    ("CopyPartResult", &[&["LastModified"], &["ETag"]]),
    (
        "CompleteMultipartUploadResult",
        &[&["Location"], &["Bucket"], &["Key"], &["ETag"]],
    ),
    (
        "InitiateMultipartUploadResult",
        &[&["Bucket"], &["Key"], &["UploadId"]],
    ),
];

/// HCP's order of `parent`'s children (by local name), where it has one.
fn order_of(parent: &[u8]) -> Option<&'static [&'static [&'static str]]> {
    let (_, order) = ORDERS.iter().find(|(p, _)| p.as_bytes() == parent)?;
    Some(order)
}

/// A child's place in `order`; one it does not name goes last.
fn rank(order: &[&[&str]], child: &[u8]) -> usize {
    let place = order
        .iter()
        .position(|names| names.iter().any(|n| n.as_bytes() == child));
    place.unwrap_or(order.len())
}

/// One node of a document read whole.
enum Node {
    Element {
        start: BytesStart<'static>,
        children: Vec<Node>,
    },
    /// An element without children written self-closed.
    Empty(BytesStart<'static>),
    /// Anything else (text as it was escaped, a declaration), as it came.
    Other(Event<'static>),
}

/// `body` with the children of the elements HCP orders in HCP's order; `None` where it is not
/// a well-formed document (left for the rewrite to refuse). An element holding text beside its
/// children keeps their order.
pub(super) fn in_hcp_order(body: &[u8]) -> Option<Vec<u8>> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut stack: Vec<(BytesStart<'static>, Vec<Node>)> = Vec::new();
    let mut top: Vec<Node> = Vec::new();
    loop {
        let node = match reader.read_event().ok()? {
            Event::Eof => break,
            Event::Start(e) => {
                stack.push((e.into_owned(), Vec::new()));
                continue;
            }
            Event::End(_) => {
                let (start, mut children) = stack.pop()?;
                arrange(start.local_name().as_ref(), &mut children);
                Node::Element { start, children }
            }
            Event::Empty(e) => Node::Empty(e.into_owned()),
            other => Node::Other(other.into_owned()),
        };
        match stack.last_mut() {
            Some((_, children)) => children.push(node),
            None => top.push(node),
        }
    }
    if !stack.is_empty() {
        return None;
    }
    let mut writer = quick_xml::Writer::new(Vec::with_capacity(body.len()));
    for node in &top {
        write(&mut writer, node)?;
    }
    Some(writer.into_inner())
}

/// `children` of `parent` in HCP's order, where it has one and they are elements alone.
fn arrange(parent: &[u8], children: &mut [Node]) {
    let Some(order) = order_of(parent) else {
        return;
    };
    if children.iter().any(|c| matches!(c, Node::Other(_))) {
        return;
    }
    // (Each child ranked once; the sort is stable.)
    children.sort_by_cached_key(|c| match c {
        Node::Element { start, .. } | Node::Empty(start) => {
            rank(order, start.local_name().as_ref())
        }
        Node::Other(_) => order.len(),
    });
}

fn write(writer: &mut quick_xml::Writer<Vec<u8>>, node: &Node) -> Option<()> {
    match node {
        Node::Element { start, children } => {
            writer.write_event(Event::Start(start.borrow())).ok()?;
            for child in children {
                write(writer, child)?;
            }
            let end = BytesEnd::new(String::from_utf8_lossy(start.name().as_ref()).into_owned());
            writer.write_event(Event::End(end)).ok()?;
        }
        Node::Empty(start) => writer.write_event(Event::Empty(start.borrow())).ok()?,
        Node::Other(Event::Text(t)) => {
            // (As it was escaped: no second escaping.)
            let raw = BytesText::from_escaped(String::from_utf8_lossy(t).into_owned());
            writer.write_event(Event::Text(raw)).ok()?;
        }
        Node::Other(e) => writer.write_event(e.borrow()).ok()?,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store's documents (s3s's alphabetical order) come out in HCP's, nothing lost: text
    /// as it was escaped, attributes, a version listing's entries and a delete's results in
    /// their own order, unknown children last.
    #[test]
    fn documents_take_hcp_s_order() {
        let listing = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes><Contents><ETag>&quot;e&quot;</ETag><Key>k&amp;1</Key><LastModified>t</LastModified><Owner><DisplayName>d</DisplayName><ID>i</ID></Owner><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents><IsTruncated>false</IsTruncated><MaxKeys>1000</MaxKeys><Name>b</Name><Prefix></Prefix><Unknown/></ListBucketResult>";
        let ordered = String::from_utf8(in_hcp_order(listing.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            ordered,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix></Prefix><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>k&amp;1</Key><LastModified>t</LastModified><ETag>&quot;e&quot;</ETag><Size>1</Size><Owner><ID>i</ID><DisplayName>d</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes><Unknown/></ListBucketResult>"
        );
        let versions = "<ListVersionsResult><Version><Key>a</Key><VersionId>2</VersionId></Version><DeleteMarker><Key>a</Key><VersionId>1</VersionId></DeleteMarker><Version><VersionId>3</VersionId><Key>b</Key></Version><Name>n</Name></ListVersionsResult>";
        let ordered = String::from_utf8(in_hcp_order(versions.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            ordered,
            "<ListVersionsResult><Name>n</Name><Version><Key>a</Key><VersionId>2</VersionId></Version><DeleteMarker><Key>a</Key><VersionId>1</VersionId></DeleteMarker><Version><Key>b</Key><VersionId>3</VersionId></Version></ListVersionsResult>"
        );
        let deleted = "<DeleteResult><Deleted><DeleteMarker>true</DeleteMarker><Key>k</Key></Deleted><Error><Code>c</Code><Key>j</Key></Error><Deleted><Key>l</Key></Deleted></DeleteResult>";
        let ordered = String::from_utf8(in_hcp_order(deleted.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            ordered,
            "<DeleteResult><Deleted><Key>k</Key><DeleteMarker>true</DeleteMarker></Deleted><Error><Key>j</Key><Code>c</Code></Error><Deleted><Key>l</Key></Deleted></DeleteResult>"
        );
        assert!(in_hcp_order(b"<ListBucketResult><Name>b</Name>").is_none());
    }
}
