//! The one place this crate calls zlib's C-style API (through `libz-rs-sys`, zlib-rs's zlib
//! interface): random access into a gzip stream needs what no safe inflate API offers —
//! stopping at every deflate block boundary (`Z_BLOCK`), the bit position there
//! (`data_type`), the 32 KiB window (`inflateGetDictionary`), and starting a raw inflate in
//! the middle of a byte (`inflatePrime`) with a saved window (`inflateSetDictionary`).
//!
//! zlib-rs is a port of zlib-ng, the zlib the reference links on x86-64, so the points where
//! inflate stops and the input it has consumed there — which end up in the blob meta — are
//! the reference's.
//!
//! Every call goes through [`ZStream`], which owns a boxed `z_stream` (zlib keeps a pointer back
//! to it, so it must not move), points it at borrowed buffers only for the duration of one call
//! and clears the pointers afterwards.

#![allow(unsafe_code)]

use libz_rs_sys::{
    inflate, inflateEnd, inflateGetDictionary, inflateInit2_, inflatePrime, inflateReset,
    inflateReset2, inflateSetDictionary, z_stream, zlibVersion, Z_OK,
};

/// Size of the inflate window, and so of a saved dictionary.
pub const WINDOW: usize = 1 << 15;

/// `inflate` flush mode: stop at the next block boundary.
pub const BLOCK: i32 = libz_rs_sys::Z_BLOCK;
/// `inflate` flush mode: as far as input and output allow.
pub const NO_FLUSH: i32 = libz_rs_sys::Z_NO_FLUSH;
pub use libz_rs_sys::{Z_BUF_ERROR, Z_OK as OK, Z_STREAM_END};

/// What one `inflate` call did.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// zlib's return code.
    pub ret: i32,
    /// Input bytes consumed.
    pub consumed: usize,
    /// Output bytes produced.
    pub produced: usize,
    /// zlib's `data_type` after the call: unused bits of the last input byte (low 3 bits),
    /// 64 while in the last block, 128 right after a block boundary or a header.
    pub data_type: i32,
}

/// A zlib inflate stream.
pub struct ZStream {
    strm: Box<z_stream>,
}

/// `windowBits` for a gzip stream (header and trailer checked).
pub const GZIP: i32 = 31;
/// `windowBits` for raw deflate.
pub const RAW: i32 = -15;

impl ZStream {
    /// A stream decoding gzip ([`GZIP`]) or raw deflate ([`RAW`]).
    pub fn new(window_bits: i32) -> Option<ZStream> {
        let mut strm = Box::new(z_stream::default());
        let size = i32::try_from(std::mem::size_of::<z_stream>()).ok()?;
        // SAFETY: `strm` is a valid, default-initialised z_stream (allocator fields set by
        // `Default`), boxed so its address stays fixed; the version string is zlib-rs's own.
        let ret = unsafe { inflateInit2_(&mut *strm, window_bits, zlibVersion(), size) };
        (ret == Z_OK).then_some(ZStream { strm })
    }

    /// Inflates from `input` into `output` with `flush` ([`BLOCK`] or [`NO_FLUSH`]).
    pub fn inflate(&mut self, input: &[u8], output: &mut [u8], flush: i32) -> Step {
        let avail_in = u32::try_from(input.len()).unwrap_or(u32::MAX);
        let avail_out = u32::try_from(output.len()).unwrap_or(u32::MAX);
        self.strm.next_in = input.as_ptr();
        self.strm.avail_in = avail_in;
        self.strm.next_out = output.as_mut_ptr();
        self.strm.avail_out = avail_out;
        // SAFETY: the stream was initialised by `new`; next_in/avail_in describe `input` and
        // next_out/avail_out describe `output`, both borrowed for this call only; zlib writes
        // at most `avail_out` bytes and reads at most `avail_in`.
        let ret = unsafe { inflate(&mut *self.strm, flush) };
        let step = Step {
            ret,
            consumed: (avail_in - self.strm.avail_in) as usize,
            produced: (avail_out - self.strm.avail_out) as usize,
            data_type: self.strm.data_type,
        };
        self.clear_buffers();
        step
    }

    fn clear_buffers(&mut self) {
        self.strm.next_in = std::ptr::null();
        self.strm.avail_in = 0;
        self.strm.next_out = std::ptr::null_mut();
        self.strm.avail_out = 0;
    }

    /// Starts over on a new stream of the same kind (zlib's `inflateReset`).
    pub fn reset(&mut self) -> bool {
        // SAFETY: the stream was initialised by `new`.
        unsafe { inflateReset(&mut *self.strm) == Z_OK }
    }

    /// Starts over on a new stream of kind `window_bits` (zlib's `inflateReset2`).
    pub fn reset_as(&mut self, window_bits: i32) -> bool {
        // SAFETY: the stream was initialised by `new`.
        unsafe { inflateReset2(&mut *self.strm, window_bits) == Z_OK }
    }

    /// Feeds `bits` (at most 16) low bits of `value` before the next input (`inflatePrime`).
    pub fn prime(&mut self, bits: u8, value: u8) -> bool {
        // SAFETY: the stream was initialised by `new`; the call only touches its bit buffer.
        unsafe { inflatePrime(&mut *self.strm, i32::from(bits), i32::from(value)) == Z_OK }
    }

    /// Sets the window a raw stream starts with (`inflateSetDictionary`).
    pub fn set_dictionary(&mut self, dict: &[u8]) -> bool {
        let Ok(len) = u32::try_from(dict.len()) else {
            return false;
        };
        // SAFETY: the stream was initialised by `new`; `dict` is readable for `len` bytes and
        // zlib copies it before returning.
        unsafe { inflateSetDictionary(&mut *self.strm, dict.as_ptr(), len) == Z_OK }
    }

    /// The current window (up to 32 KiB of the latest output), into `out`.
    pub fn dictionary(&self, out: &mut Vec<u8>) -> bool {
        out.clear();
        out.resize(WINDOW, 0);
        let mut len: u32 = 0;
        // SAFETY: the stream was initialised by `new`; `out` is writable for WINDOW bytes,
        // which is the most a window holds (zlib's documented bound); `len` is a valid u32.
        let ret = unsafe { inflateGetDictionary(&*self.strm, out.as_mut_ptr(), &mut len) };
        out.truncate((len as usize).min(WINDOW));
        ret == Z_OK
    }
}

impl Drop for ZStream {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised by `new` and is ended once, here.
        unsafe {
            inflateEnd(&mut *self.strm);
        }
    }
}
