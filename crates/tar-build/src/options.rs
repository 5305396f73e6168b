//! Build options, named after `nydus-image create`'s.

use crate::error::OptionsError;
use crate::limits::BuildLimits;
use rafs_chunker::{BlobCipher, ChunkDict};
pub use rafs_format::model::WhiteoutSpec;
use rafs_format::model::{Compressor, Digester, FsVersion, Image};
use std::sync::Arc;

/// `--type`: what the image's data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversionType {
    /// `tar-rafs`: file data chunked and compressed into a new data blob.
    TarRafs,
    /// `tar-tarfs`: a v6 bootstrap with 512-byte blocks whose files point into the layer tar
    /// itself; no data blob.
    TarTarfs,
    /// `targz-ref` (zran, the Go converter's OCI-ref mode): the gzip layer itself is the data
    /// blob; the blob written holds only metadata, with the inflate contexts that let a
    /// reader start in the middle of the layer.
    TargzRef,
}

/// How to convert a layer.
#[derive(Clone)]
#[non_exhaustive]
pub struct BuildOptions {
    /// `--type`.
    pub conversion: ConversionType,
    /// `--fs-version` (tarfs requires 6).
    pub fs_version: FsVersion,
    /// `--compressor` (tarfs: none).
    pub compressor: Compressor,
    /// `--digester` (tarfs: sha256).
    pub digester: Digester,
    /// `--chunk-size`.
    pub chunk_size: u32,
    /// `--whiteout-spec` (recorded; see [`WhiteoutSpec`]).
    pub whiteout_spec: WhiteoutSpec,
    /// `--blob-inline-meta`: the bootstrap goes into the data blob.
    pub inline_bootstrap: bool,
    /// `--features blob-toc`.
    pub blob_toc: bool,
    /// `--aligned-chunk` (v5; v6 always aligns).
    pub aligned_chunk: bool,
    /// `--repeatable`: uid and gid 0 for every entry, no explicit uid/gid flag.
    pub repeatable: bool,
    /// The tar is a directory streamed by [`crate::dir_source`]: a v5 inode of a non-device
    /// records `rdev` 0, the `st_rdev` the reference's `dir-rafs` build reads (its tar build
    /// records `u32::MAX`).
    pub directory_source: bool,
    /// `--prefetch-policy fs` with these patterns (absolute paths); `None` = no prefetch.
    pub prefetch_patterns: Option<Vec<String>>,
    /// `--chunk-dict bootstrap=PATH`, already loaded.
    pub chunk_dict: Option<ChunkDict>,
    /// v6 `--batch-size`: files of one chunk under half of it are compressed together in
    /// batches of up to this many bytes; 0 = off.
    pub batch_size: u32,
    /// `--parent-bootstrap`, decoded: the image the layer is applied onto (its whiteouts
    /// and opaque markers, spelled as [`Self::whiteout_spec`] says, take effect); the
    /// bootstrap then holds the whole stack, the parent's blobs first.
    pub parent: Option<Arc<Image>>,
    /// `--blob-id` (tarfs: otherwise the sha256 of the tar).
    pub blob_id: Option<String>,
    /// Worker threads for digest and compression; 0 = one per core (at most
    /// [`MAX_THREADS`](rafs_chunker::writer::MAX_THREADS)).
    pub threads: usize,
    /// Layer-wide budgets.
    pub limits: BuildLimits,
    /// `--encrypt`: the blob's AES-128-XTS key ([`BlobCipher::random`] draws one as the
    /// reference does; a fixed one makes the output reproducible).
    pub cipher: Option<BlobCipher>,
}

impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("conversion", &self.conversion)
            .field("fs_version", &self.fs_version)
            .field("compressor", &self.compressor)
            .field("digester", &self.digester)
            .field("chunk_size", &self.chunk_size)
            .field("whiteout_spec", &self.whiteout_spec)
            .field("inline_bootstrap", &self.inline_bootstrap)
            .field("blob_toc", &self.blob_toc)
            .field("aligned_chunk", &self.aligned_chunk)
            .field("repeatable", &self.repeatable)
            .field("prefetch_patterns", &self.prefetch_patterns)
            .field("chunk_dict", &self.chunk_dict.as_ref().map(|d| d.len()))
            .field("batch_size", &self.batch_size)
            .field("parent", &self.parent.as_ref().map(|p| p.tree.nodes.len()))
            .field("blob_id", &self.blob_id)
            .field("threads", &self.threads)
            .field("limits", &self.limits)
            .field("encrypted", &self.cipher.is_some())
            .finish()
    }
}

