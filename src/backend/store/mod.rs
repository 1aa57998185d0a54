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
