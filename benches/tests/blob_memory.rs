//! Peak memory while writing a 1 GiB blob: the writer holds a fixed number of chunks in
//! flight, so the process's peak resident set (VmHWM) may exceed its starting point by at
//! most that in-flight data plus 64 MiB, whatever the layer size.
//!
//! This binary holds this one test so that nothing else shares the process being measured.

use rafs_benches::{ContentReader, LayerContent};
use rafs_chunker::{BlobOptions, BlobWriter};
use rafs_format::model::{Compressor, FsVersion};

#[test]
fn writing_a_1_gib_blob_keeps_memory_bounded() {
    const TOTAL: u64 = 1 << 30;
    let baseline = rafs_testkit::vm_hwm_kib();
    for compressor in [Compressor::Zstd, Compressor::None] {
        let mut o = BlobOptions::new(FsVersion::V6);
        o.compressor = compressor;
        o.threads = 2;
        let mut w = BlobWriter::new(std::io::sink(), o).unwrap();
        let in_flight = w.options().max_in_flight as u64 * 2 * u64::from(w.options().chunk_size);
        // Files as a layer has them, streamed: never more than 64 KiB generated ahead.
        let mut sizes = LayerContent::new(9);
        let mut written = 0u64;
        let mut seed = 0;
        while written < TOTAL {
            let size = (sizes.next_size() as u64 * 4).min(TOTAL - written);
            seed += 1;
            w.add_file(&mut ContentReader::new(size, seed), size)
                .unwrap();
            written += size;
        }
        let blob = w.finish_data().unwrap().finish(None).unwrap();
        let peak = rafs_testkit::vm_hwm_kib();
        let grew = (peak - baseline) * 1024;
        eprintln!(
            "{}: 1 GiB of data, blob {} bytes; peak RSS {} KiB (baseline {} KiB, +{} MiB); in-flight bound {} MiB",
            compressor.name(),
            blob.size,
            peak,
            baseline,
            grew >> 20,
            in_flight >> 20
        );
        assert!(
            grew < in_flight + (64 << 20),
            "peak grew by {} MiB, bound {} MiB",
            grew >> 20,
            (in_flight + (64 << 20)) >> 20
        );
    }
}
