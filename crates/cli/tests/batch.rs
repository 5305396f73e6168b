//! Batch chunks (`--batch-size`, issue 13): the reference's batch images, which its own
//! `unpack` aborts on and its `export --block` refuses, unpack through our reader to the
//! ground-truth listings made without nydus; ours unpack to them exactly and mount in the
//! kernel as them. (Byte identity with the reference's batch bootstraps and blobs is in
//! `rafs-tar-build`'s and `rafs-chunker`'s reference tests.)

mod common;
use common::{
    assert_reference_unpacks, expected, mounted_listing, ok, s, tempdir, unpacked_listing,
};
use rafs_testkit::{assert_listing, corpus};

#[test]
fn the_references_batch_images_unpack_to_the_ground_truth() {
    let blobs = corpus().join("nydus-image/blobs");
    let mut checked = 0;
    for case in rafs_testkit::corpus_cases() {
        if !case.name.contains("batch") {
            continue;
        }
        // An inlined bootstrap is read from its packed blob.
        let image = if case.flag("--blob-inline-meta") {
            blobs.join(&case.blob_ids[0])
        } else {
            case.dir.join("bootstrap")
        };
        let dir = tempdir(&format!("batch-{}", case.name));
        assert_reference_unpacks(&case, &blobs, &image, &dir.join("unpacked"));
        checked += 1;
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(checked >= 9, "only {checked} batch cases");
}

#[test]
fn our_batch_images_unpack_and_mount_as_the_ground_truth() {
    let dir = tempdir("batch-ours");
    let blobs = dir.join("blobs");
    for (layer, batch) in [("L1", "0x10000"), ("L2", "0x1000"), ("L3", "0x40000")] {
        let boot = dir.join(format!("{layer}.boot"));
        let tar = corpus().join(format!("layers/{layer}.tar"));
        ok(&[
            "convert",
            "-q",
            "--batch-size",
            batch,
            "-D",
            s(&blobs),
            "-B",
            s(&boot),
            s(&tar),
        ]);
        let want = expected(layer);
        let got = unpacked_listing(&blobs, &boot, &dir.join(format!("unpacked-{layer}")));
        assert_listing(layer, &got, &want, &|_, _| false);
        if let Some(listing) = mounted_listing(&blobs, &boot, &dir, layer) {
            assert_listing(&format!("{layer} mounted"), &listing, &want, &|_, _| false);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
