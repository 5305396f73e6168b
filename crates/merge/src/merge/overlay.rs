//! The overlay of layer trees: markers (whiteouts, opaque directories) applied as containerd
//! applies them, and the merged tree back to the model.

use super::*;

/// A node of the tree being overlaid; its inode is (layer, inode in that layer's image).
pub(super) struct MNode {
    pub(super) children: BTreeMap<Vec<u8>, usize>,
    pub(super) inode: (usize, InodeId),
}

pub(super) struct MTree {
    pub(super) nodes: Vec<MNode>,
}

impl MTree {
    /// Removes every OCI whiteout and opaque marker name (and what is below it).
    pub(super) fn drop_markers(&mut self) {
        let mut stack = vec![0usize];
        while let Some(n) = stack.pop() {
            self.nodes[n]
                .children
                .retain(|name, _| matches!(marker(name), Marker::None));
            stack.extend(self.nodes[n].children.values().copied());
        }
    }

    pub(super) fn from_tree(tree: &Tree, layer: usize) -> Self {
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        // Node ids of the model are dense; children lists map one to one.
        for n in &tree.nodes {
            let _ = &n.name;
            nodes.push(MNode {
                children: BTreeMap::new(),
                inode: (layer, n.inode),
            });
        }
        for (i, n) in tree.nodes.iter().enumerate() {
            for c in &n.children {
                let name = tree.node(*c).name.clone();
                nodes[i].children.insert(name, c.0 as usize);
            }
        }
        MTree { nodes }
    }
}

/// What an upper entry is under the OCI whiteout spec (the only one merge applies).
pub(super) enum Marker<'a> {
    Opaque,
    Remove(&'a [u8]),
    None,
}

pub(super) fn marker(name: &[u8]) -> Marker<'_> {
    // Names that are not UTF-8 are never markers (as in the reference).
    if std::str::from_utf8(name).is_err() {
        return Marker::None;
    }
    if name == b".wh..wh..opq" {
        Marker::Opaque
    } else if let Some(victim) = name.strip_prefix(b".wh.") {
        Marker::Remove(victim)
    } else {
        Marker::None
    }
}

pub(super) struct Overlay<'a> {
    pub(super) tree: MTree,
    pub(super) layers: &'a [Vec<Inode>],
    pub(super) spec: WhiteoutSpec,
    /// overlayfs opaque directories of upper layers (their marker xattr already removed).
    pub(super) opaque: std::collections::HashSet<(usize, InodeId)>,
}

impl Overlay<'_> {
    pub(super) fn is_dir(&self, node: usize) -> bool {
        let (l, i) = self.tree.nodes[node].inode;
        self.layers[l][i.0 as usize].is_dir()
    }

    /// `merge_children(lower, upper)`: whiteouts first, then replacements and additions, then
    /// the same for each upper directory (build.md §9.2).
    pub(super) fn merge_children(&mut self, lower: usize, upper: &MTree, up: usize) {
        let mut pass2 = Vec::new();
        for (name, &u) in &upper.nodes[up].children {
            let (l, i) = upper.nodes[u].inode;
            let inode = &self.layers[l][i.0 as usize];
            match self.spec {
                WhiteoutSpec::Oci => match marker(name) {
                    Marker::Opaque => self.tree.nodes[lower].children.clear(),
                    Marker::Remove(victim) => {
                        self.tree.nodes[lower].children.remove(victim);
                    }
                    Marker::None => pass2.push((name.clone(), u)),
                },
                WhiteoutSpec::Overlayfs => {
                    // A char device 0:0 removes the lower entry; an opaque directory hides
                    // the lower directory's children and then merges like any directory.
                    if inode.file_type() == rafs_format::model::mode::S_IFCHR && inode.rdev == 0 {
                        self.tree.nodes[lower].children.remove(name);
                        continue;
                    }
                    if self.opaque.contains(&(l, i)) {
                        if let Some(&low) = self.tree.nodes[lower].children.get(name) {
                            self.tree.nodes[low].children.clear();
                        }
                    }
                    pass2.push((name.clone(), u));
                }
                WhiteoutSpec::None => pass2.push((name.clone(), u)),
            }
        }
        let mut dirs = Vec::new();
        for (name, u) in pass2 {
            let up_inode = upper.nodes[u].inode;
            match self.tree.nodes[lower].children.get(&name).copied() {
                Some(l) => {
                    self.tree.nodes[l].inode = up_inode;
                    // An upper non-directory drops the lower subtree; an upper directory
                    // merges with it (a lower file had no children to keep).
                    if !self.is_dir(l) {
                        self.tree.nodes[l].children.clear();
                    }
                    if self.is_dir(l) {
                        dirs.push((l, u));
                    }
                }
                None => {
                    let n = self.tree.nodes.len();
                    self.tree.nodes.push(MNode {
                        children: BTreeMap::new(),
                        inode: up_inode,
                    });
                    self.tree.nodes[lower].children.insert(name, n);
                    if self.is_dir(n) {
                        dirs.push((n, u));
                    }
                }
            }
        }
        // An explicit stack would only matter for trees deeper than `Limits::max_depth`,
        // which decoding already refused.
        for (l, u) in dirs {
            self.merge_children(l, upper, u);
        }
    }
}

