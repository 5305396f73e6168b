//! What both binaries do first and last: the allocator setting, the signal handler that
//! removes temporaries, and turning a result into an exit status and a message.

use crate::CliResult;
use std::process::ExitCode;

/// Fixes glibc's mmap threshold at its default, 128 KiB. Left dynamic, glibc raises it to the
/// size of every large block freed (up to 32 MiB), so after the chunk buffers are freed the end
/// of a build (the model, the bootstrap) is served from heap that is never given back, and
/// peak memory follows the history of allocations instead of the metadata (measured: 46 -> 39
/// MB on a 585 MB small-file layer). Fixed, blocks of 128 KiB and more live in their own
/// mappings and go back to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn fix_malloc_mmap_threshold() {
    // SAFETY: `mallopt` only sets a tunable of glibc's allocator (glibc documents it MT-Safe,
    // so any caller at any time is sound); the parameter and value are valid. Both binaries
    // call it first thing, so every later allocation sees the threshold.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn fix_malloc_mmap_threshold() {}

/// SIGINT and SIGTERM (Ctrl-C, `exec.CommandContext`'s kill on timeout, a service manager)
/// end the process at once, after removing every temporary file and scratch directory it
/// made, so a conversion stopped half way leaves nothing behind (outputs staged unnamed
/// vanish by themselves). Exit status 128 + the signal, as a shell reports it.
pub fn remove_temporaries_on_signal() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("rafs-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // Outputs being committed are all put in place first (or all taken back).
                let _commit = crate::output::COMMIT_LOCK
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                rafs_oci::scratch::remove_registered();
                std::process::exit(128 + signal);
            }
        });
}

/// The exit status of a command's result, after printing its error as `NAME: error`. A
/// reader that stopped early (`rafs inspect | head`) is not a failure.
pub fn exit_status(name: &str, result: CliResult<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
