//! The `local` driver's file format, as moby's `daemon/logger/local`
//! writes it: each entry is `[u32 BE size][protobuf LogEntry][u32 BE size]`
//! (the size repeated after the record so a reader can walk the file
//! backwards), the protobuf `LogEntry` being `source = 1` (string),
//! `time_nano = 2` (int64), `line = 3` (bytes), `partial = 4` (bool),
//! `partial_log_metadata = 5` (`last = 1`, `id = 2`, `ordinal = 3`) and
//! `attrs = 6` (`key = 1`, `value = 2`). The dual-logging cache
//! (`container-cached.log`) has the same format.

use std::collections::BTreeMap;

use super::Entry;

/// The driver's options (besides the attribute options).
pub const OPTS: &[&str] = &["max-file", "max-size", "compress"];

/// Rotation settings: bytes per file, files kept, gzip rotated files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub max_size: u64,
    pub max_file: u32,
    pub compress: bool,
}

/// moby's defaults for `local`: 20 MiB, 5 files, compressed.
pub const DEFAULTS: Settings = Settings {
    max_size: 20 * 1024 * 1024,
    max_file: 5,
    compress: true,
};

/// The dual-logging cache's defaults (`cache-max-size`, ...): the same.
pub const CACHE_DEFAULTS: Settings = DEFAULTS;

impl Settings {
    /// moby's `newConfig` and `validateConfig`, with their messages.
    pub fn parse(opts: &BTreeMap<String, String>, d: Settings) -> Result<Settings, String> {
        let mut s = d;
        if let Some(v) = opts.get("max-size") {
            s.max_size = super::human_size(v)
                .ok_or_else(|| format!("invalid value for max-size: {v}: invalid size: '{v}'"))?;
        }
        if let Some(v) = opts.get("max-file") {
            let n: i64 = v.parse().map_err(|_| {
                format!(
                    "invalid value for max-file: {v}: strconv.Atoi: parsing {v:?}: invalid syntax"
                )
            })?;
            if n < 0 {
                return Err("max-file must not be negative".into());
            }
            s.max_file = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(v) = opts.get("compress") {
            s.compress = super::parse_bool(v).ok_or_else(|| {
                format!("invalid boolean value for compress: strconv.ParseBool: parsing {v:?}: invalid syntax")
            })?;
        }
        if s.compress && s.max_file <= 1 {
            return Err("compression cannot be enabled when max file count is 1".into());
        }
        Ok(s)
    }
}

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn field_bytes(buf: &mut Vec<u8>, field: u8, data: &[u8]) {
    buf.push(field << 3 | 2);
    varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// Append one framed record for `e` (with the extra attributes) to `out`.
pub fn encode(out: &mut Vec<u8>, e: &Entry, attrs: &[(String, String)]) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    if !e.source.is_empty() {
        field_bytes(out, 1, e.source.as_bytes());
    }
    if e.time_nano != 0 {
        out.push(2 << 3);
        varint(out, e.time_nano as u64);
    }
    if !e.line.is_empty() {
        field_bytes(out, 3, &e.line);
    }
    if e.partial {
        out.extend_from_slice(&[4 << 3, 1]);
    }
    for (k, v) in attrs {
        let mut a = Vec::with_capacity(k.len() + v.len() + 4);
        field_bytes(&mut a, 1, k.as_bytes());
        field_bytes(&mut a, 2, v.as_bytes());
        field_bytes(out, 6, &a);
    }
    let size = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&size.to_be_bytes());
}

/// A decoded record: what `docker logs` needs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub source: String,
    pub time_nano: i64,
    pub line: Vec<u8>,
    pub partial: bool,
}

fn read_varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Decode one protobuf `LogEntry` (the bytes between the two sizes).
pub fn decode(b: &[u8]) -> Option<Record> {
    let mut r = Record::default();
    let mut i = 0;
    while i < b.len() {
        let key = read_varint(b, &mut i)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = read_varint(b, &mut i)?;
                match field {
                    2 => r.time_nano = v as i64,
                    4 => r.partial = v != 0,
                    _ => {}
                }
            }
            2 => {
                let len = usize::try_from(read_varint(b, &mut i)?).ok()?;
                let end = i.checked_add(len).filter(|e| *e <= b.len())?;
                let data = &b[i..end];
                match field {
                    1 => r.source = String::from_utf8_lossy(data).into_owned(),
                    3 => r.line = data.to_vec(),
                    _ => {}
                }
                i = end;
            }
            1 => i = i.checked_add(8).filter(|e| *e <= b.len())?,
            5 => i = i.checked_add(4).filter(|e| *e <= b.len())?,
            _ => return None,
        }
    }
    Some(r)
}

