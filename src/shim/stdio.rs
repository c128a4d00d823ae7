//! The container's stdio inside the shim: output pumps that write the log
//! and fan out to attached clients, and the stdin writer.

use std::sync::{Arc, Mutex};

use berth_actors::protocol::shim::frames;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::fdio::Fd;
use super::logfile::Lines;
use super::logger::Logger;

/// Chunks of output: (frame kind, bytes).
pub type Chunk = (u8, Bytes);

/// The attached readers of an output. Each gets every chunk in order; a
/// slow reader slows the output down (as dockerd's attach does), a reader
/// that went away is dropped, and with none the output only goes to the log.
#[derive(Default)]
pub struct Fanout {
    subs: Mutex<Vec<mpsc::Sender<Chunk>>>,
}

impl Fanout {
    pub fn subscribe(&self) -> mpsc::Receiver<Chunk> {
        let (tx, rx) = mpsc::channel(64);
        self.subs.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        rx
    }

    async fn send(&self, c: Chunk) {
        let subs: Vec<mpsc::Sender<Chunk>> =
            self.subs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if subs.is_empty() {
            return;
        }
        let mut gone = false;
        for s in &subs {
            if s.send(c.clone()).await.is_err() {
                gone = true;
            }
        }
        if gone {
            self.subs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|s| !s.is_closed());
        }
    }
}

/// Read `fd` to its end: every chunk goes to the log (split in lines) and
/// to the attached readers. With no reader attached (berthd down) the
/// container never blocks on its output.
pub fn pump(fd: Arc<Fd>, kind: u8, log: Option<Arc<Logger>>, tx: Arc<Fanout>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let stream = if kind == frames::STDERR {
            "stderr"
        } else {
            "stdout"
        };
        let mut lines = Lines::default();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match fd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(log) = &log {
                let entries = lines.push(&buf[..n]);
                if !entries.is_empty() {
                    log.log(stream, entries);
                }
            }
            tx.send((kind, Bytes::copy_from_slice(&buf[..n]))).await;
        }
        if let (Some(log), Some(rest)) = (&log, lines.finish()) {
            log.log(stream, vec![rest]);
        }
    })
}

/// Wait for the pumps to reach end of file, at most `deadline`: a process
/// that left a background child holding the pipe must not keep the exit
/// from being reported.
pub async fn drain(pumps: Vec<JoinHandle<()>>, deadline: std::time::Duration) {
    let all = async {
        for p in pumps {
            let _ = p.await;
        }
    };
    let _ = tokio::time::timeout(deadline, all).await;
}
