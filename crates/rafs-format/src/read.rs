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
        // Both within `data.len()`, a usize.
        Some(end) if end <= total => {
            Ok(&data[crate::common::index(offset)..crate::common::index(end)])
        }
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

/// A structure at a known offset of the input. Errors raised through it carry the exact offset
/// of the field at fault, taken with [`core::mem::offset_of!`] by the [`invalid!`] macro, so no
/// offset is typed by hand.
#[derive(Clone, Copy, Debug)]
pub(crate) struct At {
    /// The structure's name in errors, e.g. `"v6 superblock"`.
    pub structure: &'static str,
    /// Its offset in the input.
    pub base: u64,
}

impl At {
    /// The structure `structure` at `base`.
    pub(crate) const fn new(structure: &'static str, base: u64) -> Self {
        Self { structure, base }
    }

    /// An error of `kind` at `rel` bytes into the structure.
    pub(crate) fn err(&self, rel: usize, kind: DecodeErrorKind) -> crate::Error {
        derr(self.structure, self.base.saturating_add(rel as u64), kind)
    }

    /// An `InvalidField` error for the field at `rel`.
    pub(crate) fn invalid(
        &self,
        rel: usize,
        field: &'static str,
        value: u64,
        reason: &'static str,
    ) -> crate::Error {
        self.err(
            rel,
            DecodeErrorKind::InvalidField {
                field,
                value,
                reason,
            },
        )
    }
}

/// `invalid!(at, RawStruct, field, value, reason)`: an `InvalidField` error naming `field` at
/// its offset in `RawStruct`, the structure `at` points to.
macro_rules! invalid {
    ($at:expr, $ty:ty, $field:ident, $value:expr, $reason:expr) => {
        $at.invalid(
            core::mem::offset_of!($ty, $field),
            stringify!($field),
            u64::from($value),
            $reason,
        )
    };
}
pub(crate) use invalid;

/// `offset_in!(RawStruct, field)`: the field's offset as the `usize` [`At::err`] takes.
macro_rules! offset_in {
    ($ty:ty, $field:ident) => {
        core::mem::offset_of!($ty, $field)
    };
}
pub(crate) use offset_in;