impl BuildOptions {
    /// `nydus-image create -t tar-rafs` defaults for a version: zstd, blake3, 1 MiB chunks,
    /// whiteout spec oci, separate bootstrap.
    pub fn new(fs_version: FsVersion) -> Self {
        BuildOptions {
            conversion: ConversionType::TarRafs,
            fs_version,
            compressor: Compressor::Zstd,
            digester: Digester::Blake3,
            chunk_size: 0x10_0000,
            whiteout_spec: WhiteoutSpec::Oci,
            inline_bootstrap: false,
            blob_toc: false,
            aligned_chunk: false,
            repeatable: false,
            directory_source: false,
            prefetch_patterns: None,
            chunk_dict: None,
            batch_size: 0,
            parent: None,
            blob_id: None,
            threads: 0,
            limits: BuildLimits::default(),
            cipher: None,
        }
    }

    /// `nydus-image create -t tar-tarfs` defaults: v6, no compression, sha256.
    pub fn tarfs() -> Self {
        BuildOptions {
            conversion: ConversionType::TarTarfs,
            compressor: Compressor::None,
            digester: Digester::Sha256,
            ..Self::new(FsVersion::V6)
        }
    }

    /// `nydus-image create -t targz-ref` defaults: v6, chunks "compressed" by the layer's gzip,
    /// sha256 (the reference forces both).
    pub fn targz_ref() -> Self {
        BuildOptions {
            conversion: ConversionType::TargzRef,
            compressor: Compressor::Gzip,
            digester: Digester::Sha256,
            ..Self::new(FsVersion::V6)
        }
    }

    /// What the Go converter (`nydus-snapshotter`'s `Pack`) asks for: v6, inline bootstrap,
    /// blob ToC, whiteout spec none, prefetch `/`.
    pub fn go_converter() -> Self {
        BuildOptions {
            inline_bootstrap: true,
            blob_toc: true,
            whiteout_spec: WhiteoutSpec::None,
            prefetch_patterns: Some(vec!["/".into()]),
            ..Self::new(FsVersion::V6)
        }
    }

    /// Checks the combination as `nydus-image create` does.
    pub fn validate(&self) -> Result<(), OptionsError> {
        let cs = self.chunk_size;
        if !cs.is_power_of_two() || !(0x1000..=0x100_0000).contains(&cs) {
            return Err(OptionsError::ChunkSize(cs));
        }
        match self.conversion {
            ConversionType::TarTarfs => self.validate_tarfs()?,
            ConversionType::TargzRef => self.validate_zran()?,
            ConversionType::TarRafs => {}
        }
        let b = self.batch_size;
        if b != 0
            && (self.fs_version != FsVersion::V6
                || self.conversion == ConversionType::TarTarfs
                || !b.is_power_of_two()
                || b < 0x1000
                || b > cs)
        {
            return Err(OptionsError::BatchSize(b));
        }
        if let Some(parent) = &self.parent {
            self.validate_parent(parent)?;
        }
        if self.cipher.is_some() {
            self.validate_encrypt()?;
        }
        if let Some(dict) = &self.chunk_dict {
            self.validate_dict(dict)?;
        }
        if let Some(id) = &self.blob_id {
            rafs_format::rules::check_blob_id(id).map_err(|reason| OptionsError::BlobId {
                id: id.clone(),
                reason,
            })?;
        }
        let max = rafs_chunker::writer::MAX_THREADS;
        if self.threads > max {
            return Err(OptionsError::Threads {
                given: self.threads,
                max,
            });
        }
        if let Some(p) = &self.prefetch_patterns {
            if p.iter().all(|p| !p.trim().starts_with('/')) && !p.is_empty() {
                return Err(OptionsError::RelativePrefetch);
            }
            let max = self.limits.max_prefetch_patterns;
            if p.len() > max {
                return Err(OptionsError::PrefetchPatterns {
                    given: p.len(),
                    max,
                });
            }
        }
        Ok(())
    }

