//! The order of a document's elements as HCP writes them (the manual's examples, which follow
//! AWS's): the embedded store's documents, written by s3s, name each element's children in
//! alphabetical order (a listing's `Contents` as `ETag`, `Key`, `LastModified`, …, an owner's
//! `DisplayName` before its `ID`, the bucket list before its owner). Clients read by name; an
//! HCP application that reads by position, or compares documents, meets HCP's order all the
//! same.

use quick_xml::events::Event;

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

/// One node of a fragment, by its place in the fragment's bytes.
enum Node<'a> {
    /// An element with its start tag, its content and its end tag.
    Element {
        local: &'a [u8],
        start: &'a [u8],
        content: &'a [u8],
        end: &'a [u8],
    },
    /// An element without children written self-closed.
    Empty { local: &'a [u8], tag: &'a [u8] },
    /// Anything else (text as it was escaped, a declaration), as it came.
    Other(&'a [u8]),
}

impl Node<'_> {
    /// Its element's local name (`None`: no element).
    fn local(&self) -> Option<&[u8]> {
        match self {
            Node::Element { local, .. } | Node::Empty { local, .. } => Some(local),
            Node::Other(_) => None,
        }
    }
}

/// `body` with the children of the elements HCP orders in HCP's order; `None` where it is not
/// a well-formed document (left for the rewrite to refuse), or one nested deeper than any S3
/// document ([`MAX_DEPTH`]). An element holding text beside its children keeps their order.
/// Each element's content is read as a fragment of `body` and written from its own bytes, the
/// children of an element HCP orders moved as byte ranges: besides the document written, only
/// the list of one ordered element's children at a time is held (no tree of the document,
/// which held ten times its length; no list for the others, whose children are written as they
/// are read).
pub(super) fn in_hcp_order(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    write_ordered(body, None, &mut out, 0)?;
    Some(out)
}

/// Deeper than any document S3 or HCP writes: a backend's document nested deeper is no answer
/// (and would take a stack frame a level).
const MAX_DEPTH: usize = 32;

/// Writes `fragment` (the content of an element named `parent`, or the whole document, at
/// `depth`) with its children in HCP's order, theirs too.
fn write_ordered(
    fragment: &[u8],
    parent: Option<&[u8]>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    let Some(order) = parent.and_then(order_of) else {
        return each_node(fragment, |node| write_node(node, out, depth));
    };
    let mut nodes = Vec::new();
    each_node(fragment, |node| {
        nodes.push(node);
        Some(())
    })?;
    // (Where the children are elements alone; each ranked once, the sort stable.)
    if nodes.iter().all(|n| n.local().is_some()) {
        nodes.sort_by_cached_key(|n| rank(order, n.local().unwrap_or_default()));
    }
    nodes
        .into_iter()
        .try_for_each(|node| write_node(node, out, depth))
}

fn write_node(node: Node<'_>, out: &mut Vec<u8>, depth: usize) -> Option<()> {
    match node {
        Node::Element {
            local,
            start,
            content,
            end,
        } => {
            out.extend_from_slice(start);
            write_ordered(content, Some(local), out, depth + 1)?;
            out.extend_from_slice(end);
        }
        Node::Empty { tag, .. } => out.extend_from_slice(tag),
        Node::Other(bytes) => out.extend_from_slice(bytes),
    }
    Some(())
}

/// UTF-8's byte-order mark, which quick-xml's reader skips where its input begins — a
/// fragment's too (an element's text that begins with U+FEFF): a fragment's leading marks are
/// nodes of their own, and the reader reads what follows them.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Each node of `fragment` at its own level, with its bytes, as it is read; `None` where its
/// elements do not close.
fn each_node<'a>(fragment: &'a [u8], mut f: impl FnMut(Node<'a>) -> Option<()>) -> Option<()> {
    let mut base = 0;
    while fragment[base..].starts_with(BOM) {
        f(Node::Other(&fragment[base..base + BOM.len()]))?;
        base += BOM.len();
    }
    let mut reader = quick_xml::Reader::from_reader(&fragment[base..]);
    // The open element at this level: its local name, where its start tag begins and ends.
    let mut open: Option<(&[u8], usize, usize)> = None;
    let mut depth = 0usize;
    loop {
        let at = base + position(&reader)?;
        let event = reader.read_event().ok()?;
        let after = base + position(&reader)?;
        match event {
            Event::Eof => break,
            Event::Start(e) => {
                if depth == 0 {
                    let name = e.local_name().into_inner().len();
                    let local = local_of(fragment, at, name)?;
                    open = Some((local, at, after));
                }
                depth += 1;
            }
            Event::End(_) => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    let (local, begins, content) = open.take()?;
                    f(Node::Element {
                        local,
                        start: fragment.get(begins..content)?,
                        content: fragment.get(content..at)?,
                        end: fragment.get(at..after)?,
                    })?;
                }
            }
            Event::Empty(e) if depth == 0 => {
                let local = local_of(fragment, at, e.local_name().into_inner().len())?;
                let tag = fragment.get(at..after)?;
                f(Node::Empty { local, tag })?;
            }
            _ if depth == 0 => f(Node::Other(fragment.get(at..after)?))?,
            _ => {}
        }
    }
    (depth == 0).then_some(())
}

