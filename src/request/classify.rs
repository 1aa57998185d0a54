//! Classification: every request is turned once into an [`Operation`]; later phases decide by it,
//! never by re-reading method, path or query.

use http::Method;
use percent_encoding::percent_decode;

use crate::hcp::errors::{HcpCode, HcpError};
use crate::request::address::Target;

/// Declares the operations once: the enum, `ALL`, and the names used in logs, metrics and the
/// mapping tables' operation column.
macro_rules! operations {
    ($($(#[$doc:meta])* $op:ident,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation {
            $($(#[$doc])* $op,)*
        }

        impl Operation {
            pub const ALL: &'static [Operation] = &[$(Operation::$op,)*];

            /// The name used in logs, metrics labels and the mapping tables.
            pub fn name(self) -> &'static str {
                match self {
                    $(Operation::$op => stringify!($op),)*
                }
            }

            pub fn from_name(name: &str) -> Option<Operation> {
                Self::ALL.iter().copied().find(|op| op.name() == name)
            }
        }
    };
}

operations! {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    ListObjects,
    ListObjectsV2,
    ListObjectVersions,
    ListMultipartUploads,
    GetBucketLocation,
    GetBucketAcl,
    PutBucketAcl,
    GetBucketVersioning,
    PutBucketVersioning,
    DeleteObjects,
    /// An upload from an HTML form (POST to the bucket, multipart/form-data).
    PostObject,
    /// S3 Object Lock: a bucket's lock configuration (`?object-lock`).
    GetObjectLockConfiguration,
    PutObjectLockConfiguration,
    /// Any other bucket sub-resource (cors, lifecycle, tagging, …), forwarded as it is.
    BucketSubresource,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    GetObjectAcl,
    PutObjectAcl,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    /// S3 Object Lock: a version's retention (`?retention`) and legal hold (`?legal-hold`).
    GetObjectRetention,
    PutObjectRetention,
    GetObjectLegalHold,
    PutObjectLegalHold,
    /// Any other object sub-resource (tagging, restore, …), forwarded as it is.
    ObjectSubresource,
    /// A browser's CORS preflight (`OPTIONS` on a bucket or object): never signed, so it needs
    /// no identity; the bucket's CORS configuration at the backend decides.
    CorsPreflight,
}

impl Operation {
    /// The root element of the XML document S3 (and HCP) answer this operation with, for the
    /// control operations whose answers the gateway reads whole and normalises.
    pub fn result_root(self) -> Option<&'static str> {
        use Operation::*;
        Some(match self {
            ListBuckets => "ListAllMyBucketsResult",
            ListObjects | ListObjectsV2 => "ListBucketResult",
            ListObjectVersions => "ListVersionsResult",
            ListMultipartUploads => "ListMultipartUploadsResult",
            CreateMultipartUpload => "InitiateMultipartUploadResult",
            CompleteMultipartUpload => "CompleteMultipartUploadResult",
            ListParts => "ListPartsResult",
            CopyObject => "CopyObjectResult",
            UploadPartCopy => "CopyPartResult",
            DeleteObjects => "DeleteResult",
            GetBucketAcl | GetObjectAcl => "AccessControlPolicy",
            GetBucketVersioning => "VersioningConfiguration",
            GetBucketLocation => "LocationConstraint",
            GetObjectLockConfiguration => "ObjectLockConfiguration",
            GetObjectRetention => "Retention",
            GetObjectLegalHold => "LegalHold",
            _ => return None,
        })
    }

    /// Whether a 200 answer may carry an `<Error>` document instead of a result (AWS reports
    /// failures found after it started answering this way).
    pub fn may_hide_error(self) -> bool {
        matches!(
            self,
            Operation::CompleteMultipartUpload | Operation::CopyObject | Operation::UploadPartCopy
        )
    }

    /// Whether the request's `x-amz-checksum-*` headers are the whole object's (S3's to check
    /// and sent on), not its body's: a multipart complete's, whose body is the part list.
    pub fn checksums_are_the_object_s(self) -> bool {
        self == Operation::CompleteMultipartUpload
    }

    /// Whether the operation carries a request body (with PUT or POST): object data, or an XML
    /// document. The others forward none.
    pub fn takes_body(self) -> bool {
        use Operation::*;
        matches!(
            self,
            PutObject
                | UploadPart
                | CompleteMultipartUpload
                | DeleteObjects
                | PutBucketAcl
                | PutObjectAcl
                | PutBucketVersioning
                | PutObjectLockConfiguration
                | PutObjectRetention
                | PutObjectLegalHold
                | CreateBucket
                | BucketSubresource
                | ObjectSubresource
                | PostObject
        )
    }

    /// Whether the request carries an object body from the client.
    pub fn has_object_body(self) -> bool {
        matches!(self, Operation::PutObject | Operation::UploadPart)
    }
}

/// The decoded query parameters of a request, in order: the decoded names and values one after
/// another in one string, and where each pair's name and value are in it. The string is one the
/// thread keeps, lent while the query lives (a request's is parsed, read and dropped in the
/// synchronous planning phase), and the places of up to eight parameters (a presigned URL has
/// six or seven) are kept inline: a request's query allocates nothing on a thread that has
/// parsed one before.
#[derive(Debug, Default, Clone)]
pub struct Query {
    text: String,
    spans: smallvec::SmallVec<[QuerySpan; 8]>,
    /// A bit for each name among the parameters ([`name_bit`], from its length and its last
    /// byte): most lookups ask for a name the request does not carry (classification asks for
    /// each sub-resource in turn), and most of those are answered by this bit, without a scan.
    names: u64,
}

/// Where one parameter's name and value are in [`Query`]'s text (name from `start` to `eq`,
/// value from `eq` to `end`).
#[derive(Debug, Default, Clone, Copy)]
struct QuerySpan {
    start: usize,
    eq: usize,
    end: usize,
}

impl Query {
    pub fn parse(raw: &[u8]) -> Query {
        let mut text = crate::kept::lend(&TEXT);
        text.reserve(raw.len());
        let mut q = Query {
            text,
            spans: smallvec::SmallVec::new(),
            names: 0,
        };
        // The query as text, validated once (a client's query is nearly always ASCII): a part
        // without escapes is then copied as it is, without a check of its own.
        let whole = std::str::from_utf8(raw).ok();
        // (Where a part is percent-encoded, it is decoded here first, in a buffer the thread
        // keeps for it: one for them all, given back when a long query made it large.)
        crate::kept::with(&SCRATCH, |scratch| {
            let mut at = 0;
            while at < raw.len() {
                let end = memchr::memchr(b'&', &raw[at..]).map_or(raw.len(), |i| at + i);
                let (part, from) = (&raw[at..end], at);
                at = end + 1;
                if part.is_empty() {
                    continue;
                }
                // (Each piece's bounds are next to an ASCII byte or at an end of the query:
                // boundaries of its text.)
                let piece = |i: usize, j: usize| Piece {
                    raw: &part[i..j],
                    text: whole.map(|w| &w[from + i..from + j]),
                };
                let (n, v) = match memchr::memchr(b'=', part) {
                    Some(i) => (piece(0, i), piece(i + 1, part.len())),
                    None => (piece(0, part.len()), piece(0, 0)),
                };
                let start = q.text.len();
                push_decoded(&mut q.text, n, scratch);
                let eq = q.text.len();
                push_decoded(&mut q.text, v, scratch);
                let end = q.text.len();
                q.names |= name_bit(&q.text[start..eq]);
                q.spans.push(QuerySpan { start, eq, end });
            }
        });
        q
    }

    /// The parameters as (name, value), in the request's order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans
            .iter()
            .map(|s| (&self.text[s.start..s.eq], &self.text[s.eq..s.end]))
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The first value of parameter `name`: matched in any case for the parameters HCP's
    /// manual says are not case sensitive ([`CASELESS`]), exactly for every other.
    pub fn get(&self, name: &str) -> Option<&str> {
        if self.names & name_bit(name) == 0 {
            return None;
        }
        let caseless = CASELESS.contains(&name);
        self.pairs()
            .find(|(n, _)| *n == name || (caseless && n.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v)
    }
}

/// A GET's response overrides (S3's parameters; HCP's request headers too).
pub const RESPONSE: [&str; 6] = [
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
];

/// The overrides of HCP's own cache headers the gateway answers itself
/// (`respond::rewrite::answer_overrides`), never asked of a backend (the embedded store would
/// refuse a `response-expires` that is no date, which HCP answers as given).
const ANSWERED_HERE: [&str; 2] = [RESPONSE[0], RESPONSE[5]];

/// The query parameters HCP's manual says are not case sensitive (`?ACL` is `?acl`; the
/// listings' parameters, it says, are).
pub const CASELESS: [&str; 6] = [
    "acl",
    "versioning",
    "versions",
    "versionId",
    "uploadId",
    "partNumber",
];

/// [`Query::names`]' bit for `name`: one of 64, from its length and its last byte in lower case
/// (so that the names of S3's sub-resources and of a presigned URL's parameters, many of one
/// length, seldom share one; and a name in another case has the same bit).
fn name_bit(name: &str) -> u64 {
    let last = name.as_bytes().last().copied().unwrap_or(0);
    let last = last.to_ascii_lowercase();
    1 << (name.len().wrapping_mul(5).wrapping_add(usize::from(last)) & 63)
}

/// A part of the raw query: its bytes, and its text where the query is valid UTF-8.
#[derive(Clone, Copy)]
struct Piece<'a> {
    raw: &'a [u8],
    text: Option<&'a str>,
}

thread_local! {
    /// [`Query::parse`]'s decoding buffer.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The text of the thread's query, lent to it while it lives.
    static TEXT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

impl Drop for Query {
    /// The text goes back to the thread (unless it grew large, or the thread lent another).
    fn drop(&mut self) {
        crate::kept::give_back(&TEXT, std::mem::take(&mut self.text));
    }
}

/// Appends `part` percent-decoded to `text`, as UTF-8 with invalid sequences replaced (as
/// `decode_utf8_lossy` does, without a string of its own for each encoded part).
fn push_decoded(text: &mut String, part: Piece<'_>, scratch: &mut Vec<u8>) {
    let bytes = if memchr::memchr(b'%', part.raw).is_some() {
        scratch.clear();
        scratch.extend(percent_decode(part.raw));
        &scratch[..]
    } else if let Some(as_text) = part.text {
        text.push_str(as_text);
        return;
    } else {
        part.raw
    };
    match std::str::from_utf8(bytes) {
        Ok(s) => text.push_str(s),
        Err(_) => text.push_str(&String::from_utf8_lossy(bytes)),
    }
}

/// The query parameters of one classified request that the backend may see: the operation's
/// sub-resource and the parameters that operation defines, with the client's values. Nothing
/// else of the client's query — parameters of other operations, unknown ones, the client's
/// presigned credentials — reaches a backend (seed 002: invalid query parameters are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(&'static str, String)>,
    /// What the gateway decided the request does besides its parameters (never from the
    /// client's query): rendered as the backend's headers by `sign`.
    pub effects: Effects,
    /// ListParts' `encoding-type=url`: HCP answers with the upload's key URL-encoded (manual,
    /// "Listing the parts of a multipart upload"). The gateway encodes it; no backend is asked
    /// (S3 defines no such parameter for ListParts, and one that read it would encode twice).
    pub url_key: bool,
}

/// Effects the gateway adds to an operation, each decided by a phase that checked it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// A copy onto itself that changes the object's retention or hold (HCP's way): carried out
    /// as Object Lock requests instead of a copy (`request::retain`).
    pub change: Option<crate::request::retain::Change>,
    /// A new object's labeled holds (`x-hcp-labelretentionhold` on PUT or a copy): kept once
    /// the object is stored (on hold) and its version known (`request::retain`).
    pub after_write: Option<crate::request::retain::Change>,
    /// HCP's retention and hold for a new object, as S3 Object Lock (`x-hcp-retention`,
    /// `x-hcp-retentionhold` in a namespace that keeps retention).
    pub protection: Option<crate::hcp::retention::Protection>,
    /// A bucket created in a namespace that keeps retention is created with Object Lock.
    pub lock_bucket: bool,
    /// A privileged delete (`x-hcp-privileged` in an enterprise namespace): S3's governance
    /// bypass.
    pub bypass_governance: bool,
    /// HCP's `x-amz-server-side-encryption` (any value) on a write: a question, not an
    /// instruction — the answer says whether the backend keeps the data encrypted (`AES256`)
    /// or not (`None`), and nothing is asked of the backend.
    pub answer_encryption: bool,
    /// A copy of an object onto itself with new metadata (`x-amz-metadata-directive: REPLACE`,
    /// no source version): HCP's way to change an object's metadata, its content and content
    /// headers kept (decided in `forward` from the client's request, before anything of it is
    /// rewritten).
    pub metadata_edit: bool,
    /// A copy source naming a version in a bucket whose versioning is not enabled: HCP ignores
    /// the version and copies the current object (decided in `forward`, asked of the backend).
    pub current_source: bool,
    /// HCP's folders, in tenants that keep them: a PUT that creates one, or a write whose
    /// folders are created once it is stored (`request::folders`).
    pub folder: crate::request::folders::FolderWrite,
    /// Where the tenant keeps records: the grants to users the request's ACL headers set, for
    /// the gateway to record once the backend has done its part (`request::acls`); `None`
    /// where the request sets no ACL.
    pub acl_change: Option<crate::request::acls::AclChange>,
    /// Where the tenant keeps records: a new object's owner entry (its writer's user id, or
    /// `nobody`), written with it (`request::object_owners`).
    pub object_owner: Option<String>,
    /// ListParts or an abort of an upload the caller did not initiate, which only the
    /// bucket's owner may (HCP): its initiator's access key (`None`: unattributed), the owner
    /// checked before sending (`request::owners`).
    pub others_upload: Option<Option<String>>,
}

