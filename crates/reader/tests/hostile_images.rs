//! Hardening, round 2: images that try to make a reader touch what the user did not name
//! (blob ids that are paths, FIFOs and symlinks in the blob directory), and names that are
//! not UTF-8 going from tar to image to tar byte for byte.

use rafs_format::model::FsVersion;
use rafs_reader::{unpack_to_tar, BlobSource, ImageReader};
use rafs_tar_build::{build_layer, BuildOptions};
use rafs_testkit::layer::Layer;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rafs-hostile-images-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A one-file layer converted: bootstrap, blob, blob id.
fn one_file(version: FsVersion) -> (Vec<u8>, Vec<u8>, String) {
    let tar = Layer::new().file(b"f", b"secret-free content").finish();
    let out = build_layer(tar.as_slice(), &BuildOptions::new(version), Vec::new()).unwrap();
    let id = out.report.blob_id.clone().unwrap();
    (out.bootstrap, out.sink, id)
}

/// Replaces every occurrence of the 64-byte id with `hostile`, NUL-padded.
fn with_blob_id(bootstrap: &[u8], id: &str, hostile: &str) -> Vec<u8> {
    let mut padded = hostile.as_bytes().to_vec();
    padded.resize(64, 0);
    let mut out = bootstrap.to_vec();
    let mut found = 0;
    let mut i = 0;
    while let Some(p) = out[i..].windows(64).position(|w| w == id.as_bytes()) {
        out[i + p..i + p + 64].copy_from_slice(&padded);
        i += p + 64;
        found += 1;
    }
    assert!(found > 0);
    out
}

/// Item 1: blob ids that are paths are refused where they are decoded, in both versions.
#[test]
fn blob_ids_that_are_paths_are_refused_when_decoding() {
    for version in [FsVersion::V6, FsVersion::V5] {
        let (bootstrap, _, id) = one_file(version);
        for hostile in ["../../../../etc/passwd", "/etc/passwd", "..", "a\nb"] {
            let bad = with_blob_id(&bootstrap, &id, hostile);
            let err = rafs_format::decode(&bad).expect_err("refused");
            let s = err.to_string();
            assert!(s.contains("blob_id"), "{version:?} {hostile:?}: {s}");
        }
    }
}

/// A blob named by a valid id but that is a FIFO (or a symlink to one, or to a device) is
/// refused at once (a reader would otherwise wait forever); a symlink the user put in the blob
/// directory is followed wherever it leads (issue 24: a layer tar kept elsewhere is the natural
/// tarfs blob; the id is a name, so no image can steer the path).
#[test]
fn blob_files_must_be_regular_files_and_user_symlinks_are_followed() {
    let tmp = tmpdir("blobdir");
    let (bootstrap, blob, id) = one_file(FsVersion::V6);
    let image = rafs_format::decode(&bootstrap).unwrap();
    let dir = tmp.join("blobs");
    std::fs::create_dir_all(&dir).unwrap();

    let fifo = tmp.join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    for (what, target) in [
        ("a FIFO", fifo.as_path()),
        ("a device", Path::new("/dev/zero")),
    ] {
        std::os::unix::fs::symlink(target, dir.join(&id)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (img, d) = (image.clone(), dir.clone());
        std::thread::spawn(move || {
            let _ = tx.send(ImageReader::open_dir(img, &d).err().map(|e| e.to_string()));
        });
        let err = rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("opening {what} must not block"))
            .unwrap_or_else(|| panic!("{what} is refused"));
        assert!(err.contains("not a regular file"), "{what}: {err}");
        std::fs::remove_file(dir.join(&id)).unwrap();
    }
    std::fs::rename(&fifo, dir.join(&id)).unwrap();
    let err = ImageReader::open_dir(image.clone(), &dir)
        .err()
        .expect("a FIFO is refused");
    assert!(err.to_string().contains("not a regular file"), "{err}");
    std::fs::remove_file(dir.join(&id)).unwrap();

    let outside = tmp.join("outside");
    std::fs::write(&outside, &blob).unwrap();
    for link in [outside.clone(), PathBuf::from("../outside")] {
        std::os::unix::fs::symlink(&link, dir.join(&id)).unwrap();
        let r = ImageReader::open_dir(image.clone(), &dir).unwrap();
        assert_eq!(
            r.read_file(r.lookup("/f").unwrap()).unwrap(),
            b"secret-free content",
            "{}",
            link.display()
        );
        std::fs::remove_file(dir.join(&id)).unwrap();
    }

    std::fs::write(dir.join("real"), &blob).unwrap();
    std::os::unix::fs::symlink("real", dir.join(&id)).unwrap();
    let r = ImageReader::open_dir(image, &dir).unwrap();
    assert_eq!(
        r.read_file(r.lookup("/f").unwrap()).unwrap(),
        b"secret-free content"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

fn entries(tar: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let link = e
                .link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default();
            (e.path_bytes().into_owned(), link)
        })
        .collect()
}

