//! Replays every fuzz corpus entry as an ordinary test (stable toolchain),
//! so CI covers what the fuzzers found without running them.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            f(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    assert!(n > 0, "empty corpus {}", dir.display());
}

#[test]
fn daemon_json_corpus() {
    replay("daemon_json", berth::fuzzing::daemon_json);
}

#[test]
fn query_filters_corpus() {
    replay("query_filters", berth::fuzzing::query_filters);
}

#[test]
fn create_body_corpus() {
    replay("create_body", berth::fuzzing::create_body);
}

#[test]
fn tar_extract_corpus() {
    replay("tar_extract", berth::fuzzing::tar_extract);
}

#[test]
fn request_stream_corpus() {
    replay("request_stream", berth::fuzzing::request_stream);
}

#[test]
fn dockerfile_corpus() {
    replay("dockerfile", berth::fuzzing::dockerfile);
}

#[test]
fn log_records_corpus() {
    replay("log_records", berth::fuzzing::log_records);
}

#[test]
fn image_manifest_corpus() {
    replay("image_manifest", berth::fuzzing::image_manifest);
}

#[test]
fn image_archive_corpus() {
    replay("image_archive", berth::fuzzing::image_archive);
}

#[test]
fn api_bodies_corpus() {
    replay("api_bodies", berth::fuzzing::api_bodies);
}

#[test]
fn stdcopy_corpus() {
    replay("stdcopy", berth::fuzzing::stdcopy);
}

#[test]
fn shim_frames_corpus() {
    replay("shim_frames", berth::fuzzing::shim_frames);
}

#[test]
fn dns_query_corpus() {
    replay("dns_query", berth::fuzzing::dns_query);
}
