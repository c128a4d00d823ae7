//! The `fluentd` driver as dockerd writes it (fluent-logger-golang): the
//! forward protocol's message mode, `[tag, time, record]` in MessagePack,
//! the record holding `container_id`, `container_name`, `source`, `log`
//! and the extra attributes; time in whole seconds, or as an EventTime
//! with `fluentd-sub-second-precision`; `fluentd-request-ack` adds the
//! `chunk` option and waits for the `ack`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::net::{self, Addr};

const OPTS: &[&str] = &[
    "fluentd-address",
    "fluentd-async",
    "fluentd-async-connect",
    "fluentd-async-reconnect-interval",
    "fluentd-buffer-limit",
    "fluentd-max-retries",
    "fluentd-request-ack",
    "fluentd-retry-wait",
    "fluentd-sub-second-precision",
    "fluentd-write-timeout",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub addr: Addr,
    /// Connect in the background: the container starts while the
    /// receiver is down.
    pub asynchronous: bool,
    pub buffer_limit: u64,
    pub retry_wait: Duration,
    pub max_retries: u64,
    pub sub_second: bool,
    pub request_ack: bool,
}

fn bool_opt(opts: &BTreeMap<String, String>, k: &str) -> Result<bool, String> {
    match opts.get(k).filter(|v| !v.is_empty()) {
        None => Ok(false),
        Some(v) => super::parse_bool(v)
            .ok_or_else(|| format!("strconv.ParseBool: parsing {v:?}: invalid syntax")),
    }
}

fn parse_address(a: &str) -> Result<Addr, String> {
    if a.is_empty() {
        return Ok(Addr {
            proto: "tcp".into(),
            addr: "127.0.0.1:24224".into(),
        });
    }
    let mut proto = "tcp";
    let mut hp = a;
    if net::is_transport_url(a) {
        let (p, rest) = net::split_url(a);
        if p == "unix" || p == "unixgram" {
            return Ok(Addr {
                proto: p.into(),
                addr: rest.into(),
            });
        }
        proto = p;
        hp = rest.split('/').next().unwrap_or(rest);
    }
    let invalid = |e: String| format!("invalid fluentd-address {a}: {e}");
    match net::split_host_port(hp).map_err(invalid)? {
        None => Ok(Addr {
            proto: proto.into(),
            addr: format!("{hp}:24224"),
        }),
        Some((h, p)) => {
            p.parse::<u16>()
                .map_err(|_| invalid(format!("strconv.Atoi: parsing {p:?}: invalid syntax")))?;
            Ok(Addr {
                proto: proto.into(),
                addr: format!("{h}:{p}"),
            })
        }
    }
}

impl Settings {
    pub fn parse(opts: &BTreeMap<String, String>) -> Result<Settings, String> {
        let get = |k: &str| opts.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let addr = parse_address(get("fluentd-address").unwrap_or(""))?;
        let buffer_limit = match get("fluentd-buffer-limit") {
            Some(v) => super::ram_in_bytes(v)?,
            None => 1024 * 1024,
        };
        let retry_wait = match get("fluentd-retry-wait") {
            Some(v) => {
                super::go_duration(v).ok_or_else(|| format!("time: invalid duration {v:?}"))?
            }
            None => Duration::from_millis(1000),
        };
        let max_retries = match get("fluentd-max-retries") {
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| format!("strconv.ParseUint: parsing {v:?}: invalid syntax"))?,
            None => i32::MAX as u64,
        };
        if get("fluentd-async").is_some() && get("fluentd-async-connect").is_some() {
            return Err("conflicting options: cannot specify both 'fluentd-async' and 'fluentd-async-connect".into());
        }
        if let Some(v) = get("fluentd-async-reconnect-interval") {
            let d = super::go_duration(v).ok_or_else(|| {
                format!("invalid value for fluentd-async-reconnect-interval: time: invalid duration {v:?}")
            })?;
            if !d.is_zero() && (d < Duration::from_millis(100) || d > Duration::from_secs(10)) {
                return Err(format!("invalid value for fluentd-async-reconnect-interval: value (\"{v}\") must be between 100ms and 10s"));
            }
        }
        Ok(Settings {
            addr,
            asynchronous: bool_opt(opts, "fluentd-async")?
                || bool_opt(opts, "fluentd-async-connect")?,
            buffer_limit,
            retry_wait,
            max_retries,
            sub_second: bool_opt(opts, "fluentd-sub-second-precision")?,
            request_ack: bool_opt(opts, "fluentd-request-ack")?,
        })
    }
}