impl Params {
    /// The parameters of `op` taken from the client's query.
    pub fn of(op: Operation, query: &Query) -> Params {
        let mut params = Params::default();
        if let Some(sub) = sub_resource(op, query) {
            params.set(sub, query.get(sub).unwrap_or_default());
        }
        for &name in op.defined_params() {
            if let Some(value) = query.get(name) {
                // A listing's names, given back as HCP displayed them (their nonprintable
                // characters percent-encoded), are the names they show — but where the listing
                // encodes its names as URLs, which come back as the names: nothing was
                // displayed. (Asked only of a listing's names: no other request pays for it.)
                match name {
                    "prefix" | "marker" | "key-marker" | "start-after" | "delimiter"
                    | "continuation-token"
                        if query.get("encoding-type").is_none() =>
                    {
                        params.set(name, crate::hcp::xml::stored_name(value));
                    }
                    // (HCP ignores a parameter's invalid value: only `true` asks for owners —
                    // a backend would refuse `TRUE` or `1`, 400.)
                    "fetch-owner" if value != "true" => {}
                    "encoding-type" if op == Operation::ListParts => {
                        params.url_key = value == "url";
                    }
                    _ => params.set(name, value),
                }
            }
        }
        params
    }

    /// HCP's response overrides given as request headers (manual, "Overriding response
    /// headers": `response-content-type: …` and the rest), for a GET that does not give them as
    /// S3's query parameters: the backend is asked with the parameters.
    pub fn take_response_headers(&mut self, op: Operation, req: &pingora::http::RequestHeader) {
        // (One pass finds that a GET names none, as nearly every GET does.)
        let named = |req: &pingora::http::RequestHeader| {
            req.headers
                .keys()
                .any(|n| n.as_str().starts_with("response-"))
        };
        if op != Operation::GetObject || !named(req) {
            return;
        }
        for name in RESPONSE {
            if self.get(name).is_some() {
                continue;
            }
            if let Some(value) = req.headers.get(name).and_then(|v| v.to_str().ok()) {
                self.set(name, value);
            }
        }
    }

