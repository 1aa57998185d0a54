//! Configuration in two layers: [`file`] mirrors `config.toml` (serde structs that reject
//! unknown keys, read by `structure`, which reports every structural problem, not just the
//! first); [`Config::from_file`] (in `validate.rs`, behind [`Config::load`] and
//! [`Config::parse`]) checks it into the runtime layer ([`runtime`]: `Config`, tenants,
//! backends, users), collecting every problem so that `--check-config` can report them all at
//! once.

pub mod binding;
pub mod file;
pub mod reload;
pub mod runtime;
mod structure;
mod validate;

pub use file::*;
pub use runtime::*;
pub use validate::files_read_by_refused;

#[cfg(test)]
mod tests;
