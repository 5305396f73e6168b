//! The RAFS v5 codec: [`decode`] a v5 bootstrap into the model, [`encode`] the model as the
//! reference lays v5 out (`docs/format/rafs-v5.md`).

mod decode;
mod encode;

pub use decode::{decode, decode_with_limits};
pub use encode::encode;
