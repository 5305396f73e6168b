//! v6 encoding as plan then write: [`plan`] decides every place with the reference's
//! allocator ([`alloc`], rafs-v6.md §9), directory packing ([`dirent`], §10) and chunk table
//! ([`chunks`], §12), refusing what v6 cannot address; [`encode_planned`] writes the bytes
//! (xattrs §11). [`encode_with_plan`] returns the [`Plan`] with the bytes, so that export
//! finds blobs' device slots without re-reading the bootstrap.

mod alloc;
mod chunks;
mod dirent;
mod plan;
mod write;

pub use plan::{plan, DeviceSpan, Plan};
use write::encode_planned;

use crate::error::Result;
use crate::model::Image;

/// Encodes the model as a v6 bootstrap.
pub fn encode(image: &Image) -> Result<Vec<u8>> {
    encode_planned(image, &plan(image)?)
}

/// Encodes the model as a v6 bootstrap and returns the plan it was written by.
pub fn encode_with_plan(image: &Image) -> Result<(Vec<u8>, Plan)> {
    let plan = plan(image)?;
    Ok((encode_planned(image, &plan)?, plan))
}
