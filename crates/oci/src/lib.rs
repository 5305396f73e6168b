//! Whole OCI images to Nydus images, in-process: the Go converter's verbs
//! (`Pack`, `UnpackEntry`, `Merge`, `Convert`) over OCI image layouts.
//!
//! This crate owns the image level: the layout on disk ([`layout`]), one layer to a Nydus blob
//! layer ([`pack::pack_layer`]) and back to its bootstrap ([`pack::bootstrap_of`]), the
//! bootstrap layer ([`bootstrap_layer::merge_layers`]), the manifest, config and index
//! rewrite ([`convert::convert_image`]), chunk dictionaries ([`dict`]), merge-platform indexes
//! ([`merge_platform`]), the checks `nydusify check` makes ([`check`]), reading a converted
//! image back ([`NydusImage`]), and images in registries ([`registry`]: a registry image read
//! as a layout whose layers stream, and pushing a converted image). It does not own the
//! formats: layers are built by `rafs-tar-build`, bootstraps merged by `rafs-merge`, blobs read
//! by `rafs-chunker`.
//!
//! Dependencies: `oci-spec` (its `image` feature only) for the index and descriptor types;
//! `serde_json` to edit manifests and configs as values, so unknown fields survive (documents
//! are written as Go writes the image-spec structs, so digests are stable and tools that
//! re-encode them keep them); `sha2` for digests; `tar` and `flate2` for the bootstrap layer's
//! gzip tar; `tempfile` for scratch directories and temporary files under random names made
//! exclusively, and `rustix` for the `flock`s that tell a live temporary from one a killed
//! process left (and serialise `index.json` updates). Registries are reached with
//! `oci-client` (the ORAS project's OCI distribution client, kept up with the spec: token and
//! Basic auth, chunked and monolithic uploads, mounts, Range reads), which is asynchronous:
//! `tokio` runs it on a small runtime owned by each [`registry::Registry`], `futures-util` and
//! `bytes` carry its streams; `base64` decodes the `auth` entries of auth files.

pub mod bootstrap_layer;
pub mod bootstrap_read;
mod canonical;
pub mod check;
pub mod convert;
pub mod dict;
mod docker_archive;
pub mod error;
mod fs_rule;
#[doc(hidden)]
pub mod fuzzing;
pub mod image;
pub mod layout;
pub mod limits;
pub mod merge_platform;
mod overlay;
pub mod pack;
pub mod registry;
pub mod scratch;
pub mod source;

pub use bootstrap_layer::{merge_layers, BootstrapLayer, MergeInput};
pub use check::{check_image, check_images, CheckReport, RuleResult};
pub use convert::{
    convert_image, convert_image_with_progress, ConvertOptions, ConvertReport, LayerReport,
    Progress, ProgressFn,
};
pub use dict::ChunkDictionary;
pub use error::{Error, Result};
pub use image::NydusImage;
pub use layout::Layout;
pub use limits::ImageLimits;
pub use pack::{bootstrap_of, pack_layer, PackedLayer};
pub use source::ImageRef;
