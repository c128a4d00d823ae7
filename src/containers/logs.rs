//! Reading json-file logs for `docker logs`: rotated files oldest first,
//! filters, tail, and follow across rotation.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    /// Nanoseconds since the epoch; entries before are skipped.
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub timestamps: bool,
    pub tail: Option<usize>,
    pub follow: bool,
    /// Raw output (TTY containers): no stdcopy headers.
    pub raw: bool,
}

#[derive(serde::Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

fn time_nanos(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .and_then(|d| d.timestamp_nanos_opt())
        .unwrap_or(0)
}

/// The rotated files, oldest first, then the current one.
fn files(path: &Path) -> Vec<PathBuf> {
    let mut rotated = Vec::new();
    for n in 1..1000 {
        let plain = PathBuf::from(format!("{}.{n}", path.display()));
        let gz = PathBuf::from(format!("{}.{n}.gz", path.display()));
        if plain.exists() {
            rotated.push(plain);
        } else if gz.exists() {
            rotated.push(gz);
        } else {
            break;
        }
    }
    rotated.reverse();
    rotated.push(path.to_path_buf());
    rotated
}

fn open(p: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    let f = File::open(p)?;
    if p.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(f)))
    } else {
        Ok(Box::new(f))
    }
}

struct Formatter {
    o: LogOptions,
}

impl Formatter {
    /// One line of the file to the bytes the client gets (None: filtered).
    /// One line of the file to (stream kind, payload); None: filtered.
    fn frame(&self, line: &[u8]) -> Option<(u8, Bytes)> {
        let e: Entry = serde_json::from_slice(line).ok()?;
        let kind = match e.stream.as_str() {
            "stdout" if self.o.stdout => 1u8,
            "stderr" if self.o.stderr => 2u8,
            _ => return None,
        };
        if self.o.since.is_some() || self.o.until.is_some() {
            let t = time_nanos(&e.time);
            if self.o.since.is_some_and(|s| t < s) || self.o.until.is_some_and(|u| t > u) {
                return None;
            }
        }
        let mut payload = Vec::with_capacity(e.log.len() + 40);
        if self.o.timestamps {
            payload.extend_from_slice(e.time.as_bytes());
            payload.push(b' ');
        }
        payload.extend_from_slice(e.log.as_bytes());
        Some((if self.o.raw { 0 } else { kind }, Bytes::from(payload)))
    }
}

/// Frames merge consecutive entries of one stream up to this size: the
/// client writes one payload per frame, so a million one-line frames cost
/// it a million writes.
const MERGE_LIMIT: usize = 32 * 1024;

struct Out<'a> {
    tx: &'a mpsc::Sender<Bytes>,
    batch: Vec<u8>,
    /// Where the open frame's header is in `batch`, and its stream.
    open: Option<(usize, u8)>,
    /// While collecting the last N entries.
    tail: Option<(usize, VecDeque<(u8, Bytes)>)>,
}

impl Out<'_> {
    fn emit(&mut self, e: (u8, Bytes)) -> bool {
        if let Some((cap, t)) = self.tail.as_mut() {
            if *cap > 0 {
                if t.len() == *cap {
                    t.pop_front();
                }
                t.push_back(e);
            }
            return true;
        }
        self.push(e.0, &e.1);
        self.batch.len() < 64 * 1024 || self.flush()
    }

    /// Append an entry: raw (kind 0), into the open frame of its stream,
    /// or as a new stdcopy frame.
    fn push(&mut self, kind: u8, payload: &[u8]) {
        use berth_actors::protocol::shim::frames;
        if kind == 0 {
            self.batch.extend_from_slice(payload);
            return;
        }
        if let Some((at, k)) = self.open {
            let len = self.batch.len() - at - 8;
            if k == kind && len + payload.len() <= MERGE_LIMIT {
                self.batch.extend_from_slice(payload);
                let h = frames::header(kind, len + payload.len());
                self.batch[at..at + 8].copy_from_slice(&h);
                return;
            }
        }
        self.open = Some((self.batch.len(), kind));
        self.batch
            .extend_from_slice(&frames::header(kind, payload.len()));
        self.batch.extend_from_slice(payload);
    }

    fn end_tail(&mut self) {
        if let Some((_, t)) = self.tail.take() {
            for (k, b) in t {
                self.push(k, &b);
            }
        }
    }

    fn flush(&mut self) -> bool {
        self.open = None;
        if self.batch.is_empty() {
            return true;
        }
        let b = Bytes::from(std::mem::take(&mut self.batch));
        self.tx.blocking_send(b).is_ok()
    }
}

/// Read what the file has past its position; incomplete lines wait in
/// `pending`. False when the client went away.
fn read_more(f: &Formatter, file: &mut File, pending: &mut Vec<u8>, out: &mut Out) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) | Err(_) => return true,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(i) = pending[start..].iter().position(|b| *b == b'\n') {
            if let Some(b) = f.frame(&pending[start..start + i]) {
                if !out.emit(b) {
                    return false;
                }
            }
            start += i + 1;
        }
        pending.drain(..start);
    }
}

/// Stream the log to `tx`. With `follow`, keeps reading new lines (also
/// after a rotation) until `running()` is false and the end is reached.
pub fn stream(path: PathBuf, o: LogOptions, tx: mpsc::Sender<Bytes>, running: impl Fn() -> bool) {
    let f = Formatter { o: o.clone() };
    let mut out = Out {
        tx: &tx,
        batch: Vec::with_capacity(64 * 1024),
        open: None,
        tail: o.tail.map(|n| (n, VecDeque::with_capacity(n.min(100_000)))),
    };
    let all = files(&path);
    let (history, _) = all.split_at(all.len() - 1);
    for p in history {
        let Ok(r) = open(p) else { continue };
        for line in BufReader::new(r).split(b'\n').map_while(Result::ok) {
            if let Some(b) = f.frame(&line) {
                if !out.emit(b) {
                    return;
                }
            }
        }
    }
    let mut cur = File::open(&path).ok();
    let mut pending = Vec::new();
    if let Some(c) = cur.as_mut() {
        if !read_more(&f, c, &mut pending, &mut out) {
            return;
        }
    }
    out.end_tail();
    if !out.flush() || !o.follow {
        return;
    }
    loop {
        let live = running();
        match cur.as_mut() {
            Some(c) => {
                if !read_more(&f, c, &mut pending, &mut out) || !out.flush() {
                    return;
                }
                // Rotated: the path is a new file; finish the old one first.
                let rotated = match (std::fs::metadata(&path), c.metadata()) {
                    (Ok(a), Ok(b)) => a.ino() != b.ino(),
                    _ => false,
                };
                if rotated {
                    if !read_more(&f, c, &mut pending, &mut out) || !out.flush() {
                        return;
                    }
                    pending.clear();
                    cur = File::open(&path).ok();
                    continue;
                }
            }
            None => cur = File::open(&path).ok(),
        }
        if !live || tx.is_closed() {
            return;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
}
