//! nydusd, the FUSE daemon nydus-snapshotter starts for every container, reads every kind of
//! image we write as the OCI model of its layers (issue 24, item 7): each cell converts with
//! `rafs`, mounts the result with the reference `nydusd` (`localfs` backend, blobs named by id)
//! and with the kernel (`export --block`), lists both with `treelist.py` (type, mode, owner,
//! size, content digest read through the mount, mtime, symlink target, xattrs, device
//! numbers, hard links) and compares them with the ground truth made without nydus. Then two
//! mutations (a flipped chunk byte, a changed mode) must be seen.
//!
//! Skips, saying so, where nydusd or FUSE is missing (`.ci/run` installs nydusd); the kernel
//! half skips where EROFS cannot be mounted.

mod common;
use common::{expected, ok, s, tempdir};
use rafs_testkit::{
    assert_listing, corpus, mount_erofs, mount_nydusd, mount_unavailable, nydusd_unavailable,
    treelist_dir, NydusdOptions,
};
use std::path::{Path, PathBuf};

/// One image to read: its bootstrap, its blob directory, how to mount it, what it must show.
struct Cell {
    name: String,
    bootstrap: PathBuf,
    blobs: PathBuf,
    options: NydusdOptions,
    want: String,
}

/// The listing nydusd shows, or why it could not.
fn nydusd_listing(cell: &Cell, at: &Path) -> Result<String, String> {
    let mount = mount_nydusd(&cell.bootstrap, &cell.blobs, at, cell.options)?;
    let listing = treelist_dir(mount.dir());
    let log = rafs_testkit::nydusd::nydusd_log(&mount);
    drop(mount);
    listing.map_err(|e| format!("{e}\nnydusd said: {log}"))
}

/// The listing the kernel shows of `export --block`; `None` where it cannot mount.
fn kernel_listing(cell: &Cell, dir: &Path) -> Option<String> {
    if let Some(why) = mount_unavailable() {
        rafs_testkit::skipped(format!("the kernel half of {}: {why}", cell.name));
        return None;
    }
    let img = dir.join(format!("{}.img", cell.name));
    let boot = s(&cell.bootstrap);
    ok(&[
        "export",
        "--block",
        "-D",
        s(&cell.blobs),
        "-o",
        s(&img),
        boot,
    ]);
    let mounted = mount_erofs(&img, &[], &dir.join(format!("kmnt-{}", cell.name))).unwrap();
    let listing = treelist_dir(mounted.dir()).unwrap();
    drop(mounted);
    let _ = std::fs::remove_file(&img);
    Some(listing)
}

