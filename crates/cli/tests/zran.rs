//! zran (`--type targz-ref`, issue 13): the reference's zran images — which its own `unpack`
//! cannot read — unpack through our reader to the ground-truth listings made without nydus;
//! ours unpack to them, mount in the kernel as them (`export --block`), and work on layers
//! gzip'ed by `gzip` at several levels, by Python's `gzip`, by `pigz` and as several gzip
//! members. (Byte identity with the reference is in `rafs-tar-build`'s reference tests.)

#![allow(
    clippy::cast_possible_truncation,
    reason = "tests: a pseudo-random generator's low bits pick words and bytes"
)]

mod common;
use common::{
    assert_reference_unpacks, expected, mounted_listing, ok, s, tempdir, unpacked_listing,
};
use rafs_testkit::{assert_listing, corpus, treelist_dir};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Puts a gzip layer into `blobs` under its sha256, as a registry names it; returns the id.
fn add_layer(blobs: &Path, gz: &[u8]) -> String {
    std::fs::create_dir_all(blobs).unwrap();
    let id = sha256_hex(gz);
    std::fs::write(blobs.join(&id), gz).unwrap();
    id
}

#[test]
fn the_references_zran_images_unpack_to_the_ground_truth() {
    let dir = tempdir("zran-reference");
    let blobs = dir.join("blobs");
    for layer in ["L1", "L2", "L3"] {
        add_layer(
            &blobs,
            &std::fs::read(corpus().join(format!("layers/{layer}.tar.gz"))).unwrap(),
        );
    }
    let mut checked = 0;
    for case in rafs_testkit::corpus_cases() {
        let zran_create = case.flag("targz-ref") && case.cmd.iter().any(|a| a.ends_with(".tar.gz"));
        if !zran_create && !case.name.starts_with("merge-v6-targz-ref") {
            continue;
        }
        // The metadata blobs the reference wrote (or the merge names) go beside the layers.
        let metas: Vec<String> = match case.value("--blob-digests") {
            Some(list) => list.split(',').map(String::from).collect(),
            None => case.blob_ids.iter().skip(1).cloned().collect(),
        };
        for id in &metas {
            let bytes = rafs_testkit::corpus_blob(id).unwrap();
            std::fs::write(blobs.join(id), bytes).unwrap();
        }
        let image = if case.flag("--blob-inline-meta") {
            blobs.join(&case.blob_ids[1])
        } else {
            case.dir.join("bootstrap")
        };
        let out = dir.join(format!("unpacked-{}", case.name));
        ok(&["check", "-D", s(&blobs), s(&image)]);
        assert_reference_unpacks(&case, &blobs, &image, &out);
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} zran cases");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Converts a gzip layer as the Go converter's OCI-ref mode does (`targz-ref
/// --blob-inline-meta --features blob-toc`) into `blobs`; returns the metadata blob's id.
fn convert_inline(blobs: &Path, layer: &Path) -> String {
    let json = ok(&[
        "convert",
        "-q",
        "--json",
        "-t",
        "targz-ref",
        "--blob-inline-meta",
        "--features",
        "blob-toc",
        "-D",
        s(blobs),
        s(layer),
    ]);
    json.split("\"meta_blob_id\": \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string()
}

/// Converts a gzip layer with targz-ref (separate bootstrap, then inline with a ToC) and
/// unpacks both, requiring `want`; returns the bootstrap and the blob directory.
fn convert_and_unpack(dir: &Path, tag: &str, gz: &[u8], want: &str) -> (PathBuf, PathBuf) {
    let blobs = dir.join("blobs");
    let id = add_layer(&blobs, gz);
    let layer = blobs.join(&id);
    let boot = dir.join(format!("{tag}.boot"));
    ok(&[
        "convert",
        "-q",
        "-t",
        "targz-ref",
        "-D",
        s(&blobs),
        "-B",
        s(&boot),
        s(&layer),
    ]);
    ok(&["check", "-D", s(&blobs), s(&boot)]);
    let out = dir.join(format!("unpacked-{tag}"));
    let got = fit_root(&unpacked_listing(&blobs, &boot, &out), want);
    assert_listing(tag, &got, want, &|_, _| false);
    let inline = dir.join(format!("{tag}-inline"));
    let meta_id = convert_inline(&inline, &layer);
    std::fs::copy(&layer, inline.join(&id)).unwrap();
    let out = dir.join(format!("unpacked-{tag}-inline"));
    let meta = inline.join(meta_id);
    let got = fit_root(&unpacked_listing(&inline, &meta, &out), want);
    assert_listing(&format!("{tag} inline"), &got, want, &|_, _| false);
    (boot, blobs)
}

#[test]
fn our_zran_images_unpack_and_mount_as_the_ground_truth() {
    let dir = tempdir("zran-ours");
    for layer in ["L1", "L2", "L3"] {
        let gz = std::fs::read(corpus().join(format!("layers/{layer}.tar.gz"))).unwrap();
        let want = expected(layer);
        let (boot, blobs) = convert_and_unpack(&dir, layer, &gz, &want);
        if let Some(listing) = mounted_listing(&blobs, &boot, &dir, layer) {
            assert_listing(&format!("{layer} mounted"), &listing, &want, &|_, _| false);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A layer of text files (about 12 MB, compressible like real layers: many deflate blocks,
/// several inflate contexts, chunks that start mid-block), plus a few binary ones.
fn text_layer() -> Vec<u8> {
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
    ];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..600u32 {
        // Each directory right before its files: GNU tar (the ground truth) restores a
        // directory's mtime once it has left it.
        if i % 47 == 0 {
            let mut h = tar::Header::new_ustar();
            h.set_path(format!("d{}/", i / 47)).unwrap();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            h.set_mode(0o755);
            h.set_mtime(1_700_000_000);
            h.set_cksum();
            b.append(&h, &[][..]).unwrap();
        }
        let len = (next() % 40_000) as usize;
        let mut text = String::with_capacity(len + 16);
        while text.len() < len {
            text.push_str(words[(next() % words.len() as u64) as usize]);
            text.push(if next() % 9 == 0 { '\n' } else { ' ' });
        }
        let data: Vec<u8> = if i % 50 == 7 {
            (0..len).map(|_| next() as u8).collect()
        } else {
            text.into_bytes()
        };
        let mut h = tar::Header::new_ustar();
        h.set_path(format!("d{}/f{i}.txt", i / 47)).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append(&h, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// The listing of a tar extracted by GNU tar (a reader nobody here wrote), but for the root,
/// which the tar does not list (an image gives it default attributes, GNU tar leaves the
/// directory it extracted into as it was).
fn listing_by_gnu_tar(dir: &Path, tar: &[u8]) -> String {
    let root = dir.join("gnu-tar");
    std::fs::create_dir_all(&root).unwrap();
    let path = dir.join("layer.tar");
    std::fs::write(&path, tar).unwrap();
    let st = Command::new("tar")
        .args(["-xpf", s(&path), "-C", s(&root)])
        .status()
        .unwrap();
    assert!(st.success());
    without_root(&treelist_dir(&root).unwrap())
}

fn without_root(listing: &str) -> String {
    listing
        .lines()
        .filter(|l| !l.starts_with("/ "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Drops the root's line when the expected listing has none.
fn fit_root(got: &str, want: &str) -> String {
    if want.lines().any(|l| l.starts_with("/ ")) {
        got.to_string()
    } else {
        without_root(got)
    }
}

fn compress_with(cmd: &str, args: &[&str], input: &Path) -> Option<Vec<u8>> {
    let out = Command::new(cmd).args(args).arg(input).output().ok()?;
    out.status.success().then_some(out.stdout)
}

#[test]
fn real_gzip_encoders_index_and_read_back() {
    let dir = tempdir("zran-encoders");
    let tar = text_layer();
    let want = listing_by_gnu_tar(&dir, &tar);
    let plain = dir.join("layer.tar");
    let mut variants: Vec<(String, Vec<u8>)> = Vec::new();
    for level in ["-1", "-6", "-9"] {
        let gz = compress_with("gzip", &[level, "-n", "-c"], &plain).expect("gzip");
        variants.push((format!("gzip{level}"), gz));
    }
    let py = "import gzip,sys; sys.stdout.buffer.write(gzip.compress(open(sys.argv[1],'rb').read(), 6, mtime=0))";
    let gz = compress_with("python3", &["-c", py], &plain).expect("python3 gzip");
    variants.push(("python-gzip".into(), gz));
    match compress_with("pigz", &["-6", "-n", "-c"], &plain) {
        Some(gz) => variants.push(("pigz".into(), gz)),
        None => rafs_testkit::skipped("pigz is not installed (.ci/run installs it)"),
    }
    // Two members: the stream switches mid-layer, and a context may not span the switch.
    let half = tar.len() / 2;
    let mut two = Vec::new();
    for part in [&tar[..half], &tar[half..]] {
        let p = dir.join("part");
        std::fs::write(&p, part).unwrap();
        two.extend(compress_with("gzip", &["-6", "-n", "-c"], &p).unwrap());
    }
    variants.push(("two-members".into(), two));
    for (tag, gz) in &variants {
        let (boot, blobs) = convert_and_unpack(&dir, tag, gz, &want);
        println!(
            "{tag}: {} bytes of gzip, bootstrap {}",
            gz.len(),
            boot.display()
        );
        let _ = blobs;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The reference's zran merge (the Go converter's OCI-ref mode: bootstraps named after the
/// layers, `--blob-digests`/`--blob-sizes` naming the metadata blobs) is reproduced byte for
/// byte by `rafs merge` with the same arguments.
#[test]
fn the_references_zran_merge_is_reproduced() {
    let case = rafs_testkit::corpus_cases()
        .into_iter()
        .find(|c| c.name == "merge-v6-targz-ref")
        .unwrap();
    let dir = tempdir("zran-merge-ref");
    let out = dir.join("bootstrap");
    let mut args: Vec<String> = vec!["merge".into()];
    let mut words = case.cmd.iter().skip(2);
    while let Some(w) = words.next() {
        match w.as_str() {
            "-B" => {
                words.next();
                args.extend(["-B".into(), s(&out).into()]);
            }
            "-J" => {
                words.next();
            }
            "--blob-digests" | "--blob-sizes" => {
                args.push(w.clone());
                args.push(words.next().unwrap().clone());
            }
            src => args.push(s(&case.dir.join(src)).into()),
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&args);
    let ours = std::fs::read(&out).unwrap();
    let theirs = std::fs::read(case.dir.join("bootstrap")).unwrap();
    assert!(
        ours == theirs,
        "the merged bootstrap differs from the reference's"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Go converter's OCI-ref flow end to end with our tools: each layer converted with
/// `targz-ref --blob-inline-meta --features blob-toc`, merged with the metadata blobs' digests
/// and sizes, read back (every chunk verified) and mounted by the kernel as the OCI model of
/// the stack.
#[test]
fn an_oci_ref_stack_merges_reads_and_mounts() {
    let dir = tempdir("zran-oci-ref");
    let blobs = dir.join("blobs");
    let (mut sources, mut digests, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    let (mut tocs, mut ids) = (Vec::new(), Vec::new());
    for layer in ["L1", "L2", "L3"] {
        let gz = std::fs::read(corpus().join(format!("layers/{layer}.tar.gz"))).unwrap();
        let id = add_layer(&blobs, &gz);
        let meta_id = convert_inline(&blobs, &blobs.join(&id));
        // The Go converter names each layer's bootstrap after the original layer's digest.
        let boot = dir.join(&id);
        let meta = std::fs::read(blobs.join(&meta_id)).unwrap();
        let reader = rafs_chunker::BlobReader::open(meta.as_slice()).unwrap();
        std::fs::write(&boot, reader.bootstrap().unwrap()).unwrap();
        // The Go converter's ToC digest: sha256 of the ToC entries (no tar header).
        let toc = reader
            .sections()
            .iter()
            .find(|x| x.name == "rafs.blob.toc")
            .unwrap();
        let (at, len) = (toc.offset as usize, toc.size as usize);
        tocs.push(sha256_hex(&meta[at..at + len]));
        ids.push(id.clone());
        sources.push(boot);
        digests.push(meta_id);
        sizes.push(meta.len().to_string());
    }
    let merged = dir.join("merged.boot");
    let (d, z, t) = (digests.join(","), sizes.join(","), tocs.join(","));
    let mut args = vec![
        "merge",
        "--blob-digests",
        &d,
        "--blob-sizes",
        &z,
        "--blob-toc-digests",
        &t,
        "-B",
        s(&merged),
    ];
    args.extend(sources.iter().map(|p| s(p)));
    ok(&args);
    // Each blob is an original layer, carrying its metadata blob and ToC as given.
    let image = rafs_format::decode(&std::fs::read(&merged).unwrap()).unwrap();
    assert_eq!(image.blobs.len(), 3);
    for b in &image.blobs {
        let i = ids.iter().position(|id| *id == b.blob_id).unwrap();
        assert_eq!(rafs_format::hex(&b.meta_digest), digests[i]);
        assert_eq!(b.meta_size.to_string(), sizes[i]);
        assert_eq!(rafs_format::hex(&b.toc_digest), tocs[i]);
    }
    ok(&["check", "-D", s(&blobs), s(&merged)]);
    let want = expected("oci-L1-L2-L3");
    let got = unpacked_listing(&blobs, &merged, &dir.join("unpacked"));
    assert_listing("oci-ref stack", &got, &want, &|_, _| false);
    if let Some(listing) = mounted_listing(&blobs, &merged, &dir, "stack") {
        assert_listing("oci-ref stack mounted", &listing, &want, &|_, _| false);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A layer of tiny files (1 to 3 bytes; one-byte files first, in the middle and last, among
/// others of a few hundred bytes): `gzip` leaves some of their chunks with compressed size 0
/// (inflate produced them from bits already read for the chunk before), which the reference
/// writes too and nydusd reads (issue 24, item 3). They must check, unpack and mount as GNU
/// tar extracts the layer.
#[test]
fn chunks_that_consume_no_gzip_input_read_back() {
    let dir = tempdir("zran-tiny");
    let mut b = tar::Builder::new(Vec::new());
    let mut state = 0x9e37_79b9_u64;
    for i in 0..2000u32 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let len = match i {
            0 | 1000 | 1999 => 1,
            _ if state % 7 == 0 => 300 + (state >> 40) as usize % 200,
            _ => 1 + (state >> 33) as usize % 3,
        };
        let data: Vec<u8> = (0..len).map(|j| b"ab"[(j + i as usize) % 2]).collect();
        let mut h = tar::Header::new_ustar();
        h.set_path(format!("f{i:05}")).unwrap();
        h.set_size(len as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append(&h, data.as_slice()).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let want = listing_by_gnu_tar(&dir, &tar);
    let gz = compress_with("gzip", &["-6", "-n", "-c"], &dir.join("layer.tar")).expect("gzip");
    let (boot, blobs) = convert_and_unpack(&dir, "tiny", &gz, &want);
    let image = rafs_format::decode(&std::fs::read(&boot).unwrap()).unwrap();
    let empty = image
        .tree
        .inodes
        .iter()
        .flat_map(|i| &i.chunks)
        .filter(|c| c.compressed_size == 0)
        .count();
    assert!(
        empty > 0,
        "no chunk with compressed size 0: the case is not exercised"
    );
    println!("{empty} chunks with compressed size 0");
    if let Some(listing) = mounted_listing(&blobs, &boot, &dir, "tiny") {
        assert_listing(
            "tiny mounted",
            &fit_root(&listing, &want),
            &want,
            &|_, _| false,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sixteen 1 MiB spans of zeros stored as one chunk: the reference's metadata keeps an inflate
/// context per span that nydusd counts against the chunks and refuses (no file of the layer
/// reads); ours keeps only the contexts a stored chunk uses, and `check -D` flags the
/// reference's (testdata/zran-contexts/README.md).
#[test]
fn zran_metadata_keeps_no_more_contexts_than_chunks() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/zran-contexts");
    let dir = tempdir("zran-contexts");
    let gz = std::fs::read(data.join("zeros.tar.gz")).unwrap();
    let ours = dir.join("ours");
    let id = add_layer(&ours, &gz);
    let boot = dir.join("ours.boot");
    ok(&[
        "convert",
        "-q",
        "-t",
        "targz-ref",
        "-D",
        s(&ours),
        "-B",
        s(&boot),
        s(&ours.join(&id)),
    ]);
    ok(&["check", "-D", s(&ours), s(&boot)]);
    let theirs = dir.join("theirs");
    add_layer(&theirs, &gz);
    let meta = "e568a36415e0131796c3217c5c662bf60ab7addbc9ef3ae6f51938467361f86c";
    std::fs::copy(data.join(meta), theirs.join(meta)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rafs"))
        .args(["check", "-D", s(&theirs), s(&data.join("reference.boot"))])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the reference's image passed");
    assert!(
        said.contains("2 zran inflate contexts for 1 chunks: nydusd refuses"),
        "{said}"
    );
    match rafs_testkit::nydusd_unavailable() {
        Some(why) => rafs_testkit::skipped(format!("nydusd half: {why}")),
        None => {
            let options = rafs_testkit::NydusdOptions::default();
            let zeros = vec![0u8; 8 << 20];
            let m =
                rafs_testkit::mount_nydusd(&boot, &ours, &dir.join("mnt-ours"), options).unwrap();
            assert!(std::fs::read(m.dir().join("zeros2")).unwrap() == zeros);
            drop(m);
            let reference = data.join("reference.boot");
            let m =
                rafs_testkit::mount_nydusd(&reference, &theirs, &dir.join("mnt-theirs"), options)
                    .unwrap();
            let err =
                std::fs::read(m.dir().join("zeros2")).expect_err("nydusd read the reference's");
            println!("nydusd on the reference's image: {err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