/// overlayfs opaque markers of upper layers: noted, and the xattr dropped (build.md §9.2).
pub(super) fn take_opaque_markers(
    layer_inodes: &mut [Vec<Inode>],
    spec: WhiteoutSpec,
) -> std::collections::HashSet<(usize, InodeId)> {
    let mut opaque = std::collections::HashSet::new();
    if spec != WhiteoutSpec::Overlayfs {
        return opaque;
    }
    for (l, inodes) in layer_inodes.iter_mut().enumerate().skip(1) {
        for (i, inode) in inodes.iter_mut().enumerate() {
            let before = inode.xattrs.len();
            inode
                .xattrs
                .retain(|x| !(x.name == b"trusted.overlay.opaque" && x.value == b"y"));
            if inode.is_dir() && inode.xattrs.len() != before {
                opaque.insert((l, InodeId::at(i)));
            }
        }
    }
    opaque
}

/// Node ids breadth first, children in name order.
pub(crate) fn bfs(tree: &Tree) -> Vec<NodeId> {
    let mut out = Vec::with_capacity(tree.nodes.len());
    let mut queue = VecDeque::from([ROOT]);
    while let Some(n) = queue.pop_front() {
        out.push(n);
        queue.extend(tree.node(n).children.iter().copied());
    }
    out
}

/// The overlaid tree as a model tree: inodes shared by (layer, inode), `nlink` recomputed as
/// the reference computes it.
pub(super) fn to_model(m: &MTree, layers: &[Vec<Inode>]) -> Tree {
    let get = |(l, i): (usize, InodeId)| layers[l][i.0 as usize].clone();
    let mut tree = Tree::with_root(get(m.nodes[0].inode));
    let mut ids: HashMap<(usize, InodeId), InodeId> = HashMap::new();
    ids.insert(m.nodes[0].inode, tree.node(ROOT).inode);
    let mut queue = VecDeque::from([(0usize, ROOT)]);
    while let Some((n, id)) = queue.pop_front() {
        for (name, &c) in &m.nodes[n].children {
            let key = m.nodes[c].inode;
            let ino = match ids.get(&key) {
                Some(&i) => i,
                None => {
                    let i = tree.add_inode(get(key));
                    ids.insert(key, i);
                    i
                }
            };
            let child = tree.push_child(id, name.clone(), ino);
            queue.push_back((c, child));
        }
    }
    let mut names: HashMap<InodeId, u32> = HashMap::new();
    let mut subdirs: HashMap<InodeId, u32> = HashMap::new();
    for node in &tree.nodes {
        *names.entry(node.inode).or_insert(0) += 1;
        if let Some(p) = node.parent {
            if tree.inode(node.inode).is_dir() {
                *subdirs.entry(tree.node(p).inode).or_insert(0) += 1;
            }
        }
    }
    for (i, inode) in tree.inodes.iter_mut().enumerate() {
        let id = InodeId::at(i);
        inode.nlink = if inode.is_dir() {
            2 + subdirs.get(&id).copied().unwrap_or(0)
        } else {
            names.get(&id).copied().unwrap_or(1)
        };
    }
    tree
}
