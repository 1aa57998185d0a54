//! HCP's vocabulary: its error codes and documents ([`errors`]), the tables that map backend
//! codes to them ([`mapping`]), its retention values ([`retention`]) and labeled holds
//! ([`labels`]), and the XML helpers every parser shares ([`xml`]).

pub mod errors;
pub mod labels;
pub mod mapping;
pub mod retention;
pub mod xml;
