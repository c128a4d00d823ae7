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
    // A `null` body passes the check (as Go decodes it into an empty
    // struct) and is refused by the create itself before any decoding:
    // "Config cannot be empty in order to create a container".
    if v.is_null() {
        return;
    }
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

/// A registry manifest or index, an image config and a reference, as a
/// pull reads them.
pub fn image_manifest(data: &[u8]) {
    let _ = crate::images::pull::parse_manifest(data);
    if let Ok(cfg) = berth_actors::image::model::ImageConfig::parse(data) {
        // What parses serializes and parses back the same.
        let again = serde_json::to_vec(&cfg).expect("a parsed config serializes");
        let back = berth_actors::image::model::ImageConfig::parse(&again)
            .expect("a serialized config parses");
        assert_eq!(back.rootfs.diff_ids, cfg.rootfs.diff_ids);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(r) = berth_actors::image::reference::Reference::parse(text) {
            let _ = r.with_default_tag();
        }
    }
}

/// A docker-archive or OCI layout (any compression) read as `docker load`
/// reads it, up to the images it would commit; its blobs are dropped after.
pub fn image_archive(data: &[u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "berth-fuzz-blobs-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    if let Ok(blobs) = crate::sys::blobs::BlobStore::new(&dir) {
        let _ = crate::images::archive::fuzz_index(&blobs, data);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The bodies of network create, volume create, exec create and network
/// connect (the first byte picks one) through their type checks: a body
/// the check accepts comes back normalized, and checking it again changes
/// nothing.
pub fn api_bodies(data: &[u8]) {
    use crate::api::schema;
    let Some((pick, body)) = data.split_first() else {
        return;
    };
    let shape = match pick % 4 {
        0 => &schema::NETWORK_CREATE,
        1 => &schema::VOLUME_CREATE,
        2 => &schema::EXEC_CREATE,
        _ => &schema::NETWORK_CONNECT,
    };
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    if schema::check(&mut v, shape).is_err() {
        return;
    }
    let once = v.clone();
    assert!(schema::check(&mut v, shape).is_ok());
    assert_eq!(once, v, "normalizing twice changed the body");
}

/// A shim's output frames copied to a client as the Engine API's stdcopy
/// stream (or raw, with a TTY; the first byte picks), then read back: the
/// client's stream holds exactly the output's bytes, each in a well-formed
/// frame of stream 1 or 2. The rest of the input also goes through the
/// detach-key parser and the stdin pump.
pub fn stdcopy(data: &[u8]) {
    use berth_actors::container::stdio::{Output, Stdio};
    let Some((flags, frames)) = data.split_first() else {
        return;
    };
    let raw = flags & 1 == 1;
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    rt.block_on(async {
        // What the stdio reader makes of the frames, for the comparison.
        let mut expect = Vec::new();
        {
            let mut s = Stdio::new(
                Box::new(std::io::Cursor::new(frames.to_vec())),
                Box::new(tokio::io::sink()),
                None,
            );
            while let Some(o) = s.output.next().await {
                match o {
                    Output::Stdout(d) => expect.push((1u8, d)),
                    Output::Stderr(d) => expect.push((2u8, d)),
                    Output::Exit(_) => break,
                }
            }
        }
        let mut s = Stdio::new(
            Box::new(std::io::Cursor::new(frames.to_vec())),
            Box::new(tokio::io::sink()),
            None,
        );
        let mut client = Vec::new();
        let _ = crate::api::hijack::pump_output(&mut s.output, &mut client, raw).await;
        if raw {
            let all: Vec<u8> = expect.iter().flat_map(|(_, d)| d.clone()).collect();
            assert_eq!(client, all);
        } else {
            let mut rest = &client[..];
            let mut got = Vec::new();
            while !rest.is_empty() {
                assert!(rest.len() >= 8, "a truncated stdcopy header");
                let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
                assert!(matches!(rest[0], 1 | 2) && rest[1..4] == [0, 0, 0]);
                assert!(rest.len() >= 8 + len, "a truncated stdcopy frame");
                got.push((rest[0], rest[8..8 + len].to_vec()));
                rest = &rest[8 + len..];
            }
            assert_eq!(got, expect);
        }
        // Detach keys from the input's text, then the stdin pump over it.
        let text = String::from_utf8_lossy(frames);
        let keys = crate::api::hijack::parse_detach_keys(text.lines().next().unwrap_or(""))
            .unwrap_or_else(|_| vec![16, 17]);
        let (ours, _theirs) = tokio::io::duplex(1 << 20);
        let (r, w) = tokio::io::split(ours);
        let mut stdio = Stdio::new(Box::new(r), Box::new(w), None);
        let _ = crate::api::hijack::pump_stdin(frames, &mut stdio.input, keys).await;
    });
}

/// The shim protocol: request and response lines (one JSON object per
/// line) and the frames after a streaming request.
pub fn shim_frames(data: &[u8]) {
    use berth_actors::protocol::shim::{Request, Response};
    for line in data.split(|b| *b == b'\n') {
        if let Ok(r) = serde_json::from_slice::<Request>(line) {
            let again = serde_json::to_vec(&r).expect("a request serializes");
            assert_eq!(serde_json::from_slice::<Request>(&again).ok(), Some(r));
        }
        let _ = serde_json::from_slice::<Response>(line);
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    rt.block_on(async {
        let mut s = berth_actors::container::stdio::Stdio::new(
            Box::new(std::io::Cursor::new(data.to_vec())),
            Box::new(tokio::io::sink()),
            None,
        );
        let _ = s.output.exit().await;
    });
}

/// A DNS message as berth-dns receives it, answered from a fixed view of
/// two networks as one of their containers, and the answer encoded.
pub fn dns_query(data: &[u8]) {
    use crate::network::dns::{local_records, View, ViewEndpoint, ViewNetwork};
    use hickory_proto::op::{Message, MessageType, OpCode};
    use std::sync::OnceLock;
    static VIEW: OnceLock<View> = OnceLock::new();
    let view = VIEW.get_or_init(|| {
        let ep = |c: &str, n: &str, ip: &str, ip6: &str| ViewEndpoint {
            container: format!("{c:0<64}"),
            name: n.into(),
            aliases: vec![format!("{n}-alias")],
            ip: ip.into(),
            ipv6: ip6.into(),
            links: vec!["db:database".into()],
        };
        let mut v = View::default();
        v.networks.insert(
            "n1".into(),
            ViewNetwork {
                name: "front".into(),
                endpoints: vec![
                    ep("a", "web", "10.0.0.2", "fd00::2"),
                    ep("b", "db", "10.0.0.3", ""),
                ],
            },
        );
        v.networks.insert(
            "n2".into(),
            ViewNetwork {
                name: "back".into(),
                endpoints: vec![ep("a", "web", "10.1.0.2", "")],
            },
        );
        v
    });
    let Ok(m) = Message::from_vec(data) else {
        return;
    };
    if m.metadata.message_type != MessageType::Query || m.metadata.op_code != OpCode::Query {
        return;
    }
    let asker = format!("{:0<64}", "a");
    let mut resp = Message::response(m.metadata.id, m.metadata.op_code);
    for q in m.queries.iter() {
        if let Some(records) = local_records(view, &asker, q.name(), q.query_type()) {
            for r in records {
                resp.add_answer(r);
            }
        }
    }
    let _ = resp.to_vec();
}
