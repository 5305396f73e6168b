//! v6 inline xattr name prefixes.

/// (index, prefix) in the order the reference tries them; the first match wins.
const PREFIXES: [(u8, &[u8]); 5] = [
    (1, b"user."),
    (2, b"system.posix_acl_access"),
    (3, b"system.posix_acl_default"),
    (4, b"trusted."),
    (6, b"security."),
];

/// Splits a full name into (prefix index, suffix).
pub(crate) fn split(name: &[u8]) -> Option<(u8, &[u8])> {
    PREFIXES
        .iter()
        .find(|(_, p)| name.starts_with(p))
        .map(|(i, p)| (*i, &name[p.len()..]))
}

/// The prefix of an index.
pub(crate) fn prefix(index: u8) -> Option<&'static [u8]> {
    PREFIXES.iter().find(|(i, _)| *i == index).map(|(_, p)| *p)
}

/// Bytes of one entry, padded to 4.
pub(crate) fn entry_size(suffix_len: usize, value_len: usize) -> usize {
    (4 + suffix_len + value_len + 3) & !3
}