    /// A chunk dictionary's chunks must be readable in the image this build writes: same
    /// digester (else no chunk matches), same chunk size in every dictionary blob, and for
    /// v5, whose superblock names one compressor for every blob, the same compressor (a v6
    /// blob carries its own).
    fn validate_dict(&self, dict: &ChunkDict) -> Result<(), OptionsError> {
        let mismatch = |field: &'static str, dict: String, build: String| {
            Err(OptionsError::ChunkDict { field, dict, build })
        };
        if dict.digester() != self.digester {
            let d = |d: Digester| d.name().to_string();
            return mismatch("digester", d(dict.digester()), d(self.digester));
        }
        for b in dict.blobs() {
            if b.chunk_size != self.chunk_size {
                let c = |c: u32| format!("{c:#x}");
                return mismatch("chunk size", c(b.chunk_size), c(self.chunk_size));
            }
            if self.fs_version == FsVersion::V5 && b.compressor != self.compressor {
                let c = |c: Compressor| c.name().to_string();
                return mismatch("compressor (v5)", c(b.compressor), c(self.compressor));
            }
        }
        Ok(())
    }

    /// A parent must be an image this build could have made: same version, compressor,
    /// digester and chunk size, not tarfs; and the layer's bootstrap stays out of its blob
    /// (an inlined bootstrap describes its own layer, as the Go converter merges images).
    fn validate_parent(&self, parent: &Image) -> Result<(), OptionsError> {
        let sb = &parent.superblock;
        let mismatch = |field: &'static str, parent: String, build: String| {
            Err(OptionsError::Parent {
                field,
                parent,
                build,
            })
        };
        if self.inline_bootstrap {
            return Err(OptionsError::ParentInline);
        }
        if sb.tarfs {
            return mismatch("type", "tar-tarfs".into(), "tar-rafs".into());
        }
        if sb.fs_version != self.fs_version {
            let v = |v: FsVersion| v.number().to_string();
            return mismatch("fs version", v(sb.fs_version), v(self.fs_version));
        }
        if sb.compressor != self.compressor {
            let c = |c: Compressor| c.name().to_string();
            return mismatch("compressor", c(sb.compressor), c(self.compressor));
        }
        if sb.digester != self.digester {
            let d = |d: Digester| d.name().to_string();
            return mismatch("digester", d(sb.digester), d(self.digester));
        }
        if sb.chunk_size != self.chunk_size {
            let c = |c: u32| format!("{c:#x}");
            return mismatch("chunk size", c(sb.chunk_size), c(self.chunk_size));
        }
        Ok(())
    }

    /// The reference refuses `--encrypt` with tarfs and zran; with v5 it writes an image
    /// whose key is nowhere (the v5 blob table has no field for it), which we refuse too.
    fn validate_encrypt(&self) -> Result<(), OptionsError> {
        let conflict = match self.conversion {
            ConversionType::TarTarfs => "tar-tarfs",
            ConversionType::TargzRef => "targz-ref",
            ConversionType::TarRafs if self.fs_version != FsVersion::V6 => "--fs-version 5",
            ConversionType::TarRafs => return Ok(()),
        };
        Err(OptionsError::EncryptConflict(conflict))
    }

    fn validate_zran(&self) -> Result<(), OptionsError> {
        let conflict = if self.fs_version != FsVersion::V6 {
            Some("--fs-version 5")
        } else if self.compressor != Compressor::Gzip || self.digester != Digester::Sha256 {
            Some("a compressor other than gzip or a digester other than sha256")
        } else if self.batch_size != 0 {
            Some("--batch-size")
        } else if self.chunk_dict.is_some() {
            Some("--chunk-dict")
        } else if self.parent.is_some() {
            Some("--parent-bootstrap")
        } else if self.blob_id.is_some() {
            Some("--blob-id (the blob id is the layer's sha256)")
        } else {
            None
        };
        conflict.map_or(Ok(()), |c| Err(OptionsError::ZranConflict(c)))
    }

    fn validate_tarfs(&self) -> Result<(), OptionsError> {
        if self.fs_version != FsVersion::V6 {
            return Err(OptionsError::TarfsNeedsV6);
        }
        if self.inline_bootstrap
            || self.blob_toc
            || self.chunk_dict.is_some()
            || self.aligned_chunk
            || self.parent.is_some()
        {
            return Err(OptionsError::TarfsConflict);
        }
        if self.compressor != Compressor::None || self.digester != Digester::Sha256 {
            return Err(OptionsError::TarfsData);
        }
        Ok(())
    }

    /// `--compressor`.
    pub fn with_compressor(mut self, compressor: Compressor) -> Self {
        self.compressor = compressor;
        self
    }

    /// `--digester`.
    pub fn with_digester(mut self, digester: Digester) -> Self {
        self.digester = digester;
        self
    }

    /// `--chunk-size`.
    pub fn with_chunk_size(mut self, chunk_size: u32) -> Self {
        self.chunk_size = chunk_size;
        self
    }

    /// `--whiteout-spec`.
    pub fn with_whiteout_spec(mut self, spec: WhiteoutSpec) -> Self {
        self.whiteout_spec = spec;
        self
    }

    /// `--blob-inline-meta` and `--features blob-toc`.
    pub fn with_inline_bootstrap(mut self, inline: bool, blob_toc: bool) -> Self {
        self.inline_bootstrap = inline;
        self.blob_toc = blob_toc;
        self
    }

    /// `--prefetch-policy fs` with these patterns.
    pub fn with_prefetch_patterns(mut self, patterns: Vec<String>) -> Self {
        self.prefetch_patterns = Some(patterns);
        self
    }

    /// `--chunk-dict bootstrap=PATH`, already loaded.
    pub fn with_chunk_dict(mut self, dict: ChunkDict) -> Self {
        self.chunk_dict = Some(dict);
        self
    }

    /// `--parent-bootstrap`, decoded.
    pub fn with_parent(mut self, parent: Image) -> Self {
        self.parent = Some(Arc::new(parent));
        self
    }

    /// `--blob-id`.
    pub fn with_blob_id(mut self, id: impl Into<String>) -> Self {
        self.blob_id = Some(id.into());
        self
    }

    /// Worker threads (0 = one per core).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Layer-wide budgets.
    pub fn with_limits(mut self, limits: BuildLimits) -> Self {
        self.limits = limits;
        self
    }
}
