//! targz-ref takes gzip layers only, with the options the reference allows, and a damaged
//! gzip layer fails with a typed decompression error naming where.

use rafs_tar_build::{build_layer, BuildOptions, Error, OptionsError, TarErrorKind};
use rafs_testkit::corpus;

fn layer(name: &str) -> Vec<u8> {
    std::fs::read(corpus().join("layers").join(name)).unwrap()
}

#[test]
fn only_gzip_layers_are_indexed() {
    let plain = layer("L2.tar");
    let e = build_layer(plain.as_slice(), &BuildOptions::targz_ref(), Vec::new()).err();
    assert!(
        matches!(
            e,
            Some(Error::InvalidOptions(OptionsError::ZranNotGzip(
                "not compressed"
            )))
        ),
        "{e:?}"
    );
    let zst = zstd::encode_all(plain.as_slice(), 3).unwrap();
    let e = build_layer(zst.as_slice(), &BuildOptions::targz_ref(), Vec::new()).err();
    assert!(
        matches!(
            e,
            Some(Error::InvalidOptions(OptionsError::ZranNotGzip("zstd")))
        ),
        "{e:?}"
    );
}

#[test]
fn options_that_store_data_elsewhere_conflict() {
    let gz = layer("L2.tar.gz");
    let mut v5 = BuildOptions::targz_ref();
    v5.fs_version = rafs_tar_build::FsVersion::V5;
    let mut zstd = BuildOptions::targz_ref();
    zstd.compressor = rafs_tar_build::Compressor::Zstd;
    let mut batch = BuildOptions::targz_ref();
    batch.batch_size = 0x1000;
    let blob_id = BuildOptions::targz_ref().with_blob_id("x".repeat(64));
    for (what, o) in [
        ("v5", v5),
        ("zstd", zstd),
        ("batch", batch),
        ("blob id", blob_id),
    ] {
        let e = build_layer(gz.as_slice(), &o, Vec::new()).err();
        assert!(
            matches!(
                e,
                Some(Error::InvalidOptions(OptionsError::ZranConflict(_)))
            ),
            "{what}: {e:?}"
        );
    }
}

#[test]
fn damaged_gzip_is_a_typed_error() {
    let gz = layer("L1.tar.gz");
    // Cut short, and with a byte in the middle of the deflate data flipped.
    let cut = &gz[..gz.len() / 2];
    let mut flipped = gz.clone();
    let mid = flipped.len() / 3;
    flipped[mid] ^= 0x5a;
    for (what, bytes) in [("cut", cut.to_vec()), ("flipped", flipped)] {
        match build_layer(bytes.as_slice(), &BuildOptions::targz_ref(), Vec::new()) {
            Err(Error::Tar {
                kind: TarErrorKind::Decompression { algorithm, .. },
                offset,
            }) => {
                assert_eq!(algorithm, "gzip", "{what}");
                println!("{what}: decompression error at tar offset {offset}");
            }
            Err(Error::Entry(e)) => println!("{what}: {e}"),
            other => panic!("{what}: {:?}", other.map(|o| o.report)),
        }
    }
}
