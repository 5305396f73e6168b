//! An image listed through our reader in the corpus' `treelist.py` format — `path type mode
//! uid:gid mtime extra xattrs links=N`, sorted by path bytes — so it compares line for line
//! with the ground truth of `expected/*.list` (made from the layer tars without nydus).

use rafs_format::model::{mode, Image, Inode};
use rafs_reader::ImageReader;
use sha2::Digest as _;
use std::collections::HashMap;
use std::io::Read;

/// The listing of `image`, its file contents read (and their chunk digests verified) from the
/// blobs in `blob_dir`.
pub fn listing(image: Image, blob_dir: &std::path::Path) -> Result<String, String> {
    let reader = ImageReader::open_dir(image, blob_dir)
        .map_err(|e| format!("opening the blobs: {e}"))?
        .verify_digests(true);
    let tree = &reader.image().tree;
    let mut names: HashMap<rafs_format::model::InodeId, usize> = HashMap::new();
    for n in &tree.nodes {
        *names.entry(n.inode).or_insert(0) += 1;
    }
    let mut lines = Vec::new();
    for id in tree.entries().map(|e| e.node) {
        let node = tree.node(id);
        let inode = tree.inode(node.inode);
        let path = tree.path(id);
        let (typ, extra) =
            type_and_extra(&reader, id, inode).map_err(|e| format!("{path}: {e}"))?;
        let links = if typ == "dir" {
            "-".to_string()
        } else {
            format!("links={}", names.get(&node.inode).copied().unwrap_or(1))
        };
        let line = format!(
            "{path} {typ} {:04o} {}:{} {} {extra} {} {links}",
            inode.mode & 0o7777,
            inode.uid,
            inode.gid,
            inode.mtime,
            xattr_field(inode)
        );
        lines.push((path.into_bytes(), line));
    }
    lines.sort();
    Ok(lines.into_iter().map(|(_, l)| l + "\n").collect())
}

fn type_and_extra(
    reader: &ImageReader,
    id: rafs_format::model::NodeId,
    inode: &Inode,
) -> Result<(&'static str, String), String> {
    Ok(match inode.file_type() {
        mode::S_IFDIR => ("dir", "-".to_string()),
        mode::S_IFREG => {
            let mut h = sha2::Sha256::new();
            let mut file = reader.file_reader(id).map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 1 << 16];
            let mut len = 0u64;
            loop {
                let n = file.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                len += n as u64;
            }
            if len != inode.size {
                return Err(format!("read {len} bytes of {}", inode.size));
            }
            let digest = rafs_format::hex(&h.finalize());
            ("reg", format!("{}:{}", inode.size, &digest[..16]))
        }
        mode::S_IFLNK => (
            "sym",
            format!("->{}", String::from_utf8_lossy(&inode.symlink)),
        ),
        t @ (mode::S_IFCHR | mode::S_IFBLK) => {
            let r = inode.rdev;
            use rafs_format::model::dev;
            let (major, minor) = (dev::major(r), dev::minor(r));
            let typ = if t == mode::S_IFCHR { "chr" } else { "blk" };
            (typ, format!("{major},{minor}"))
        }
        mode::S_IFIFO => ("fifo", "-".to_string()),
        _ => ("other", "-".to_string()),
    })
}

/// Xattrs sorted by name as `name=hexvalue`, comma-separated, or `-` (`treelist.py`'s field).
pub fn xattr_field(inode: &Inode) -> String {
    let mut xattrs: Vec<_> = inode.xattrs.iter().collect();
    if xattrs.is_empty() {
        return "-".to_string();
    }
    xattrs.sort_by(|a, b| a.name.cmp(&b.name));
    let fields: Vec<String> = xattrs
        .iter()
        .map(|x| {
            format!(
                "{}={}",
                String::from_utf8_lossy(&x.name),
                rafs_format::hex(&x.value)
            )
        })
        .collect();
    fields.join(",")
}

/// The first difference of two listings, or `None` when they are equal. A root line only one
/// side has is ignored (a single layer's ground truth lists what its tar holds).
pub fn difference(got: &str, want: &str) -> Option<String> {
    let keep_root = want.lines().any(|l| l.starts_with("/ "));
    compare(got, want, keep_root)
}

/// [`difference`] without the root line on either side: a tar need not hold the root
/// directory, whose attributes then do not travel.
pub fn difference_below_root(got: &str, want: &str) -> Option<String> {
    let want: String = want
        .lines()
        .filter(|l| !l.starts_with("/ "))
        .map(|l| format!("{l}\n"))
        .collect();
    compare(got, &want, false)
}

fn compare(got: &str, want: &str, keep_root: bool) -> Option<String> {
    let root = |l: &&str| !l.starts_with("/ ");
    let g: Vec<&str> = got.lines().filter(|l| keep_root || root(l)).collect();
    let w: Vec<&str> = want.lines().collect();
    if let Some((a, b)) = g.iter().zip(&w).find(|(a, b)| a != b) {
        return Some(format!("got `{a}`, expected `{b}`"));
    }
    (g.len() != w.len()).then(|| format!("{} paths, expected {}", g.len(), w.len()))
}
