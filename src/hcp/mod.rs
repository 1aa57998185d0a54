//! HCP's vocabulary: its error codes and documents ([`errors`]), the tables that map backend
//! codes to them ([`mapping`]), its retention values ([`retention`]), and the XML helpers every
//! parser shares ([`xml`]).

pub mod errors;
pub mod mapping;
pub mod retention;
pub mod xml;
