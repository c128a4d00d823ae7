//! The log files the shim writes itself, so the container never waits
//! for berthd: json-file (one JSON object per line,
//! `{"log":"...","stream":"stdout","attrs":{..},"time":"..."}`) and
//! `local` (moby's framed protobuf records, also the dual-logging cache),
//! rotated at `max-size` keeping `max-file` files, rotated files gzipped
//! with `compress`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::logdrivers::Entry;

/// Lines longer than this are logged in pieces (dockerd's buffer size).
pub const MAX_LINE: usize = 16 * 1024;

/// A file of records, rotated between records.
pub struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_file: u32,
    compress: bool,
}

#[derive(serde::Serialize)]
struct JsonEntry<'a> {
    log: &'a str,
    stream: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    attrs: Option<&'a BTreeMap<String, String>>,
    time: &'a str,
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn rfc3339_nano(t: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(t).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// How entries become records.
pub enum Format {
    /// json-file, with the extra attributes.
    Json(Option<BTreeMap<String, String>>),
    /// local, with the extra attributes (sorted).
    Local(Vec<(String, String)>),
}

impl Format {
    pub fn encode(&self, e: &Entry, out: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Format::Json(attrs) => {
                let mut text = String::from_utf8_lossy(&e.line).into_owned();
                if !e.partial {
                    text.push('\n');
                }
                serde_json::to_writer(
                    &mut *out,
                    &JsonEntry {
                        log: &text,
                        stream: e.source,
                        attrs: attrs.as_ref(),
                        time: &rfc3339_nano(e.time_nano),
                    },
                )
                .map_err(io::Error::other)?;
                out.push(b'\n');
            }
            Format::Local(attrs) => crate::logdrivers::local::encode(out, e, attrs),
        }
        Ok(())
    }
}

/// A log file and its record format.
pub struct Writer {
    file: LogFile,
    format: Format,
    buf: Vec<u8>,
    rec: Vec<u8>,
}

impl Writer {
    pub fn open(
        path: &str,
        max_size: u64,
        max_file: u32,
        compress: bool,
        format: Format,
    ) -> io::Result<Writer> {
        Ok(Writer {
            file: LogFile::open(path, max_size, max_file, compress)?,
            format,
            buf: Vec::new(),
            rec: Vec::new(),
        })
    }

    /// Append entries (one write for all of them, rotating between
    /// records when a file is full).
    pub fn write(&mut self, entries: &[Entry]) -> io::Result<()> {
        self.buf.clear();
        for e in entries {
            self.rec.clear();
            self.format.encode(e, &mut self.rec)?;
            self.file.push(&self.rec, &mut self.buf)?;
        }
        self.file.flush_buf(&mut self.buf)
    }
}

impl LogFile {
    pub fn open(path: &str, max_size: u64, max_file: u32, compress: bool) -> io::Result<LogFile> {
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent() {
            // `local-logs` as dockerd makes it: the owner's only.
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode_0640()
            .open(&path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path,
            file,
            size,
            max_size,
            max_file: max_file.max(1),
            compress,
        })
    }

    /// Add one record to `buf`, writing `buf` out and rotating first when
    /// the record would not fit in the file.
    fn push(&mut self, rec: &[u8], buf: &mut Vec<u8>) -> io::Result<()> {
        if self.max_size > 0 && self.size + buf.len() as u64 + rec.len() as u64 > self.max_size {
            self.flush_buf(buf)?;
            if self.size > 0 {
                self.rotate()?;
            }
        }
        buf.extend_from_slice(rec);
        Ok(())
    }

