//! The `syslog` driver as dockerd writes it (its vendored srslog): the
//! address (`udp`, `tcp`, `tcp+tls`, `unix`, `unixgram`; none: the local
//! `/dev/log`), the facility, the format (the default "unix" form,
//! `rfc3164`, `rfc5424`, `rfc5424micro`; RFC 5425 octet counting on
//! `tcp+tls` for the 5424 forms), stdout at severity info and stderr at
//! err, a newline after every message.

use std::collections::BTreeMap;

use super::net::{self, Addr};

const OPTS: &[&str] = &[
    "syslog-address",
    "syslog-facility",
    "syslog-tls-ca-cert",
    "syslog-tls-cert",
    "syslog-tls-key",
    "syslog-tls-skip-verify",
    "syslog-format",
];

const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// The message forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Unix,
    Rfc3164,
    Rfc5424,
    Rfc5424Micro,
}

/// A parsed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `None`: the local syslog socket.
    pub addr: Option<Addr>,
    /// The facility code (0..=23).
    pub facility: u8,
    pub format: Format,
}

fn parse_address(a: &str) -> Result<Option<Addr>, String> {
    if a.is_empty() {
        return Ok(None);
    }
    if !net::is_transport_url(a) {
        return Err(format!(
            "syslog-address should be in form proto://address, got {a}"
        ));
    }
    let (proto, rest) = net::split_url(a);
    if proto == "unix" || proto == "unixgram" {
        std::fs::metadata(rest).map_err(|_| format!("stat {rest}: no such file or directory"))?;
        return Ok(Some(Addr {
            proto: proto.into(),
            addr: rest.into(),
        }));
    }
    let host = rest.split('/').next().unwrap_or(rest);
    let addr = match net::split_host_port(host)? {
        Some(_) => host.to_string(),
        None => format!("{host}:514"),
    };
    Ok(Some(Addr {
        proto: proto.into(),
        addr,
    }))
}

fn parse_facility(f: &str) -> Result<u8, String> {
    if f.is_empty() {
        return Ok(3);
    }
    if let Some((_, n)) = FACILITIES.iter().find(|(name, _)| *name == f) {
        return Ok(*n);
    }
    match f.parse::<u8>() {
        Ok(n) if n <= 23 => Ok(n),
        _ => Err("invalid syslog facility".into()),
    }
}

fn parse_format(f: &str) -> Result<Format, String> {
    Ok(match f {
        "" => Format::Unix,
        "rfc3164" => Format::Rfc3164,
        "rfc5424" => Format::Rfc5424,
        "rfc5424micro" => Format::Rfc5424Micro,
        _ => return Err("Invalid syslog format".into()),
    })
}

impl Settings {
    pub fn parse(opts: &BTreeMap<String, String>) -> Result<Settings, String> {
        let get = |k: &str| opts.get(k).map(String::as_str).unwrap_or("");
        Ok(Settings {
            addr: parse_address(get("syslog-address"))?,
            facility: parse_facility(get("syslog-facility"))?,
            format: parse_format(get("syslog-format"))?,
        })
    }

    /// The TLS client configuration of a `tcp+tls` address.
    pub fn tls(
        &self,
        opts: &BTreeMap<String, String>,
    ) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>, String> {
        if self.addr.as_ref().is_none_or(|a| a.proto != "tcp+tls") {
            return Ok(None);
        }
        let get = |k: &str| opts.get(k).map(String::as_str).filter(|v| !v.is_empty());
        net::tls_config(
            get("syslog-tls-ca-cert"),
            get("syslog-tls-cert"),
            get("syslog-tls-key"),
            opts.contains_key("syslog-tls-skip-verify"),
        )
        .map(Some)
    }
}

pub fn validate(opts: &BTreeMap<String, String>) -> Result<(), String> {
    super::only(opts, OPTS, |k| {
        format!("unknown log opt '{k}' for syslog log driver")
    })?;
    Settings::parse(opts).map(|_| ())
}