/// Where `reader` is in its input.
fn position(reader: &quick_xml::Reader<&[u8]>) -> Option<usize> {
    usize::try_from(reader.buffer_position()).ok()
}

/// The local name (`len` bytes) of the tag at `at` in `fragment`, past `<` and any prefix.
fn local_of(fragment: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    let tag = fragment.get(at + 1..)?;
    let name_end = tag
        .iter()
        .position(|b| b.is_ascii_whitespace() || matches!(b, b'>' | b'/'))?;
    let name = &tag[..name_end];
    name.get(name.len().checked_sub(len)?..)
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
        assert!(in_hcp_order(b"<ListBucketResult><Name>b</Key></ListBucketResult>").is_none());
        // A text that begins with U+FEFF (which quick-xml skips where its input begins) is
        // written whole, and a document nested deeper than any S3 document is none.
        let marked =
            "<ListBucketResult><Contents><Key>\u{FEFF}x&amp;y</Key><ETag>e</ETag></Contents>\
                      <Prefix>\u{FEFF}</Prefix><Name>\u{FEFF}</Name></ListBucketResult>";
        let ordered = String::from_utf8(in_hcp_order(marked.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            ordered,
            "<ListBucketResult><Name>\u{FEFF}</Name><Prefix>\u{FEFF}</Prefix><Contents>\
             <Key>\u{FEFF}x&amp;y</Key><ETag>e</ETag></Contents></ListBucketResult>"
        );
        let nested = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
        assert!(in_hcp_order(nested.as_bytes()).is_none());
    }

    /// Ordering holds the document it writes and one element's list of children at a time —
    /// about its length, which `respond::rewrite_copies` counts — not a tree of the document
    /// (ten times the length of a listing of short keys, uncounted); prefixed names are ranked
    /// by their local names.
    #[test]
    fn ordering_holds_about_the_document_it_writes() {
        for (entries, key) in [(1000, 20), (1000, 200), (100, 1000)] {
            let mut doc = String::from("<s3:ListBucketResult xmlns:s3=\"u\"><s3:IsTruncated>false</s3:IsTruncated><s3:Name>b</s3:Name>");
            for i in 0..entries {
                let k = "k".repeat(key);
                doc.push_str(&format!(
                    "<s3:Contents><s3:Key>{i:05}{k}</s3:Key><s3:ETag>&quot;e&quot;</s3:ETag>\
                     <s3:Owner><s3:DisplayName>d</s3:DisplayName><s3:ID>i</s3:ID></s3:Owner>\
                     <s3:Size>1</s3:Size><s3:Type>Normal</s3:Type></s3:Contents>"
                ));
            }
            doc.push_str("</s3:ListBucketResult>");
            let mut ordered = None;
            let info = allocation_counter::measure(|| ordered = in_hcp_order(doc.as_bytes()));
            let ordered = String::from_utf8(ordered.unwrap()).unwrap();
            assert_eq!(ordered.len(), doc.len());
            assert!(ordered.starts_with(
                "<s3:ListBucketResult xmlns:s3=\"u\"><s3:Name>b</s3:Name><s3:IsTruncated>"
            ));
            assert!(ordered.contains(
                "<s3:Owner><s3:ID>i</s3:ID><s3:DisplayName>d</s3:DisplayName></s3:Owner>"
            ));
            let held = info.bytes_max as f64 / doc.len() as f64;
            assert!(
                held < 1.6,
                "{entries} entries of {key}-byte keys: {held:.2} times held"
            );
        }
        // Many small children of an element HCP does not order are written as they are read.
        let headers = "<ExposeHeader>a</ExposeHeader>".repeat(50_000);
        let cors = format!("<CORSConfiguration><CORSRule>{headers}</CORSRule></CORSConfiguration>");
        let mut ordered = None;
        let info = allocation_counter::measure(|| ordered = in_hcp_order(cors.as_bytes()));
        assert_eq!(ordered.as_deref(), Some(cors.as_bytes()));
        let held = info.bytes_max as f64 / cors.len() as f64;
        assert!(held < 1.6, "a rule of 50,000 headers: {held:.2} times held");
    }
}