    /// Parameters the gateway sets itself (its own sub-requests, backend upload ids).
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Params {
        self.set(name, value);
        self
    }

    pub fn set(&mut self, name: &'static str, value: impl Into<String>) {
        let value = value.into();
        match self.pairs.iter_mut().find(|(n, _)| *n == name) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Without parameter `name` (a decision of the gateway's, as HCP's versioning rules make).
    pub fn without(mut self, name: &str) -> Params {
        self.pairs.retain(|(n, _)| *n != name);
        self
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.pairs.iter().map(|(n, _)| *n)
    }

    /// The query string sent to the backend, in SigV4's canonical form (sorted, encoded once).
    pub fn to_query(&self) -> String {
        use crate::sig::v4::{uri_encode, EncodedPairs};
        if self.pairs.is_empty() {
            // (Most requests: nothing to sort, nothing to allocate.)
            return String::new();
        }
        let mut pairs = EncodedPairs::with_capacity(
            self.pairs.iter().map(|(n, v)| n.len() + v.len() + 2).sum(),
        );
        for (n, v) in &self.pairs {
            if ANSWERED_HERE.contains(n) {
                continue;
            }
            pairs.push(
                |out| uri_encode(n.as_bytes(), false, out),
                |out| uri_encode(v.as_bytes(), false, out),
                &[],
            );
        }
        pairs.joined()
    }
}

/// The sub-resource that selected a sub-resource operation (the first one present, in the
/// order classification tests them; any others in the query are not forwarded).
pub fn sub_resource(op: Operation, query: &Query) -> Option<&'static str> {
    let list = match op {
        Operation::BucketSubresource => BUCKET_SUBRESOURCES,
        Operation::ObjectSubresource => OBJECT_SUBRESOURCES,
        _ => return None,
    };
    list.iter().copied().find(|s| query.has(s))
}

