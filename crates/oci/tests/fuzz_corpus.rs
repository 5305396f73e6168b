//! The committed corpora of the `image_source` and `bootstrap_layer` fuzz targets, replayed:
//! every input a fuzzing run kept (and every crash it found, once fixed) keeps passing.

#[test]
fn image_source_corpus_replays() {
    rafs_testkit::replay_corpus("image_source", rafs_oci::fuzzing::image_source);
}

#[test]
fn bootstrap_layer_corpus_replays() {
    rafs_testkit::replay_corpus("bootstrap_layer", rafs_oci::fuzzing::bootstrap_layer);
}
