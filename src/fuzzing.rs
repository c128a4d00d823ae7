//! Entry points shared by the cargo-fuzz targets in `fuzz/` and the corpus
//! replay test (`tests/fuzz_corpus.rs`), so CI covers the corpus on stable.
//! Each must never panic, whatever the input.

use crate::api::filters::{Filters, Query};
use crate::config::{self, Flags};

/// A daemon.json through parsing, merging with flags and validation.
pub fn daemon_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file_map) = config::parse_file_text("fuzz.json", text) else {
        return;
    };
    // Once alone, once against a flag map that conflicts with some keys.
    let _ = config::merge_and_validate("fuzz.json", serde_json::Map::new(), file_map.clone());
    if let Ok(flags) = Flags::default().to_json() {
        let _ = config::merge_and_validate("fuzz.json", flags, file_map.clone());
    }
    let mut debug_flag = serde_json::Map::new();
    debug_flag.insert("debug".into(), serde_json::Value::Bool(true));
    let _ = config::merge_and_validate("fuzz.json", debug_flag, file_map);
}

/// A query string and its `filters` parameter.
pub fn query_filters(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let q = Query::parse(Some(&text));
    let _ = q.bool("all");
    if let Ok(f) = Filters::parse(q.get("filters").or(Some(&text))) {
        let _ = f.validate(&["type", "label", "event"]);
        let labels = std::collections::BTreeMap::new();
        let _ = f.labels("label", &labels);
        let _ = f.fuzzy("container", "abc");
    }
    let _ = crate::api::routes::parse_timestamp(&text);
}
