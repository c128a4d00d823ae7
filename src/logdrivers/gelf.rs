//! The `gelf` driver as dockerd writes it (go-gelf): GELF 1.1 JSON with
//! the container's fields as `_` extras (and the label and env
//! attributes), over UDP (gzip by default, or zlib, or none; chunked above
//! 1420 bytes) or over TCP (uncompressed, each message ended by a NUL).

use std::collections::BTreeMap;
use std::io::Write;

use super::net::{self, Addr};

const OPTS: &[&str] = &[
    "gelf-address",
    "gelf-tag",
    "gelf-compression-level",
    "gelf-compression-type",
    "gelf-tcp-max-reconnect",
    "gelf-tcp-reconnect-delay",
];

/// go-gelf's chunk size and chunk limit.
pub const CHUNK_SIZE: usize = 1420;
const MAX_CHUNKS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zlib,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub addr: Addr,
    pub compression: Compression,
    /// -1 (the library's default) ..= 9.
    pub level: i32,
    /// TCP: reconnect attempts per message, and the wait between them.
    pub max_reconnect: u32,
    pub reconnect_delay: u64,
}

fn unknown_value(v: &str, k: &str) -> String {
    format!("unknown value {v:?} for log opt {k:?} for gelf log driver")
}

impl Settings {
    pub fn parse(opts: &BTreeMap<String, String>) -> Result<Settings, String> {
        let a = opts
            .get("gelf-address")
            .filter(|a| !a.is_empty())
            .ok_or("gelf-address is a required parameter")?;
        if !net::is_transport_url(a) {
            return Err(format!(
                "gelf-address should be in form proto://address, got {a}"
            ));
        }
        let (proto, rest) = net::split_url(a);
        if proto != "udp" && proto != "tcp" {
            return Err("gelf: endpoint needs to be TCP or UDP".into());
        }
        let host = rest.split('/').next().unwrap_or(rest);
        if !matches!(net::split_host_port(host), Ok(Some(_))) {
            return Err("gelf: please provide gelf-address as proto://host:port".into());
        }
        let addr = Addr {
            proto: proto.into(),
            addr: host.into(),
        };
        let tcp = proto == "tcp";
        let compression = match opts.get("gelf-compression-type").map(String::as_str) {
            None => Compression::Gzip,
            Some(_) if tcp => return Err("compression is only supported on UDP".into()),
            Some("gzip") => Compression::Gzip,
            Some("zlib") => Compression::Zlib,
            Some("none") => Compression::None,
            Some(v) => return Err(unknown_value(v, "gelf-compression-type")),
        };
        let level = match opts.get("gelf-compression-level") {
            None => -1,
            Some(_) if tcp => return Err("compression is only supported on UDP".into()),
            Some(v) => match v.parse::<i32>() {
                Ok(n) if (-1..=9).contains(&n) => n,
                _ => return Err(unknown_value(v, "gelf-compression-level")),
            },
        };
        let int = |k: &str, d: i64| -> Result<i64, String> {
            match opts.get(k) {
                None => Ok(d),
                Some(_) if !tcp => Err(format!("{k:?} is only valid for TCP")),
                Some(v) => match v.parse::<i64>() {
                    Ok(n) if n >= -1 => Ok(n),
                    _ => Err(format!("{k:?} must be a positive integer")),
                },
            }
        };
        let max_reconnect = int("gelf-tcp-max-reconnect", 3)?.max(0) as u32;
        let reconnect_delay = int("gelf-tcp-reconnect-delay", 1)?.max(0) as u64;
        Ok(Settings {
            addr,
            compression,
            level,
            max_reconnect,
            reconnect_delay,
        })
    }
}

pub fn validate(opts: &BTreeMap<String, String>) -> Result<(), String> {
    super::only(opts, OPTS, |k| {
        format!("unknown log opt {k:?} for gelf log driver")
    })?;
    Settings::parse(opts).map(|_| ())
}

/// The fixed part of every message: `_container_id`, ... as dockerd sets
/// them, plus the extra attributes (each key with a `_` in front).
pub fn extras(
    facts: &super::tag::Facts,
    tag: &str,
    created: &str,
    attrs: &BTreeMap<String, String>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    let mut put = |k: String, v: &str| {
        m.insert(k, serde_json::Value::String(v.to_string()));
    };
    for (k, v) in attrs {
        put(format!("_{k}"), v);
    }
    put("_container_id".into(), &facts.id);
    put("_container_name".into(), facts.name.trim_start_matches('/'));
    put("_image_id".into(), &facts.image_id);
    put("_image_name".into(), &facts.image_name);
    put("_command".into(), &facts.command);
    put("_tag".into(), tag);
    put("_created".into(), created);
    m
}

