//! The code behind the `rafs` command and the drop-in `nydus-image` command (the two
//! binaries of this crate): argument parsing, calls into `rafs-format`, `rafs-chunker`,
//! `rafs-tar-build`, `rafs-merge`, `rafs-reader` and `rafs-oci`, and everything the terminal
//! sees (printing, progress, exit codes) and the output files (written atomically). It is not
//! a library API: programs use those crates.
//!
//! Dependencies: `clap` parses the command lines, `serde` and `serde_json` print the stable
//! `--json` forms documented in the README, `indicatif` draws the progress bars,
//! `signal-hook` turns SIGINT/SIGTERM into a clean-up and exit on a thread of its own, `libc`
//! fixes glibc's mmap threshold (the crate's only `unsafe`, see
//! [`process::fix_malloc_mmap_threshold`]). Output files are staged unnamed by
//! `rafs_chunker::StagedFile` and committed together by `output`.

pub mod check;
pub mod choices;
pub mod conformance;
pub mod convert;
pub mod image;
pub mod images;
pub mod inspect;
mod journal;
pub mod maintenance;
pub mod nydus_image;
pub mod output;
pub mod process;
pub mod registry_args;
pub mod source;

/// Any failure the CLI reports.
pub type CliResult<T> = Result<T, Box<dyn std::error::Error>>;
