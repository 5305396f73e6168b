//! # rafs-tar-build
//!
//! Owns the conversion of one OCI layer — a tar stream, plain, gzip or zstd — into a RAFS
//! image: the bootstrap (v5 or v6, encoded by `rafs-format`) and the data blob (written by
//! `rafs-chunker`), or a tarfs bootstrap whose files point into the tar itself. One pass,
//! front to back, never seeking and never holding a whole file: chunks go to the blob writer
//! as they stream by, while the tree is built alongside.
//!
//! It follows `nydus-image create --type tar-rafs|tar-tarfs` byte for byte where the
//! reference is right, and departs from it where it is wrong: entries whose parents the tar
//! leaves out land under those parents, PAX mtimes (with fractions), PAX global headers,
//! sparse files, hard links to symlinks and devices, and FIFOs with empty device fields are
//! honoured, `..` is a typed error rather than a panic, and xattrs have a fixed order.
//!
//! A directory (an unpacked root file system) converts too: [`dir_source::directory_layer`]
//! streams it as a tar in the order and with the attributes the reference's `dir-rafs` build
//! reads it, so [`build_layer`] gives that build's bytes (with `directory_source` set).
//!
//! It does **not** own the formats (`rafs-format`), blob layout (`rafs-chunker`), merging
//! (`rafs-merge`, which it calls to apply a layer onto `--parent-bootstrap`), unpacking, or
//! files and terminals (the CLI): [`build_layer`] reads from any
//! `Read` and writes the blob to any `Write`, so a program converts a layer in memory.
//!
//! ```
//! use rafs_tar_build::{build_layer, BuildOptions};
//! use rafs_format::model::FsVersion;
//!
//! // A one-file layer, made in memory.
//! let mut tar = tar::Builder::new(Vec::new());
//! let mut h = tar::Header::new_ustar();
//! h.set_path("hello.txt").unwrap();
//! h.set_size(6);
//! h.set_mode(0o644);
//! h.set_cksum();
//! tar.append(&h, &b"hello\n"[..]).unwrap();
//! let layer = tar.into_inner().unwrap();
//!
//! let out = build_layer(layer.as_slice(), &BuildOptions::new(FsVersion::V6), Vec::new()).unwrap();
//! assert_eq!(out.report.files, 1);
//! assert_eq!(out.sink.len() as u64, out.report.blob_size);
//! let image = rafs_format::decode(&out.bootstrap).unwrap();
//! assert_eq!(image.blobs[0].blob_id, out.report.blob_id.unwrap());
//! ```
//!
//! Section references such as `rafs-v6.md §9`, `blob.md` or `build.md` are to the format
//! documents in the repository's `docs/format/`.
//!
//! Dependencies: `tar` parses single headers (fields, numbers, the ustar prefix) as the
//! reference's parser does; the stream around them (long names, PAX records read by their
//! length prefix, old-GNU sparse maps) is read here; `flate2` (on its `zlib-rs` backend, pure Rust and about an eighth faster end to end
//! on a gzip'ed layer than its default `miniz_oxide`) and `zstd` decompress the layer; `base64` decodes
//! `LIBARCHIVE.xattr.*` values; `sha2` hashes the tar for a tarfs blob id; `rafs-merge` applies a layer onto its
//! parent bootstrap (the same overlay rules as a merge); `thiserror` derives the errors;
//! `rustix` (with the `unix` feature) lists and reads a directory source's xattrs without
//! unsafe code, and `tar` writes that source's stream.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod build;
#[cfg(feature = "unix")]
pub mod dir_source;
mod entry;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
mod input;
pub mod layer_entries;
mod limits;
mod meaning;
pub mod options;
mod reader;
mod sparse;
mod tree;

pub use build::{
    build_layer, build_layer_with_progress, build_tarfs_layer, BuildOutput, BuildReport, Progress,
};
pub use error::{EntryError, EntryErrorKind, Error, OptionsError, Result, TarErrorKind};
pub use limits::BuildLimits;
pub use options::{BuildOptions, ConversionType, WhiteoutSpec};
/// The model types a caller names when building (re-exported so one dependency suffices).
pub use rafs_format::model::{Compressor, Digester, FsVersion};

/// A layer stream decompressed as the builder reads it: gzip, zstd or a plain tar, told apart
/// by its first bytes. For callers that read a source layer themselves (image checks).
pub fn decompress_layer<'a, R: std::io::Read + 'a>(
    input: R,
) -> std::io::Result<Box<dyn std::io::Read + 'a>> {
    input::open(input).map(|(reader, _)| reader)
}
