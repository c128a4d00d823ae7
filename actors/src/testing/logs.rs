//! A fake log: numbered entries in memory, read a few at a time, so a
//! test can kill LogStream actors between chunks.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::logs::{Chunk, LogCursor, LogFiles, LogOptions, LogPos};

/// Entries `0\n`, `1\n`, ... ; `total` can grow while streams follow.
#[derive(Clone, Default)]
pub struct FakeLogFiles {
    pub total: Arc<Mutex<u64>>,
    /// Entries per chunk.
    pub per_chunk: u64,
}

struct Cursor {
    next: u64,
    total: Arc<Mutex<u64>>,
    per_chunk: u64,
}

impl LogCursor for Cursor {
    fn next_chunk(&mut self) -> std::io::Result<Chunk> {
        let total = *self.total.lock().unwrap_or_else(|e| e.into_inner());
        let end = (self.next + self.per_chunk.max(1)).min(total);
        let mut out = Vec::new();
        for i in self.next..end {
            out.extend_from_slice(format!("{i}\n").as_bytes());
        }
        let moved = end > self.next;
        self.next = end;
        Ok(Chunk {
            bytes: Bytes::from(out),
            pos: moved.then_some(LogPos {
                inode: 1,
                offset: end,
            }),
            at_end: end == total,
        })
    }
}

impl LogFiles for FakeLogFiles {
    fn open(
        &self,
        _path: &str,
        _opts: &LogOptions,
        pos: Option<LogPos>,
    ) -> std::io::Result<Box<dyn LogCursor>> {
        Ok(Box::new(Cursor {
            next: pos.map(|p| p.offset).unwrap_or(0),
            total: self.total.clone(),
            per_chunk: self.per_chunk,
        }))
    }
}
