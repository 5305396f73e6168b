//! What the `unpack` fuzz target checks, shared with the test that replays its corpus. Not
//! part of the stable API.

use crate::{unpack_to_dir, unpack_to_tar, BlobSource, ImageReader};
use rafs_format::model::Image;

/// Input: a bootstrap (any version) followed by nothing; its blobs are empty. Unpacking to a
/// tar and into a fresh directory must succeed or fail with a typed error, and the directory
/// unpack must not create anything outside its target.
pub fn unpack_any(data: &[u8]) -> Result<(), String> {
    let Ok(image) = rafs_format::decode(data) else {
        return Ok(());
    };
    if image.tree.nodes.len() > 4096 {
        return Ok(()); // keep each run fast; large trees are the decoder's business
    }
    let Ok(reader) = ImageReader::open_with(image, |_| {
        Ok(Some(Box::new(Vec::<u8>::new()) as BlobSource))
    }) else {
        return Ok(());
    };
    let _ = unpack_to_tar(&reader, Vec::new());
    let sandbox = std::env::temp_dir().join(format!("rafs-fuzz-unpack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&sandbox);
    std::fs::create_dir_all(&sandbox).map_err(|e| e.to_string())?;
    let _ = unpack_to_dir(&reader, &sandbox.join("target"));
    blob_dir_traps(reader.image(), &sandbox)?;
    let outside: Vec<_> = std::fs::read_dir(&sandbox)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "target")
        .map(|e| e.path())
        .collect();
    let _ = std::fs::remove_dir_all(&sandbox);
    if !outside.is_empty() {
        return Err(format!("unpack wrote outside its target: {outside:?}"));
    }
    Ok(())
}

/// Puts a FIFO, and then a symlink to a FIFO outside, under each blob id of `image` in a
/// blob directory: opening the image from there must refuse both, at once (a FIFO must never
/// be waited on). A symlink the user put there is followed (issue 24), so what it leads to
/// is held to the same rule.
fn blob_dir_traps(image: &Image, sandbox: &std::path::Path) -> Result<(), String> {
    let blobs = sandbox.join("blobs");
    let _ = std::fs::remove_dir_all(&blobs);
    std::fs::create_dir_all(&blobs).map_err(|e| e.to_string())?;
    let outside = sandbox.join("fifo-outside");
    let _ = std::fs::remove_file(&outside);
    make_fifo(&outside).map_err(|e| e.to_string())?;
    for symlinks in [false, true] {
        let mut trapped = 0;
        for b in &image.blobs {
            let p = blobs.join(&b.blob_id);
            let _ = std::fs::remove_file(&p);
            let made = if symlinks {
                std::os::unix::fs::symlink(&outside, &p).is_ok()
            } else {
                make_fifo(&p).is_ok()
            };
            trapped += usize::from(made);
        }
        if trapped > 0 && ImageReader::open_dir(image.clone(), &blobs).is_ok() {
            return Err(format!(
                "a blob directory of traps opened (symlinks: {symlinks})"
            ));
        }
    }
    let _ = std::fs::remove_file(&outside);
    let _ = std::fs::remove_dir_all(&blobs);
    Ok(())
}

fn make_fifo(path: &std::path::Path) -> rustix::io::Result<()> {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
}