/// One message's JSON (fields as go-gelf writes them: version, host,
/// short_message, timestamp in seconds with milliseconds, level, then the
/// extras in key order).
pub fn message(
    host: &str,
    e: &super::Entry,
    extras: &serde_json::Map<String, serde_json::Value>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(e.line.len() + 512);
    let ms = e.time_nano / 1_000_000;
    let _ = write!(
        out,
        "{{\"version\":\"1.1\",\"host\":{},\"short_message\":{},\"timestamp\":{}.{:03},\"level\":{}",
        serde_json::Value::String(host.into()),
        serde_json::Value::String(String::from_utf8_lossy(&e.line).into_owned()),
        ms / 1000,
        ms % 1000,
        if e.is_stderr() { 3 } else { 6 }
    );
    for (k, v) in extras {
        let _ = write!(out, ",{}:{}", serde_json::Value::String(k.clone()), v);
    }
    out.push(b'}');
    out
}

/// The datagrams of one UDP message: compressed as configured, chunked
/// when larger than a chunk (`None`: more than 128 chunks, dropped as
/// go-gelf drops it).
pub fn datagrams(s: &Settings, msg: &[u8], id: [u8; 8]) -> Option<Vec<Vec<u8>>> {
    let level = if s.level < 0 {
        flate2::Compression::fast()
    } else {
        flate2::Compression::new(s.level as u32)
    };
    let body = match s.compression {
        Compression::None => msg.to_vec(),
        Compression::Gzip => {
            let mut g = flate2::write::GzEncoder::new(Vec::new(), level);
            g.write_all(msg).ok()?;
            g.finish().ok()?
        }
        Compression::Zlib => {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), level);
            z.write_all(msg).ok()?;
            z.finish().ok()?
        }
    };
    if body.len() <= CHUNK_SIZE {
        return Some(vec![body]);
    }
    let payload = CHUNK_SIZE - 12;
    let n = body.len().div_ceil(payload);
    if n > MAX_CHUNKS {
        return None;
    }
    Some(
        body.chunks(payload)
            .enumerate()
            .map(|(i, c)| {
                let mut d = Vec::with_capacity(c.len() + 12);
                d.extend_from_slice(&[0x1e, 0x0f]);
                d.extend_from_slice(&id);
                d.push(i as u8);
                d.push(n as u8);
                d.extend_from_slice(c);
                d
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message dockerd 20.10 sent for `echo "  out  "` with label a=b
    /// (compression none), with our facts in the same places.
    #[test]
    fn message_as_dockerd() {
        let facts = super::super::tag::Facts {
            id: "6af82b20c850ba33".into(),
            name: "/g1".into(),
            image_id: "sha256:cc86".into(),
            image_name: "busybox".into(),
            command: "sh -c echo \"  out  \"".into(),
            hostname: "vm".into(),
        };
        let attrs = [("a".to_string(), "b".to_string())].into_iter().collect();
        let x = extras(
            &facts,
            "6af82b20c850",
            "2026-12-04T16:51:55.720311343Z",
            &attrs,
        );
        let e = super::super::Entry {
            source: "stdout",
            time_nano: 1_796_403_115_855_123_456,
            line: b"  out  ".to_vec(),
            partial: false,
        };
        let m = String::from_utf8(message("vm", &e, &x)).unwrap();
        assert_eq!(
            m,
            r#"{"version":"1.1","host":"vm","short_message":"  out  ","timestamp":1796403115.855,"level":6,"_a":"b","_command":"sh -c echo \"  out  \"","_container_id":"6af82b20c850ba33","_container_name":"g1","_created":"2026-12-04T16:51:55.720311343Z","_image_id":"sha256:cc86","_image_name":"busybox","_tag":"6af82b20c850"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        assert_eq!(v["level"], 6);
    }

    #[test]
    fn chunks_and_compression() {
        let o = super::super::opts(&[
            ("gelf-address", "udp://127.0.0.1:1"),
            ("gelf-compression-type", "none"),
        ]);
        let s = Settings::parse(&o).unwrap();
        let big = vec![b'x'; 5000];
        let d = datagrams(&s, &big, [1; 8]).unwrap();
        assert_eq!(d.len(), 4);
        assert_eq!(&d[0][..2], &[0x1e, 0x0f]);
        assert_eq!((d[3][10], d[3][11]), (3, 4));
        let joined: Vec<u8> = d.iter().flat_map(|c| c[12..].to_vec()).collect();
        assert_eq!(joined, big);
        let mut gz = s.clone();
        gz.compression = Compression::Gzip;
        let d = datagrams(&gz, &big, [1; 8]).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(&d[0][..2], &[0x1f, 0x8b]);
    }
}