    fn flush_buf(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        if !buf.is_empty() {
            if let Err(e) = self.file.write_all(buf) {
                // Part of the records may have gone in (a full disk): the
                // file is cut back to its last whole record, so a reader
                // never meets half of one, nor the next record glued to it.
                let _ = self.file.set_len(self.size);
                buf.clear();
                return Err(e);
            }
            self.size += buf.len() as u64;
            buf.clear();
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_file > 1 {
            let ext = if self.compress { ".gz" } else { "" };
            let name = |n: u32| PathBuf::from(format!("{}.{n}{ext}", self.path.display()));
            let _ = fs::remove_file(name(self.max_file - 1));
            for n in (1..self.max_file - 1).rev() {
                let _ = fs::rename(name(n), name(n + 1));
            }
            let first = PathBuf::from(format!("{}.1", self.path.display()));
            fs::rename(&self.path, &first)?;
            if self.compress {
                compress(&first, &name(1))?;
            }
        }
        // With max-file 1 the file starts over in place; otherwise a new one.
        self.file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode_0640()
            .open(&self.path)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn compress(from: &Path, to: &Path) -> io::Result<()> {
    let tmp = to.with_extension("gz.tmp");
    {
        let mut src = File::open(from)?;
        let out = File::create(&tmp)?;
        let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
        io::copy(&mut src, &mut gz)?;
        gz.finish()?.sync_all()?;
    }
    fs::rename(&tmp, to)?;
    fs::remove_file(from)
}

trait Mode0640 {
    fn mode_0640(&mut self) -> &mut Self;
}
impl Mode0640 for OpenOptions {
    fn mode_0640(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o640)
    }
}

/// Splits a stream into log entries: whole lines, or [`MAX_LINE`] pieces.
#[derive(Default)]
pub struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Feed bytes; returns the complete entries.
    pub fn push(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(i) = self.pending[start..].iter().position(|b| *b == b'\n') {
            let end = start + i + 1;
            let mut s = start;
            while end - s > MAX_LINE {
                out.push(self.pending[s..s + MAX_LINE].to_vec());
                s += MAX_LINE;
            }
            out.push(self.pending[s..end].to_vec());
            start = end;
        }
        while self.pending.len() - start >= MAX_LINE {
            out.push(self.pending[start..start + MAX_LINE].to_vec());
            start += MAX_LINE;
        }
        self.pending.drain(..start);
        out
    }

    /// What is left at end of file.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(path: &Path, max_size: u64, max_file: u32, compress: bool) -> Writer {
        let p = path.display().to_string();
        Writer::open(&p, max_size, max_file, compress, Format::Json(None)).unwrap()
    }

    fn entry(source: &'static str, text: &str) -> Entry {
        Entry::from_piece(
            source,
            crate::logdrivers::now_nano(),
            text.as_bytes().to_vec(),
        )
    }

    #[test]
    fn lines_split_on_newlines_and_long_lines_in_pieces() {
        let mut l = Lines::default();
        assert!(l.push(b"ab").is_empty());
        assert_eq!(l.push(b"c\nd\ne"), vec![b"abc\n".to_vec(), b"d\n".to_vec()]);
        assert_eq!(l.finish(), Some(b"e".to_vec()));
        let long = vec![b'x'; MAX_LINE + 10];
        let out = l.push(&long);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(l.push(b"\n")[0].len(), 11);
    }

    #[test]
    fn rotation_keeps_max_file_files() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c-json.log");
        let mut f = json(&path, 300, 3, false);
        for i in 0..40 {
            f.write(&[entry("stdout", &format!("line {i}\n"))]).unwrap();
        }
        let names: Vec<String> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        for n in ["c-json.log", "c-json.log.1", "c-json.log.2"] {
            let t = fs::read_to_string(d.path().join(n)).unwrap();
            assert!(t.len() <= 300 && !t.is_empty(), "{n}: {}", t.len());
            for l in t.lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["stream"], "stdout");
            }
        }
        let last = fs::read_to_string(&path).unwrap();
        assert!(last.contains("line 39\\n"));
    }

    #[test]
    fn compressed_rotation() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c-json.log");
        let mut f = json(&path, 200, 2, true);
        for i in 0..10 {
            f.write(&[entry("stderr", &format!("line {i}\n"))]).unwrap();
        }
        let gz = File::open(d.path().join("c-json.log.1.gz")).unwrap();
        let mut s = String::new();
        io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz), &mut s).unwrap();
        assert!(s.contains("\"stream\":\"stderr\""));
    }
}
