//! The RAFS v6 codec (placeholder while v5 is checked).
use crate::{Image, Limits, Result};
/// Decodes a v6 bootstrap with default limits.
pub fn decode(data: &[u8]) -> Result<Image> {
    decode_with_limits(data, &Limits::default())
}
/// Decodes a v6 bootstrap.
pub fn decode_with_limits(_data: &[u8], _limits: &Limits) -> Result<Image> {
    Err(crate::Error::encode("v6", "todo"))
}
/// Encodes v6.
pub fn encode(_image: &Image) -> Result<Vec<u8>> {
    Err(crate::Error::encode("v6", "todo"))
}