/// A listing without the root's line when `want` has none (a single layer's ground truth
/// lists only what its tar holds).
fn fit_root(got: &str, want: &str) -> String {
    if want.lines().any(|l| l.starts_with("/ ")) {
        return got.to_string();
    }
    got.lines()
        .filter(|l| !l.starts_with("/ "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The reference stores 0 for an mtime given only by a PAX record (corpus README); the
/// corpus' ground truth lists the tar's own value. Our builder follows the reference here
/// (byte identity), so every reader shows 0.
fn pax_mtime(got: &str, want: &str) -> bool {
    want.starts_with("/data/future-mtime ") && got == want.replace(" 10000000000 ", " 0 ")
}

/// nydusd reports an mtime of 0 (the epoch) as the time of the `stat` call: the reference's
/// own images of the same layer read the same way (checked by
/// `nydusd_shows_an_epoch_mtime_as_now_in_the_references_image_too`), the kernel shows 0.
fn epoch_mtime_as_now(got: &str, want: &str) -> bool {
    let (g, w): (Vec<&str>, Vec<&str>) = (got.split(' ').collect(), want.split(' ').collect());
    g.len() == w.len()
        && w.get(4) == Some(&"0")
        && g.get(4)
            .and_then(|t| t.parse::<u64>().ok())
            .is_some_and(|t| t > 1_700_000_000)
        && g.iter()
            .zip(&w)
            .enumerate()
            .all(|(i, (a, b))| i == 4 || a == b)
}

/// Runs a cell through nydusd and the kernel; returns the table row.
fn run_cell(cell: &Cell, dir: &Path) -> String {
    let nydusd = nydusd_listing(cell, &dir.join(format!("mnt-{}", cell.name)))
        .unwrap_or_else(|e| panic!("{}: {e}", cell.name));
    let nydusd = fit_root(&nydusd, &cell.want);
    let nydusd_quirks = |g: &str, w: &str| pax_mtime(g, w) || epoch_mtime_as_now(g, w);
    let allowed = assert_listing(&cell.name, &nydusd, &cell.want, &nydusd_quirks);
    let kernel = match kernel_listing(cell, dir) {
        Some(k) => {
            let k = fit_root(&k, &cell.want);
            let n = assert_listing(
                &format!("{} (kernel)", cell.name),
                &k,
                &cell.want,
                &pax_mtime,
            );
            format!("equal ({n} PAX-mtime lines)")
        }
        None => "SKIPPED (no EROFS mount here)".into(),
    };
    let paths = nydusd.lines().count();
    format!(
        "| {} | equal ({paths} paths; {allowed} lines PAX or epoch mtime) | {kernel} |",
        cell.name
    )
}

fn layer(name: &str) -> PathBuf {
    corpus().join(format!("layers/{name}"))
}

/// `rafs convert` of a corpus layer into `blobs`; returns the bootstrap.
fn convert(dir: &Path, blobs: &Path, tag: &str, layer_file: &str, args: &[&str]) -> PathBuf {
    std::fs::create_dir_all(blobs).unwrap();
    let boot = dir.join(format!("{tag}.boot"));
    let mut all = vec!["convert", "-q", "-D", s(blobs), "-B", s(&boot)];
    all.extend_from_slice(args);
    let input = layer(layer_file);
    all.push(s(&input));
    ok(&all);
    boot
}

fn cell(name: &str, bootstrap: PathBuf, blobs: &Path, want: &str, validate: bool) -> Cell {
    Cell {
        name: name.into(),
        bootstrap,
        blobs: blobs.to_path_buf(),
        options: NydusdOptions {
            digest_validate: validate,
            ..NydusdOptions::default()
        },
        want: expected(want),
    }
}

/// Single layers in every version, compressor, digester and chunk size we write.
fn layer_cells(dir: &Path) -> Vec<Cell> {
    let grid: [(&str, &str, &str, &str); 7] = [
        ("6", "zstd", "blake3", "0x100000"),
        ("5", "zstd", "blake3", "0x100000"),
        ("6", "lz4_block", "sha256", "0x1000"),
        ("5", "lz4_block", "blake3", "0x1000"),
        ("6", "none", "blake3", "0x1000000"),
        ("5", "none", "sha256", "0x1000000"),
        ("6", "zstd", "sha256", "0x10000"),
    ];
    let mut cells = Vec::new();
    for (v, c, d, size) in grid {
        let tag = format!("L1-v{v}-{c}-{d}-{size}");
        let blobs = dir.join(&tag);
        let args = ["--fs-version", v, "-c", c, "--digester", d, "-S", size];
        let boot = convert(dir, &blobs, &tag, "L1.tar", &args);
        // nydusd validates digests of v5 images only.
        cells.push(cell(&tag, boot, &blobs, "L1", v == "5"));
    }
    cells
}

/// Batch chunks, tarfs, zran, prefetch tables.
fn mode_cells(dir: &Path) -> Vec<Cell> {
    let mut cells = Vec::new();
    let blobs = dir.join("batch");
    let boot = convert(dir, &blobs, "batch", "L1.tar", &["--batch-size", "0x10000"]);
    cells.push(cell("L1-v6-batch-64K", boot, &blobs, "L1", false));

    // --encrypt (issue 22, item 6): AES-128-XTS under a random key the blob table records.
    for (tag, args) in [
        ("L1-v6-encrypted", &["--encrypt"][..]),
        (
            "L1-v6-encrypted-batch",
            &["--encrypt", "--batch-size", "0x10000"][..],
        ),
    ] {
        let blobs = dir.join(tag);
        let boot = convert(dir, &blobs, tag, "L1.tar", args);
        cells.push(cell(tag, boot, &blobs, "L1", false));
    }

    // tarfs: the layer tar is the blob, put in the blob directory as a symlink (item 6).
    let blobs = dir.join("tarfs");
    std::fs::create_dir_all(&blobs).unwrap();
    let boot = dir.join("tarfs.boot");
    ok(&[
        "convert",
        "-q",
        "-t",
        "tar-tarfs",
        "-B",
        s(&boot),
        s(&layer("L1.tar")),
    ]);
    let id = rafs_format::decode(&std::fs::read(&boot).unwrap())
        .unwrap()
        .blobs[0]
        .blob_id
        .clone();
    std::os::unix::fs::symlink(layer("L1.tar"), blobs.join(&id)).unwrap();
    let mut tarfs = cell("L1-v6-tarfs", boot, &blobs, "L1", false);
    tarfs.options.tarfs = true;
    cells.push(tarfs);

    // zran: the gzip layer is the data blob, named by its sha256, beside the metadata blob.
    let blobs = dir.join("zran");
    std::fs::create_dir_all(&blobs).unwrap();
    let gz = std::fs::read(layer("L1.tar.gz")).unwrap();
    let id = rafs_format::hex(&<sha2::Sha256 as sha2::Digest>::digest(&gz));
    std::fs::write(blobs.join(&id), &gz).unwrap();
    let boot = convert(dir, &blobs, "zran", "L1.tar.gz", &["-t", "targz-ref"]);
    cells.push(cell("L1-v6-zran", boot, &blobs, "L1", false));

    let patterns = dir.join("prefetch.txt");
    std::fs::write(&patterns, "/data\n/etc\n").unwrap();
    for v in ["5", "6"] {
        let tag = format!("L1-v{v}-prefetch");
        let blobs = dir.join(&tag);
        let args = ["--fs-version", v, "--prefetch-patterns", s(&patterns)];
        let boot = convert(dir, &blobs, &tag, "L1.tar", &args);
        let image = rafs_format::decode(&std::fs::read(&boot).unwrap()).unwrap();
        assert!(!image.prefetch.is_empty(), "{tag}: no prefetch table");
        cells.push(cell(&tag, boot, &blobs, "L1", v == "5"));
    }
    cells
}

/// Stacks: layered builds (`--parent-bootstrap`), merges, and a layer built against a chunk
/// dictionary.
fn stack_cells(dir: &Path) -> Vec<Cell> {
    let mut cells = Vec::new();
    for v in ["5", "6"] {
        let blobs = dir.join(format!("stack-v{v}"));
        let fv = ["--fs-version", v];
        let l1 = convert(dir, &blobs, &format!("s{v}-L1"), "L1.tar", &fv);
        let on = |p: &Path| -> Vec<String> {
            ["--fs-version", v, "--parent-bootstrap", s(p)]
                .map(String::from)
                .to_vec()
        };
        let args = on(&l1);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let l2 = convert(dir, &blobs, &format!("s{v}-L2p"), "L2.tar", &args);
        let args = on(&l2);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let l3 = convert(dir, &blobs, &format!("s{v}-L3p"), "L3.tar", &args);
        cells.push(cell(
            &format!("layered-v{v}"),
            l3,
            &blobs,
            "oci-L1-L2-L3",
            v == "5",
        ));

        let l2 = convert(dir, &blobs, &format!("s{v}-L2"), "L2.tar", &fv);
        let l3 = convert(dir, &blobs, &format!("s{v}-L3"), "L3.tar", &fv);
        let merged = dir.join(format!("merged-v{v}.boot"));
        ok(&["merge", "-B", s(&merged), s(&l1), s(&l2), s(&l3)]);
        cells.push(cell(
            &format!("merged-v{v}"),
            merged,
            &blobs,
            "oci-L1-L2-L3",
            v == "5",
        ));
    }
    // Three encrypted layers (three keys) merged: each blob read with its own key.
    let blobs = dir.join("stack-encrypted");
    let layers = ["L1", "L2", "L3"].map(|l| {
        let tag = format!("e-{l}");
        convert(dir, &blobs, &tag, &format!("{l}.tar"), &["--encrypt"])
    });
    let merged = dir.join("merged-encrypted.boot");
    ok(&[
        "merge",
        "-B",
        s(&merged),
        s(&layers[0]),
        s(&layers[1]),
        s(&layers[2]),
    ]);
    cells.push(cell(
        "merged-v6-encrypted",
        merged,
        &blobs,
        "oci-L1-L2-L3",
        false,
    ));
    cells.push(drop_in_encrypted_cell(dir));

    let blobs = dir.join("dict");
    let dict = convert(dir, &blobs, "dict-L1", "L1.tar", &[]);
    let spec = format!("bootstrap={}", s(&dict));
    let l2 = convert(dir, &blobs, "dict-L2", "L2.tar", &["--chunk-dict", &spec]);
    cells.push(cell("L2-v6-chunk-dict", l2, &blobs, "L2", false));
    cells
}

/// Runs the drop-in `nydus-image` with `args`, `stdin` on its standard input.
fn nydus_image(args: &[&str], stdin: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nydus-image"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "nydus-image {args:?}: {out:?}");
}

/// The Go converter's calls with `PackOption.Encrypt` on the drop-in `nydus-image`: each layer
/// packed (bootstrap inlined, ToC) under its own key, its `image.boot` taken out into a file
/// named by the packed blob's digest, then `merge` of those files, as `pkg/converter` does.
fn drop_in_encrypted_cell(dir: &Path) -> Cell {
    let blobs = dir.join("drop-in-encrypted");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut boots = Vec::new();
    for l in ["L1", "L2", "L3"] {
        let packed = dir.join(format!("{l}.packed"));
        nydus_image(
            &[
                "create",
                "--log-level",
                "warn",
                "--prefetch-policy",
                "fs",
                "--blob",
                s(&packed),
                "--whiteout-spec",
                "none",
                "--fs-version",
                "6",
                "--type",
                "tar-rafs",
                "--blob-inline-meta",
                "--features",
                "blob-toc",
                "--encrypt",
                s(&layer(&format!("{l}.tar"))),
            ],
            "/",
        );
        let bytes = std::fs::read(&packed).unwrap();
        let digest = rafs_format::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let boot = rafs_chunker::BlobReader::open_sections(bytes.as_slice())
            .unwrap()
            .bootstrap()
            .unwrap();
        assert!(rafs_format::decode(&boot).unwrap().superblock.encrypted);
        let boot_file = dir.join(&digest);
        std::fs::write(&boot_file, boot).unwrap();
        std::fs::rename(&packed, blobs.join(&digest)).unwrap();
        boots.push(boot_file);
    }
    let merged = dir.join("drop-in-encrypted.boot");
    let mut args = vec!["merge", "--log-level", "warn", "--prefetch-policy", "fs"];
    args.extend(["--bootstrap", s(&merged)]);
    args.extend(boots.iter().map(|b| s(b)));
    nydus_image(&args, "/");
    cell(
        "drop-in-v6-encrypted",
        merged,
        &blobs,
        "oci-L1-L2-L3",
        false,
    )
}

/// The testdata image layouts: the README's demo and the real-world cases of issue 24.
fn images_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/images")
}

/// What umoci (an independent implementation of the OCI layer model) unpacks for `tag`.
fn umoci_truth(layout: &Path, tag: &str, dir: &Path) -> String {
    let out = dir.join(format!("truth-{}", tag.replace(':', "-")));
    let image = format!("{}:{tag}", layout.display());
    let st = std::process::Command::new("umoci")
        .args(["unpack", "--image", &image, s(&out)])
        .output()
        .unwrap();
    assert!(st.status.success(), "umoci unpack {image}: {st:?}");
    let listing = treelist_dir(&out.join("rootfs")).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    listing
}

/// The merged bootstrap of the manifest `digest` in the converted `layout`, written to a
/// file; the layout's blob directory holds every blob by digest, as nydusd fetches them.
fn merged_bootstrap(layout: &Path, digest: &str, out: &Path) -> PathBuf {
    let l = rafs_oci::Layout::open(layout).unwrap();
    let manifest: serde_json::Value = l.read_json(digest, "manifest").unwrap();
    let boot = rafs_oci::check::bootstrap_of_manifest(&l, &manifest).unwrap();
    std::fs::write(out, boot).unwrap();
    out.to_path_buf()
}

/// The manifest digests a converted tag names: itself, or each entry of an index.
fn manifests_of(layout: &Path, tag: &str) -> Vec<String> {
    let l = rafs_oci::Layout::open(layout).unwrap();
    let desc = l.resolve(Some(tag)).unwrap();
    let digest = desc.digest().to_string();
    if !desc.media_type().to_string().contains("index") {
        return vec![digest];
    }
    let index: serde_json::Value = l.read_json(&digest, "index").unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Whole images from `convert-image` (the bootstrap layer's `image.boot`, the layer blobs by
/// digest): the demo and each real image, v5 and v6, an index of two platforms, OCI-ref and
/// chunk-dictionary conversions. Their ground truth is umoci's unpack of the source.
fn image_cells(dir: &Path) -> Vec<Cell> {
    let mut cells = Vec::new();
    let real = images_dir().join("real");
    let demo = images_dir().join("demo");
    let target = dir.join("converted");
    let mut convert_image =
        |name: &str, src: &Path, tag: &str, truths: &[(&str, String)], args: &[&str]| {
            let mut all = vec!["convert-image".to_string()];
            all.extend(args.iter().map(|a| a.to_string()));
            all.push(format!("oci:{}:{tag}", src.display()));
            all.push(format!("oci:{}:{name}", target.display()));
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            ok(&all);
            let digests = manifests_of(&target, name);
            assert_eq!(digests.len(), truths.len(), "{name}");
            for (digest, (label, truth)) in digests.iter().zip(truths) {
                let boot =
                    merged_bootstrap(&target, digest, &dir.join(format!("{name}-{label}.boot")));
                cells.push(Cell {
                    name: format!("{name}{label}"),
                    bootstrap: boot,
                    blobs: target.join("blobs/sha256"),
                    options: NydusdOptions {
                        digest_validate: args.contains(&"5"),
                        ..NydusdOptions::default()
                    },
                    want: truth.clone(),
                });
            }
        };
    let demo_truth = umoci_truth(&demo, "v1", dir);
    for v in ["5", "6"] {
        let fv = ["--fs-version", v];
        convert_image(
            &format!("demo-v{v}"),
            &demo,
            "v1",
            &[("", demo_truth.clone())],
            &fv,
        );
        for tag in ["replaced-dir", "xattrs", "empty"] {
            let truth = umoci_truth(&real, tag, dir);
            convert_image(&format!("{tag}-v{v}"), &real, tag, &[("", truth)], &fv);
        }
    }
    let both = [
        ("-amd64", umoci_truth(&real, "replaced-dir", dir)),
        ("-arm64", umoci_truth(&real, "xattrs", dir)),
    ];
    convert_image("multi-v6", &real, "multi", &both, &[]);
    convert_image(
        "demo-oci-ref",
        &demo,
        "v1",
        &[("", demo_truth.clone())],
        &["--oci-ref"],
    );
    let dict = format!("oci:{}:demo-v6", target.display());
    let with_dict = ["--chunk-dict", dict.as_str()];
    convert_image(
        "demo-chunk-dict",
        &demo,
        "v1",
        &[("", demo_truth)],
        &with_dict,
    );
    cells
}

#[test]
fn nydusd_reads_every_kind_of_output_as_the_oci_model() {
    if let Some(why) = nydusd_unavailable() {
        rafs_testkit::skipped(format!("nydusd matrix: {why}"));
        return;
    }
    if let Some(why) = mount_unavailable() {
        println!("note: the kernel half of each cell is skipped: {why}");
    }
    let dir = tempdir("nydusd-matrix");
    let mut cells = layer_cells(&dir);
    cells.extend(mode_cells(&dir));
    cells.extend(stack_cells(&dir));
    if rafs_testkit::run("umoci", &["--version"]).is_ok() {
        cells.extend(image_cells(&dir));
    } else {
        rafs_testkit::skipped("whole-image cells: umoci is not installed (.ci/run installs it)");
    }
    let mut table = vec![
        "| cell | nydusd | kernel (export --block) |".to_string(),
        "|---|---|---|".to_string(),
    ];
    for c in &cells {
        table.push(run_cell(c, &dir));
    }
    println!("{}", table.join("\n"));
    assert!(cells.len() >= 20, "only {} cells", cells.len());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The one difference nydusd shows is its own: the reference's image of L1 (in the corpus)
/// reads a file whose mtime is 0 with the time of the `stat` call too, in v5 and v6.
#[test]
fn nydusd_shows_an_epoch_mtime_as_now_in_the_references_image_too() {
    if let Some(why) = nydusd_unavailable() {
        rafs_testkit::skipped(format!("nydusd epoch mtime: {why}"));
        return;
    }
    let dir = tempdir("nydusd-epoch");
    let blobs = corpus().join("nydus-image/blobs");
    for case in ["L1-v5-default", "L1-v6-default"] {
        let boot = corpus().join(format!("nydus-image/{case}/bootstrap"));
        let mount = mount_nydusd(&boot, &blobs, &dir.join(case), NydusdOptions::default()).unwrap();
        let mtime = |p: &str| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(mount.dir().join(p)).unwrap().mtime()
        };
        assert_eq!(mtime("data/one-byte.txt"), 1_700_000_011, "{case}");
        assert!(
            mtime("data/epoch-mtime") > 1_700_000_000,
            "{case}: the epoch read as now"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The comparison has teeth: one byte flipped inside one chunk of a v5 image (read with
/// `digest_validate` on), and one mode changed in a v6 bootstrap, must each make the nydusd
/// listing differ from the ground truth or fail to be made.
#[test]
fn the_nydusd_comparison_sees_a_flipped_chunk_byte_and_a_changed_mode() {
    if let Some(why) = nydusd_unavailable() {
        rafs_testkit::skipped(format!("nydusd mutations: {why}"));
        return;
    }
    let dir = tempdir("nydusd-mutations");
    let want = expected("L1");
    let path = b"/data/random-64k.bin";

    let blobs = dir.join("flipped");
    let boot = convert(&dir, &blobs, "flipped", "L1.tar", &["--fs-version", "5"]);
    let image = rafs_format::decode(&std::fs::read(&boot).unwrap()).unwrap();
    let entry = image.tree.entries().find(|e| e.path == path).unwrap();
    let chunk = &entry.inode.chunks[0];
    let blob = blobs.join(&image.blobs[chunk.blob_index as usize].blob_id);
    let mut bytes = std::fs::read(&blob).unwrap();
    let at = usize::try_from(chunk.compressed_offset).unwrap() + 100;
    bytes[at] ^= 0x01;
    std::fs::write(&blob, bytes).unwrap();
    let flipped = cell("flipped", boot, &blobs, "L1", true);
    match nydusd_listing(&flipped, &dir.join("mnt-flipped")) {
        Ok(listing) => {
            let listing = fit_root(&listing, &want);
            assert_ne!(listing, want, "a flipped byte unseen");
            let line = listing
                .lines()
                .find(|l| l.starts_with("/data/random-64k.bin "));
            println!("flipped chunk byte: nydusd shows {line:?}");
        }
        Err(e) => println!(
            "flipped chunk byte: the listing failed as it must: {}",
            e.lines().next().unwrap_or("")
        ),
    }

    let blobs = dir.join("mode");
    let boot = convert(&dir, &blobs, "mode", "L1.tar", &[]);
    let mut image = rafs_format::decode(&std::fs::read(&boot).unwrap()).unwrap();
    let node = image.tree.entries().find(|e| e.path == path).unwrap().node;
    let inode = image.tree.node(node).inode;
    image.tree.inodes[inode.0 as usize].mode ^= 0o044;
    std::fs::write(&boot, rafs_format::encode(&image).unwrap()).unwrap();
    let changed = cell("mode", boot, &blobs, "L1", false);
    let listing = fit_root(
        &nydusd_listing(&changed, &dir.join("mnt-mode")).unwrap(),
        &want,
    );
    let differing: Vec<&str> = listing
        .lines()
        .zip(want.lines())
        .filter(|(g, w)| g != w && !epoch_mtime_as_now(g, w))
        .map(|(g, _)| g)
        .collect();
    assert_eq!(differing.len(), 1, "{differing:?}");
    assert!(
        differing[0].starts_with("/data/random-64k.bin reg 0644 "),
        "{differing:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
