//! Reading json-file logs for the LogStream actors (`docker logs`, attach
//! with `logs=1`): rotated files oldest first, filters, tail, and resuming
//! at a position (file inode, offset) across rotation.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

pub use berth_actors::logs::LogOptions;
use berth_actors::logs::{Chunk, LogCursor, LogFiles, LogPos};

use crate::logdrivers::local;

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

    /// One record of a `local` file (or a dual-logging cache).
    fn frame_local(&self, r: &local::Record) -> Option<(u8, Bytes)> {
        let kind = match r.source.as_str() {
            "stdout" if self.o.stdout => 1u8,
            "stderr" if self.o.stderr => 2u8,
            _ => return None,
        };
        let t = r.time_nano;
        if self.o.since.is_some_and(|s| t < s) || self.o.until.is_some_and(|u| t > u) {
            return None;
        }
        let mut payload = Vec::with_capacity(r.line.len() + 40);
        if self.o.timestamps {
            let ts = chrono::DateTime::from_timestamp_nanos(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            payload.extend_from_slice(ts.as_bytes());
            payload.push(b' ');
        }
        payload.extend_from_slice(&r.line);
        if !r.partial {
            payload.push(b'\n');
        }
        Some((if self.o.raw { 0 } else { kind }, Bytes::from(payload)))
    }
}

/// Whether a log file holds `local` records (the local driver's file, a
/// dual-logging cache) rather than json-file lines.
fn is_local_format(p: &Path) -> bool {
    p.ends_with("local-logs/container.log") || p.ends_with("container-cached.log")
}

/// Bytes for the client: one stdcopy frame per log entry, as dockerd
/// sends them (SDKs hand each frame to the application as one message),
/// many frames in one buffer so a chunk is still one write; raw bytes for
/// TTY containers (kind 0).
#[derive(Default)]
struct Frames {
    batch: Vec<u8>,
}

impl Frames {
    fn push(&mut self, kind: u8, payload: &[u8]) {
        use berth_actors::protocol::shim::frames;
        if kind != 0 {
            self.batch
                .extend_from_slice(&frames::header(kind, payload.len()));
        }
        self.batch.extend_from_slice(payload);
    }

    fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.batch))
    }
}

/// How much of a file one chunk reads: large enough that the actor's
/// per-chunk cost (a message, a blocking read) vanishes next to the bytes.
const CHUNK: usize = 256 * 1024;

/// The file being read: its reader, inode and the offset after the last
/// whole line taken from it.
struct Current {
    reader: Box<dyn Read + Send>,
    inode: u64,
    offset: u64,
    /// The live file (the log's own path, not a rotated one).
    live: bool,
}

/// The shim's json-file logs as the LogStream actors read them.
pub struct FileLogs;

struct FileCursor {
    path: PathBuf,
    fmt: Formatter,
    /// Rotated files still to read after the current one, oldest first.
    queue: VecDeque<PathBuf>,
    cur: Option<Current>,
    pending: Vec<u8>,
    /// The first chunk collects the last N entries of everything.
    tail: Option<usize>,
    /// The read buffer, reused by every chunk.
    buf: Vec<u8>,
    /// `local` records instead of json-file lines.
    local: bool,
}

fn inode_of(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.ino())
}

impl FileCursor {
    /// Open `p` (a rotated file unless it is the log's path) at `offset`.
    fn open_file(&self, p: &Path, offset: u64) -> Option<Current> {
        let inode = inode_of(p)?;
        let mut reader = open(p).ok()?;
        if offset > 0 {
            std::io::copy(&mut (&mut reader).take(offset), &mut std::io::sink()).ok()?;
        }
        Some(Current {
            reader,
            inode,
            offset,
            live: p == self.path,
        })
    }

    /// Move to the next file: the next rotated one, else the live file.
    fn advance(&mut self) {
        self.pending.clear();
        self.cur = match self.queue.pop_front() {
            Some(p) => self.open_file(&p, 0),
            None => self.open_file(&self.path.clone(), 0),
        };
    }

