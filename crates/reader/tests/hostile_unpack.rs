//! Unpacking hostile images never writes outside the target directory: a symlink pointing out
//! with a file "under" it, names that are `..`, absolute hard-link targets, a chunk pointing
//! into another file's range. Each image is unpacked into `sandbox/target`; afterwards nothing
//! in `sandbox` outside `target` may have changed.

use rafs_format::model::{mode, ChunkInfo, FsVersion, Image, Inode, Superblock, Tree, ROOT};
use rafs_reader::{unpack_to_dir, unpack_to_tar, BlobSource, ImageReader};
use rafs_tar_build::{build_layer, BuildOptions, EntryErrorKind};
use std::path::{Path, PathBuf};

fn sandbox(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rafs-hostile-unpack-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("outside")).unwrap();
    std::fs::write(d.join("outside/keep"), b"original").unwrap();
    d
}

/// Every path under `dir` except `target/`, with its content or link target.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p == dir.join("target") {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
                out.push((p, b"dir".to_vec()));
            } else if m.file_type().is_symlink() {
                out.push((
                    p.clone(),
                    std::fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                ));
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn dir_inode() -> Inode {
    let mut d = Inode::new(mode::S_IFDIR | 0o755);
    d.nlink = 2;
    d
}

fn image(tree: Tree) -> Image {
    Image {
        superblock: Superblock::new(FsVersion::V6),
        blobs: vec![],
        tree,
        prefetch: vec![],
        v6_chunk_table: None,
    }
}

/// Unpacks into `sandbox/target` and checks nothing else changed. Returns the result.
fn unpack_checked(tag: &str, reader: &ImageReader) -> Result<(), rafs_reader::Error> {
    let sb = sandbox(tag);
    let before = snapshot(&sb);
    let r = unpack_to_dir(reader, &sb.join("target")).map(|_| ());
    assert_eq!(
        snapshot(&sb),
        before,
        "{tag}: something outside the target changed"
    );
    // The tar form never touches the filesystem at all; it must not fail in a worse way.
    let _ = unpack_to_tar(reader, Vec::new());
    let _ = std::fs::remove_dir_all(&sb);
    r
}

#[test]
fn symlink_out_with_a_file_under_it() {
    // As a tar: refused at conversion (the parent is not a directory).
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("evil").unwrap();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_link_name("../outside").unwrap();
    h.set_mode(0o777);
    h.set_size(0);
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("evil/keep").unwrap();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"pwned"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let e = build_layer(
        tar.as_slice(),
        &BuildOptions::new(FsVersion::V6),
        Vec::new(),
    )
    .err()
    .unwrap();
    assert!(
        matches!(
            e.as_entry().unwrap().kind,
            EntryErrorKind::ParentNotDirectory(_)
        ),
        "{e}"
    );

    // As an image made in memory (a decoder would refuse a symlink with children).
    let mut tree = Tree::with_root(dir_inode());
    let mut link = Inode::new(mode::S_IFLNK | 0o777);
    link.symlink = b"../outside".to_vec();
    link.size = 10;
    let l = tree.add_inode(link);
    let evil = tree.push_child(ROOT, b"evil".to_vec(), l);
    let f = tree.add_inode(Inode::new(mode::S_IFREG | 0o644));
    tree.push_child(evil, b"keep".to_vec(), f);
    let reader = ImageReader::open_with(image(tree), |_| Ok(None)).unwrap();
    let e = unpack_checked("symlink", &reader).unwrap_err();
    assert!(
        e.to_string().to_lowercase().contains("not a directory"),
        "{e}"
    );
}

#[test]
fn dotdot_and_slash_names() {
    for name in [&b".."[..], b".", b"a/../../outside/keep", b"", b"x\0y"] {
        let mut tree = Tree::with_root(dir_inode());
        let f = tree.add_inode(Inode::new(mode::S_IFREG | 0o644));
        tree.push_child(ROOT, name.to_vec(), f);
        let reader = ImageReader::open_with(image(tree), |_| Ok(None)).unwrap();
        let e = unpack_checked("dotdot", &reader).unwrap_err();
        assert!(e.to_string().contains("unsafe name"), "{name:?}: {e}");
    }
}

#[test]
fn absolute_hard_link_targets_stay_inside() {
    // `/outside/keep` names the layer's own file, never the host's.
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, data) in [
        ("outside/", tar::EntryType::Directory, &b""[..]),
        ("outside/keep", tar::EntryType::Regular, b"layer"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_path("link").unwrap();
    h.set_entry_type(tar::EntryType::Link);
    h.set_link_name("/outside/keep").unwrap();
    h.set_mode(0o644);
    h.set_size(0);
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
    let tar = b.into_inner().unwrap();
    let out = build_layer(
        tar.as_slice(),
        &BuildOptions::new(FsVersion::V6),
        Vec::new(),
    )
    .unwrap();
    let blob = out.sink;
    let reader = ImageReader::open_with(out.image, move |_| {
        Ok(Some(Box::new(blob.clone()) as BlobSource))
    })
    .unwrap();
    let sb = sandbox("abs-link");
    let before = snapshot(&sb);
    unpack_to_dir(&reader, &sb.join("target")).unwrap();
    assert_eq!(snapshot(&sb), before);
    assert_eq!(std::fs::read(sb.join("target/link")).unwrap(), b"layer");
    use std::os::unix::fs::MetadataExt;
    let a = std::fs::metadata(sb.join("target/link")).unwrap();
    let b = std::fs::metadata(sb.join("target/outside/keep")).unwrap();
    assert_eq!(a.ino(), b.ino(), "the link joins the unpacked file");
    let _ = std::fs::remove_dir_all(&sb);
}

#[test]
fn chunk_pointing_into_another_files_range() {
    let mut tar = tar::Builder::new(Vec::new());
    for (p, d) in [
        ("a", b"AAAAAAAAAAAAAAAAAAAA"),
        ("b", b"BBBBBBBBBBBBBBBBBBBB"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_path(p).unwrap();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append(&h, &d[..]).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let out = build_layer(
        tar.as_slice(),
        &BuildOptions::new(FsVersion::V6),
        Vec::new(),
    )
    .unwrap();
    let mut img = out.image.clone();
    // File a's chunk now names b's bytes, and a second chunk past the blob's end.
    let b_chunk: ChunkInfo = img.tree.inode_of(img.tree.node(ROOT).children[1]).chunks[0];
    let a_id = img.tree.node(img.tree.node(ROOT).children[0]).inode;
    img.tree.inodes[a_id.0 as usize].chunks = vec![b_chunk];
    let blob = out.sink.clone();
    let reader = ImageReader::open_with(img.clone(), move |_| {
        Ok(Some(Box::new(blob.clone()) as BlobSource))
    })
    .unwrap();
    // Unverified, the bytes are b's; nothing escapes.
    unpack_checked("cross-chunk", &reader).unwrap();
    // Verified, the digest still matches (same bytes), so it is read; a chunk claiming a
    // range past the blob is refused.
    let mut bad = b_chunk;
    bad.compressed_offset = 1 << 20;
    img.tree.inodes[a_id.0 as usize].chunks = vec![bad];
    let blob = out.sink.clone();
    let reader =
        ImageReader::open_with(img, move |_| Ok(Some(Box::new(blob.clone()) as BlobSource)))
            .unwrap();
    let e = unpack_checked("bad-chunk", &reader).unwrap_err();
    assert!(matches!(e, rafs_reader::Error::Data { .. }), "{e}");
}

#[test]
fn limits_are_typed_errors() {
    use rafs_reader::{unpack_to_tar_with_limits, UnpackLimits};
    let mut tree = Tree::with_root(dir_inode());
    for i in 0..10u8 {
        let mut f = Inode::new(mode::S_IFREG | 0o644);
        f.nlink = 1;
        let id = tree.add_inode(f);
        tree.push_child(ROOT, vec![b'a' + i], id);
    }
    let reader = ImageReader::open_with(image(tree), |_| Ok(None)).unwrap();
    let limits = UnpackLimits {
        max_entries: 5,
        ..UnpackLimits::default()
    };
    let e = unpack_to_tar_with_limits(&reader, Vec::new(), limits).unwrap_err();
    assert!(
        matches!(
            e,
            rafs_reader::Error::LimitExceeded {
                what: "entries",
                limit: 5,
                ..
            }
        ),
        "{e}"
    );
}
