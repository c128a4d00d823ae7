//! The container's log as the shim writes it: the driver's file (json-file,
//! local) written in line, or a writer thread that sends to the driver's
//! receiver (syslog, gelf, fluentd, journald) from a bounded buffer, plus
//! the dual-logging cache that keeps `docker logs` working for those.
//!
//! A receiver never holds the container for long: in blocking mode (the
//! default) a full buffer is waited on while the writer keeps taking
//! entries (as dockerd's blocking mode); a receiver that is down, or takes
//! nothing for a second, makes entries drop, counted (the shim's state,
//! `log-counts.json`, berthd's metrics and warning), until half the buffer
//! is free again. In `mode: non-blocking` nothing waits
//! (`max-buffer-size`), and the file drivers go through the same buffer.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use berth_actors::protocol::shim::{LogConfig, LogCounts};

use super::logfile::{Format, Writer};
use crate::logdrivers::{self as drivers, fluentd, Entry};

/// The buffer of a remote driver in blocking mode.
pub const REMOTE_BUFFER: u64 = 16 << 20;
/// dockerd's ring buffer default in non-blocking mode.
pub const RING_DEFAULT: u64 = 1_000_000;
/// How long the writer keeps sending after the container's output ended.
const CLOSE_DEADLINE: Duration = Duration::from_secs(30);

/// Entries written and dropped, with a warning at most every 10 s.
#[derive(Default)]
pub struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    warned: Mutex<Option<Instant>>,
}

