//! The embedded store's own parts, beside the s3s-fs server it is to replace (issue "The
//! embedded default is a real S3 store"): [`listing`], S3's listing rules over keys in byte
//! order, property-tested against a model.

pub mod listing;
