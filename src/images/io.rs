//! Bridges between async HTTP bodies and blocking readers/writers.

use std::io::{self, Read, Write};

use bytes::Bytes;
use tokio::sync::mpsc;

/// A blocking `Read` over chunks sent from an async task.
pub struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        ChannelReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(e)) => return Err(e),
                Some(Ok(b)) => self.cur = b,
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// A blocking `Write` that sends 64 KiB chunks to an async body.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(64 * 1024),
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::replace(
                &mut self.buf,
                Vec::with_capacity(64 * 1024),
            ));
            self.tx
                .blocking_send(Ok(chunk))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))?;
        }
        Ok(())
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Pump a hyper request body into a channel for a [`ChannelReader`].
/// Read and drop up to `limit` bytes of a request body nobody will use,
/// so a client still writing it (the docker CLI sends the body while it
/// waits for the answer) gets the error answer, not a broken pipe; as Go's
/// server does before it answers.
pub async fn drain_body(mut body: hyper::body::Incoming, limit: usize) {
    use http_body_util::BodyExt;
    let mut seen = 0usize;
    while seen <= limit {
        match body.frame().await {
            Some(Ok(f)) => seen += f.data_ref().map_or(0, |d| d.len()),
            _ => return,
        }
    }
}

/// How much of a request body a handler that stopped reading lets its
/// client still send.
pub const DRAIN_AFTER_ERROR: usize = 64 << 20;

pub async fn pump_body(mut body: hyper::body::Incoming, tx: mpsc::Sender<io::Result<Bytes>>) {
    use http_body_util::BodyExt;
    loop {
        match body.frame().await {
            None => return,
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    if tx.send(Ok(data)).await.is_err() {
                        // The reader stopped early (an error: a full
                        // disk, a refused entry): the client is still
                        // sending; what it sends is read and dropped, up to
                        // [`DRAIN_AFTER_ERROR`], so it reads the answer
                        // instead of a broken pipe.
                        drain_body(body, DRAIN_AFTER_ERROR).await;
                        return;
                    }
                }
            }
            Some(Err(e)) => {
                let _ = tx
                    .send(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        e.to_string(),
                    )))
                    .await;
                return;
            }
        }
    }
}
