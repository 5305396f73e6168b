//! # rafs-chunker
//!
//! Owns the data half of RAFS: cutting files into chunks, their digests (blake3 or sha256) and
//! CRC-32C, compression (`none`, `lz4_block`, `zstd`) with the reference's store-raw rule,
//! deduplication within a blob and against a chunk dictionary, encryption (`--encrypt`), and the data blob's layout as
//! `nydus-image create` writes it — chunk data, blob meta (chunk-info array and its 4096-byte
//! header), chunk digest array, inlined bootstrap, ToC, and the tar headers of a packed
//! ("nydus") layer blob; for gzip layers converted by reference (zran), the inflate contexts
//! that let a reader start in the middle of the layer. It reads every part back, from a byte slice, a memory map, a file or
//! any `Read + Seek`, validating as it goes.
//!
//! It does **not** own bootstraps (`rafs-format` encodes and decodes those; this crate only
//! carries an inlined bootstrap's bytes), tar parsing (`rafs-tar-build`) or merging
//! (`rafs-merge`). It never prints and never exits.
//!
//! ```
//! use rafs_chunker::{BlobOptions, BlobReader, BlobWriter, Verify};
//! use rafs_format::model::FsVersion;
//!
//! let mut w = BlobWriter::new(Vec::new(), BlobOptions::new(FsVersion::V6)).unwrap();
//! let hello = w.add_bytes(b"hello\n").unwrap();
//! let blob = w.finish_data().unwrap().finish(None).unwrap();
//! // blob.md §12.1: 6 bytes of data, a 16-byte chunk-info array, the 4096-byte header.
//! assert_eq!(blob.size, 6 + 16 + 4096);
//! let chunk = blob.files[hello.0 as usize][0];
//!
//! let reader = BlobReader::open(blob.sink.as_slice()).unwrap();
//! let verify = Verify { digest: Some(blob.blob.digester), crc32: true };
//! let data = reader.read_chunk(&chunk, blob.blob.compressor, verify).unwrap();
//! assert_eq!(data, b"hello\n");
//! ```
//!
//! Section references such as `rafs-v6.md §9`, `blob.md` or `build.md` are to the format
//! documents in the repository's `docs/format/`.
//!
//! Dependencies: `zstd` (libzstd, pinned through `zstd-sys` to 1.5.6, the reference's
//! version, so compressed bytes and blob ids match), `lz4` (liblz4, pinned to 1.10.0, the
//! reference's, for the same reason) and `lz4_flex` (a safe LZ4 block decoder) compress and
//! decompress; `crc32c` computes chunk CRCs; `sha2` and `blake3` compute digests
//! and blob ids; `crossbeam-channel` carries chunks between pipeline threads; `hashbrown`'s
//! `HashTable` finds stored chunks by digest while holding only a chunk index per entry (the
//! digests stay in the records); `tar` writes and
//! parses the section headers exactly as tar-rs does in the reference; `zerocopy` reads and
//! writes the little-endian records without `unsafe`; `memmap2` lets a blob be read from a
//! map; `rustix` opens blob files inside a blob directory without following links out of it
//! (`openat2` with `RESOLVE_BENEATH`) and without blocking on a FIFO, and writes a blob unnamed
//! (`O_TMPFILE`) until it is linked into its directory under its id; `thiserror` derives the
//! errors. `aes` and `xts-mode` (RustCrypto, pure Rust) give AES-128-XTS for `--encrypt`, the
//! cipher the reference takes from OpenSSL (tests read the reference's encrypted blobs to show
//! the two agree), and `getrandom` draws each blob's key and IV from the system. `libz-rs-sys` (zlib-rs, pure Rust, behind zlib's C-style API) inflates gzip layers
//! for zran (`targz-ref`): random access needs inflate to stop at every deflate block boundary
//! and report the bit position there, hand out its 32 KiB window, and start again mid-byte with
//! a saved window — `Z_BLOCK`, `data_type`, `inflateGetDictionary`, `inflatePrime` and
//! `inflateSetDictionary`, which no safe Rust inflate API (flate2, miniz_oxide) exposes.
//! zlib-rs is a port of zlib-ng, the zlib the reference links, so inflate stops where the
//! reference's does and the recorded offsets match byte for byte. Those calls are this
//! crate's only `unsafe`, confined to `zran/zstream.rs`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cipher;
pub mod compress;
mod data_only;
pub mod dict;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod meta;
pub mod ondisk;
pub mod reader;
pub mod source;
pub mod staged;
mod sys;
pub mod toc;
pub mod writer;
pub mod zran;

pub use cipher::BlobCipher;
pub use dict::ChunkDict;
pub use error::{BlobError, BlobErrorKind, Error, Result};
pub use reader::{BlobReader, ReaderLimits, Verify};
pub use source::{open_file_beneath, FileSource, ReadAt, SeekSource};
pub use staged::StagedFile;
pub use writer::{
    BlobData, BlobOptions, BlobTableEntry, BlobWriter, ChunkSpans, FileId, FinishedBlob,
};
