//! The closed choices of the command lines, as `clap` value enums: clap refuses anything else
//! with the list of what is possible, and each maps onto the library's type with no fallback.

use clap::ValueEnum;
use rafs_format::model::{Compressor, Digester, FsVersion, WhiteoutSpec};

/// `--compressor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressorArg {
    /// Chunks stored as they are.
    None,
    /// LZ4 block format.
    #[value(name = "lz4_block")]
    Lz4Block,
    /// zstd, level 3.
    Zstd,
}

impl From<CompressorArg> for Compressor {
    fn from(c: CompressorArg) -> Self {
        match c {
            CompressorArg::None => Compressor::None,
            CompressorArg::Lz4Block => Compressor::Lz4Block,
            CompressorArg::Zstd => Compressor::Zstd,
        }
    }
}

/// `--digester`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DigesterArg {
    /// BLAKE3.
    Blake3,
    /// SHA-256.
    Sha256,
}

impl From<DigesterArg> for Digester {
    fn from(d: DigesterArg) -> Self {
        match d {
            DigesterArg::Blake3 => Digester::Blake3,
            DigesterArg::Sha256 => Digester::Sha256,
        }
    }
}

/// `--fs-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FsVersionArg {
    /// RAFS v5.
    #[value(name = "5")]
    V5,
    /// RAFS v6 (EROFS).
    #[value(name = "6")]
    V6,
}

impl From<FsVersionArg> for FsVersion {
    fn from(v: FsVersionArg) -> Self {
        match v {
            FsVersionArg::V5 => FsVersion::V5,
            FsVersionArg::V6 => FsVersion::V6,
        }
    }
}

/// `--whiteout-spec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WhiteoutArg {
    /// `.wh.` files and `.wh..wh..opq` (OCI).
    Oci,
    /// 0/0 character devices and `trusted.overlay.opaque`.
    Overlayfs,
    /// Whiteouts are ordinary entries.
    None,
}

impl From<WhiteoutArg> for WhiteoutSpec {
    fn from(w: WhiteoutArg) -> Self {
        match w {
            WhiteoutArg::Oci => WhiteoutSpec::Oci,
            WhiteoutArg::Overlayfs => WhiteoutSpec::Overlayfs,
            WhiteoutArg::None => WhiteoutSpec::None,
        }
    }
}
