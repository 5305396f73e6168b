//! The Linux EROFS driver, a reader nobody here wrote, mounts our rewrite of every tarfs
//! bootstrap in the corpus with the layer tars as its devices, and the mounted tree equals the
//! ground-truth listing made from the tars without nydus.
//!
//! Needs root, loop devices and EROFS. Where any is missing the test prints SKIPPED and why.

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance")
}

fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Why mounting is impossible here, if it is.
fn mount_unavailable() -> Option<String> {
    match run("id", &["-u"]) {
        Ok(uid) if uid == "0" => {}
        _ => return Some("not root".into()),
    }
    let _ = run("modprobe", &["erofs"]);
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fs.lines().any(|l| l.trim_end().ends_with("erofs")) {
        return Some("the kernel has no EROFS driver".into());
    }
    if run("losetup", &["--version"]).is_err() {
        return Some("losetup is not installed".into());
    }
    if run("python3", &["--version"]).is_err() {
        return Some("python3 is not installed".into());
    }
    // A loop device must be obtainable (containers sometimes have none).
    let probe = std::env::temp_dir().join(format!("rafs-loop-probe-{}", std::process::id()));
    std::fs::write(&probe, vec![0u8; 4096]).ok()?;
    let r = run("losetup", &["-f", "--show", "-r", probe.to_str()?]);
    let _ = std::fs::remove_file(&probe);
    match r {
        Ok(dev) => {
            let _ = run("losetup", &["-d", &dev]);
            None
        }
        Err(e) => Some(format!("no loop device: {e}")),
    }
}

/// Loop devices and a mount, released on drop.
struct Mounted {
    loops: Vec<String>,
    dir: PathBuf,
    mounted: bool,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.mounted {
            let _ = run("umount", &[self.dir.to_str().unwrap()]);
        }
        for l in &self.loops {
            let _ = run("losetup", &["-d", l]);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn mount_erofs(bootstrap: &Path, devices: &[PathBuf], dir: &Path) -> Result<Mounted, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut m = Mounted {
        loops: vec![],
        dir: dir.to_path_buf(),
        mounted: false,
    };
    let boot = run(
        "losetup",
        &["-f", "--show", "-r", bootstrap.to_str().unwrap()],
    )?;
    m.loops.push(boot.clone());
    let mut opts = String::from("ro");
    for d in devices {
        let l = run("losetup", &["-f", "--show", "-r", d.to_str().unwrap()])?;
        opts.push_str(&format!(",device={l}"));
        m.loops.push(l);
    }
    run(
        "mount",
        &["-t", "erofs", "-o", &opts, &boot, dir.to_str().unwrap()],
    )?;
    m.mounted = true;
    Ok(m)
}

/// The file behind a blob id: the corpus stores tarfs blobs as pointer files naming the tar.
fn blob_file(id: &str) -> PathBuf {
    let blobs = corpus().join("nydus-image/blobs");
    let p = blobs.join(id);
    let content = std::fs::read(&p).unwrap_or_else(|e| panic!("blob {id}: {e}"));
    if content.len() < 256 && content.starts_with(b"../") {
        return blobs.join(String::from_utf8(content).unwrap().trim());
    }
    p
}

#[test]
fn kernel_mounts_our_tarfs_rewrites() {
    if let Some(why) = mount_unavailable() {
        println!("SKIPPED: kernel EROFS mount test: {why}");
        return;
    }
    let tmp = std::env::temp_dir().join(format!("rafs-kernel-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let cases = [
        ("L1-v6-tarfs", "L1"),
        ("L2-v6-tarfs", "L2"),
        ("L3-v6-tarfs", "L3"),
        ("merge-v6-tarfs", "oci-L1-L2-L3"),
    ];
    for (case, list) in cases {
        let ours = tmp.join(format!("{case}.bootstrap"));
        run(
            env!("CARGO_BIN_EXE_rafs"),
            &[
                "rewrite",
                corpus()
                    .join("nydus-image")
                    .join(case)
                    .join("bootstrap")
                    .to_str()
                    .unwrap(),
                "--bootstrap",
                ours.to_str().unwrap(),
            ],
        )
        .unwrap();
        // Devices in blob-table order, as `rafs inspect` lists them.
        let report: serde_json::Value = serde_json::from_str(
            &run(
                env!("CARGO_BIN_EXE_rafs"),
                &["inspect", "--json", ours.to_str().unwrap()],
            )
            .unwrap(),
        )
        .unwrap();
        let devices: Vec<PathBuf> = report["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| blob_file(b["blob_id"].as_str().unwrap()))
            .collect();
        let mnt = tmp.join(format!("mnt-{case}"));
        let guard = mount_erofs(&ours, &devices, &mnt)
            .unwrap_or_else(|e| panic!("{case}: mount failed: {e}"));
        let listing = run(
            "python3",
            &[
                corpus().join("tools/treelist.py").to_str().unwrap(),
                "dir",
                mnt.to_str().unwrap(),
            ],
        )
        .unwrap();
        drop(guard);
        let expected =
            std::fs::read_to_string(corpus().join(format!("expected/{list}.list"))).unwrap();
        let (mut same, mut allowed) = (0, 0);
        let got: Vec<&str> = listing.lines().collect();
        let want: Vec<&str> = expected.lines().collect();
        assert_eq!(
            got.len(),
            want.len(),
            "{case}: mounted tree has {} paths, expected {}",
            got.len(),
            want.len()
        );
        for (g, w) in got.iter().zip(&want) {
            if g == w {
                same += 1;
            } else if w.starts_with("/data/future-mtime ")
                && *g == w.replace(" 10000000000 ", " 0 ")
            {
                // The reference ignores PAX mtime records (corpus README): stored as 0.
                allowed += 1;
            } else {
                panic!("{case}: mounted tree differs:\n  kernel:   {g}\n  expected: {w}");
            }
        }
        println!("{case}: {same} paths identical, {allowed} known reference difference(s)");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