impl Counters {
    fn wrote(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Relaxed);
    }

    fn lost(&self, driver: &str, n: u64, why: &str) {
        if n == 0 {
            return;
        }
        let total = self.dropped.fetch_add(n, Ordering::Relaxed) + n;
        let mut w = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            *w = Some(Instant::now());
            eprintln!("berth-shim: log driver {driver}: {total} entries dropped so far ({why})");
        }
    }

    pub fn counts(&self) -> LogCounts {
        LogCounts {
            written: self.written.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// How long a pump waits for room in blocking mode while the writer takes
/// nothing before the receiver counts as stuck (then entries are dropped
/// until half the buffer is free again).
const BLOCK_GRACE: Duration = Duration::from_secs(1);
/// What the writer takes from the buffer at a time (entries' cost).
const POP_BYTES: u64 = 256 << 10;

/// A byte-bounded queue between the pumps and the writer thread.
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
    room: Condvar,
    cap: u64,
    /// Blocking mode: wait (a little) for room while the receiver takes
    /// entries, instead of dropping at once.
    blocking: bool,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Entry>,
    bytes: u64,
    closed: bool,
    /// The writer holds a connection (set by the writer thread).
    connected: bool,
    /// The buffer overflowed: drop until half of it is free.
    overflowing: bool,
    /// Batches taken by the writer (its progress).
    pops: u64,
}

fn cost(e: &Entry) -> u64 {
    e.line.len() as u64 + 64
}

impl Queue {
    fn new(cap: u64, blocking: bool) -> Queue {
        Queue {
            state: Mutex::new(QueueState {
                connected: true,
                ..Default::default()
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            cap,
            blocking,
        }
    }

    /// Add what fits; returns how many did not. In blocking mode a full
    /// buffer is waited on while the receiver is connected and the writer
    /// takes entries (as dockerd's blocking mode): a receiver that keeps up
    /// loses nothing; one that is down, or takes nothing for
    /// [`BLOCK_GRACE`], costs the container at most that, then entries are
    /// dropped (and counted) until half the buffer is free.
    fn push(&self, entries: Vec<Entry>) -> u64 {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut dropped = 0;
        for e in entries {
            let c = cost(&e);
            if s.overflowing {
                if s.bytes + c > self.cap / 2 {
                    dropped += 1;
                    continue;
                }
                s.overflowing = false;
            }
            if s.bytes + c > self.cap && self.blocking {
                let mut deadline = Instant::now() + BLOCK_GRACE;
                let mut pops = s.pops;
                while s.bytes + c > self.cap && s.connected && !s.closed {
                    // The writer is taking entries: the receiver keeps up.
                    if s.pops != pops {
                        pops = s.pops;
                        deadline = Instant::now() + BLOCK_GRACE;
                    }
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        break;
                    };
                    s = self
                        .room
                        .wait_timeout(s, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
            if s.bytes + c > self.cap {
                s.overflowing = true;
                dropped += 1;
                continue;
            }
            s.bytes += c;
            s.items.push_back(e);
            self.ready.notify_one();
        }
        dropped
    }

    /// The oldest entries (at most [`POP_BYTES`] of them), waiting for
    /// some; `None` once closed and empty.
    fn pop(&self) -> Option<Vec<Entry>> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if !s.items.is_empty() {
                let (mut n, mut taken) = (0, 0);
                while n < s.items.len() && (n == 0 || taken < POP_BYTES) {
                    taken += cost(&s.items[n]);
                    n += 1;
                }
                s.bytes -= taken;
                s.pops += 1;
                self.room.notify_all();
                return Some(s.items.drain(..n).collect());
            }
            if s.closed {
                return None;
            }
            s = self.ready.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn set_connected(&self, on: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.connected != on {
            s.connected = on;
            self.room.notify_all();
        }
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.ready.notify_all();
        self.room.notify_all();
    }
}

/// Where the writer thread sends entries.
pub(super) trait Remote: Send {
    /// Open the connection (a no-op while it is open).
    fn connect(&mut self) -> io::Result<()>;
    fn connected(&self) -> bool;
    fn disconnect(&mut self);
    /// Take one entry: written now, or held until the next flush (stream
    /// connections write many entries at once). An error means the
    /// connection broke; what it held is lost (see `settle`).
    fn send(&mut self, e: &Entry) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Entries known written, and known lost, since the last call.
    fn settle(&mut self) -> (u64, u64);
    /// Connection attempts before the entries waiting are dropped.
    fn attempts(&self) -> u32 {
        3
    }
    fn retry_wait(&self) -> Duration {
        Duration::from_millis(100)
    }
}

/// The container's logger.
pub struct Logger {
    driver: String,
    /// json-file or local written in line (blocking mode).
    file: Option<Mutex<Writer>>,
    /// The dual-logging cache.
    cache: Option<Mutex<Writer>>,
    queue: Option<Arc<Queue>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    counters: Arc<Counters>,
    counts_path: String,
}

fn attr_pairs(attrs: &BTreeMap<String, String>) -> Vec<(String, String)> {
    attrs.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn file_writer(c: &LogConfig) -> io::Result<Writer> {
    let format = if c.driver == "local" {
        Format::Local(attr_pairs(&c.attrs))
    } else {
        Format::Json((!c.attrs.is_empty()).then(|| c.attrs.clone()))
    };
    Writer::open(&c.path, c.max_size, c.max_file, c.compress, format)
}

impl Logger {
    /// Open the log: the file, or the first connection to the receiver
    /// (its error fails the start, as dockerd's "failed to initialize
    /// logging driver").
    pub fn open(c: &LogConfig) -> Result<Arc<Logger>, String> {
        Logger::open_with(c, None)
    }

    /// [`Logger::open`] with the buffer's size given (tests).
    fn open_with(c: &LogConfig, buffer: Option<u64>) -> Result<Arc<Logger>, String> {
        let driver = if c.driver.is_empty() {
            "json-file".to_string()
        } else {
            c.driver.clone()
        };
        let counters = Arc::new(Counters::default());
        // A restarted container goes on from its earlier counts.
        if let Some(k) = std::fs::read(&c.counts_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<LogCounts>(&b).ok())
        {
            counters.written.store(k.written, Ordering::Relaxed);
            counters.dropped.store(k.dropped, Ordering::Relaxed);
        }
        let cache = match &c.cache {
            Some(k) => Some(Mutex::new(
                Writer::open(
                    &k.path,
                    k.max_size,
                    k.max_file,
                    k.compress,
                    Format::Local(attr_pairs(&c.attrs)),
                )
                .map_err(|e| format!("error initializing local log cache driver: {e}"))?,
            )),
            None => None,
        };
        let mut file = None;
        let mut remote: Option<Box<dyn Remote>> = None;
        match driver.as_str() {
            "json-file" | "local" => {
                let w = file_writer(c).map_err(|e| format!("opening the log {}: {e}", c.path))?;
                if c.non_blocking {
                    remote = Some(Box::new(FileRemote { w, ok: 0, lost: 0 }));
                } else {
                    file = Some(Mutex::new(w));
                }
            }
            other => {
                let mut r = super::receivers::remote_for(other, c)?;
                let lazy = other == "fluentd"
                    && fluentd::Settings::parse(&c.opts).is_ok_and(|s| s.asynchronous);
                if !lazy {
                    r.connect().map_err(|e| e.to_string())?;
                }
                remote = Some(r);
            }
        }
        let mut queue = None;
        let mut writer = None;
        if let Some(r) = remote {
            let cap = if c.non_blocking {
                if c.max_buffer_size > 0 {
                    c.max_buffer_size
                } else {
                    RING_DEFAULT
                }
            } else if driver == "fluentd" {
                fluentd::Settings::parse(&c.opts)
                    .map(|s| s.buffer_limit.max(REMOTE_BUFFER))
                    .unwrap_or(REMOTE_BUFFER)
            } else {
                REMOTE_BUFFER
            };
            let q = Arc::new(Queue::new(buffer.unwrap_or(cap), !c.non_blocking));
            let (q2, k2, d2) = (q.clone(), counters.clone(), driver.clone());
            writer = Some(
                std::thread::Builder::new()
                    .name("log-writer".into())
                    .spawn(move || write_loop(r, &q2, &k2, &d2))
                    .map_err(|e| format!("starting the log writer: {e}"))?,
            );
            queue = Some(q);
        }
        Ok(Arc::new(Logger {
            driver,
            file,
            cache,
            queue,
            writer: Mutex::new(writer),
            counters,
            counts_path: c.counts_path.clone(),
        }))
    }

    /// Log pieces of one stream, as the pump splits them.
    pub fn log(&self, source: &'static str, pieces: Vec<Vec<u8>>) {
        let t = drivers::now_nano();
        let entries: Vec<Entry> = pieces
            .into_iter()
            .map(|p| Entry::from_piece(source, t, p))
            .collect();
        if let Some(c) = &self.cache {
            let mut w = c.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = w.write(&entries) {
                eprintln!("berth-shim: writing the log cache: {e}");
            }
        }
        let n = entries.len() as u64;
        if let Some(f) = &self.file {
            let mut w = f.lock().unwrap_or_else(|e| e.into_inner());
            match w.write(&entries) {
                Ok(()) => self.counters.wrote(n),
                // A full disk must not stop the container: the lines are
                // dropped, and counted.
                Err(e) => self.counters.lost(&self.driver, n, &e.to_string()),
            }
        } else if let Some(q) = &self.queue {
            let lost = q.push(entries);
            self.counters
                .lost(&self.driver, lost, "the log buffer is full");
        }
    }

    pub fn counts(&self) -> LogCounts {
        self.counters.counts()
    }

    pub fn counts_path(&self) -> &str {
        &self.counts_path
    }

    /// The output has ended: let the writer send what is queued (for at
    /// most [`CLOSE_DEADLINE`]) and wait for it.
    pub fn close(&self) {
        if let Some(q) = &self.queue {
            q.close();
        }
        let h = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = h {
            let _ = h.join();
        }
    }
}

fn write_loop(mut r: Box<dyn Remote>, q: &Queue, k: &Counters, driver: &str) {
    let mut closing_since: Option<Instant> = None;
    let mut wait = r.retry_wait();
    let mut why = String::new();
    let settle = |r: &mut Box<dyn Remote>, why: &str| {
        let (ok, lost) = r.settle();
        k.wrote(ok);
        k.lost(driver, lost, why);
    };
    while let Some(batch) = q.pop() {
        let closed = q.state.lock().map(|s| s.closed).unwrap_or(true);
        if closed && closing_since.is_none() {
            closing_since = Some(Instant::now());
        }
        let (mut i, mut tries) = (0, 0);
        while i < batch.len() {
            if closing_since.is_some_and(|t| t.elapsed() > CLOSE_DEADLINE) {
                k.lost(driver, (batch.len() - i) as u64, "the container has exited");
                break;
            }
            if !r.connected() {
                q.set_connected(false);
                if let Err(err) = r.connect() {
                    tries += 1;
                    // The receiver is down: this batch is lost (the buffer
                    // fills meanwhile); the next one tries again.
                    if tries >= r.attempts() || closed {
                        k.lost(driver, (batch.len() - i) as u64, &err.to_string());
                        break;
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(5));
                    continue;
                }
                tries = 0;
                wait = r.retry_wait();
                q.set_connected(true);
            }
            if let Err(err) = r.send(&batch[i]) {
                r.disconnect();
                why = err.to_string();
            }
            i += 1;
            settle(&mut r, &why);
        }
        if let Err(err) = r.flush() {
            r.disconnect();
            why = err.to_string();
        }
        settle(&mut r, &why);
    }
}

/// A file driver in non-blocking mode.
struct FileRemote {
    w: Writer,
    ok: u64,
    lost: u64,
}

impl Remote for FileRemote {
    fn connect(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn connected(&self) -> bool {
        true
    }
    fn disconnect(&mut self) {}
    fn send(&mut self, e: &Entry) -> io::Result<()> {
        let r = self.w.write(std::slice::from_ref(e));
        match &r {
            Ok(()) => self.ok += 1,
            Err(_) => self.lost += 1,
        }
        r
    }
    fn settle(&mut self) -> (u64, u64) {
        (std::mem::take(&mut self.ok), std::mem::take(&mut self.lost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A receiver that is gone: the container's pump never waits, entries
    /// beyond the buffer are dropped and counted, and close ends.
    #[test]
    fn a_dead_receiver_never_blocks_and_drops_are_counted() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("j.sock");
        let server = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
        let c = LogConfig {
            driver: "journald".into(),
            non_blocking: true,
            max_buffer_size: 10_000,
            info: berth_actors::protocol::shim::LogInfo {
                journald_socket: sock.display().to_string(),
                tag: "t".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let l = Logger::open(&c).unwrap();
        // Gone: sends fail from now on.
        drop(server);
        std::fs::remove_file(&sock).unwrap();
        let t = Instant::now();
        for i in 0..2000 {
            l.log("stdout", vec![format!("line {i}\n").into_bytes()]);
        }
        assert!(t.elapsed() < Duration::from_secs(5));
        l.close();
        let k = l.counts();
        assert_eq!(k.written + k.dropped, 2000, "{k:?}");
        assert!(k.dropped > 1000, "{k:?}");
    }

    /// Blocking mode with a receiver that keeps up: a buffer far smaller
    /// than the output loses nothing.
    #[test]
    fn blocking_mode_loses_nothing_to_a_receiver_that_keeps_up() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("j.sock");
        let server = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
        let reader = std::thread::spawn(move || {
            let mut b = [0u8; 4096];
            let mut n = 0;
            server
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            while server.recv(&mut b).is_ok() {
                n += 1;
            }
            n
        });
        let c = LogConfig {
            driver: "journald".into(),
            info: berth_actors::protocol::shim::LogInfo {
                journald_socket: sock.display().to_string(),
                ..Default::default()
            },
            ..Default::default()
        };
        // A buffer of 2 kB for 20,000 entries: the pump waits for the writer.
        let l = Logger::open_with(&c, Some(2_000)).unwrap();
        assert!(l.queue.as_ref().unwrap().blocking);
        for i in 0..20_000 {
            l.log("stdout", vec![format!("line {i}\n").into_bytes()]);
        }
        l.close();
        assert_eq!(
            l.counts(),
            LogCounts {
                written: 20_000,
                dropped: 0
            }
        );
        assert_eq!(reader.join().unwrap(), 20_000);
    }

    #[test]
    fn the_cache_is_written_beside_a_remote_driver() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("j.sock");
        let server = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
        let cache = d.path().join("container-cached.log");
        let c = LogConfig {
            driver: "journald".into(),
            info: berth_actors::protocol::shim::LogInfo {
                journald_socket: sock.display().to_string(),
                tag: "web".into(),
                ..Default::default()
            },
            cache: Some(berth_actors::protocol::shim::LogCache {
                path: cache.display().to_string(),
                max_size: 1 << 20,
                max_file: 2,
                compress: true,
            }),
            ..Default::default()
        };
        let l = Logger::open(&c).unwrap();
        l.log("stderr", vec![b"hello\n".to_vec()]);
        l.close();
        let mut b = [0u8; 4096];
        let n = server.recv(&mut b).unwrap();
        let text = String::from_utf8_lossy(&b[..n]).into_owned();
        assert!(text.starts_with("MESSAGE=hello\nPRIORITY=3\n"), "{text}");
        assert!(text.contains("SYSLOG_IDENTIFIER=web\n"), "{text}");
        let (recs, _) = drivers::local::split(&std::fs::read(&cache).unwrap()).unwrap();
        assert_eq!(recs[0].line, b"hello");
        assert_eq!(l.counts().written, 1);
    }
}
