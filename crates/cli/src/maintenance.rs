//! `rafs gc` and `rafs rewrite`: clean up after killed commands; decode and encode again.

use crate::{images, output, source, CliResult};
use std::path::PathBuf;
use std::process::ExitCode;

/// `rafs gc DIRS`.
pub fn gc(dirs: &[PathBuf]) -> CliResult<ExitCode> {
    for dir in dirs {
        if !dir.is_dir() {
            return Err(format!("{}: not a directory", dir.display()).into());
        }
        let commits = output::recover_interrupted(dir)?;
        let mut temporaries = 0;
        if dir.join("oci-layout").is_file() {
            temporaries = rafs_oci::scratch::sweep(dir)?
                + rafs_oci::scratch::sweep(&dir.join("blobs").join("sha256"))?;
        }
        println!(
            "{}: {commits} unfinished commits taken back, {temporaries} left-over temporaries removed",
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `rafs rewrite`.
pub fn rewrite(
    input: &std::path::Path,
    version: Option<crate::choices::FsVersionArg>,
    out: &std::path::Path,
) -> CliResult<ExitCode> {
    let image = source::ImageFile::open(input)?.decode()?;
    let target = version.map_or(image.superblock.fs_version, Into::into);
    let bytes = rafs_format::encode(&image.converted_to(target))?;
    images::rewrite_output(input, out, &bytes)?;
    Ok(ExitCode::SUCCESS)
}
