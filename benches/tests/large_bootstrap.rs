//! A bootstrap of about 200 MB decodes through a memory map (and the 4 KiB-class ones of the
//! corpus through the same path), and decodes to the tree it was made from.

use rafs_benches::generated_image;
use rafs_format::model::FsVersion;

#[test]
fn two_hundred_megabyte_bootstrap_decodes_from_a_memory_map() {
    let image = generated_image(900_000, FsVersion::V5);
    let bytes = rafs_format::encode(&image).unwrap();
    assert!(bytes.len() > 200_000_000, "only {} bytes", bytes.len());
    let path = std::env::temp_dir().join(format!("rafs-large-{}.boot", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    drop(bytes);
    let map = rafs_format::source::Bootstrap::open(&path).unwrap();
    assert!(matches!(map, rafs_format::source::Bootstrap::Mapped(_)));
    let decoded = rafs_format::decode(map.bytes()).unwrap();
    assert_eq!(image.tree_difference(&decoded), None);
    drop(map);
    std::fs::remove_file(&path).unwrap();
}
