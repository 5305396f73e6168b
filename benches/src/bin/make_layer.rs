//! Writes a generated layer tar (`rafs_benches::write_layer_tar`) for measuring `rafs convert`
//! from outside, e.g. its peak RSS with `/usr/bin/time -v`.
//!
//! Usage: `make-layer OUT.tar [MiB of file data, default 512] [seed]`.

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(out) = args.get(1) else {
        eprintln!("usage: make-layer OUT.tar [MiB] [seed]");
        std::process::exit(2);
    };
    let mib: u64 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(512);
    let seed: u64 = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(7);
    let f = std::io::BufWriter::new(std::fs::File::create(out)?);
    rafs_benches::write_layer_tar(f, mib << 20, seed)?
        .into_inner()?
        .sync_all()
}
