//! Bounds-checked reading of records from the input.

use crate::error::{derr, DecodeErrorKind, Result};
use zerocopy::FromBytes;

/// Reads a `T` at `offset`, or a `Truncated` error naming `structure`.
pub(crate) fn record<T: FromBytes + zerocopy::KnownLayout + zerocopy::Immutable>(
    data: &[u8],
    offset: u64,
    structure: &'static str,
) -> Result<T> {
    let size = core::mem::size_of::<T>();
    let bytes = slice(data, offset, size as u64, structure)?;
    T::read_from_bytes(bytes).map_err(|_| {
        derr(
            structure,
            offset,
            DecodeErrorKind::Truncated {
                need: size as u64,
                available: bytes.len() as u64,
            },
        )
    })
}

/// `data[offset..offset+len]`, or a `Truncated` error naming `structure`.
pub(crate) fn slice<'a>(
    data: &'a [u8],
    offset: u64,
    len: u64,
    structure: &'static str,
) -> Result<&'a [u8]> {
    let total = data.len() as u64;
    let end = offset.checked_add(len);
    match end {
        Some(end) if end <= total => Ok(&data[offset as usize..end as usize]),
        _ => Err(derr(
            structure,
            offset,
            DecodeErrorKind::Truncated {
                need: len,
                available: total.saturating_sub(offset),
            },
        )),
    }
}

/// Checks an entry name: not empty, not `.`/`..`, no `/` or NUL, not longer than `max`.
pub(crate) fn check_name(name: &[u8], max: usize) -> std::result::Result<(), DecodeErrorKind> {
    let bad = |reason| {
        Err(DecodeErrorKind::InvalidName {
            name: String::from_utf8_lossy(name).into_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name == b"." || name == b".." {
        return bad("is . or ..");
    }
    if name.contains(&b'/') {
        return bad("contains '/'");
    }
    if name.contains(&0) {
        return bad("contains NUL");
    }
    if name.len() > max {
        return Err(DecodeErrorKind::LimitExceeded {
            limit: "max_name_len",
            value: name.len() as u64,
            max: max as u64,
        });
    }
    Ok(())
}