    /// Whole lines from the current file (at most about CHUNK bytes):
    /// formatted into `out`; false at the end of the file.
    fn read_lines(
        &mut self,
        out: &mut Frames,
        tail: &mut Option<(usize, VecDeque<(u8, Bytes)>)>,
    ) -> bool {
        let Some(cur) = self.cur.as_mut() else {
            return false;
        };
        let buf = &mut self.buf;
        let n = match cur.reader.read(buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        self.pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        let mut take = |kb: Option<(u8, Bytes)>| {
            if let Some((k, b)) = kb {
                match tail.as_mut() {
                    Some((cap, t)) => {
                        if *cap > 0 {
                            if t.len() == *cap {
                                t.pop_front();
                            }
                            t.push_back((k, b));
                        }
                    }
                    None => out.push(k, &b),
                }
            }
        };
        if self.local {
            match local::split(&self.pending) {
                Ok((records, used)) => {
                    for r in &records {
                        take(self.fmt.frame_local(r));
                    }
                    start = used;
                }
                // A broken record: the rest of this file cannot be framed.
                Err(_) => start = self.pending.len(),
            }
        } else {
            while let Some(i) = self.pending[start..].iter().position(|b| *b == b'\n') {
                take(self.fmt.frame(&self.pending[start..start + i]));
                start += i + 1;
            }
        }
        cur.offset += start as u64;
        self.pending.drain(..start);
        true
    }

    fn pos(&self) -> Option<LogPos> {
        self.cur.as_ref().map(|c| LogPos {
            inode: c.inode,
            offset: c.offset,
        })
    }
}

impl LogCursor for FileCursor {
    fn next_chunk(&mut self) -> std::io::Result<Chunk> {
        let mut out = Frames::default();
        // The first chunk of a `tail` request: the last N entries of every
        // file, up to the end of the live file.
        if let Some(n) = self.tail.take() {
            let mut t = Some((n, VecDeque::with_capacity(n.min(100_000))));
            loop {
                if self.cur.is_none() {
                    self.advance();
                    if self.cur.is_none() {
                        break; // no log file yet
                    }
                }
                while self.read_lines(&mut out, &mut t) {}
                if self.cur.as_ref().is_some_and(|c| c.live) {
                    break;
                }
                self.cur = None;
            }
            if let Some((_, t)) = t {
                for (k, b) in t {
                    out.push(k, &b);
                }
            }
            return Ok(Chunk {
                bytes: out.take(),
                pos: self.pos(),
                at_end: true,
            });
        }
        loop {
            if self.cur.is_none() {
                self.advance();
                if self.cur.is_none() {
                    // No log file yet.
                    return Ok(Chunk {
                        at_end: true,
                        ..Default::default()
                    });
                }
            }
            let mut none = None;
            if self.read_lines(&mut out, &mut none) {
                return Ok(Chunk {
                    bytes: out.take(),
                    pos: self.pos(),
                    at_end: false,
                });
            }
            // The end of this file.
            let cur = self.cur.as_ref().map(|c| (c.live, c.inode));
            match cur {
                Some((false, _)) => self.advance(),
                Some((true, inode)) => {
                    // Rotated since it was opened: the live file is a new
                    // one; the old one was read to its end above.
                    if inode_of(&self.path).is_some_and(|i| i != inode) {
                        self.queue.clear();
                        self.pending.clear();
                        self.cur = self.open_file(&self.path.clone(), 0);
                        continue;
                    }
                    return Ok(Chunk {
                        bytes: out.take(),
                        pos: self.pos(),
                        at_end: true,
                    });
                }
                None => {
                    return Ok(Chunk {
                        at_end: true,
                        ..Default::default()
                    })
                }
            }
        }
    }
}

impl LogFiles for FileLogs {
    fn open(
        &self,
        path: &str,
        opts: &LogOptions,
        pos: Option<LogPos>,
    ) -> std::io::Result<Box<dyn LogCursor>> {
        let path = PathBuf::from(path);
        let all = files(&path);
        let mut c = FileCursor {
            path: path.clone(),
            fmt: Formatter { o: opts.clone() },
            queue: VecDeque::new(),
            cur: None,
            pending: Vec::new(),
            tail: None,
            buf: vec![0u8; CHUNK],
            local: is_local_format(&path),
        };
        match pos {
            None => {
                c.tail = opts.tail;
                c.queue = all.into_iter().filter(|p| *p != path).collect();
            }
            Some(p) => {
                // Resume in the file that has this inode (the live one, or
                // a rotated one since), then everything newer.
                let at = all.iter().position(|f| inode_of(f) == Some(p.inode));
                match at {
                    Some(i) => {
                        c.cur = c.open_file(&all[i], p.offset);
                        c.queue = all[i + 1..]
                            .iter()
                            .filter(|f| **f != path)
                            .cloned()
                            .collect();
                    }
                    // Rotated away meanwhile: from the oldest file left.
                    None => c.queue = all.into_iter().filter(|f| *f != path).collect(),
                }
            }
        }
        Ok(Box::new(c))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn line(i: u64) -> String {
        format!(
            "{{\"log\":\"{i}\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:00.000000001Z\"}}\n"
        )
    }

    fn append(p: &Path, range: std::ops::Range<u64>) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        for i in range {
            f.write_all(line(i).as_bytes()).unwrap();
        }
    }

