//! `nydus-image`: the reference builder's command line on rafs-rs, for the Go tool chain
//! (`NYDUS_BUILDER`, `nydusify --nydus-image`, or first on `PATH`). See `rafs_cli::nydus_image`.

fn main() -> std::process::ExitCode {
    rafs_cli::nydus_image::main()
}
