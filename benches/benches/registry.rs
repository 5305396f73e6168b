//! Registry to registry (issue 23): `rafs convert-image docker://SRC docker://DST` against the
//! skopeo chain it replaces (`skopeo copy` to a layout, `rafs convert-image` layout to layout,
//! `skopeo copy` back), on a real `docker-registry` on loopback, with a 3-layer image of real
//! root-file-system layers (150+ MB gzip'ed in the largest; `rafs_benches::rootfs`). Runs are
//! interleaved in pairs; each pushes into a fresh repository, so both upload every blob
//! (skopeo's blob info cache, which would mount earlier pairs' blobs, is removed first). Our
//! process's peak RSS is taken with GNU time. Build first: `cargo build --release -p rafs-cli`,
//! then `cargo bench -p rafs-benches --bench registry`.

use rafs_testkit::registry::{start_registry, RegistrySetup};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// An OCI layout with the image `bench` made of the gzip layers `layers`.
fn make_layout(dir: &Path, layers: &[PathBuf]) {
    if dir.join("index.json").exists() {
        return;
    }
    let layout = rafs_oci::Layout::create(dir).unwrap();
    let gzs: Vec<Vec<u8>> = layers.iter().map(|l| std::fs::read(l).unwrap()).collect();
    let diff_ids: Vec<String> = gzs
        .iter()
        .map(|gz| {
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut tar)
                .unwrap();
            rafs_oci::layout::digest_of(&tar)
        })
        .collect();
    let image: Vec<rafs_oci::layout::ImageLayer<'_>> = gzs
        .iter()
        .zip(&diff_ids)
        .map(|(gz, d)| rafs_oci::layout::ImageLayer {
            bytes: gz,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
            diff_id: d,
        })
        .collect();
    layout.write_image("bench", &image).unwrap();
}

fn run(program: &str, args: &[&str]) {
    let st = Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "{program} {args:?}");
}

/// Seconds `f` takes.
fn timed(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

fn main() {
    let rafs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/rafs");
    assert!(
        rafs.exists(),
        "build it first: cargo build --release -p rafs-cli"
    );
    let rafs = rafs.to_str().unwrap().to_owned();
    let base = std::env::var_os("RAFS_BENCH_DIR")
        .map_or_else(std::env::temp_dir, PathBuf::from)
        .join("rafs-bench-registry");
    let layers = rafs_benches::rootfs::rootfs_layers(&base.join("layers"));
    let src_layout = base.join("src");
    make_layout(&src_layout, &layers);
    let work = base.join("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let Some(reg) = start_registry(&work.join("registry"), &RegistrySetup::default()) else {
        println!("SKIPPED: docker-registry or skopeo is not installed");
        return;
    };
    let host = reg.host();
    let src = format!("docker://{host}/src:v1");
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("oci:{}:bench", src_layout.display()),
            &src,
        ],
    );
    let rss = work.join("rss");
    let (mut ours, mut chain, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..3 {
        let a = timed(|| {
            let rss = rss.display().to_string();
            let dst = format!("docker://{host}/ours{i}:v1");
            let args = [
                "-f",
                "%M",
                "-a",
                "-o",
                &rss,
                &rafs,
                "convert-image",
                "-q",
                &src,
                &dst,
            ];
            run("/usr/bin/time", &args);
        });
        // skopeo remembers where it saw each blob (its blob info cache) and would mount the
        // previous pair's blobs instead of uploading them: each chain starts without it.
        let _ = std::fs::remove_file("/var/lib/containers/cache/blob-info-cache-v1.boltdb");
        let b = timed(|| {
            let l = work.join(format!("chain{i}"));
            let (pulled, converted) = (
                format!("oci:{}:src", l.display()),
                format!("oci:{}:nydus", l.display()),
            );
            run(
                "skopeo",
                &["copy", "-q", "--src-tls-verify=false", &src, &pulled],
            );
            run(&rafs, &["convert-image", "-q", &pulled, &converted]);
            let dst = format!("docker://{host}/chain{i}:v1");
            run(
                "skopeo",
                &["copy", "-q", "--dest-tls-verify=false", &converted, &dst],
            );
            let _ = std::fs::remove_dir_all(&l);
        });
        println!(
            "pair {i}: registry to registry {a:.2} s, skopeo chain {b:.2} s, ratio {:.2}",
            a / b
        );
        ours.push(a);
        chain.push(b);
        ratios.push(a / b);
    }
    ratios.sort_by(f64::total_cmp);
    let peak = std::fs::read_to_string(&rss)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        / 1024;
    let sizes: u64 = layers
        .iter()
        .map(|l| std::fs::metadata(l).unwrap().len())
        .sum();
    println!(
        "{} MB of gzip layers: registry to registry median ratio {:.2} of the skopeo chain; our peak RSS {peak} MB",
        sizes >> 20,
        ratios[1]
    );
    drop(reg);
    let _ = std::fs::remove_dir_all(&work);
}