    fn opts(tail: Option<usize>) -> LogOptions {
        LogOptions {
            stdout: true,
            stderr: true,
            raw: true,
            tail,
            ..Default::default()
        }
    }

    /// Chunks until the end; the numbers read and the last position.
    fn drain(c: &mut dyn LogCursor) -> (Vec<u64>, Option<LogPos>) {
        let (mut got, mut pos) = (Vec::new(), None);
        loop {
            let ch = c.next_chunk().unwrap();
            for l in String::from_utf8(ch.bytes.to_vec()).unwrap().lines() {
                got.push(l.parse().unwrap());
            }
            pos = ch.pos.or(pos);
            if ch.at_end {
                return (got, pos);
            }
        }
    }

    #[test]
    fn tail_resume_and_rotation() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c-json.log");
        let ps = p.display().to_string();
        append(&PathBuf::from(format!("{ps}.1")), 0..10);
        append(&p, 10..20);
        // Everything, oldest file first.
        let mut c = FileLogs.open(&ps, &opts(None), None).unwrap();
        let (all, pos) = drain(c.as_mut());
        assert_eq!(all, (0..20).collect::<Vec<_>>());
        // The last 3 only, then what follows.
        let mut c = FileLogs.open(&ps, &opts(Some(3)), None).unwrap();
        assert_eq!(drain(c.as_mut()).0, vec![17, 18, 19]);
        append(&p, 20..25);
        assert_eq!(drain(c.as_mut()).0, (20..25).collect::<Vec<_>>());
        // Rotation while following: the old file is finished first.
        append(&p, 25..27);
        std::fs::rename(format!("{ps}.1"), format!("{ps}.2")).unwrap();
        std::fs::rename(&p, format!("{ps}.1")).unwrap();
        append(&p, 27..30);
        assert_eq!(drain(c.as_mut()).0, (25..30).collect::<Vec<_>>());
        // Resuming at the position delivered before the rotation: the
        // file is found by its inode (now `.1`), then the new one.
        let mut c = FileLogs.open(&ps, &opts(None), pos).unwrap();
        assert_eq!(drain(c.as_mut()).0, (20..30).collect::<Vec<_>>());
    }

    /// One stdcopy frame per entry, never merged (dockerd's framing), all
    /// of a chunk in one buffer.
    #[test]
    fn one_frame_per_entry() {
        let mut f = Frames::default();
        f.push(1, b"hello\n");
        f.push(1, b"world\n");
        f.push(2, b"oops\n");
        let b = f.take();
        let mut frames = Vec::new();
        let mut rest = &b[..];
        while !rest.is_empty() {
            let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
            frames.push((rest[0], rest[8..8 + len].to_vec()));
            rest = &rest[8 + len..];
        }
        assert_eq!(
            frames,
            vec![
                (1, b"hello\n".to_vec()),
                (1, b"world\n".to_vec()),
                (2, b"oops\n".to_vec())
            ]
        );
        // A TTY's output is raw.
        f.push(0, b"a");
        f.push(0, b"b");
        assert_eq!(&f.take()[..], b"ab");
    }
}
