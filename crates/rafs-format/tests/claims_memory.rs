//! Tiny bootstraps claiming huge counts — 2^32 inodes, 2^16 blobs — fail fast with a typed
//! error, and the process's peak resident set grows by less than 64 MiB doing so. (One test
//! per binary, so nothing else shares the measured process.)

use rafs_format::ondisk::v6::{
    ExtSuperBlock, SuperBlock, EXT_SUPERBLOCK_OFFSET, SUPERBLOCK_OFFSET,
};
use std::time::Instant;
use zerocopy::{FromBytes, IntoBytes};

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn huge_claims_fail_fast_in_little_memory() {
    let corpus = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/conformance/nydus-image");
    // v6: the reference's empty-layer bootstrap (8 KiB), cut to its first 4 KiB, claiming 2^32
    // inodes and a blob table of 2^16 entries.
    let mut v6_blobs = std::fs::read(corpus.join("edge-E5-empty-v6/bootstrap")).unwrap();
    v6_blobs.truncate(4096);
    let (mut ext, _) = ExtSuperBlock::read_from_prefix(&v6_blobs[EXT_SUPERBLOCK_OFFSET..]).unwrap();
    ext.s_blob_table_offset.set(4096);
    ext.s_blob_table_size.set(256 << 16);
    v6_blobs[EXT_SUPERBLOCK_OFFSET..EXT_SUPERBLOCK_OFFSET + std::mem::size_of::<ExtSuperBlock>()]
        .copy_from_slice(ext.as_bytes());
    let mut v6 = v6_blobs.clone();
    let (mut sb, _) = SuperBlock::read_from_prefix(&v6[SUPERBLOCK_OFFSET..]).unwrap();
    sb.s_inos.set(1 << 32);
    v6[SUPERBLOCK_OFFSET..SUPERBLOCK_OFFSET + std::mem::size_of::<SuperBlock>()]
        .copy_from_slice(sb.as_bytes());
    // v5: a superblock claiming 2^32 - 1 inodes and 2^16 blobs, in 12 KiB.
    let mut v5 = vec![0u8; 8192 + 4096];
    v5[0..4].copy_from_slice(&0x5241_4653u32.to_le_bytes());
    v5[4..8].copy_from_slice(&0x500u32.to_le_bytes());
    v5[8..12].copy_from_slice(&8192u32.to_le_bytes());
    v5[12..16].copy_from_slice(&0x10_0000u32.to_le_bytes());
    v5[16..24].copy_from_slice(&0x94u64.to_le_bytes());
    v5[32..40].copy_from_slice(&8192u64.to_le_bytes());
    v5[56..60].copy_from_slice(&u32::MAX.to_le_bytes());
    v5[68..72].copy_from_slice(&(1u32 << 16).to_le_bytes());
    let baseline = vm_hwm_kib();
    for (name, bytes) in [
        ("v6 2^32 inodes, 2^16 blobs", &v6),
        ("v6 2^16 blobs", &v6_blobs),
        ("v5 2^32 inodes, 2^16 blobs", &v5),
    ] {
        let started = Instant::now();
        let e = rafs_format::decode(bytes).unwrap_err();
        let took = started.elapsed();
        eprintln!("{name}: {} bytes refused in {took:?}: {e}", bytes.len());
        assert!(
            e.as_decode().is_some(),
            "{name}: not a typed decoding error: {e}"
        );
        assert!(took.as_millis() < 500, "{name}: {took:?}");
    }
    let grew = (vm_hwm_kib() - baseline) * 1024;
    eprintln!("peak RSS grew {} KiB", grew >> 10);
    assert!(grew < 64 << 20, "peak grew by {} MiB", grew >> 20);
}
