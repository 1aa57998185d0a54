//! Backends as the request path reaches them: pooled connections and body streaming
//! ([`upstream`]), credentials ([`credentials`]), reachability for `/readyz` ([`health`]), and the
//! embedded store ([`local`]).

pub mod aws_chunked;
pub mod credentials;
pub mod head;
pub mod health;
pub mod local;
pub mod session;
pub mod store;
pub mod upstream;
