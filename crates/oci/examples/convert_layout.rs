//! Convert an OCI image layout to a Nydus image and read one file of the result back.
//! Run: `cargo run -p rafs-oci --example convert_layout [LAYOUT TAG PATH]` (default: the
//! README's demo image and its `/etc/app/app.conf`).

use rafs_oci::{convert_image, ConvertOptions, Layout, NydusImage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/images/demo");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [layout, tag, path] = match args.as_slice() {
        [l, t, p] => [l.as_str(), t, p],
        _ => [demo, "v1", "/etc/app/app.conf"],
    };
    let target_dir = tempfile::tempdir()?;
    let target = Layout::create(target_dir.path())?;
    let options = ConvertOptions::new(rafs_format::model::FsVersion::V6);
    let report = convert_image(&Layout::open(layout)?, Some(tag), &target, tag, &options)?;
    let image = NydusImage::open(&target, Some(tag))?;
    let content = image.read_file(path)?;
    println!(
        "{} -> {}: {path} is {:?}",
        report.source,
        report.target,
        String::from_utf8_lossy(&content)
    );
    Ok(())
}
