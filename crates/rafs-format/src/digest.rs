//! Digests as RAFS computes them (raw 32 bytes, BLAKE3-256 or SHA-256).

use crate::model::Digester;
use sha2::Digest as _;

/// An incremental hasher for either algorithm.
pub enum Hasher {
    /// BLAKE3.
    Blake3(Box<blake3::Hasher>),
    /// SHA-256.
    Sha256(sha2::Sha256),
}

impl Hasher {
    /// A fresh hasher.
    pub fn new(d: Digester) -> Self {
        match d {
            Digester::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
            Digester::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Blake3(h) => {
                h.update(data);
            }
            Hasher::Sha256(h) => h.update(data),
        }
    }

    /// The digest.
    pub fn finish(self) -> [u8; 32] {
        match self {
            Hasher::Blake3(h) => *h.finalize().as_bytes(),
            Hasher::Sha256(h) => h.finalize().into(),
        }
    }
}

/// Digest of one byte string.
pub fn digest(d: Digester, data: &[u8]) -> [u8; 32] {
    let mut h = Hasher::new(d);
    h.update(data);
    h.finish()
}