/// One message as srslog formats and frames it. `hostname`: the host's
/// name (as dockerd's srslog takes `os.Hostname()`); `pid`: the writer's.
#[allow(clippy::too_many_arguments)]
pub fn format(
    s: &Settings,
    hostname: &str,
    tag: &str,
    pid: u32,
    stderr: bool,
    time: chrono::DateTime<chrono::Local>,
    line: &[u8],
    out: &mut Vec<u8>,
) {
    use std::io::Write;
    let severity = if stderr { 3 } else { 6 };
    let p = u16::from(s.facility) << 3 | severity;
    let msg = String::from_utf8_lossy(line);
    let mut body = Vec::with_capacity(line.len() + 64);
    let _ = match s.format {
        Format::Unix => write!(
            body,
            "<{p}>{} {tag}[{pid}]: {msg}",
            time.format("%b %e %H:%M:%S")
        ),
        Format::Rfc3164 => write!(
            body,
            "<{p}>{} {hostname} {tag}[{pid}]: {msg}",
            time.format("%b %e %H:%M:%S")
        ),
        Format::Rfc5424 | Format::Rfc5424Micro => {
            let ts = if s.format == Format::Rfc5424 {
                time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            } else {
                // Go's "2006-01-02T15:04:05.999999Z07:00": trailing zeros trimmed.
                let mut t = time.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
                while t.ends_with('0') {
                    t.pop();
                }
                if t.ends_with('.') {
                    t.pop();
                }
                let off = time.format("%:z").to_string();
                t + if off == "+00:00" { "Z" } else { &off }
            };
            write!(body, "<{p}>1 {ts} {hostname} {tag} {pid} {tag} - {msg}")
        }
    };
    if body.last() != Some(&b'\n') {
        body.push(b'\n');
    }
    let octets = matches!(s.format, Format::Rfc5424 | Format::Rfc5424Micro)
        && s.addr.as_ref().is_some_and(|a| a.proto == "tcp+tls");
    if octets {
        let _ = write!(out, "{} ", body.len());
    }
    out.extend_from_slice(&body);
}

/// The local syslog sockets srslog tries, in order, each as a datagram
/// then as a stream socket.
pub const LOCAL_SOCKETS: &[&str] = &["/dev/log", "/var/run/syslog", "/var/run/log"];

#[cfg(test)]
mod tests {
    use super::super::opts as o;
    use super::*;
    use chrono::TimeZone;

    /// The forms dockerd 20.10 sent in the same run (hostname `vm`,
    /// pid 7085, daemon facility).
    #[test]
    fn formats_as_dockerd() {
        let t = chrono::Local
            .with_ymd_and_hms(2026, 12, 4, 16, 51, 45)
            .unwrap();
        let mut s = Settings::parse(&o(&[("syslog-address", "udp://127.0.0.1:5514")])).unwrap();
        let mut out = Vec::new();
        format(&s, "vm", "41a2eb6f6c0e", 7085, false, t, b"out", &mut out);
        let day = t.format("%b %e %H:%M:%S").to_string();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("<30>{day} 41a2eb6f6c0e[7085]: out\n")
        );
        s.format = Format::Rfc3164;
        let mut out = Vec::new();
        format(&s, "vm", "4c6575458060", 7085, true, t, b"err", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("<27>{day} vm 4c6575458060[7085]: err\n")
        );
        s.format = Format::Rfc5424Micro;
        let t2 = t + chrono::Duration::microseconds(372_420);
        let mut out = Vec::new();
        format(&s, "vm", "8c474dba268c", 7085, true, t2, b"err", &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("<27>1 2026-12-04T"), "{text}");
        assert!(text.contains(":51:45.37242"), "{text}");
        assert!(
            text.ends_with(" vm 8c474dba268c 7085 8c474dba268c - err\n"),
            "{text}"
        );
        // tcp+tls with a 5424 form: octet counting.
        let s = Settings::parse(&o(&[
            ("syslog-address", "tcp+tls://h:6514"),
            ("syslog-format", "rfc5424"),
            ("syslog-facility", "local0"),
        ]))
        .unwrap();
        let mut out = Vec::new();
        format(&s, "h", "t", 1, false, t, b"x", &mut out);
        let text = String::from_utf8(out).unwrap();
        let (n, rest) = text.split_once(' ').unwrap();
        assert_eq!(n.parse::<usize>().unwrap(), rest.len());
        assert!(rest.starts_with("<134>1 "), "{rest}");
    }

    #[test]
    fn addresses() {
        let s = Settings::parse(&o(&[("syslog-address", "tcp://10.0.0.1")])).unwrap();
        assert_eq!(s.addr.unwrap().addr, "10.0.0.1:514");
        assert_eq!(
            Settings::parse(&o(&[("syslog-facility", "17")]))
                .unwrap()
                .facility,
            17
        );
        assert!(Settings::parse(&o(&[("syslog-facility", "24")])).is_err());
        assert_eq!(Settings::parse(&o(&[])).unwrap().addr, None);
    }
}
