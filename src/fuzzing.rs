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

/// A container create body through the type check and the /etc value
/// checks. A body the check accepts comes back normalized, and checking
/// that again changes nothing.
pub fn create_body(data: &[u8]) {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if crate::api::schema::check(&mut v, &crate::api::schema::CONTAINER_CREATE).is_err() {
        return;
    }
    let once = v.clone();
    assert!(crate::api::schema::check(&mut v, &crate::api::schema::CONTAINER_CREATE).is_ok());
    assert_eq!(once, v, "normalizing twice changed the body");
    // What the check accepts, the typed request decodes whole: nothing is
    // dropped on the way to the record.
    let req: berth_actors::container::config::CreateRequest =
        serde_json::from_value(v.clone()).expect("a checked body decodes");
    let hc = req.host_config.unwrap_or_default();
    let _ = crate::containers::etc_values::check_create(&req.config, &hc);
}

/// A tar applied as a layer (both whiteout modes) and extracted as
/// `docker cp` does, each into its own directory of a scratch directory:
/// nothing may panic, nothing may land outside those directories.
pub fn tar_extract(data: &[u8]) {
    use std::os::fd::OwnedFd;
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let scratch = std::env::temp_dir().join(format!(
        "berth-fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let roots = ["layer-delete", "layer-overlay", "cp"];
    for r in roots {
        if std::fs::create_dir_all(scratch.join(r)).is_err() {
            return;
        }
    }
    let _ = crate::sys::layers::apply_layer(
        &scratch.join(roots[0]),
        data,
        crate::sys::layers::WhiteoutMode::Delete,
    );
    let _ = crate::sys::layers::apply_layer(
        &scratch.join(roots[1]),
        data,
        crate::sys::layers::WhiteoutMode::Overlay,
    );
    if let Ok(f) = std::fs::File::open(scratch.join(roots[2])) {
        let opts = crate::containers::archive::ExtractOptions {
            no_overwrite_dir_non_dir: true,
            copy_uid_gid: true,
            user: String::new(),
        };
        let _ = crate::containers::archive::extract(&OwnedFd::from(f), "/", data, &opts);
    }
    let mut found: Vec<String> = std::fs::read_dir(&scratch)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    let _ = std::fs::remove_dir_all(&scratch);
    assert_eq!(
        found,
        ["cp", "layer-delete", "layer-overlay"],
        "an entry landed outside its root"
    );
}

/// Bytes of a connection through the request-target reader: cut anywhere,
/// the output is the same as in one piece, and it only ever adds bytes
/// (escapes, the plain-hijack headers), never drops any.
pub fn request_stream(data: &[u8]) {
    use crate::api::target::Framer;
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let whole = {
        let mut f = Framer::default();
        let mut out = Vec::new();
        f.feed(rest, &mut out);
        f.finish(&mut out);
        out
    };
    let at = (cut as usize * rest.len()) / 255;
    let pieces = {
        let mut f = Framer::default();
        let mut out = Vec::new();
        f.feed(&rest[..at], &mut out);
        f.feed(&rest[at..], &mut out);
        f.finish(&mut out);
        out
    };
    assert_eq!(whole, pieces, "output depends on how the input was cut");
    assert!(whole.len() >= rest.len());
}

/// A Dockerfile through the parser, and every word of it through the
/// variable substitution (with a lookup that knows some names); the same
/// text as a `.dockerignore`.
pub fn dockerfile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    // The same bytes as a `.dockerignore`, against its own lines as paths.
    if let Ok(ig) = crate::build::ignore::Ignore::parse(&text) {
        for l in text.lines().take(64) {
            let _ = ig.excludes(l);
        }
    }
    let Ok(d) = crate::build::dockerfile::parse(&text) else {
        return;
    };
    let lookup = |k: &str| (k.len() % 2 == 0).then(|| format!("v{k}"));
    for s in &d.steps {
        for w in s.original.split_whitespace() {
            let _ = crate::build::expand::expand(w, &lookup, d.escape);
        }
    }
}

/// Log records and options: `local` framing and protobuf decoding (what
/// `docker logs` reads from a file that could be cut or damaged), a
/// record that decodes must encode back to what decodes the same; the
/// same bytes as `driver\nkey=value...` options through dockerd's option
/// rules and the tag template.
pub fn log_records(data: &[u8]) {
    use crate::logdrivers::{self, local, Entry};
    match local::split(data) {
        Ok((records, used)) => {
            assert!(used <= data.len());
            for r in records {
                let source = if r.source == "stderr" {
                    "stderr"
                } else {
                    "stdout"
                };
                let e = Entry {
                    source,
                    time_nano: r.time_nano,
                    line: r.line.clone(),
                    partial: r.partial,
                };
                let mut again = Vec::new();
                local::encode(&mut again, &e, &[]);
                let (back, n) = local::split(&again).expect("our own record");
                assert_eq!(n, again.len());
                assert_eq!(back.len(), 1);
                assert_eq!(
                    (back[0].time_nano, &back[0].line, back[0].partial),
                    (r.time_nano, &r.line, r.partial)
                );
            }
        }
        Err(at) => assert!(at <= data.len()),
    }
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let driver = lines.next().unwrap_or("");
    let opts: std::collections::BTreeMap<String, String> = lines
        .take(32)
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let _ = logdrivers::validate(driver, &opts);
    if let Some(t) = opts.get("tag") {
        let _ = logdrivers::tag::expand(t, &logdrivers::tag::Facts::default());
    }
}
