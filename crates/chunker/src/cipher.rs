//! Blob encryption as `nydus-image create --encrypt` applies it (blob.md §4): AES-128-XTS with
//! one random 32-byte key and one random 16-byte IV per blob, the IV used as the XTS tweak of
//! every unit. A unit is one stored chunk or batch (after compression), the chunk-info array
//! (after compression) and its 4096-byte header; each is one XTS data unit. A unit shorter than
//! 16 bytes (XTS needs one whole block) is padded to 18 bytes: the pad value repeated up to 16
//! bytes, then the marker `78 90`, which decryption strips again (the reference's `crypt.rs`).
//!
//! The key and IV live in the bootstrap's v6 blob-table entry, in fields that otherwise describe
//! a separate meta blob: `blob_meta_digest` holds the key, `blob_meta_size` the IV's first eight
//! bytes (little endian) and `cipher_iv` its last eight; `cipher_algo` is 1.

use crate::error::{Error, Result};
use aes::cipher::{Array, KeyInit};
use aes::Aes128;
use rafs_format::model::Blob;
use xts_mode::Xts128;

/// The `cipher_algo` value of AES-128-XTS.
pub const CIPHER_AES_128_XTS: u32 = 1;

/// Length of the pad a unit under one block gets (16 bytes and the marker).
const PADDED_LEN: usize = 18;
/// The marker closing a padded unit.
const PAD_MARKER: [u8; 2] = [0x78, 0x90];

/// Largest unit OpenSSL (the reference and nydusd) accepts: 2^20 blocks (IEEE 1619-2018).
pub const MAX_UNIT: usize = 16 << 20;

/// One blob's AES-128-XTS key and IV.
pub struct BlobCipher {
    key: [u8; 32],
    iv: [u8; 16],
    xts: Xts128<Aes128>,
}

impl std::fmt::Debug for BlobCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: it is not printed.
        f.write_str("BlobCipher(aes-128-xts)")
    }
}

impl Clone for BlobCipher {
    fn clone(&self) -> Self {
        // The key was accepted once; the AES key schedules are made again.
        Self::with_schedules(self.key, self.iv)
    }
}

impl PartialEq for BlobCipher {
    fn eq(&self, other: &Self) -> bool {
        (self.key, self.iv) == (other.key, other.iv)
    }
}

impl Eq for BlobCipher {}

impl BlobCipher {
    /// A cipher with this key and IV. XTS refuses a key whose halves are equal (the data key
    /// would be the tweak key), as OpenSSL does.
    pub fn new(key: [u8; 32], iv: [u8; 16]) -> Result<Self> {
        if key[..16] == key[16..] {
            return Err(Error::InvalidOptions(
                "an AES-128-XTS key needs two different halves".into(),
            ));
        }
        Ok(Self::with_schedules(key, iv))
    }

    /// The AES key schedules of an accepted key.
    fn with_schedules(key: [u8; 32], iv: [u8; 16]) -> Self {
        let (mut data_key, mut tweak_key) = ([0u8; 16], [0u8; 16]);
        data_key.copy_from_slice(&key[..16]);
        tweak_key.copy_from_slice(&key[16..]);
        let data_key = Aes128::new(&Array::from(data_key));
        let tweak_key = Aes128::new(&Array::from(tweak_key));
        BlobCipher {
            key,
            iv,
            xts: Xts128::new(data_key, tweak_key),
        }
    }

    /// A fresh random key and IV from the system's generator, as the reference draws them (a key
    /// whose halves happen to be equal gets its first half replaced, the reference's rule).
    pub fn random() -> Result<Self> {
        let mut key = [0u8; 32];
        let mut iv = [0u8; 16];
        getrandom::fill(&mut key)
            .and_then(|()| getrandom::fill(&mut iv))
            .map_err(|e| Error::InvalidOptions(format!("no random key: {e}")))?;
        if key[..16] == key[16..] {
            let fill = if key[16] == 0xa5 { 0x5a } else { 0xa5 };
            key[..16].fill(fill);
        }
        Self::new(key, iv)
    }

