//! Test support shared by the workspace's test suites (a dev-dependency only): where the
//! conformance corpus is, how its blobs are stored, and mounting images with the kernel's
//! EROFS driver and with `nydusd`. Not part of any product.

pub mod layer;
pub mod nydusd;
pub mod registry;
pub mod token_issuer;

pub use nydusd::{mount_nydusd, nydusd_unavailable, NydusdMount, NydusdOptions};

use std::path::{Path, PathBuf};
use std::process::Command;

/// The copy of the conformance corpus in `testdata/`.
pub fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance")
}

/// The file of a blob in `nydus-image/blobs/`, following the pointer files that name a layer
/// tar (tarfs and ref cases). `None` for the two blobs stored only as `<id>.zst`.
pub fn blob_path(id: &str) -> Option<PathBuf> {
    let dir = corpus().join("nydus-image/blobs");
    let plain = dir.join(id);
    if let Ok(bytes) = std::fs::read(&plain) {
        if bytes.len() < 200 && bytes.starts_with(b"../") {
            return Some(dir.join(std::str::from_utf8(&bytes).ok()?.trim()));
        }
        return Some(plain);
    }
    None
}

/// One reference case of the corpus (`nydus-image/<name>/`): its command line, exit status
/// and the blobs it references.
#[derive(Debug, Clone)]
pub struct CorpusCase {
    /// Case name, e.g. `L1-v6-zstd-sha256`.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// `cmd.txt`, split into words.
    pub cmd: Vec<String>,
    /// The reference's exit status.
    pub rc: i32,
    /// Blob ids of `blobs.txt`, in order.
    pub blob_ids: Vec<String>,
}

impl CorpusCase {
    /// Whether the command has this flag.
    pub fn flag(&self, name: &str) -> bool {
        self.cmd.iter().any(|a| a == name)
    }

    /// The word after a flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        let i = self.cmd.iter().position(|a| a == name)?;
        self.cmd.get(i + 1).map(String::as_str)
    }

    /// The last word of the command (the input of `create`), resolved against the case.
    pub fn input(&self) -> PathBuf {
        self.dir
            .join(self.cmd.last().map(String::as_str).unwrap_or_default())
    }
}

