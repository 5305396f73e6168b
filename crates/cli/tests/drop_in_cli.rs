//! The drop-in `nydus-image`'s command line as the Go tool chain probes it (issue 22): `create
//! -h` names exactly what we support (the converter searches it for `--type`, `tar-rafs`,
//! `--batch-size` and `--encrypt`), `--version` has the reference's shape, and every option or
//! command we do not support is a usage error that names it.

use std::process::{Command, Output};

fn nydus_image(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nydus-image"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn create_help_names_what_the_converter_detects_and_nothing_we_lack() {
    let help = String::from_utf8(nydus_image(&["create", "-h"]).stdout).unwrap();
    for wanted in [
        "--type",
        "tar-rafs",
        "--batch-size",
        "--blob-inline-meta",
        "--features",
        "blob-toc",
    ] {
        assert!(help.contains(wanted), "{wanted} missing from create -h");
    }
    for missing in [
        "--encrypt",
        "dir-rafs",
        "estargz",
        "--blob-cache-dir",
        "--attributes",
    ] {
        assert!(!help.contains(missing), "{missing} shown but not supported");
    }
    let merge = String::from_utf8(nydus_image(&["merge", "-h"]).stdout).unwrap();
    for wanted in [
        "--blob-digests",
        "--blob-sizes",
        "--blob-toc-digests",
        "--output-json",
        "--prefetch-policy",
    ] {
        assert!(merge.contains(wanted), "{wanted} missing from merge -h");
    }
}

#[test]
fn version_has_the_references_shape() {
    let out = String::from_utf8(nydus_image(&["--version"]).stdout).unwrap();
    // acceleration-service records what `Version:\s*(v.*)` captures.
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("Version:"))
        .unwrap();
    assert!(
        line.split_once(':')
            .unwrap()
            .1
            .trim_start()
            .starts_with('v'),
        "{out}"
    );
    assert!(
        out.contains("Git Commit:") && out.contains("Build Time:"),
        "{out}"
    );
}

#[test]
fn unsupported_options_and_commands_are_usage_errors_naming_them() {
    for (args, named) in [
        (&["create", "--encrypt", "x.tar"][..], "--encrypt"),
        (
            &["create", "--type", "estargz-rafs", "x.tar"],
            "estargz-rafs",
        ),
        (
            &[
                "create",
                "--prefetch-policy",
                "blob",
                "-t",
                "tar-rafs",
                "x.tar",
            ],
            "blob",
        ),
        (
            &["merge", "--original-blob-ids", "a", "-B", "b", "c"],
            "--original-blob-ids",
        ),
        (&["compact", "--bootstrap", "b"], "compact"),
        (
            &["create", "--log-level", "loud", "-t", "tar-rafs", "x.tar"],
            "loud",
        ),
    ] {
        let out = nydus_image(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(named), "{args:?}: {err}");
    }
    // Directory sources (the reference's default type) are refused in words, not attempted.
    let out = nydus_image(&["create", "-B", "/dev/null", "/"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("directory sources"));
}