    /// The cipher a blob-table entry records, if the blob is encrypted.
    pub fn of_blob(blob: &Blob) -> Result<Option<Self>> {
        match blob.cipher_algo {
            0 => Ok(None),
            CIPHER_AES_128_XTS => {
                let mut iv = [0u8; 16];
                iv[..8].copy_from_slice(&blob.meta_size.to_le_bytes());
                iv[8..].copy_from_slice(&blob.cipher_iv);
                Self::new(blob.meta_digest, iv).map(Some)
            }
            other => Err(Error::InvalidOptions(format!(
                "blob {}: cipher algorithm {other} is not AES-128-XTS",
                blob.blob_id
            ))),
        }
    }

    /// Records the key and IV in a blob-table entry, where the reference keeps them.
    pub fn record_in(&self, blob: &mut Blob) {
        blob.cipher_algo = CIPHER_AES_128_XTS;
        blob.meta_digest = self.key;
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.iv[..8]);
        blob.meta_size = u64::from_le_bytes(first);
        blob.cipher_iv.copy_from_slice(&self.iv[8..]);
    }

    /// Size of `len` bytes once encrypted.
    pub fn encrypted_len(len: usize) -> usize {
        if len < 16 {
            PADDED_LEN
        } else {
            len
        }
    }

    /// Encrypts one unit into `out` (replacing its contents).
    pub fn encrypt(&self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if data.len() > MAX_UNIT {
            return Err(Error::Unrepresentable(format!(
                "an encrypted unit of {} bytes: XTS readers take at most {MAX_UNIT}",
                data.len()
            )));
        }
        out.clear();
        out.extend_from_slice(data);
        if data.len() < 16 {
            // `data` is under 16 bytes, so the pad value is 1..=16 and fits.
            let pad = u8::try_from(16 - data.len()).unwrap_or(16);
            out.resize(16, pad);
            out.extend_from_slice(&PAD_MARKER);
        }
        self.xts.encrypt_sector(out, Array::from(self.iv));
        Ok(())
    }

    /// Decrypts one unit in place, removing the pad of a short unit.
    pub fn decrypt(&self, data: &mut Vec<u8>) -> std::result::Result<(), &'static str> {
        if data.len() < 16 {
            return Err("shorter than one AES block");
        }
        self.xts.decrypt_sector(data, Array::from(self.iv));
        if data.len() == PADDED_LEN && data[16..] == PAD_MARKER {
            let pad = usize::from(data[15]);
            if pad >= 16 {
                return Err("invalid pad");
            }
            data.truncate(16 - pad);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafs_format::model::{Compressor, Digester};

    fn cipher() -> BlobCipher {
        let mut key = [0x0c; 32];
        key[31] = 0x0a;
        BlobCipher::new(key, [0; 16]).unwrap()
    }

    #[test]
    fn a_short_unit_is_padded_to_18_bytes_and_comes_back() {
        let c = cipher();
        let mut out = Vec::new();
        c.encrypt(b"1", &mut out).unwrap();
        assert_eq!(out.len(), 18);
        c.decrypt(&mut out).unwrap();
        assert_eq!(out, b"1");
    }

    #[test]
    fn units_of_any_length_from_16_round_trip_with_their_length() {
        let c = cipher();
        for len in [16, 17, 31, 32, 4096, 4099] {
            let data: Vec<u8> = (0..len).map(|i| [3, 1, 4, 1, 5, 9, 2, 6][i % 8]).collect();
            let mut out = Vec::new();
            c.encrypt(&data, &mut out).unwrap();
            assert_eq!(out.len(), len);
            assert_ne!(out, data);
            c.decrypt(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn a_key_with_equal_halves_is_refused() {
        assert!(BlobCipher::new([7; 32], [0; 16]).is_err());
    }

    #[test]
    fn the_blob_table_entry_keeps_key_and_iv() {
        let iv = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
        let mut key = [1u8; 32];
        key[0] = 2;
        let c = BlobCipher::new(key, iv).unwrap();
        let mut blob = Blob::new("b", Compressor::Zstd, Digester::Blake3, 0x10_0000);
        c.record_in(&mut blob);
        assert_eq!(blob.meta_size, u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]));
        assert_eq!(blob.cipher_iv, [8, 9, 10, 11, 12, 13, 14, 15]);
        assert_eq!(BlobCipher::of_blob(&blob).unwrap(), Some(c));
    }
}
