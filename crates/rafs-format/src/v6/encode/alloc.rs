//! The reference builder's metadata allocator (rafs-v6.md §9): inodes appended at a cursor,
//! small ones packed into the free tails of earlier blocks.

use crate::align_up;
use crate::ondisk::v6 as raw;
use std::collections::VecDeque;

/// Where one inode was put (provisional offsets: the metadata area starts at 0).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Placed {
    pub off: u64,
    pub layout: u16,
    /// Start of the block-aligned data (directories and symlinks).
    pub data_off: u64,
    /// Directory: its dirent size; others: unused.
    pub dir_size: u64,
}

/// The free-space allocator of the reference builder.
pub(super) struct Allocator {
    block: u64,
    /// The append cursor: after the last byte placed.
    pub cur: u64,
    /// Free block tails by size class (32-byte units).
    avail: Vec<VecDeque<u64>>,
    /// Bit `i` set when `avail[i]` is not empty (a block has at most 128 classes), so a
    /// search skips empty classes at once instead of visiting each.
    nonempty: u128,
}

impl Allocator {
    pub(super) fn new(block: u64) -> Self {
        Allocator {
            block,
            cur: 4096,
            avail: (0..128).map(|_| VecDeque::new()).collect(),
            nonempty: 0,
        }
    }

    /// Remembers the free tail of the block that `off` falls in.
    fn note_partial(&mut self, off: u64) {
        let r = off % self.block;
        if r != 0 {
            let class = (self.block - r) / 32;
            self.avail[crate::common::index(class)].push_back(off - r);
            self.nonempty |= 1 << class;
        }
    }

    /// Takes `size` bytes from the tail of a partly used block, if one has room.
    pub(super) fn take(&mut self, size: u64) -> Option<u64> {
        if size >= self.block {
            return None;
        }
        let lo = size.div_ceil(32);
        let hi = self.block.div_ceil(32);
        // The first non-empty class in lo..hi (lo < hi <= 128).
        let candidates = self.nonempty.checked_shr(u32::try_from(lo).ok()?)?;
        let i = lo + u64::from(candidates.trailing_zeros());
        if candidates == 0 || i >= hi {
            return None;
        }
        let class = &mut self.avail[crate::common::index(i)];
        let blk = class.pop_front()?;
        if class.is_empty() {
            self.nonempty &= !(1 << i);
        }
        let r = blk + self.block - i * 32;
        self.note_partial(r + lo * 32);
        Some(r)
    }

    /// `size` bytes from a free tail, or else at the cursor.
    pub(super) fn take_or_bump(&mut self, size: u64) -> u64 {
        match self.take(size) {
            Some(o) => o,
            None => self.bump(size),
        }
    }

    pub(super) fn align(&mut self, a: u64) {
        self.cur = align_up(self.cur, a);
    }

    /// Appends `size` bytes at the cursor.
    pub(super) fn bump(&mut self, size: u64) -> u64 {
        let off = self.cur;
        self.cur += size;
        off
    }

    /// Places an inode of `isize` bytes followed by `dsize` bytes of data, tail-packed when it
    /// fits (directories and symlinks).
    pub(super) fn place_with_tail(&mut self, isize: u64, dsize: u64) -> Placed {
        let b = self.block;
        let tail = dsize % b;
        if tail != 0 && isize + tail <= b {
            let need = isize + tail;
            let off = match self.take(need) {
                Some(o) => o,
                None => {
                    if b - self.cur % b < need {
                        self.note_partial(self.cur);
                        self.align(b);
                    }
                    self.bump(need)
                }
            };
            if dsize != tail {
                self.note_partial(self.cur);
                self.align(b);
            }
            let data_off = self.bump(dsize - tail);
            Placed {
                off,
                layout: raw::LAYOUT_FLAT_INLINE,
                data_off,
                dir_size: 0,
            }
        } else {
            let off = self.take_or_bump(isize);
            self.note_partial(self.cur);
            self.align(b);
            let data_off = self.bump(dsize);
            self.align(b);
            Placed {
                off,
                layout: raw::LAYOUT_FLAT_PLAIN,
                data_off,
                dir_size: 0,
            }
        }
    }
}
