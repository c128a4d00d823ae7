//! Limits on client connections, so no client can take the API from
//! others: a cap on open connections (at the cap the connection idle the
//! longest is closed to make room; with none idle a new one is closed at
//! once, before any byte is read), and a stall limit on writes (a client
//! that stops reading a response is dropped after [`STALL`], its buffers
//! with it). Idle connections end after hyper's header-read timeout (30 s).
//!
//! The cap comes from the open-files limit (raised to its hard limit at
//! start): three quarters of it, the rest left to the shims' sockets, log
//! files, the image store and the runtime.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::warn;

/// How long a write to a client may make no progress before the
/// connection is closed (the client stopped reading).
pub const STALL: Duration = Duration::from_secs(120);

/// The open connections and their cap.
pub struct ConnLimit {
    open: AtomicUsize,
    cap: usize,
    refused: AtomicU64,
    evicted: AtomicU64,
    stall: Duration,
    next: AtomicU64,
    /// Every open connection, for the eviction of idle ones at the cap.
    table: Mutex<HashMap<u64, Arc<Conn>>>,
}

/// One open connection: its requests in flight (a response counts until
/// its body is sent), since when it has none, and how to close it.
pub struct Conn {
    busy: AtomicUsize,
    idle_since: Mutex<Instant>,
    pub close: CancellationToken,
}

/// A request in flight on a connection; the connection is idle again
/// when the last one is dropped (with its response body).
pub struct Busy(Arc<Conn>);

impl Conn {
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.0.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        }
    }
}

/// An open connection's place under the cap; given back when dropped.
pub struct Slot {
    limit: Arc<ConnLimit>,
    id: u64,
    pub conn: Arc<Conn>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limit.table().remove(&self.id);
        self.limit.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnLimit {
    pub fn new(cap: usize) -> Arc<ConnLimit> {
        // Tests shorten the stall (a client that never reads).
        let stall = std::env::var("BERTH_TEST_WRITE_STALL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(STALL);
        Arc::new(ConnLimit {
            open: AtomicUsize::new(0),
            cap: cap.max(1),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            stall,
            next: AtomicU64::new(0),
            table: Mutex::new(HashMap::new()),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cap for an open-files limit of `nofile`.
    pub fn cap_for(nofile: u64) -> usize {
        usize::try_from(nofile.saturating_mul(3) / 4)
            .unwrap_or(usize::MAX)
            .max(64)
    }

    /// A place for a new connection. At the cap the connection idle the
    /// longest (no request in flight: between requests, or not sent one
    /// yet) is closed to make room; with none idle the new one is refused
    /// (counted, and logged once per 1,000 refusals).
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        if self.open.load(Ordering::Acquire) >= self.cap && !self.evict_idlest() {
            let r = self.refused.fetch_add(1, Ordering::Relaxed);
            if r % 1000 == 0 {
                warn!(
                    open = self.open(),
                    cap = self.cap,
                    refused = r + 1,
                    "too many client connections, none idle; closing new ones"
                );
            }
            return None;
        }
        self.open.fetch_add(1, Ordering::AcqRel);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            close: CancellationToken::new(),
        });
        self.table().insert(id, conn.clone());
        Some(Slot {
            limit: self.clone(),
            id,
            conn,
        })
    }

    /// Close the connection idle the longest; whether there was one.
    fn evict_idlest(&self) -> bool {
        let t = self.table();
        let idlest = t
            .iter()
            .filter(|(_, c)| c.busy.load(Ordering::Acquire) == 0 && !c.close.is_cancelled())
            .min_by_key(|(_, c)| *c.idle_since.lock().unwrap_or_else(|p| p.into_inner()));
        match idlest {
            Some((_, c)) => {
                c.close.cancel();
                let n = self.evicted.fetch_add(1, Ordering::Relaxed);
                if n % 1000 == 0 {
                    warn!(
                        cap = self.cap,
                        evicted = n + 1,
                        "too many client connections; closing the idle ones longest unused"
                    );
                }
                true
            }
            None => false,
        }
    }

    pub fn stall(&self) -> Duration {
        self.stall
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }
}

/// Raise the soft open-files limit to the hard one (as dockerd's unit
/// asks of systemd): connections, shims and logs all take files. Answers
/// the soft limit in force.
pub fn raise_nofile() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                warn!("raising the open-files limit from {soft} to {hard}: {e}");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(e) => {
            warn!("reading the open-files limit: {e}");
            1024
        }
    }
}

/// A connection whose writes fail with `TimedOut` once one made no
/// progress for `stall`.
pub struct Stalling<IO> {
    inner: IO,
    stall: Duration,
    blocked: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<IO> Stalling<IO> {
    pub fn new(inner: IO, stall: Duration) -> Self {
        Stalling {
            inner,
            stall,
            blocked: None,
        }
    }

    /// After a write-side poll: reset the clock on progress, start it on
    /// a block, fail once it ran out.
    fn check<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => {
                let stall = self.stall;
                let t = self
                    .blocked
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                if t.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client read nothing for {}s", stall.as_secs()),
                    )));
                }
                Poll::Pending
            }
            ready => {
                self.blocked = None;
                ready
            }
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Stalling<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Stalling<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(cx, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn the_cap_evicts_the_idlest_then_refuses_when_all_are_busy() {
        let l = ConnLimit::new(2);
        let a = l.admit().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = l.admit().unwrap();
        // At the cap: `a`, idle the longest, is told to close.
        let c = l.admit().unwrap();
        assert!(a.conn.close.is_cancelled() && !b.conn.close.is_cancelled());
        assert_eq!(l.evicted(), 1);
        drop(a);
        // Both left are busy: a new one is refused.
        let (_gb, _gc) = (b.conn.busy(), c.conn.busy());
        assert!(l.admit().is_none());
        assert_eq!(l.refused(), 1);
        drop(_gb);
        // `b` idle again: it makes room.
        assert!(l.admit().is_some());
        assert!(b.conn.close.is_cancelled());
        assert_eq!(ConnLimit::cap_for(20000), 15000);
        assert_eq!(ConnLimit::cap_for(10), 64);
    }

    #[tokio::test]
    async fn a_write_nobody_reads_fails_after_the_stall() {
        // A pipe of 64 bytes the other end never reads.
        let (a, _b) = tokio::io::duplex(64);
        let mut s = Stalling::new(a, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let e = s.write_all(&[0u8; 4096]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
        // A reader that keeps reading is never cut.
        let (a, mut b) = tokio::io::duplex(64);
        let mut s = Stalling::new(a, Duration::from_millis(200));
        let reader = tokio::spawn(async move {
            let mut n = 0;
            let mut buf = [0u8; 16];
            while n < 4096 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                n += tokio::io::AsyncReadExt::read(&mut b, &mut buf)
                    .await
                    .unwrap();
            }
        });
        s.write_all(&[0u8; 4096]).await.unwrap();
        reader.await.unwrap();
    }
}
