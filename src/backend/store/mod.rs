//! The embedded store's own parts, beside the s3s-fs server they are to replace (issue "The
//! embedded default is a real S3 store"; not yet serving requests): [`listing`], S3's listing
//! rules over keys in byte order, property-tested against a model; [`objects`], bodies as files
//! named by random ids and metadata in redb, written atomically and cleaned after a crash, with
//! multipart uploads (parts staged as bodies of their own, joined at the complete).

pub mod listing;
pub mod objects;
