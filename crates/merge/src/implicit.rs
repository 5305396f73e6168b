//! Directories a layer's tar leaves out. The builder makes them `0755 0:0` with mtime 0, and
//! the reference's merge lets those defaults win over the real directory below. containerd's
//! overlay unpack shows the lower directory instead, so where the lower layers are known (a
//! whole image, a build onto a parent bootstrap) such a directory takes the attributes of the
//! nearest layer below that lists it, unless a whiteout or an opaque marker in between hides
//! that one.

use rafs_format::model::{mode, Image, NodeId, WhiteoutSpec};

const OPAQUE: &[u8] = b".wh..wh..opq";

/// Components of an absolute path (`/` has none).
fn components(path: &[u8]) -> Vec<&[u8]> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .collect()
}

/// Whether `layer` hides what lower layers hold at `path`: an opaque marker in a directory
/// above it, or a whiteout of it or of a directory above it, as `spec` spells them.
fn hides(layer: &Image, path: &[&[u8]], spec: WhiteoutSpec) -> bool {
    let tree = &layer.tree;
    for depth in 0..path.len() {
        let dir = &path[..depth];
        let Some(d) = tree.lookup_components(dir.iter().copied()) else {
            continue;
        };
        let hidden = match spec {
            WhiteoutSpec::Oci => {
                let whiteout = [b".wh.".as_slice(), path[depth]].concat();
                tree.child(d, OPAQUE).is_some() || tree.child(d, &whiteout).is_some()
            }
            WhiteoutSpec::Overlayfs => {
                let opaque = tree
                    .inode_of(d)
                    .xattrs
                    .iter()
                    .any(|x| x.name == b"trusted.overlay.opaque" && x.value == b"y");
                let whiteout = tree.child(d, path[depth]).is_some_and(|c| {
                    let i = tree.inode_of(c);
                    i.file_type() == rafs_format::model::mode::S_IFCHR && i.rdev == 0
                });
                opaque || whiteout
            }
            WhiteoutSpec::None => false,
        };
        if hidden {
            return true;
        }
    }
    false
}

/// The attributes the directory at `path` should show, found below `top` (the topmost layer
/// holding it, where it is implicit); `None` keeps the builder's defaults.
fn lower_dir(
    images: &[Image],
    implicit: &[&[Vec<u8>]],
    path: &[u8],
    top: usize,
    spec: WhiteoutSpec,
) -> Option<(usize, NodeId)> {
    let comps = components(path);
    let mut j = top;
    while j > 0 {
        if hides(&images[j], &comps, spec) {
            return None;
        }
        j -= 1;
        let Some(n) = images[j].tree.lookup_components(comps.iter().copied()) else {
            continue;
        };
        if !images[j].tree.inode_of(n).is_dir() {
            return None;
        }
        if !implicit[j].iter().any(|p| p.as_slice() == path) {
            return Some((j, n));
        }
    }
    None
}

/// Gives every directory of `merged` whose topmost layer left it out the attributes (mode,
/// owner, times, xattrs) of the directory a lower layer lists. `images` are the layers merged
/// (lowest first), `implicit` the directories each one's tar left out
/// (`rafs_tar_build::BuildOutput::implicit_dirs`), `spec` how their markers are spelled.
pub fn inherit_implicit_dirs(
    merged: &mut Image,
    images: &[Image],
    implicit: &[&[Vec<u8>]],
    spec: WhiteoutSpec,
) {
    fix_implicit_dirs(merged, images, implicit, spec, false);
}

/// [`inherit_implicit_dirs`], and a directory left out with no directory below it gets what
/// containerd's applier gives a parent it has to create (`mkdirAll(parent, 0700)`, as root):
/// mode 0700, owner 0:0, no xattrs. Whole images use this, so that a converted image shows
/// what containerd's unpack of its layers shows.
pub fn implicit_dirs_as_containerd(
    merged: &mut Image,
    images: &[Image],
    implicit: &[&[Vec<u8>]],
    spec: WhiteoutSpec,
) {
    fix_implicit_dirs(merged, images, implicit, spec, true);
}

fn fix_implicit_dirs(
    merged: &mut Image,
    images: &[Image],
    implicit: &[&[Vec<u8>]],
    spec: WhiteoutSpec,
    containerd_default: bool,
) {
    let mut fixes = Vec::new();
    for e in merged.tree.entries() {
        if !e.inode.is_dir() {
            continue;
        }
        let path = e.path.clone();
        let comps = components(&path);
        let top = (0..images.len()).rev().find(|&k| {
            images[k]
                .tree
                .lookup_components(comps.iter().copied())
                .is_some()
        });
        let Some(top) = top.filter(|&k| implicit[k].contains(&path)) else {
            continue;
        };
        match lower_dir(images, implicit, &path, top, spec) {
            Some((j, n)) => fixes.push((e.node, images[j].tree.inode_of(n).clone())),
            None if containerd_default => {
                let mut made = rafs_format::model::Inode::new(mode::S_IFDIR | 0o700);
                made.mtime = e.inode.mtime;
                made.mtime_nsec = e.inode.mtime_nsec;
                fixes.push((e.node, made));
            }
            None => {}
        }
    }
    for (node, lower) in fixes {
        let id = merged.tree.node(node).inode;
        let inode = &mut merged.tree.inodes[id.0 as usize];
        inode.mode = lower.mode;
        inode.uid = lower.uid;
        inode.gid = lower.gid;
        inode.mtime = lower.mtime;
        inode.mtime_nsec = lower.mtime_nsec;
        inode.xattrs = lower.xattrs;
    }
}
