//! Budgets of one image: what converting or checking it may cost in total, whatever each
//! layer costs on its own (those budgets are `rafs_tar_build::BuildLimits`, kept here as
//! [`ImageLimits::layer`] so that convert and check spend alike). Anchors: Docker's overlay2
//! driver stacks at most 128 layers and containerd's overlayfs snapshotter a few hundred
//! (the mount options' page); 1,000 layers or index entries is well past any real image.

use crate::error::{unsupported, Result};

/// Limits of an image's conversion or check. Exceeding one is an
/// [`Error::Unsupported`](crate::Error::Unsupported) naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageLimits {
    /// Most layers in one manifest.
    pub max_layers: usize,
    /// Most manifests in one index.
    pub max_manifests: usize,
    /// Most bytes of file contents (a sparse file's real size) over every layer of an image.
    pub max_image_bytes: u64,
    /// The budgets of each layer.
    pub layer: rafs_tar_build::BuildLimits,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_layers: 1000,
            max_manifests: 1000,
            max_image_bytes: 1 << 40,
            layer: rafs_tar_build::BuildLimits::default(),
        }
    }
}

impl ImageLimits {
    /// `layers` layers in `what` (a manifest).
    pub fn check_layers(&self, layers: usize, what: &str) -> Result<()> {
        if layers > self.max_layers {
            return Err(unsupported(
                what,
                format!("{layers} layers; at most {} (max_layers)", self.max_layers),
            ));
        }
        Ok(())
    }

    /// `manifests` entries in `what` (an index).
    pub fn check_manifests(&self, manifests: usize, what: &str) -> Result<()> {
        if manifests > self.max_manifests {
            return Err(unsupported(
                what,
                format!(
                    "{manifests} manifests; at most {} (max_manifests)",
                    self.max_manifests
                ),
            ));
        }
        Ok(())
    }
}
