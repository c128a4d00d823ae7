//! Logging drivers: dockerd's option rules (checked by berthd at create
//! and at startup) and the wire formats the shim writes (`local`'s
//! records, syslog, GELF, fluentd's forward protocol, journald's native
//! protocol). The shim owns the connections (`src/shim/logger.rs`); this
//! module only validates, formats and connects, so it is shared and
//! tested without a shim.

pub mod fluentd;
pub mod gelf;
pub mod journald;
pub mod local;
pub mod net;
pub mod syslog;
pub mod tag;

use std::collections::BTreeMap;

/// The drivers `docker info` lists (dockerd lists its registered drivers
/// but `none`).
pub const DRIVERS: &[&str] = &[
    "fluentd",
    "gelf",
    "journald",
    "json-file",
    "local",
    "syslog",
];

/// Drivers whose entries go to a receiver, not a file berthd reads: the
/// dual-logging cache keeps `docker logs` working for them.
pub fn is_remote(driver: &str) -> bool {
    matches!(driver, "fluentd" | "gelf" | "journald" | "syslog")
}

/// Options every driver takes, handled around the driver (dockerd's
/// built-ins: the mode, the ring buffer, the dual-logging cache).
const BUILTIN: &[&str] = &[
    "mode",
    "max-buffer-size",
    "cache-disabled",
    "cache-max-size",
    "cache-max-file",
    "cache-compress",
];

/// The attribute options every driver but `none` knows.
const ATTRS: &[&str] = &["env", "env-regex", "labels", "labels-regex", "tag"];

/// One log entry as a driver gets it: the line without its newline, and
/// `partial` when the line was longer than the shim's 16 KiB buffer and
/// this is a piece of it (or the output ended without a newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `stdout` or `stderr`.
    pub source: &'static str,
    /// Nanoseconds since the epoch, when the shim read it.
    pub time_nano: i64,
    pub line: Vec<u8>,
    pub partial: bool,
}

impl Entry {
    /// An entry from one piece of output as the shim splits it.
    pub fn from_piece(source: &'static str, time_nano: i64, mut piece: Vec<u8>) -> Entry {
        let partial = piece.last() != Some(&b'\n');
        if !partial {
            piece.pop();
        }
        Entry {
            source,
            time_nano,
            line: piece,
            partial,
        }
    }

    pub fn is_stderr(&self) -> bool {
        self.source == "stderr"
    }
}

/// The current time in nanoseconds since the epoch.
pub fn now_nano() -> i64 {
    chrono::Utc::now()
        .timestamp_nanos_opt()
        .unwrap_or_else(|| chrono::Utc::now().timestamp() * 1_000_000_000)
}

/// dockerd's `ValidateLogOpts` and each driver's validator: the same
/// checks, the same messages (berth checks values at create where dockerd
/// finds some of them only at the start).
pub fn validate(driver: &str, opts: &BTreeMap<String, String>) -> Result<(), String> {
    if driver == "none" {
        return Ok(());
    }
    if !DRIVERS.contains(&driver) {
        return Err(format!(
            "error looking up logging plugin {driver}: plugin \"{driver}\" not found"
        ));
    }
    let mode = opts.get("mode").map(String::as_str).unwrap_or("");
    if !matches!(mode, "" | "blocking" | "non-blocking") {
        return Err(format!("logger: logging mode not supported: {mode}"));
    }
    if let Some(s) = opts.get("max-buffer-size") {
        if mode != "non-blocking" {
            return Err(
                "logger: max-buffer-size option is only supported with 'mode=non-blocking'".into(),
            );
        }
        ram_in_bytes(s).map_err(|e| format!("error parsing option max-buffer-size: {e}"))?;
    }
    if let Some(v) = opts.get("cache-disabled").filter(|v| !v.is_empty()) {
        parse_bool(v).ok_or_else(|| format!("invalid value for option cache-disabled: {v}"))?;
    }
    let cache: BTreeMap<String, String> = opts
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("cache-")?.to_string(), v.clone())))
        .filter(|(k, _)| k != "disabled")
        .collect();
    local::Settings::parse(&cache, local::CACHE_DEFAULTS).map_err(at_start)?;
    let rest: BTreeMap<String, String> = opts
        .iter()
        .filter(|(k, _)| !BUILTIN.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in &rest {
        if (k == "labels-regex" || k == "env-regex") && regex::Regex::new(v).is_err() {
            return Err(format!(
                "error parsing {k}: invalid regular expression {v:?}"
            ));
        }
    }
    if let Some(t) = rest.get("tag") {
        tag::check(t).map_err(at_start)?;
    }
    match driver {
        "json-file" => {
            only(&rest, &["max-file", "max-size", "compress"], |k| {
                format!("unknown log opt '{k}' for json-file log driver")
            })?;
            json_file(&rest).map_err(at_start)
        }
        "local" => {
            only(&rest, local::OPTS, |k| {
                format!("unknown log opt '{k}' for log driver local")
            })?;
            local::Settings::parse(&rest, local::DEFAULTS)
                .map(|_| ())
                .map_err(at_start)
        }
        "syslog" => syslog::validate(&rest),
        "gelf" => gelf::validate(&rest),
        "fluentd" => fluentd::validate(&rest),
        "journald" => only(&rest, &[], |k| {
            format!("unknown log opt '{k}' for journald log driver")
        }),
        _ => Ok(()),
    }
}

