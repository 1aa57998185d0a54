//! Classification: every request is turned once into an [`Operation`]; later phases decide by it,
//! never by re-reading method, path or query.

use http::Method;
use percent_encoding::percent_decode;

use crate::addressing::Target;
use crate::errors::{HcpCode, HcpError};

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
    /// Any other object sub-resource (tagging, retention, …), forwarded as it is.
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

    /// Whether the request carries an object body from the client.
    pub fn has_object_body(self) -> bool {
        matches!(self, Operation::PutObject | Operation::UploadPart)
    }
}

/// The decoded query parameters of a request, in order.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: &[u8]) -> Query {
        let pairs = raw
            .split(|&b| b == b'&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (n, v) = match p.iter().position(|&b| b == b'=') {
                    Some(i) => (&p[..i], &p[i + 1..]),
                    None => (p, &b""[..]),
                };
                (
                    percent_decode(n).decode_utf8_lossy().into_owned(),
                    percent_decode(v).decode_utf8_lossy().into_owned(),
                )
            })
            .collect();
        Query { pairs }
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A raw query with every value of parameter `name` replaced by `value` (percent-encoded as
/// SigV4 encodes it); every other byte of the query stays as the client sent it.
pub fn replace_param(raw: &[u8], name: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + value.len());
    for (i, p) in raw.split(|&b| b == b'&').enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        let raw_name = p.split(|&b| b == b'=').next().unwrap_or_default();
        if percent_decode(raw_name).decode_utf8_lossy() == name {
            let mut encoded = String::with_capacity(value.len() + 8);
            crate::sigv4::uri_encode(value.as_bytes(), false, &mut encoded);
            out.extend_from_slice(raw_name);
            out.push(b'=');
            out.extend_from_slice(encoded.as_bytes());
        } else {
            out.extend_from_slice(p);
        }
    }
    out
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
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "tagging",
    "website",
];
const OBJECT_SUBRESOURCES: &[&str] = &[
    "attributes",
    "legal-hold",
    "restore",
    "retention",
    "select",
    "tagging",
    "torrent",
];

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
    use Operation::*;
    let m = method;
    let Some(_bucket) = &target.bucket else {
        return match *m {
            Method::GET => Ok(ListBuckets),
            _ => Err(not_allowed()),
        };
    };
    if target.raw_key.is_none() {
        if BUCKET_SUBRESOURCES.iter().any(|s| query.has(s)) {
            return Ok(BucketSubresource);
        }
        return match *m {
            Method::GET if query.has("acl") => Ok(GetBucketAcl),
            Method::PUT if query.has("acl") => Ok(PutBucketAcl),
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
            Method::OPTIONS => Ok(CorsPreflight),
            _ => Err(not_allowed()),
        };
    }
    if OBJECT_SUBRESOURCES.iter().any(|s| query.has(s)) {
        return Ok(ObjectSubresource);
    }
    let upload = query.has("uploadId");
    match *m {
        Method::GET if query.has("acl") => Ok(GetObjectAcl),
        Method::PUT if query.has("acl") => Ok(PutObjectAcl),
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
        Method::OPTIONS => Ok(CorsPreflight),
        _ => Err(not_allowed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_a_parameter_keeps_the_rest_of_the_query_as_sent() {
        assert_eq!(
            replace_param(
                b"partNumber=2&uploadId=1.abc.def.x&x-id=UploadPart",
                "uploadId",
                "2~a/b+c"
            ),
            b"partNumber=2&uploadId=2~a%2Fb%2Bc&x-id=UploadPart".to_vec()
        );
        assert_eq!(
            replace_param(b"upload%49d=old&a=%2f", "uploadId", "n"),
            b"upload%49d=n&a=%2f".to_vec()
        );
        assert_eq!(replace_param(b"a=1", "uploadId", "n"), b"a=1".to_vec());
    }

    fn target(bucket: Option<&str>, key: Option<&str>) -> Target {
        Target {
            tenant: "t".into(),
            bucket: bucket.map(Into::into),
            raw_key: key.map(|k| k.as_bytes().to_vec()),
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