pub fn validate(opts: &BTreeMap<String, String>) -> Result<(), String> {
    super::only(opts, OPTS, |k| {
        format!("unknown log opt '{k}' for fluentd log driver")
    })?;
    Settings::parse(opts).map(|_| ())
}

/// MessagePack, the parts the forward protocol needs.
pub mod msgpack {
    pub fn str(out: &mut Vec<u8>, s: &[u8]) {
        let n = s.len();
        if n < 32 {
            out.push(0xa0 | n as u8);
        } else if n < 256 {
            out.extend_from_slice(&[0xd9, n as u8]);
        } else if n < 65536 {
            out.push(0xda);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            out.push(0xdb);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        out.extend_from_slice(s);
    }

    pub fn map_header(out: &mut Vec<u8>, n: usize) {
        if n < 16 {
            out.push(0x80 | n as u8);
        } else if n < 65536 {
            out.push(0xde);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            out.push(0xdf);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }

    pub fn array_header(out: &mut Vec<u8>, n: usize) {
        if n < 16 {
            out.push(0x90 | n as u8);
        } else {
            out.push(0xdc);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }

    pub fn uint(out: &mut Vec<u8>, v: u64) {
        if v < 128 {
            out.push(v as u8);
        } else if v <= u32::MAX as u64 {
            out.push(0xce);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    /// The forward protocol's EventTime (ext type 0: seconds, nanoseconds).
    pub fn event_time(out: &mut Vec<u8>, secs: u32, nanos: u32) {
        out.extend_from_slice(&[0xd7, 0x00]);
        out.extend_from_slice(&secs.to_be_bytes());
        out.extend_from_slice(&nanos.to_be_bytes());
    }
}

/// One forward-mode message. `chunk`: the ack id with `request_ack`.
pub fn message(
    s: &Settings,
    tag: &str,
    id: &str,
    name: &str,
    e: &super::Entry,
    attrs: &BTreeMap<String, String>,
    chunk: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(e.line.len() + 160);
    msgpack::array_header(&mut out, if chunk.is_some() { 4 } else { 3 });
    msgpack::str(&mut out, tag.as_bytes());
    let secs = e.time_nano.div_euclid(1_000_000_000);
    if s.sub_second {
        msgpack::event_time(
            &mut out,
            secs as u32,
            e.time_nano.rem_euclid(1_000_000_000) as u32,
        );
    } else {
        msgpack::uint(&mut out, secs.max(0) as u64);
    }
    let mut record: BTreeMap<&str, &[u8]> = BTreeMap::new();
    for (k, v) in attrs {
        record.insert(k, v.as_bytes());
    }
    record.insert("container_id", id.as_bytes());
    record.insert("container_name", name.as_bytes());
    record.insert("source", e.source.as_bytes());
    record.insert("log", &e.line);
    if e.partial {
        record.insert("partial_message", b"true");
    }
    msgpack::map_header(&mut out, record.len());
    for (k, v) in record {
        msgpack::str(&mut out, k.as_bytes());
        msgpack::str(&mut out, v);
    }
    if let Some(c) = chunk {
        msgpack::map_header(&mut out, 1);
        msgpack::str(&mut out, b"chunk");
        msgpack::str(&mut out, c.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout() {
        let s = Settings::parse(&BTreeMap::new()).unwrap();
        assert_eq!(s.addr.addr, "127.0.0.1:24224");
        let e = super::super::Entry {
            source: "stdout",
            time_nano: 1_700_000_000_500_000_000,
            line: b"hello".to_vec(),
            partial: false,
        };
        let m = message(&s, "web", "abc", "/web", &e, &BTreeMap::new(), None);
        // [ "web", 1700000000, {container_id, container_name, log, source} ]
        assert_eq!(&m[..5], &[0x93, 0xa3, b'w', b'e', b'b']);
        assert_eq!(m[5], 0xce);
        assert_eq!(u32::from_be_bytes([m[6], m[7], m[8], m[9]]), 1_700_000_000);
        assert_eq!(m[10], 0x84);
        let mut sub = s.clone();
        sub.sub_second = true;
        let m = message(&sub, "t", "a", "n", &e, &BTreeMap::new(), Some("c1"));
        assert_eq!(m[0], 0x94);
        assert_eq!(&m[3..5], &[0xd7, 0x00]);
        assert_eq!(u32::from_be_bytes([m[9], m[10], m[11], m[12]]), 500_000_000);
    }

    #[test]
    fn addresses() {
        let p = |a: &str| parse_address(a);
        assert_eq!(p("tcp://h:1").unwrap().addr, "h:1");
        assert_eq!(p("h").unwrap().addr, "h:24224");
        assert_eq!(p("unix:///x.sock").unwrap().proto, "unix");
        assert!(p("x:y:z").is_err());
    }
}