/// Every key is an attribute option or one of `own`.
fn only(
    opts: &BTreeMap<String, String>,
    own: &[&str],
    msg: impl Fn(&str) -> String,
) -> Result<(), String> {
    match opts
        .keys()
        .find(|k| !ATTRS.contains(&k.as_str()) && !own.contains(&k.as_str()))
    {
        Some(k) => Err(msg(k)),
        None => Ok(()),
    }
}

/// dockerd finds these when the driver starts; berth at create, with the
/// words `docker run` shows.
fn at_start(e: String) -> String {
    format!("failed to initialize logging driver: {e}")
}

fn json_file(opts: &BTreeMap<String, String>) -> Result<(), String> {
    if let Some(v) = opts.get("max-size") {
        ram_in_bytes(v)?;
    }
    let max_file = match opts.get("max-file") {
        Some(v) => {
            let n: i64 = v
                .parse()
                .map_err(|_| format!("strconv.Atoi: parsing {v:?}: invalid syntax"))?;
            if n < 1 {
                return Err("max-file cannot be less than 1".into());
            }
            n
        }
        None => 1,
    };
    if let Some(v) = opts.get("compress") {
        let on = parse_bool(v).ok_or_else(|| {
            format!("error reading compress log option: strconv.ParseBool: parsing {v:?}: invalid syntax")
        })?;
        if on && max_file == 1 {
            return Err("compress cannot be true when max-file is less than 2".into());
        }
    }
    Ok(())
}

/// go-units' `RAMInBytes` (binary multiples) with its error text.
pub fn ram_in_bytes(s: &str) -> Result<u64, String> {
    crate::config::units::parse_size(s).ok_or_else(|| format!("invalid size: '{s}'"))
}

/// go-units' `FromHumanSize` (decimal multiples), as the local driver
/// reads `max-size`.
pub fn human_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(end);
    let value: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "p" => 1e15,
        _ => return None,
    };
    let v = value * mult;
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(v as u64)
}

/// Go's `strconv.ParseBool` (`None`: not a boolean).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `time.ParseDuration` for the plain forms options use ("1s",
/// "500ms", "1m30s").
pub fn go_duration(s: &str) -> Option<std::time::Duration> {
    let mut rest = s.trim();
    if rest == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let uend = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..uend] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[uend..];
    }
    Some(std::time::Duration::from_secs_f64(total))
}

