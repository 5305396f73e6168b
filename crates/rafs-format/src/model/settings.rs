//! Image-wide settings: version, compressor, digester, whiteout spec, the superblock.

use super::*;

/// RAFS format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FsVersion {
    /// RAFS v5 (FUSE only).
    V5,
    /// RAFS v6 (an EROFS image).
    V6,
}

impl FsVersion {
    /// `5` or `6`.
    pub fn number(self) -> u8 {
        match self {
            FsVersion::V5 => 5,
            FsVersion::V6 => 6,
        }
    }
}

/// Chunk compression algorithm; the discriminant is the v6 on-disk value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compressor {
    /// Stored as is.
    None = 0,
    /// Raw LZ4 blocks.
    Lz4Block = 1,
    /// gzip (stargz and zran images).
    Gzip = 2,
    /// zstd frames.
    Zstd = 3,
}

impl Compressor {
    /// The v6 on-disk value.
    pub fn to_u32(self) -> u32 {
        self as u32
    }

    /// Parses the v6 on-disk value.
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Compressor::None,
            1 => Compressor::Lz4Block,
            2 => Compressor::Gzip,
            3 => Compressor::Zstd,
            _ => return None,
        })
    }

    /// The name `nydus-image` uses.
    pub fn name(self) -> &'static str {
        match self {
            Compressor::None => "none",
            Compressor::Lz4Block => "lz4_block",
            Compressor::Gzip => "gzip",
            Compressor::Zstd => "zstd",
        }
    }
}

/// Digest algorithm of chunks (and of v5 inodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Digester {
    /// BLAKE3-256 (the reference's default).
    Blake3 = 0,
    /// SHA-256.
    Sha256 = 1,
}

impl Digester {
    /// The v6 on-disk value.
    pub fn to_u32(self) -> u32 {
        self as u32
    }

    /// Parses the v6 on-disk value.
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(Digester::Blake3),
            1 => Some(Digester::Sha256),
            _ => None,
        }
    }

    /// The name `nydus-image` uses.
    pub fn name(self) -> &'static str {
        match self {
            Digester::Blake3 => "blake3",
            Digester::Sha256 => "sha256",
        }
    }
}

/// How whiteouts are marked in a layer (`--whiteout-spec`), one type for the builder (which
/// keeps markers as entries of a single layer, dropping only those a replaced directory made
/// redundant) and for merging (which applies them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WhiteoutSpec {
    /// `.wh.<name>` removes a lower entry, `.wh..wh..opq` hides a lower directory's children.
    #[default]
    Oci,
    /// A char device 0:0 removes the lower entry of its name; a directory with
    /// `trusted.overlay.opaque=y` hides the lower directory's children.
    Overlayfs,
    /// No markers: every entry is an ordinary entry.
    None,
}

/// Image-wide settings kept in the superblock(s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Superblock {
    /// The format this image was decoded from or is meant for.
    pub fs_version: FsVersion,
    /// Chunk size in bytes (power of two, 4 KiB ..= 16 MiB).
    pub chunk_size: u32,
    /// Chunk compressor.
    pub compressor: Compressor,
    /// Chunk digester.
    pub digester: Digester,
    /// Inodes carry real uid/gid (`EXPLICIT_UID_GID`); cleared by `--repeatable`.
    pub explicit_uid_gid: bool,
    /// v6 tarfs mode: 512-byte blocks, files point into the layer tar.
    pub tarfs: bool,
    /// v6 `ENCRYPTION_ASE_128_XTS` was set.
    pub encrypted: bool,
    /// `PRESERVED_COMPAT_*` bits found in the flags (accepted, written back).
    pub preserved_flags: u64,
    /// v6 `s_build_time` (seconds); the reference writes 0.
    pub build_time: u64,
    /// v6 `s_build_time_nsec`.
    pub build_time_nsec: u32,
    /// v6 `s_uuid`.
    pub uuid: [u8; 16],
    /// v6 `s_volume_name`.
    pub volume_name: [u8; 16],
    /// `HAS_XATTR` is set although no inode has xattrs (the reference's v6 merge always sets
    /// it). Encoders set the flag when an inode has xattrs or when this is true; decoders set
    /// this only for such an image, so that it round-trips.
    pub xattr_flag_without_xattrs: bool,
}

impl Superblock {
    /// Defaults of `nydus-image create` for the given version: 1 MiB chunks, zstd, blake3,
    /// explicit uid/gid.
    pub fn new(fs_version: FsVersion) -> Self {
        Superblock {
            fs_version,
            chunk_size: 0x10_0000,
            compressor: Compressor::Zstd,
            digester: Digester::Blake3,
            explicit_uid_gid: true,
            tarfs: false,
            encrypted: false,
            preserved_flags: 0,
            build_time: 0,
            build_time_nsec: 0,
            uuid: [0; 16],
            volume_name: [0; 16],
            xattr_flag_without_xattrs: false,
        }
    }
}