impl Operation {
    /// A listing's page size: the query parameter that asks it, and the element its answer
    /// echoes it in — HCP's value "of the … query parameter included in the request", 1,000
    /// where none was (a backend's own, such as RGW's 1,000 for any larger `max-keys`, never).
    pub fn page_size(self) -> Option<(&'static str, &'static [u8])> {
        use Operation::*;
        match self {
            ListObjects | ListObjectsV2 | ListObjectVersions => Some(("max-keys", b"MaxKeys")),
            ListMultipartUploads => Some(("max-uploads", b"MaxUploads")),
            ListParts => Some(("max-parts", b"MaxParts")),
            _ => None,
        }
    }

    /// The query parameters this operation defines, its selecting sub-resource included (a
    /// sub-resource operation's own sub-resource is added by [`Params::of`]).
    pub fn defined_params(self) -> &'static [&'static str] {
        use Operation::*;
        match self {
            ListObjects => &["delimiter", "encoding-type", "marker", "max-keys", "prefix"],
            ListObjectsV2 => &[
                "list-type",
                "continuation-token",
                "delimiter",
                "encoding-type",
                "fetch-owner",
                "max-keys",
                "prefix",
                "start-after",
            ],
            ListObjectVersions => &[
                "versions",
                "delimiter",
                "encoding-type",
                "key-marker",
                "max-keys",
                "prefix",
                "version-id-marker",
            ],
            ListMultipartUploads => &[
                "uploads",
                "delimiter",
                "encoding-type",
                "key-marker",
                "max-uploads",
                "prefix",
                "upload-id-marker",
            ],
            GetBucketLocation => &["location"],
            GetBucketAcl | PutBucketAcl => &["acl"],
            GetObjectAcl | PutObjectAcl => &["acl", "versionId"],
            GetBucketVersioning | PutBucketVersioning => &["versioning"],
            GetObjectLockConfiguration | PutObjectLockConfiguration => &["object-lock"],
            GetObjectRetention | PutObjectRetention => &["retention", "versionId"],
            GetObjectLegalHold | PutObjectLegalHold => &["legal-hold", "versionId"],
            DeleteObjects => &["delete"],
            GetObject | HeadObject => &[
                "versionId",
                "partNumber",
                RESPONSE[0],
                RESPONSE[1],
                RESPONSE[2],
                RESPONSE[3],
                RESPONSE[4],
                RESPONSE[5],
            ],
            DeleteObject | ObjectSubresource => &["versionId"],
            CreateMultipartUpload => &["uploads"],
            UploadPart | UploadPartCopy => &["partNumber", "uploadId"],
            CompleteMultipartUpload | AbortMultipartUpload => &["uploadId"],
            ListParts => &[
                "uploadId",
                "encoding-type",
                "max-parts",
                "part-number-marker",
            ],
            ListBuckets | CreateBucket | HeadBucket | DeleteBucket | PostObject
            | BucketSubresource | PutObject | CopyObject | CorsPreflight => &[],
        }
    }
}