/// Options from pairs (the drivers' unit tests).
#[cfg(test)]
pub(crate) fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::opts as o;
    use super::*;

    /// The messages dockerd 20.10 answered for the same options.
    #[test]
    fn dockerd_messages() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (
                "bogus",
                &[],
                "error looking up logging plugin bogus: plugin \"bogus\" not found",
            ),
            (
                "syslog",
                &[("foo", "1")],
                "unknown log opt 'foo' for syslog log driver",
            ),
            (
                "json-file",
                &[("mode", "xx")],
                "logger: logging mode not supported: xx",
            ),
            (
                "json-file",
                &[("max-buffer-size", "1m")],
                "logger: max-buffer-size option is only supported with 'mode=non-blocking'",
            ),
            (
                "json-file",
                &[("mode", "non-blocking"), ("max-buffer-size", "zz")],
                "error parsing option max-buffer-size: invalid size: 'zz'",
            ),
            ("gelf", &[], "gelf-address is a required parameter"),
            (
                "gelf",
                &[
                    ("gelf-address", "tcp://127.0.0.1:1"),
                    ("gelf-compression-type", "gzip"),
                ],
                "compression is only supported on UDP",
            ),
            (
                "gelf",
                &[("gelf-address", "http://x:1")],
                "gelf-address should be in form proto://address, got http://x:1",
            ),
            (
                "gelf",
                &[("gelf-address", "udp://x")],
                "gelf: please provide gelf-address as proto://host:port",
            ),
            (
                "gelf",
                &[
                    ("gelf-address", "udp://h:1"),
                    ("gelf-compression-type", "foo"),
                ],
                "unknown value \"foo\" for log opt \"gelf-compression-type\" for gelf log driver",
            ),
            (
                "gelf",
                &[
                    ("gelf-address", "udp://h:1"),
                    ("gelf-compression-level", "12"),
                ],
                "unknown value \"12\" for log opt \"gelf-compression-level\" for gelf log driver",
            ),
            (
                "gelf",
                &[
                    ("gelf-address", "tcp://h:1"),
                    ("gelf-tcp-max-reconnect", "-2"),
                ],
                "\"gelf-tcp-max-reconnect\" must be a positive integer",
            ),
            (
                "gelf",
                &[
                    ("gelf-address", "udp://h:1"),
                    ("gelf-tcp-max-reconnect", "1"),
                ],
                "\"gelf-tcp-max-reconnect\" is only valid for TCP",
            ),
            (
                "gelf",
                &[("gelf-address", "udp://h:1"), ("foo", "1")],
                "unknown log opt \"foo\" for gelf log driver",
            ),
            (
                "fluentd",
                &[("fluentd-address", "x:y:z")],
                "invalid fluentd-address x:y:z: address x:y:z: too many colons in address",
            ),
            (
                "fluentd",
                &[("fluentd-buffer-limit", "x")],
                "invalid size: 'x'",
            ),
            (
                "fluentd",
                &[("fluentd-async", "maybe")],
                "strconv.ParseBool: parsing \"maybe\": invalid syntax",
            ),
            (
                "syslog",
                &[("syslog-address", "foo")],
                "syslog-address should be in form proto://address, got foo",
            ),
            (
                "syslog",
                &[("syslog-address", "unix:///nonexist")],
                "stat /nonexist: no such file or directory",
            ),
            (
                "syslog",
                &[("syslog-facility", "x")],
                "invalid syslog facility",
            ),
            ("syslog", &[("syslog-format", "x")], "Invalid syslog format"),
            (
                "journald",
                &[("cache-disabled", "x")],
                "invalid value for option cache-disabled: x",
            ),
            (
                "json-file",
                &[("foo", "x")],
                "unknown log opt 'foo' for json-file log driver",
            ),
            (
                "local",
                &[("foo", "x")],
                "unknown log opt 'foo' for log driver local",
            ),
            (
                "journald",
                &[("foo", "x")],
                "unknown log opt 'foo' for journald log driver",
            ),
            (
                "local",
                &[("max-file", "1")],
                "failed to initialize logging driver: compression cannot be enabled when max file count is 1",
            ),
            (
                "json-file",
                &[("max-size", "abc")],
                "failed to initialize logging driver: invalid size: 'abc'",
            ),
            (
                "local",
                &[("max-size", "abc")],
                "failed to initialize logging driver: invalid value for max-size: abc: invalid size: 'abc'",
            ),
        ];
        for (d, kv, want) in cases {
            assert_eq!(validate(d, &o(kv)).unwrap_err(), *want, "{d} {kv:?}");
        }
        for (d, kv) in [
            ("none", &[("anything", "x")][..]),
            (
                "json-file",
                &[("max-size", "10m"), ("max-file", "3"), ("compress", "true")],
            ),
            ("local", &[("max-file", "1"), ("compress", "false")]),
            (
                "syslog",
                &[
                    ("syslog-address", "tcp://127.0.0.1"),
                    ("syslog-format", "rfc5424micro"),
                    ("tag", "{{.Name}}"),
                ],
            ),
            (
                "gelf",
                &[
                    ("gelf-address", "udp://127.0.0.1:12201"),
                    ("labels", "a"),
                    ("mode", "non-blocking"),
                    ("max-buffer-size", "4m"),
                ],
            ),
            (
                "fluentd",
                &[
                    ("fluentd-address", "unix:///run/f.sock"),
                    ("fluentd-async", "true"),
                    ("cache-disabled", "true"),
                ],
            ),
            (
                "journald",
                &[
                    ("tag", "x"),
                    ("cache-max-size", "1m"),
                    ("cache-max-file", "2"),
                ],
            ),
        ] {
            validate(d, &o(kv)).unwrap_or_else(|e| panic!("{d} {kv:?}: {e}"));
        }
    }

    #[test]
    fn entries_pieces_and_sizes() {
        let e = Entry::from_piece("stdout", 1, b"hi\n".to_vec());
        assert_eq!((e.line.as_slice(), e.partial), (&b"hi"[..], false));
        let e = Entry::from_piece("stderr", 1, b"part".to_vec());
        assert!(e.partial && e.is_stderr());
        assert_eq!(human_size("20m"), Some(20_000_000));
        assert_eq!(human_size("1.5k"), Some(1500));
        assert_eq!(human_size("x"), None);
        assert_eq!(
            go_duration("1m30s"),
            Some(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            go_duration("500ms"),
            Some(std::time::Duration::from_millis(500))
        );
        assert_eq!(go_duration("5"), None);
    }
}
