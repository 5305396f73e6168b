//! Real root-file-system layers for the benches that convert whole layers and images: a
//! gzip'ed layer of 150+ MB of this machine's files (`/etc`, `/usr/sbin`, Python, Perl,
//! `/var/lib/dpkg`, zoneinfo, shared libraries) and two smaller ones (`/usr/share/doc`,
//! `/usr/share/man`), made once under a directory and reused.

use std::io::Write;
use std::path::{Path, PathBuf};

const ROOTFS: &[&str] = &[
    "/etc",
    "/usr/sbin",
    "/var/lib/dpkg",
    "/usr/share/zoneinfo",
    "/usr/share/perl",
    "/usr/lib/python3",
    "/usr/lib/python3.11",
    "/usr/lib/x86_64-linux-gnu",
];

/// A gzip'ed tar of the regular files, directories and symlinks under `roots`, stopping once
/// `limit` bytes of file data are in.
fn make_layer(path: &Path, roots: &[&str], limit: u64) -> u64 {
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::new(6),
    );
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let mut total = 0u64;
    let mut stack: Vec<PathBuf> = roots
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect();
    stack.reverse();
    while let Some(p) = stack.pop() {
        if total >= limit {
            break;
        }
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let name = p.strip_prefix("/").unwrap();
        if meta.is_dir() {
            let _ = tar.append_dir(name, &p);
            let mut children: Vec<PathBuf> = match std::fs::read_dir(&p) {
                Ok(d) => d.filter_map(|e| e.ok().map(|e| e.path())).collect(),
                Err(_) => continue,
            };
            children.sort();
            children.reverse();
            stack.extend(children);
        } else if (meta.is_file() || meta.file_type().is_symlink())
            && tar.append_path_with_name(&p, name).is_ok()
            && meta.is_file()
        {
            total += meta.len();
        }
    }
    tar.into_inner().unwrap().finish().unwrap().flush().unwrap();
    total
}

/// The three layers under `dir`, made if missing: root file system, doc, man.
pub fn rootfs_layers(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let specs: [(&str, &[&str], u64); 3] = [
        ("rootfs.tar.gz", ROOTFS, 170 << 20),
        ("doc.tar.gz", &["/usr/share/doc"], 20 << 20),
        ("man.tar.gz", &["/usr/share/man"], 10 << 20),
    ];
    specs
        .iter()
        .map(|(name, roots, limit)| {
            let p = dir.join(name);
            if !p.exists() {
                let data = make_layer(&p, roots, *limit);
                println!(
                    "made {name}: {} MB of files, {} MB gzip'ed",
                    data >> 20,
                    std::fs::metadata(&p).unwrap().len() >> 20
                );
            }
            p
        })
        .collect()
}