/// Bucket sub-resources that select an operation of their own (anything else in the query is a
/// parameter, and HCP ignores parameters it does not know).
const BUCKET_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "analytics",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "lifecycle",
    "logging",
    "metrics",
    "notification",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "tagging",
    "website",
];
const OBJECT_SUBRESOURCES: &[&str] = &["attributes", "restore", "select", "tagging", "torrent"];

fn not_allowed() -> HcpError {
    HcpError::new(HcpCode::MethodNotAllowed)
}

/// Classifies a request by method, target and query.
pub fn classify(
    method: &Method,
    target: &Target,
    query: &Query,
    has_copy_source: bool,
) -> Result<Operation, HcpError> {
    if target.bucket.is_none() {
        return match *method {
            Method::GET => Ok(Operation::ListBuckets),
            // Most often a virtual-host client whose Host is under no configured domain, so
            // that the bucket in its Host was not seen (a CreateBucket then looks like PUT /).
            // HCP's answer; the hint is for the operator, in the access log.
            _ => Err(not_allowed().with_cause(
                "no bucket named: path style needs /bucket; virtual-host style needs a Host \
                 under one of addressing.domains",
            )),
        };
    }
    let asked = Asked { m: method, query };
    if target.raw_key.is_none() {
        classify_bucket(asked)
    } else {
        classify_object(asked, has_copy_source)
    }
}

/// The method and query of a request that names a bucket.
#[derive(Clone, Copy)]
struct Asked<'a> {
    m: &'a Method,
    query: &'a Query,
}

impl Asked<'_> {
    /// A sub-resource with a method that has no operation on it is not the operation without
    /// it: `DELETE /b/k?acl` is no DeleteObject, `DELETE /b?versioning` no DeleteBucket.
    fn defined(&self, sub: &str, methods: &[Method]) -> bool {
        !self.query.has(sub) || methods.contains(self.m)
    }

    /// A sub-resource is read, written or removed: any other method (a POST, which some
    /// servers take for a browser-form upload) is not one of its operations.
    fn sub_resource_method(&self) -> bool {
        matches!(
            *self.m,
            Method::GET | Method::PUT | Method::DELETE | Method::HEAD
        )
    }
}

fn classify_bucket(a: Asked<'_>) -> Result<Operation, HcpError> {
    use Operation::*;
    let (m, query) = (a.m, a.query);
    let ok = a.defined("acl", &[Method::GET, Method::PUT])
        && a.defined("versioning", &[Method::GET, Method::PUT])
        && a.defined("location", &[Method::GET])
        && a.defined("uploads", &[Method::GET])
        && a.defined("versions", &[Method::GET])
        && a.defined("object-lock", &[Method::GET, Method::PUT])
        && a.defined("delete", &[Method::POST]);
    // (A browser's preflight of any request on the bucket, `?cors` and `?lifecycle` too.)
    if *m == Method::OPTIONS {
        return Ok(CorsPreflight);
    }
    if !ok {
        return Err(not_allowed());
    }
    if BUCKET_SUBRESOURCES.iter().any(|s| query.has(s)) {
        return if a.sub_resource_method() {
            Ok(BucketSubresource)
        } else {
            Err(not_allowed())
        };
    }
    match *m {
        Method::GET if query.has("acl") => Ok(GetBucketAcl),
        Method::PUT if query.has("acl") => Ok(PutBucketAcl),
        Method::GET if query.has("object-lock") => Ok(GetObjectLockConfiguration),
        Method::PUT if query.has("object-lock") => Ok(PutObjectLockConfiguration),
        Method::GET if query.has("versioning") => Ok(GetBucketVersioning),
        Method::PUT if query.has("versioning") => Ok(PutBucketVersioning),
        Method::GET if query.has("location") => Ok(GetBucketLocation),
        Method::GET if query.has("uploads") => Ok(ListMultipartUploads),
        Method::GET if query.has("versions") => Ok(ListObjectVersions),
        Method::GET if query.get("list-type") == Some("2") => Ok(ListObjectsV2),
        Method::GET => Ok(ListObjects),
        Method::PUT => Ok(CreateBucket),
        Method::HEAD => Ok(HeadBucket),
        Method::DELETE => Ok(DeleteBucket),
        Method::POST if query.has("delete") => Ok(DeleteObjects),
        Method::POST => Ok(PostObject),
        _ => Err(not_allowed()),
    }
}