/// Split framed records off the front of `buf`: the records whole, and how
/// many bytes they took (a record cut at the end stays for the next read).
/// `Err` when the framing is broken (the sizes disagree).
pub fn split(buf: &[u8]) -> Result<(Vec<Record>, usize), usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while buf.len() - at >= 4 {
        let size = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
        let end = at + 4 + size + 4;
        if buf.len() < end {
            break;
        }
        let tail = &buf[end - 4..end];
        if u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize != size {
            return Err(at);
        }
        match decode(&buf[at + 4..end - 4]) {
            Some(r) => out.push(r),
            None => return Err(at),
        }
        at = end;
    }
    Ok((out, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two records dockerd 20.10's local driver wrote for
    /// `sh -c 'echo out; echo err >&2'` (xxd of local-logs/container.log).
    #[test]
    fn reads_what_dockerd_wrote_and_writes_the_same() {
        let dockerd: [u8; 62] = [
            0x00, 0x00, 0x00, 0x17, 0x0a, 0x06, 0x73, 0x74, 0x64, 0x6f, 0x75, 0x74, 0x10, 0xf1,
            0xb2, 0xda, 0xbf, 0x82, 0xe1, 0x86, 0xf7, 0x18, 0x1a, 0x03, 0x6f, 0x75, 0x74, 0x00,
            0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x17, 0x0a, 0x06, 0x73, 0x74, 0x64, 0x65, 0x72,
            0x72, 0x10, 0xd2, 0x94, 0x8d, 0xc0, 0x82, 0xe1, 0x86, 0xf7, 0x18, 0x1a, 0x03, 0x65,
            0x72, 0x72, 0x00, 0x00, 0x00, 0x17,
        ];
        let (recs, used) = split(&dockerd).unwrap();
        assert_eq!(used, 62);
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (recs[0].source.as_str(), &recs[0].line[..]),
            ("stdout", &b"out"[..])
        );
        assert_eq!(
            (recs[1].source.as_str(), &recs[1].line[..]),
            ("stderr", &b"err"[..])
        );
        let mut ours = Vec::new();
        for r in &recs {
            let source = if r.source == "stdout" {
                "stdout"
            } else {
                "stderr"
            };
            encode(
                &mut ours,
                &Entry {
                    source,
                    time_nano: r.time_nano,
                    line: r.line.clone(),
                    partial: false,
                },
                &[],
            );
        }
        assert_eq!(ours, dockerd.to_vec());
        // A cut record waits; broken sizes are an error.
        assert_eq!(split(&dockerd[..40]).unwrap().1, 31);
        let mut bad = dockerd.to_vec();
        bad[30] = 9;
        assert!(split(&bad).is_err());
    }

    #[test]
    fn partial_and_attrs_round_trip() {
        let mut b = Vec::new();
        let e = Entry {
            source: "stderr",
            time_nano: 7,
            line: vec![b'x'; 300],
            partial: true,
        };
        encode(&mut b, &e, &[("tag".into(), "web".into())]);
        let (r, _) = split(&b).unwrap();
        assert_eq!(r[0].line.len(), 300);
        assert!(r[0].partial);
        assert_eq!(r[0].time_nano, 7);
    }

    #[test]
    fn settings() {
        let o = super::super::opts;
        assert_eq!(Settings::parse(&o(&[]), DEFAULTS), Ok(DEFAULTS));
        let s = Settings::parse(&o(&[("max-size", "1m"), ("max-file", "2")]), DEFAULTS).unwrap();
        assert_eq!((s.max_size, s.max_file, s.compress), (1_000_000, 2, true));
        assert!(Settings::parse(&o(&[("max-file", "-1")]), DEFAULTS).is_err());
    }
}