/// Every reference case, by name.
pub fn corpus_cases() -> Vec<CorpusCase> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(corpus().join("nydus-image"))
        .expect("corpus present")
        .flatten()
    {
        let dir = e.path();
        let Ok(cmd) = std::fs::read_to_string(dir.join("cmd.txt")) else {
            continue;
        };
        let rc = std::fs::read_to_string(dir.join("rc"))
            .ok()
            .and_then(|r| r.trim().parse().ok())
            .unwrap_or(-1);
        let blob_ids = std::fs::read_to_string(dir.join("blobs.txt"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect();
        out.push(CorpusCase {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            dir,
            cmd: cmd.split_whitespace().map(String::from).collect(),
            rc,
            blob_ids,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The bytes of a reference blob, following pointer files and decompressing the `.zst`
/// copies of the two large `none` blobs.
pub fn corpus_blob(id: &str) -> Option<Vec<u8>> {
    if let Some(p) = blob_path(id) {
        return std::fs::read(p).ok();
    }
    let z = std::fs::read(corpus().join("nydus-image/blobs").join(format!("{id}.zst"))).ok()?;
    zstd::stream::decode_all(z.as_slice()).ok()
}

/// Every crafted single layer with a ground-truth listing (`expected/<name>.list`), and its
/// tar: stacks (`oci-*`) are left out, and `edge-E6-dotdot-path`, which we refuse by design.
pub fn crafted_layers() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(corpus().join("expected")).expect("corpus present") {
        let Some(name) = e
            .ok()
            .and_then(|e| Some(e.path().file_stem()?.to_string_lossy().into_owned()))
        else {
            continue;
        };
        if name.starts_with("oci-") || name == "edge-E6-dotdot-path" {
            continue;
        }
        out.push((name.clone(), layer_tar(&name)));
    }
    out.sort();
    out
}

/// The tar of a crafted layer by its listing name (`L1`, `edge-E2-hardlink-to-symlink`).
pub fn layer_tar(name: &str) -> PathBuf {
    match name.strip_prefix("edge-") {
        Some(edge) => corpus().join(format!("layers/edge/{edge}.tar")),
        None => corpus().join(format!("layers/{name}.tar")),
    }
}

/// The ground-truth listing of a layer or stack.
pub fn expected_list(name: &str) -> String {
    std::fs::read_to_string(corpus().join(format!("expected/{name}.list")))
        .expect("listing present")
}

/// Every file (not directory) below `dir`, hidden ones included.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Runs every input of a committed fuzz corpus (`fuzz/corpus/<target>/`) through the
/// function its target calls; panics naming the input that fails.
pub fn replay_corpus(target: &str, f: fn(&[u8]) -> Result<(), String>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.expect("corpus entry").path();
        let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        if let Err(msg) = f(&data) {
            panic!("{}: {msg}", p.display());
        }
        n += 1;
    }
    assert!(n >= 5, "{target}: only {n} inputs");
}

/// This process's peak resident set (VmHWM), in KiB.
pub fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Runs a command; its trimmed stdout, or an error naming it and its stderr.
pub fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Why mounting EROFS images is impossible here, if it is (not root, no driver, no losetup,
/// no python3 for `treelist.py`, no free loop device).
pub fn mount_unavailable() -> Option<String> {
    match run("id", &["-u"]) {
        Ok(uid) if uid == "0" => {}
        _ => return Some("not root".into()),
    }
    let _ = run("modprobe", &["erofs"]);
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fs.lines().any(|l| l.trim_end().ends_with("erofs")) {
        return Some("the kernel has no EROFS driver".into());
    }
    if run("losetup", &["--version"]).is_err() {
        return Some("losetup is not installed".into());
    }
    if run("python3", &["--version"]).is_err() {
        return Some("python3 is not installed".into());
    }
    // One probe file per call: tests of one binary probe at the same time.
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = std::env::temp_dir().join(format!("rafs-loop-probe-{}-{n}", std::process::id()));
    std::fs::write(&probe, vec![0u8; 4096]).ok()?;
    // A busy moment (another test taking the free device) is not an absent capability.
    let mut last = String::new();
    for _ in 0..3 {
        match run("losetup", &["-f", "--show", "-r", probe.to_str()?]) {
            Ok(dev) => {
                let _ = run("losetup", &["-d", &dev]);
                let _ = std::fs::remove_file(&probe);
                return None;
            }
            Err(e) => last = e,
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = std::fs::remove_file(&probe);
    Some(format!("no loop device: {last}"))
}

/// Loop devices and a mount, released on drop.
pub struct Mounted {
    loops: Vec<String>,
    dir: PathBuf,
    mounted: bool,
}

impl Mounted {
    /// The mount point.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.mounted {
            let _ = run("umount", &[self.dir.to_str().unwrap_or_default()]);
        }
        for l in &self.loops {
            let _ = run("losetup", &["-d", l]);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Mounts `bootstrap` read-only with EROFS at `dir`, with one `device=` loop per file of
/// `devices` (blob-table order).
pub fn mount_erofs(bootstrap: &Path, devices: &[PathBuf], dir: &Path) -> Result<Mounted, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut m = Mounted {
        loops: vec![],
        dir: dir.to_path_buf(),
        mounted: false,
    };
    let boot = run("losetup", &["-f", "--show", "-r", path_str(bootstrap)?])?;
    m.loops.push(boot.clone());
    let mut opts = String::from("ro");
    for d in devices {
        let l = run("losetup", &["-f", "--show", "-r", path_str(d)?])?;
        opts.push_str(&format!(",device={l}"));
        m.loops.push(l);
    }
    run(
        "mount",
        &["-t", "erofs", "-o", &opts, &boot, path_str(dir)?],
    )?;
    m.mounted = true;
    Ok(m)
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()))
}

/// `treelist.py dir` of a mounted tree.
pub fn treelist_dir(dir: &Path) -> Result<String, String> {
    let script = corpus().join("tools/treelist.py");
    run("python3", &[path_str(&script)?, "dir", path_str(dir)?])
}

/// Why overlayfs cannot be mounted here, if it cannot (root, loop devices, the module).
pub fn overlayfs_unavailable() -> Option<String> {
    if let Some(why) = mount_unavailable() {
        return Some(why);
    }
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fs.contains("overlay") && run("modprobe", &["overlay"]).is_err() {
        return Some("the kernel has no overlayfs".into());
    }
    None
}

/// `lower` (lowest first) mounted read-only by the kernel's overlayfs at `mnt`, listed by
/// `treelist.py`, unmounted.
pub fn overlay_listing(lower: &[PathBuf], mnt: &Path) -> Result<String, String> {
    let dirs: Vec<String> = lower
        .iter()
        .rev()
        .map(|d| d.display().to_string())
        .collect();
    std::fs::create_dir_all(mnt).map_err(|e| e.to_string())?;
    let at = path_str(mnt)?;
    let options = format!("lowerdir={}", dirs.join(":"));
    run("mount", &["-t", "overlay", "overlay", "-o", &options, at])?;
    let listing = treelist_dir(mnt);
    let _ = run("umount", &[at]);
    listing
}

/// A listing without `treelist.py`'s `(st_nlink=…)` marks: overlayfs reports a merged
/// directory's link count as 1, which is not a difference in the tree.
pub fn without_nlink_marks(listing: &str) -> String {
    listing
        .lines()
        .map(|l| l.split("(st_nlink=").next().unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts two listings have the same paths and equal lines, but where `allowed` accepts a
/// pair (a known difference, named by the caller); returns how many lines it accepted.
pub fn assert_listing(
    what: &str,
    got: &str,
    want: &str,
    allowed: &dyn Fn(&str, &str) -> bool,
) -> usize {
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    assert_eq!(
        g.len(),
        w.len(),
        "{what}: {} paths, expected {}\n{got}",
        g.len(),
        w.len()
    );
    let mut allowed_lines = 0;
    for (a, b) in g.iter().zip(&w) {
        if a != b {
            assert!(allowed(a, b), "{what}:\n  got:      {a}\n  expected: {b}");
            allowed_lines += 1;
        }
    }
    allowed_lines
}

use rafs_chunker::{BlobReader, Verify};
use rafs_format::model::{mode, Compressor, Image};
use sha2::Digest as _;
use std::collections::HashMap;

/// Where the file bytes of an image live.
pub enum Data<'a> {
    /// A data blob and its compressor.
    Blob(&'a [u8], Compressor),
    /// The layer tar of a tarfs image.
    Tar(&'a [u8]),
}

/// An image listed through our readers in `treelist.py` format: `path type mode uid:gid mtime
/// extra xattrs links=N`, sorted by path bytes.
pub fn listing(image: &Image, data: &Data<'_>) -> String {
    let tree = &image.tree;
    let mut names: HashMap<rafs_format::model::InodeId, usize> = HashMap::new();
    for n in &tree.nodes {
        *names.entry(n.inode).or_insert(0) += 1;
    }
    let reader = match data {
        Data::Blob(b, _) if !b.is_empty() => Some(BlobReader::open(*b).unwrap()),
        _ => None,
    };
    let mut lines = Vec::new();
    for id in tree.entries().map(|e| e.node) {
        let node = tree.node(id);
        let inode = tree.inode(node.inode);
        let path = tree.path(id);
        let (typ, extra) = type_and_extra(image, inode, data, reader.as_ref(), &path);
        let links = if typ == "dir" {
            "-".to_string()
        } else {
            assert_eq!(inode.nlink as usize, names[&node.inode], "{path}: nlink");
            format!("links={}", names[&node.inode])
        };
        let (mode, uid, gid, mtime) = (inode.mode & 0o7777, inode.uid, inode.gid, inode.mtime);
        let xs = xattr_field(inode);
        let line = format!("{path} {typ} {mode:04o} {uid}:{gid} {mtime} {extra} {xs} {links}");
        lines.push((path.into_bytes(), line));
    }
    lines.sort();
    lines.into_iter().map(|(_, l)| l + "\n").collect()
}

/// A listing line's type and extra field: a file's size and content digest (read through our
/// blob reader, or from the tar), a symlink's target, a device's numbers.
fn type_and_extra(
    image: &Image,
    inode: &rafs_format::model::Inode,
    data: &Data<'_>,
    reader: Option<&BlobReader<&[u8]>>,
    path: &str,
) -> (&'static str, String) {
    match inode.file_type() {
        mode::S_IFDIR => ("dir", "-".to_string()),
        mode::S_IFREG => {
            let mut h = sha2::Sha256::new();
            let mut len = 0u64;
            for c in &inode.chunks {
                let bytes = match data {
                    Data::Blob(_, comp) => {
                        let verify = Verify {
                            digest: Some(image.superblock.digester),
                            crc32: true,
                        };
                        reader.unwrap().read_chunk(c, *comp, verify).unwrap()
                    }
                    Data::Tar(t) => t[usize::try_from(c.uncompressed_offset).unwrap()..]
                        [..c.uncompressed_size as usize]
                        .to_vec(),
                };
                len += bytes.len() as u64;
                h.update(&bytes);
            }
            assert_eq!(len, inode.size, "{path}");
            (
                "reg",
                format!("{}:{}", inode.size, &rafs_format::hex(&h.finalize())[..16]),
            )
        }
        mode::S_IFLNK => (
            "sym",
            format!("->{}", String::from_utf8_lossy(&inode.symlink)),
        ),
        t @ (mode::S_IFCHR | mode::S_IFBLK) => {
            let r = inode.rdev;
            let major = rafs_format::model::dev::major(r);
            let minor = rafs_format::model::dev::minor(r);
            (
                if t == mode::S_IFCHR { "chr" } else { "blk" },
                format!("{major},{minor}"),
            )
        }
        mode::S_IFIFO => ("fifo", "-".to_string()),
        _ => ("other", "-".to_string()),
    }
}

/// Xattrs as `treelist.py` lists them (the conformance kit's one definition).
fn xattr_field(inode: &rafs_format::model::Inode) -> String {
    rafs_conformance::listing::xattr_field(inode)
}

/// Reports a check a test cannot make here (a tool, root or a kernel feature missing): prints
/// `SKIPPED: why`, or, where `RAFS_TESTS_REQUIRE_ALL` is set (`.ci/run` sets it, as CI has
/// everything installed), fails the test, so no check is silently left out there.
pub fn skipped(why: impl std::fmt::Display) {
    if std::env::var_os("RAFS_TESTS_REQUIRE_ALL").is_some() {
        panic!("required here (RAFS_TESTS_REQUIRE_ALL), but: {why}");
    }
    println!("SKIPPED: {why}");
}
