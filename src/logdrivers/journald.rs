//! The `journald` driver: one datagram per entry in the journal's native
//! protocol (`KEY=value\n`, or `KEY\n<u64 LE length><value>\n` when the
//! value holds a newline) on journald's socket, with dockerd's fields:
//! `MESSAGE`, `PRIORITY` (6 stdout, 3 stderr), `CONTAINER_ID`,
//! `CONTAINER_ID_FULL`, `CONTAINER_NAME`, `CONTAINER_TAG`, `IMAGE_NAME`,
//! `SYSLOG_IDENTIFIER`, `CONTAINER_PARTIAL_MESSAGE`, and the extra
//! attributes with their keys made journal field names.

use std::collections::BTreeMap;

/// journald's socket.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// dockerd's `sanitizeKeyMod`: upper case letters, digits and `_`, never
/// a leading `_`.
pub fn field_name(s: &str) -> String {
    let mut n = String::new();
    for c in s.chars() {
        let c = if c.is_ascii_lowercase() {
            c.to_ascii_uppercase()
        } else if c.is_ascii_uppercase() || c.is_ascii_digit() {
            c
        } else {
            '_'
        };
        if !(n.is_empty() && c == '_') {
            n.push(c);
        }
    }
    n
}

fn field(out: &mut Vec<u8>, k: &str, v: &[u8]) {
    out.extend_from_slice(k.as_bytes());
    if v.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(v.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(v);
    out.push(b'\n');
}

/// The fields every entry of a container carries.
pub fn vars(
    facts: &super::tag::Facts,
    tag: &str,
    attrs: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut v: BTreeMap<String, String> = BTreeMap::new();
    for (k, val) in attrs {
        v.insert(field_name(k), val.clone());
    }
    v.insert("CONTAINER_ID".into(), facts.id.chars().take(12).collect());
    v.insert("CONTAINER_ID_FULL".into(), facts.id.clone());
    v.insert(
        "CONTAINER_NAME".into(),
        facts.name.trim_start_matches('/').into(),
    );
    v.insert("CONTAINER_TAG".into(), tag.into());
    v.insert("IMAGE_NAME".into(), facts.image_name.clone());
    v.insert("SYSLOG_IDENTIFIER".into(), tag.into());
    v.into_iter().collect()
}

/// One entry's datagram.
pub fn message(e: &super::Entry, vars: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(e.line.len() + 256);
    field(&mut out, "MESSAGE", &e.line);
    field(
        &mut out,
        "PRIORITY",
        if e.is_stderr() { b"3" } else { b"6" },
    );
    for (k, v) in vars {
        field(&mut out, k, v.as_bytes());
    }
    if e.partial {
        field(&mut out, "CONTAINER_PARTIAL_MESSAGE", b"true");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_protocol() {
        assert_eq!(field_name("com.example-label"), "COM_EXAMPLE_LABEL");
        assert_eq!(field_name("_x"), "X");
        let facts = super::super::tag::Facts {
            id: "0123456789abcdef".into(),
            name: "/web".into(),
            image_name: "busybox".into(),
            ..Default::default()
        };
        let v = vars(&facts, "web", &BTreeMap::new());
        let e = super::super::Entry {
            source: "stderr",
            time_nano: 0,
            line: b"two\nlines".to_vec(),
            partial: false,
        };
        let m = message(&e, &v);
        let mut want = b"MESSAGE\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(b"two\nlines\nPRIORITY=3\nCONTAINER_ID=0123456789ab\n");
        assert!(m.starts_with(&want), "{:?}", String::from_utf8_lossy(&m));
        assert!(m.ends_with(b"SYSLOG_IDENTIFIER=web\n"));
    }
}
