//! The gateway's own store, the embedded default (`engine = "store"`; issue "The embedded
//! default is a real S3 store"):
//! [`listing`], S3's listing rules over keys in byte order, property-tested against a model;
//! [`objects`], bodies as files named by random ids and metadata in redb, written atomically and
//! cleaned after a crash, with multipart uploads and versions; [`acl`], the grants buckets and
//! versions keep; [`cors`], a bucket's CORS rules and the preflight answer; [`lock`], S3 Object
//! Lock's rules; [`s3`], its S3 face through s3s.

pub mod acl;
pub mod cors;
pub mod listing;
pub mod lock;
pub mod objects;
pub mod s3;

/// How keys longer than s3s takes in a path (1,024 bytes) reach the store: the path names
/// `PLACEHOLDER` and the key itself travels percent-encoded in `KEY_HEADER` (a copy's source
/// key in `COPY_SOURCE_KEY_HEADER`, its `x-amz-copy-source` naming the placeholder). The
/// headers are signed with the rest (`x-amz-*`); no client's copy of them reaches the store,
/// because no operation defines them (`request::sign::defines_header`). The placeholder, one
/// NUL, is a key the store refuses on every write, read, change and delete
/// (`objects::check_key`): a handler that forgot to read the header fails with 400 rather than
/// act on it.
pub mod wire {
    /// The longest key sent in the path, s3s's limit.
    pub const PATH_KEY_LIMIT: usize = 1024;
    pub const KEY_HEADER: &str = "x-amz-gateway-key";
    pub const COPY_SOURCE_KEY_HEADER: &str = "x-amz-gateway-copy-source-key";
    /// A multipart upload's object type where it is `multipart/form-data`: s3s reads any POST
    /// of that Content-Type as a browser form (its own signature check, PostObject) — sent
    /// under this name instead, signed with the rest, restored by the store.
    pub const CONTENT_TYPE_HEADER: &str = "x-amz-gateway-content-type";
    pub const PLACEHOLDER: &str = "\0";
}
