//! Bad layers: each gives one typed error (the CLI test checks that no output file is left).

use rafs_format::model::FsVersion;
use rafs_tar_build::{build_layer, BuildOptions, EntryErrorKind, Error, TarErrorKind};
use std::io::Write;

fn header(path: &[u8], kind: tar::EntryType, size: u64, link: Option<&[u8]>) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    // Raw name bytes: the tar crate's setters refuse `..`, which is the point of some tests.
    h.as_mut_bytes()[..path.len()].copy_from_slice(path);
    if let Some(l) = link {
        h.as_mut_bytes()[157..157 + l.len()].copy_from_slice(l);
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h
}

/// A tar of (header, data) pairs, with the two zero blocks at the end.
fn tar_of(entries: &[(tar::Header, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (h, data) in entries {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

fn good() -> Vec<u8> {
    let text = b"some file content\n".repeat(200);
    tar_of(&[
        (header(b"dir/", tar::EntryType::Directory, 0, None), b""),
        (
            header(
                b"dir/a.txt",
                tar::EntryType::Regular,
                text.len() as u64,
                None,
            ),
            &text,
        ),
        (
            header(b"dir/b.txt", tar::EntryType::Regular, 5, None),
            b"hello",
        ),
    ])
}

fn build(bytes: &[u8]) -> Result<(), Error> {
    build_layer(bytes, &BuildOptions::new(FsVersion::V6), Vec::new()).map(|_| ())
}

fn entry_kind(e: &Error) -> EntryErrorKind {
    e.as_entry()
        .unwrap_or_else(|| panic!("not an entry error: {e}"))
        .kind
        .clone()
}

fn tar_kind(e: &Error) -> TarErrorKind {
    match e {
        Error::Tar { kind, .. } => kind.clone(),
        other => panic!("not a tar error: {other}"),
    }
}

#[test]
fn the_good_layer_converts() {
    build(&good()).unwrap();
}

#[test]
fn truncated_tar() {
    let g = good();
    // Inside the second file's data.
    let e = build(&g[..512 * 3 + 100]).unwrap_err();
    assert!(
        matches!(
            entry_kind(&e),
            EntryErrorKind::DataTruncated { declared: 3600, .. }
        ),
        "{e}"
    );
    // Inside a header.
    let e = build(&g[..512 + 200]).unwrap_err();
    assert!(matches!(tar_kind(&e), TarErrorKind::Truncated(_)), "{e}");
}

#[test]
fn bad_header_checksum() {
    let mut g = good();
    g[512 + 10] ^= 0x20; // a byte of the second header's name
    let e = build(&g).unwrap_err();
    assert_eq!(tar_kind(&e), TarErrorKind::BadChecksum, "{e}");
    match e {
        Error::Tar { offset, .. } => assert_eq!(offset, 512),
        _ => unreachable!(),
    }
}

/// The archive ends where Go's reader (containerd) ends it: after the two zero blocks
/// anything may follow and is not part of the layer; after one zero block a header is an
/// error. (The reference skips zero blocks and reads on.)
#[test]
fn garbage_after_the_end() {
    let mut g = good();
    g.extend_from_slice(&[0xa5; 512]);
    let options = BuildOptions::new(FsVersion::V6);
    let with_junk = build_layer(g.as_slice(), &options, Vec::new()).unwrap();
    let without = build_layer(good().as_slice(), &options, Vec::new()).unwrap();
    assert_eq!(with_junk.bootstrap, without.bootstrap);
    let mut one_zero = good();
    one_zero.truncate(one_zero.len() - 512);
    one_zero.extend_from_slice(&[0xa5; 512]);
    let e = build(&one_zero).unwrap_err();
    assert!(
        e.to_string().contains("a zero block followed by a header"),
        "{e}"
    );
}

#[test]
fn dotdot_path() {
    let t = tar_of(&[(
        header(b"up/../etc/passwd", tar::EntryType::Regular, 1, None),
        b"x",
    )]);
    let e = build(&t).unwrap_err();
    assert_eq!(entry_kind(&e), EntryErrorKind::DotDot, "{e}");
    assert_eq!(e.as_entry().unwrap().path, "up/../etc/passwd");
    let t = tar_of(&[
        (header(b"f", tar::EntryType::Regular, 1, None), b"x"),
        (header(b"l", tar::EntryType::Link, 0, Some(b"../f")), b""),
    ]);
    assert_eq!(entry_kind(&build(&t).unwrap_err()), EntryErrorKind::DotDot);
}

#[test]
fn hard_link_to_a_missing_target() {
    let t = tar_of(&[(header(b"l", tar::EntryType::Link, 0, Some(b"nowhere")), b"")]);
    let e = build(&t).unwrap_err();
    assert_eq!(
        entry_kind(&e),
        EntryErrorKind::LinkTargetMissing("/nowhere".into()),
        "{e}"
    );
    // A target that comes later in the stream is missing too.
    let t = tar_of(&[
        (header(b"l", tar::EntryType::Link, 0, Some(b"f")), b""),
        (header(b"f", tar::EntryType::Regular, 1, None), b"x"),
    ]);
    assert!(matches!(
        entry_kind(&build(&t).unwrap_err()),
        EntryErrorKind::LinkTargetMissing(_)
    ));
}

#[test]
fn hard_link_naming_itself() {
    for target in [&b"self"[..], b"./self", b"/self"] {
        let t = tar_of(&[
            (header(b"self", tar::EntryType::Regular, 1, None), b"x"),
            (header(b"self", tar::EntryType::Link, 0, Some(target)), b""),
        ]);
        let e = build(&t).unwrap_err();
        assert_eq!(entry_kind(&e), EntryErrorKind::LinkToItself, "{e}");
        assert_eq!(e.as_entry().unwrap().index, 1);
    }
}

#[test]
fn file_shorter_than_its_size() {
    let mut t = Vec::new();
    t.extend_from_slice(header(b"big", tar::EntryType::Regular, 100_000, None).as_bytes());
    t.extend_from_slice(&[7u8; 1000]);
    let e = build(&t).unwrap_err();
    assert!(
        matches!(
            entry_kind(&e),
            EntryErrorKind::DataTruncated {
                declared: 100_000,
                got: 1000
            }
        ),
        "{e}"
    );
}

#[test]
fn gzip_stream_cut_in_the_middle() {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let payload = (0..200_000u32)
        .flat_map(|i| i.to_le_bytes())
        .collect::<Vec<u8>>();
    let t = tar_of(&[(
        header(
            b"data.bin",
            tar::EntryType::Regular,
            payload.len() as u64,
            None,
        ),
        &payload,
    )]);
    enc.write_all(&t).unwrap();
    let gz = enc.finish().unwrap();
    build(&gz).unwrap();
    let e = build(&gz[..gz.len() / 2]).unwrap_err();
    let ok = matches!(
        &e,
        Error::Tar {
            kind: TarErrorKind::Decompression {
                algorithm: "gzip",
                ..
            } | TarErrorKind::Truncated(_),
            ..
        }
    ) || matches!(
        e.as_entry().map(|x| &x.kind),
        Some(EntryErrorKind::DataTruncated { .. })
    );
    assert!(ok, "{e}");
    // zstd, likewise.
    let zs = zstd::encode_all(t.as_slice(), 3).unwrap();
    build(&zs).unwrap();
    let e = build(&zs[..zs.len() / 2]).unwrap_err();
    let ok = matches!(&e, Error::Tar { .. })
        || matches!(
            e.as_entry().map(|x| &x.kind),
            Some(EntryErrorKind::DataTruncated { .. })
        );
    assert!(ok, "{e}");
}

#[test]
fn unsupported_xattr_namespace_and_bad_fields() {
    let mut pax = Vec::new();
    let rec = b" SCHILY.xattr.system.nfs4_acl=abc\n";
    let len = rec.len() + 2;
    pax.extend_from_slice(format!("{len}").as_bytes());
    pax.extend_from_slice(rec);
    let t = tar_of(&[
        (
            header(
                b"PaxHeaders/f",
                tar::EntryType::XHeader,
                pax.len() as u64,
                None,
            ),
            &pax,
        ),
        (header(b"f", tar::EntryType::Regular, 1, None), b"x"),
    ]);
    let e = build(&t).unwrap_err();
    assert!(
        matches!(entry_kind(&e), EntryErrorKind::BadXattr { .. }),
        "{e}"
    );
    // A device without numbers.
    let mut h = header(b"dev", tar::EntryType::Char, 0, None);
    h.as_mut_bytes()[329..345].fill(0);
    h.set_cksum();
    let e = build(&tar_of(&[(h, b"")])).unwrap_err();
    assert!(
        matches!(entry_kind(&e), EntryErrorKind::BadField { .. }),
        "{e}"
    );
}

#[test]
fn paths_deeper_than_a_reader_accepts() {
    let deep = "d/".repeat(5000) + "f";
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("path", deep.as_bytes())])
        .unwrap();
    b.append(
        &header(b"placeholder", tar::EntryType::Regular, 1, None),
        &b"x"[..],
    )
    .unwrap();
    let e = build(&b.into_inner().unwrap()).unwrap_err();
    assert_eq!(entry_kind(&e), EntryErrorKind::PathTooDeep(4096), "{e}");
}

#[test]
fn the_deepest_accepted_path_reads_back() {
    let deep = "d/".repeat(4095) + "f";
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("path", deep.as_bytes())])
        .unwrap();
    b.append(
        &header(b"placeholder", tar::EntryType::Regular, 1, None),
        &b"x"[..],
    )
    .unwrap();
    let out = build_layer(
        b.into_inner().unwrap().as_slice(),
        &BuildOptions::new(FsVersion::V6),
        Vec::new(),
    )
    .unwrap();
    let image = rafs_format::decode(&out.bootstrap).unwrap();
    assert_eq!(image.tree.nodes.len(), 4097);
}