fn classify_object(a: Asked<'_>, has_copy_source: bool) -> Result<Operation, HcpError> {
    use Operation::*;
    let (m, query) = (a.m, a.query);
    let ok = a.defined("acl", &[Method::GET, Method::PUT])
        && a.defined("retention", &[Method::GET, Method::PUT])
        && a.defined("legal-hold", &[Method::GET, Method::PUT])
        && a.defined("uploads", &[Method::POST]);
    if *m == Method::OPTIONS {
        return Ok(CorsPreflight);
    }
    if !ok {
        return Err(not_allowed());
    }
    if OBJECT_SUBRESOURCES.iter().any(|s| query.has(s)) {
        // (restore and select are POSTs, but not offered: 501 either way.)
        return if a.sub_resource_method() || *m == Method::POST {
            Ok(ObjectSubresource)
        } else {
            Err(not_allowed())
        };
    }
    let upload = query.has("uploadId");
    match *m {
        Method::GET if query.has("acl") => Ok(GetObjectAcl),
        Method::PUT if query.has("acl") => Ok(PutObjectAcl),
        Method::GET if query.has("retention") => Ok(GetObjectRetention),
        Method::PUT if query.has("retention") => Ok(PutObjectRetention),
        Method::GET if query.has("legal-hold") => Ok(GetObjectLegalHold),
        Method::PUT if query.has("legal-hold") => Ok(PutObjectLegalHold),
        Method::GET if upload => Ok(ListParts),
        Method::GET => Ok(GetObject),
        Method::HEAD => Ok(HeadObject),
        Method::PUT if upload && has_copy_source => Ok(UploadPartCopy),
        Method::PUT if upload => Ok(UploadPart),
        Method::PUT if has_copy_source => Ok(CopyObject),
        Method::PUT => Ok(PutObject),
        Method::POST if query.has("uploads") => Ok(CreateMultipartUpload),
        Method::POST if upload => Ok(CompleteMultipartUpload),
        Method::DELETE if upload => Ok(AbortMultipartUpload),
        Method::DELETE => Ok(DeleteObject),
        _ => Err(not_allowed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Oracle: a query part is decoded as `percent_decode(..).decode_utf8_lossy()` decodes it,
    /// for random parts of escapes (whole, cut short, invalid), multi-byte characters, invalid
    /// UTF-8 and plain bytes, one scratch buffer reused across them.
    #[test]
    fn query_parts_decode_as_percent_encoding_decodes_them() {
        use rand::{Rng, SeedableRng};
        let atoms: [&[u8]; 12] = [
            b"%2F",
            b"%2f",
            b"%",
            b"%4",
            b"%zz",
            b"%FF",
            b"%C3%A9",
            b"\xc3",
            b"a",
            b"=",
            b"+",
            b"\xc3\xa9",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9e7);
        let mut scratch = Vec::new();
        for _ in 0..20_000 {
            let mut part = Vec::new();
            for _ in 0..rng.gen_range(0..6) {
                part.extend_from_slice(atoms[rng.gen_range(0..atoms.len())]);
            }
            let expected = percent_decode(&part).decode_utf8_lossy();
            // (With the part's text where it is valid UTF-8, as `Query::parse` gives it, and
            // without.)
            for text_of in [std::str::from_utf8(&part).ok(), None] {
                let mut text = String::from("before");
                let piece = Piece {
                    raw: &part,
                    text: text_of,
                };
                push_decoded(&mut text, piece, &mut scratch);
                assert_eq!(&text["before".len()..], expected, "{part:?}");
            }
        }
    }

    /// Oracle: a whole query parses into the parts a split at each `&` and the first `=` gives,
    /// each decoded as `percent_decode(..).decode_utf8_lossy()` decodes it — for random queries
    /// of escapes, separators, empty parts, multi-byte characters and invalid UTF-8 (which
    /// makes the query's text invalid as a whole).
    #[test]
    fn queries_parse_into_the_parts_the_rule_splits() {
        use rand::{Rng, SeedableRng};
        let atoms: [&[u8]; 12] = [
            b"&",
            b"&&",
            b"=",
            b"a",
            b"Zz",
            b"%2F",
            b"%",
            b"%C3%A9",
            b"\xc3\xa9",
            b"\xc3",
            b"-",
            b"~",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9a5);
        for _ in 0..20_000 {
            let mut raw = Vec::new();
            for _ in 0..rng.gen_range(0..10) {
                raw.extend_from_slice(atoms[rng.gen_range(0..atoms.len())]);
            }
            let decode = |b: &[u8]| percent_decode(b).decode_utf8_lossy().into_owned();
            let expected: Vec<(String, String)> = raw
                .split(|&b| b == b'&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.iter().position(|&b| b == b'=') {
                    Some(i) => (decode(&p[..i]), decode(&p[i + 1..])),
                    None => (decode(p), String::new()),
                })
                .collect();
            let q = Query::parse(&raw);
            let parsed: Vec<(String, String)> = q
                .pairs()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            assert_eq!(parsed, expected, "{raw:?}");
            for (n, v) in &expected {
                let first = expected
                    .iter()
                    .find(|(m, _)| {
                        m == n || (CASELESS.contains(&n.as_str()) && m.eq_ignore_ascii_case(n))
                    })
                    .map(|(_, v)| v.as_str());
                assert_eq!(q.get(n), first, "{n:?} ({v:?}) in {raw:?}");
            }
        }
    }

    /// Oracle: a lookup answers what a scan of every parameter answers, for random queries of
    /// names of every length (63 and more among them, escaped, empty, repeated) and lookups of
    /// names present and absent.
    #[test]
    fn lookups_answer_as_a_scan_of_every_parameter() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x51e);
        let name = |rng: &mut rand::rngs::StdRng| -> String {
            if rng.gen_range(0..4) == 0 {
                // One of the names matched in any case, in a random case.
                let n = CASELESS[rng.gen_range(0..CASELESS.len())];
                return n
                    .chars()
                    .map(|c| match rng.gen_range(0..2) {
                        0 => c.to_ascii_uppercase(),
                        _ => c.to_ascii_lowercase(),
                    })
                    .collect();
            }
            let len = [0, 1, 3, 10, 62, 63, 64, 90][rng.gen_range(0..8)];
            (0..len)
                .map(|_| ['a', 'b', 'X', '-'][rng.gen_range(0..4)])
                .collect()
        };
        let matches = |asked: &str, n: &str| {
            n == asked || (CASELESS.contains(&asked) && n.eq_ignore_ascii_case(asked))
        };
        for _ in 0..5_000 {
            let mut raw = String::new();
            for _ in 0..rng.gen_range(0..6) {
                let n = name(&mut rng).replace('-', "%2D");
                raw.push_str(&format!("{n}={}&", rng.gen_range(0..9)));
            }
            let q = Query::parse(raw.as_bytes());
            for _ in 0..8 {
                let asked = match rng.gen_range(0..3) {
                    0 => CASELESS[rng.gen_range(0..CASELESS.len())].to_string(),
                    _ => name(&mut rng),
                };
                let scanned = q.pairs().find(|(n, _)| matches(&asked, n)).map(|(_, v)| v);
                assert_eq!(q.get(&asked), scanned, "{asked:?} in {raw:?}");
                assert_eq!(q.has(&asked), scanned.is_some(), "{asked:?} in {raw:?}");
            }
            for (n, _) in q.pairs() {
                // (The first of a repeated name answers.)
                let first = q.pairs().find(|(m, _)| matches(n, m)).map(|(_, v)| v);
                assert_eq!(q.get(n), first, "{n:?} in {raw:?}");
                assert!(q.has(n), "{n:?} in {raw:?}");
            }
        }
    }

    /// ListParts' `encoding-type` is the gateway's to answer (`Params::url_key`), never sent;
    /// a listing that defines it sends it.
    #[test]
    fn a_parts_listing_s_encoding_is_answered_not_sent() {
        let q = Query::parse(b"uploadId=u&encoding-type=url&max-parts=2");
        let parts = Params::of(Operation::ListParts, &q);
        assert!(parts.url_key);
        assert_eq!(parts.to_query(), "max-parts=2&uploadId=u");
        let q = Query::parse(b"uploadId=u&encoding-type=URL");
        assert!(!Params::of(Operation::ListParts, &q).url_key);
        let q = Query::parse(b"uploads&encoding-type=url");
        let uploads = Params::of(Operation::ListMultipartUploads, &q);
        assert!(!uploads.url_key);
        assert_eq!(uploads.to_query(), "encoding-type=url&uploads=");
    }

    /// Parsing decodes through the thread's buffer: what it decodes is the parts' own text
    /// whatever the buffer held before, and a long query leaves the thread no larger buffer
    /// than [`crate::kept::LIMIT`].
    #[test]
    fn decoding_goes_through_a_buffer_the_thread_keeps_small() {
        let long = "%41".repeat(20_000);
        let q = Query::parse(format!("a={long}&b=%7E%2Fx&c=%").as_bytes());
        assert_eq!(q.get("a").map(str::len), Some(20_000));
        assert!(q.get("a").unwrap().bytes().all(|b| b == b'A'));
        assert_eq!(q.get("b"), Some("~/x"));
        assert_eq!(q.get("c"), Some("%"));
        assert!(SCRATCH.with_borrow(Vec::capacity) <= crate::kept::LIMIT);
        let q = Query::parse(b"x=%31&y=%32%33");
        assert_eq!((q.get("x"), q.get("y")), (Some("1"), Some("23")));
        assert!(
            SCRATCH.with_borrow(Vec::capacity) > 0,
            "a short query's buffer is kept"
        );
    }

    /// A query's text is lent by the thread while the query lives: the next query finds it
    /// empty, one parsed while another lives gets a text of its own, a clone is its own, and a
    /// long query's text is not kept; more parameters than are kept inline are all read.
    #[test]
    fn a_query_s_text_is_the_thread_s_while_it_lives() {
        let first = Query::parse(b"a=1&b=2");
        let second = Query::parse(b"c=3");
        let copy = first.clone();
        drop(first);
        assert_eq!(copy.pairs().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
        assert_eq!(second.pairs().collect::<Vec<_>>(), [("c", "3")]);
        drop(second);
        assert!(
            TEXT.with_borrow(String::capacity) > 0,
            "a short query's text is kept"
        );
        let third = Query::parse(b"d");
        assert!(
            TEXT.with_borrow(String::capacity) == 0,
            "lent while it lives"
        );
        assert_eq!(third.pairs().collect::<Vec<_>>(), [("d", "")]);
        drop(third);
        let many: Vec<String> = (0..20).map(|i| format!("p{i}={i}")).collect();
        let q = Query::parse(many.join("&").as_bytes());
        assert_eq!(q.pairs().count(), 20);
        assert_eq!(q.get("p19"), Some("19"));
        drop(q);
        drop(Query::parse(format!("a={}", "x".repeat(20_000)).as_bytes()));
        assert!(TEXT.with_borrow(String::capacity) <= crate::kept::LIMIT);
    }

    fn target(bucket: Option<&str>, key: Option<&str>) -> Target {
        Target {
            tenant: "t".into(),
            bucket: bucket.map(Into::into),
            raw_key: key.map(|k| k.as_bytes().into()),
            virtual_host: false,
        }
    }

    fn op(
        m: Method,
        b: Option<&str>,
        k: Option<&str>,
        q: &str,
        copy: bool,
    ) -> Result<Operation, HcpCode> {
        classify(&m, &target(b, k), &Query::parse(q.as_bytes()), copy).map_err(|e| e.code)
    }

    #[test]
    fn a_request_without_a_bucket_is_hcp_s_405_and_the_log_says_how_to_name_one() {
        let err =
            classify(&Method::PUT, &target(None, None), &Query::parse(b""), false).unwrap_err();
        assert_eq!((err.status, err.code), (405, HcpCode::MethodNotAllowed));
        // The client gets HCP's message; the operator's log says how to name a bucket.
        assert!(!err.message.contains("addressing"), "{}", err.message);
        let cause = err.cause.unwrap_or_default();
        assert!(cause.contains("addressing.domains"), "{cause}");
    }

    #[test]
    fn classifies_the_s3_surface() {
        use Operation::*;
        assert_eq!(op(Method::GET, None, None, "", false), Ok(ListBuckets));
        assert_eq!(
            op(Method::PUT, Some("b"), None, "", false),
            Ok(CreateBucket)
        );
        assert_eq!(
            op(Method::GET, Some("b"), None, "list-type=2&prefix=a", false),
            Ok(ListObjectsV2)
        );
        assert_eq!(
            op(Method::GET, Some("b"), None, "prefix=a", false),
            Ok(ListObjects)
        );
        assert_eq!(
            op(Method::GET, Some("b"), None, "uploads", false),
            Ok(ListMultipartUploads)
        );
        assert_eq!(
            op(Method::POST, Some("b"), None, "delete", false),
            Ok(DeleteObjects)
        );
        assert_eq!(
            op(Method::GET, Some("b"), None, "cors", false),
            Ok(BucketSubresource)
        );
        assert_eq!(
            op(Method::PUT, Some("b"), Some("k"), "", false),
            Ok(PutObject)
        );
        assert_eq!(
            op(Method::PUT, Some("b"), Some("k"), "", true),
            Ok(CopyObject)
        );
        assert_eq!(
            op(
                Method::PUT,
                Some("b"),
                Some("k"),
                "partNumber=1&uploadId=u",
                false
            ),
            Ok(UploadPart)
        );
        assert_eq!(
            op(
                Method::PUT,
                Some("b"),
                Some("k"),
                "partNumber=1&uploadId=u",
                true
            ),
            Ok(UploadPartCopy)
        );
        assert_eq!(
            op(Method::POST, Some("b"), Some("k"), "uploads", false),
            Ok(CreateMultipartUpload)
        );
        assert_eq!(
            op(Method::POST, Some("b"), Some("k"), "uploadId=u", false),
            Ok(CompleteMultipartUpload)
        );
        assert_eq!(
            op(Method::DELETE, Some("b"), Some("k"), "uploadId=u", false),
            Ok(AbortMultipartUpload)
        );
        assert_eq!(
            op(Method::GET, Some("b"), Some("k"), "uploadId=u", false),
            Ok(ListParts)
        );
        assert_eq!(
            op(Method::GET, Some("b"), Some("k"), "acl", false),
            Ok(GetObjectAcl)
        );
    }

    /// HCP's manual: the acl, versioning, versions, versionId, uploadId and partNumber
    /// parameters are not case sensitive (the listings' are); the backend is asked with S3's
    /// names, whatever case the client wrote.
    #[test]
    fn parameters_hcp_reads_in_any_case() {
        use Operation::*;
        let b = Some("b");
        let k = Some("k");
        for (m, key, q, expected) in [
            (Method::PUT, k, "ACL", PutObjectAcl),
            (Method::GET, b.and(None), "Acl", GetBucketAcl),
            (Method::PUT, None, "VERSIONING", PutBucketVersioning),
            (Method::GET, None, "Versions", ListObjectVersions),
            (Method::PUT, k, "uploadid=u&PARTNUMBER=2", UploadPart),
            (Method::DELETE, k, "UploadId=u", AbortMultipartUpload),
        ] {
            assert_eq!(op(m.clone(), b, key, q, false), Ok(expected), "{q}");
            let params = Params::of(expected, &Query::parse(q.as_bytes()));
            let names: Vec<&str> = params.names().collect();
            assert!(names.iter().all(|n| CASELESS.contains(n)), "{q}: {names:?}");
        }
        let q = Query::parse(b"VersionID=v1&Prefix=p");
        assert_eq!(q.get("versionId"), Some("v1"));
        assert_eq!(
            q.get("prefix"),
            None,
            "listing parameters are case sensitive"
        );
        let source = crate::request::sign::CopySource::parse(b"/b/k?versionid=v2").unwrap();
        assert_eq!(source.version_id.as_deref(), Some("v2"));
    }

    #[test]
    fn methods_not_valid_for_the_target() {
        assert_eq!(
            op(Method::DELETE, None, None, "", false),
            Err(HcpCode::MethodNotAllowed)
        );
        assert_eq!(
            op(Method::POST, Some("b"), None, "", false),
            Ok(Operation::PostObject)
        );
        assert_eq!(
            op(Method::PATCH, Some("b"), Some("k"), "", false),
            Err(HcpCode::MethodNotAllowed)
        );
    }
}