/// Item 14: names, link targets and xattr names that are not UTF-8 go from tar to image to
/// tar byte for byte: two names never collapse into one, and the tar we write extracts (by
/// Python's `tarfile`) into its target only.
#[test]
fn names_that_are_not_utf8_round_trip_byte_exact() {
    let tmp = tmpdir("python");
    let outside = tmp.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let mut l = Layer::new();
    l.symlink(b"\xfe", outside.as_os_str().as_encoded_bytes())
        .dir(b"\xff/")
        .file(b"\xff/child", b"data")
        .symlink(b"link", b"\xff/child");
    l.local(&[("LIBARCHIVE.xattr.user.%FF", b"dmFsdWU=")])
        .file(b"x", b"1");
    let tar = l.finish();
    let out = build_layer(
        tar.as_slice(),
        &BuildOptions::new(FsVersion::V6),
        Vec::new(),
    )
    .unwrap();
    let blob = out.sink.clone();
    let reader = ImageReader::open_with(out.image.clone(), move |_| {
        Ok(Some(Box::new(blob.clone()) as BlobSource))
    })
    .unwrap();
    let (unpacked, _) = unpack_to_tar(&reader, Vec::new()).unwrap();
    let names = entries(&unpacked);
    let has = |p: &[u8]| names.iter().any(|(n, _)| n.as_slice() == p);
    assert!(
        has(b"\xfe") && has(b"\xff/") && has(b"\xff/child"),
        "{names:?}"
    );
    assert!(names
        .iter()
        .any(|(n, l)| n == b"link" && l == b"\xff/child"));
    // Converting our tar again gives the same image.
    let again = build_layer(
        unpacked.as_slice(),
        &BuildOptions::new(FsVersion::V6),
        Vec::new(),
    )
    .unwrap();
    let x = again
        .image
        .tree
        .inodes
        .iter()
        .find(|i| !i.xattrs.is_empty())
        .expect("the xattr survives");
    assert_eq!(x.xattrs[0].name, b"user.\xff");
    assert_eq!(x.xattrs[0].value, b"value");
    use rafs_testkit::{listing, Data};
    let comp = out.image.superblock.compressor;
    assert_eq!(
        listing(&out.image, &Data::Blob(&out.sink, comp)),
        listing(&again.image, &Data::Blob(&again.sink, comp))
    );

    // Python extracts it without writing outside the target (with the names collapsed, the
    // child went through the symlink into `outside`).
    let tar_path = tmp.join("u.tar");
    std::fs::write(&tar_path, &unpacked).unwrap();
    let target = tmp.join("target");
    std::fs::create_dir_all(&target).unwrap();
    let script = "import sys,tarfile\nt=tarfile.open(sys.argv[1])\nt.extractall(sys.argv[2])";
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&tar_path)
        .arg(&target)
        .status();
    match status {
        Ok(s) => {
            assert!(s.success(), "python extracts our tar");
            let seen: Vec<_> = std::fs::read_dir(&outside).unwrap().collect();
            assert!(seen.is_empty(), "written outside the target: {seen:?}");
            assert!(std::fs::symlink_metadata(target.join(Path::new(
                std::ffi::OsStr::from_encoded_bytes_checked(b"\xff/child")
            )))
            .is_ok());
        }
        Err(e) => rafs_testkit::skipped(format!("python3 extraction: {e}")),
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

trait FromBytesChecked {
    fn from_encoded_bytes_checked(b: &[u8]) -> &std::ffi::OsStr;
}

impl FromBytesChecked for std::ffi::OsStr {
    fn from_encoded_bytes_checked(b: &[u8]) -> &std::ffi::OsStr {
        std::os::unix::ffi::OsStrExt::from_bytes(b)
    }
}
