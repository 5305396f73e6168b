//! The Linux EROFS driver — a reader nobody here wrote — mounts what we build from each
//! crafted layer, and the mounted tree equals the ground-truth listing made from the tar
//! without nydus (`expected/<layer>.list`): file bytes, modes incl. setuid/sticky, owners,
//! mtimes, symlink targets, device numbers, hard-link inode sharing, xattrs.
//!
//! * tarfs: the bootstrap and the layer tar itself as the device;
//! * native v6: the bootstrap and, as the device, a data file holding each chunk's
//!   uncompressed bytes at its uncompressed offset (the layout of a blob cache).
//!
//! Needs root, loop devices and EROFS; where any is missing the test prints SKIPPED and why.

#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "tests: fixture offsets and sizes are small known values, and a scenario reads \
              best top to bottom in one function"
)]

use rafs_chunker::{BlobReader, Verify};
use rafs_format::model::FsVersion;
use rafs_tar_build::{build_layer, BuildOptions};
use rafs_testkit::{corpus, mount_erofs, mount_unavailable, treelist_dir};

#[test]
fn kernel_mounts_our_tarfs_and_native_images() {
    if let Some(why) = mount_unavailable() {
        rafs_testkit::skipped(format!("kernel EROFS mount test: {why}"));
        return;
    }
    let tmp = std::env::temp_dir().join(format!("rafs-tarbuild-kernel-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut mounted = 0;
    for (name, tar) in rafs_testkit::crafted_layers() {
        let expected =
            std::fs::read_to_string(corpus().join(format!("expected/{name}.list"))).unwrap();
        let tar_bytes = std::fs::read(&tar).unwrap();
        for native in [false, true] {
            let label = if native { "v6" } else { "tarfs" };
            if !native && name == "edge-E7-gnu-sparse" {
                continue; // tarfs cannot point into sparse data (a typed error, tested elsewhere)
            }
            let opts = if native {
                BuildOptions::new(FsVersion::V6)
            } else {
                BuildOptions::tarfs()
            };
            let out = build_layer(tar_bytes.as_slice(), &opts, Vec::new())
                .unwrap_or_else(|e| panic!("{name} {label}: {e}"));
            let boot = tmp.join(format!("{name}-{label}.boot"));
            std::fs::write(&boot, &out.bootstrap).unwrap();
            let mut devices = Vec::new();
            if native {
                if let Some(blob) = out.image.blobs.first() {
                    // The blob cache layout: uncompressed chunks at their uncompressed offsets.
                    let reader = BlobReader::open(out.sink.as_slice()).unwrap();
                    let mut cache =
                        vec![0u8; blob.uncompressed_size.div_ceil(4096) as usize * 4096];
                    for inode in &out.image.tree.inodes {
                        for c in &inode.chunks {
                            let data = reader
                                .read_chunk(
                                    c,
                                    blob.compressor,
                                    Verify {
                                        digest: Some(blob.digester),
                                        crc32: true,
                                    },
                                )
                                .unwrap();
                            let at = c.uncompressed_offset as usize;
                            cache[at..at + data.len()].copy_from_slice(&data);
                        }
                    }
                    let path = tmp.join(format!("{name}.cache"));
                    std::fs::write(&path, cache).unwrap();
                    devices.push(path);
                }
            } else {
                devices.push(tar.clone());
            }
            let mnt = tmp.join(format!("mnt-{name}-{label}"));
            let guard = mount_erofs(&boot, &devices, &mnt)
                .unwrap_or_else(|e| panic!("{name} {label}: mount failed: {e}"));
            let listing = treelist_dir(guard.dir()).unwrap();
            drop(guard);
            if listing.trim_end() != expected.trim_end() {
                let diff: Vec<_> = expected
                    .lines()
                    .zip(listing.lines())
                    .filter(|(a, b)| a != b)
                    .take(5)
                    .collect();
                panic!(
                    "{name} {label}: mounted tree differs ({} vs {} lines): {diff:#?}",
                    listing.lines().count(),
                    expected.lines().count()
                );
            }
            mounted += 1;
            println!(
                "{name} {label}: {} paths identical",
                expected.lines().count()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(mounted >= 25, "{mounted}");
}
