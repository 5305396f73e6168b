//! # rafs-conformance
//!
//! A conformance kit for RAFS builders and readers — ours, the reference `nydus-image`, or any
//! other. It owns the corpus' cases as data (`cases.toml`: inputs, builder arguments, the
//! expected outcome — byte-identical to the reference's committed output, the OCI model
//! listing, or refused — and each implementation's known deviations with their reasons), runs
//! an implementation against them ([`builder::run_builder`]: any program with `nydus-image`'s
//! command line, or a command template; [`reader::run_reader`]: any reader that unpacks to a
//! tar or a directory), judges the results with our strict decoder and reader, and reports
//! them as a table, JSON or JUnit ([`report::Report`]).
//!
//! It does not own the formats (`rafs-format`, `rafs-chunker`, `rafs-reader` decode and read)
//! nor the corpus' files (`testdata/conformance`: layer tars, ground-truth listings, the
//! reference's outputs). It never prints: the `rafs conformance` command does.
//!
//! Dependencies: `toml` parses the case manifest; `serde`/`serde_json` the manifest and the
//! JSON report; `tempfile` gives each run a private scratch directory; `zstd` restores the
//! corpus' large reference blobs, stored compressed; `sha2` digests file contents in listings;
//! `rustix` kills a hung run's whole process group (a reader's daemon, a copy that would fill
//! the disk from an endless file).

pub mod builder;
pub mod cases;
mod exec;
mod judge;
pub mod listing;
pub mod reader;
pub mod report;

pub use builder::{run_builder, Builder, BuilderRun};
pub use cases::{Case, Expect, Manifest};
pub use reader::{run_reader, ReaderRun};
pub use report::{CaseResult, Report, Verdict};
