//! OS errors worded as dockerd words them. Rust renders an `io::Error` from
//! errno as `No space left on device (os error 28)`; Go (and so dockerd
//! and every docker client's expectations) as `no space left on device`.
//! Every message a client receives goes through [`as_go`].

/// `msg` with each `<strerror> (os error N)` in Go's words.
pub fn as_go(msg: &str) -> String {
    const MARK: &str = " (os error ";
    if !msg.contains(MARK) {
        return msg.to_string();
    }
    let mut out = msg.to_string();
    let mut from = 0;
    while let Some(at) = out[from..].find(MARK).map(|i| i + from) {
        let digits: String = out[at + MARK.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let end = at + MARK.len() + digits.len();
        let (Ok(n), true) = (digits.parse::<i32>(), out[end..].starts_with(')')) else {
            from = end;
            continue;
        };
        let whole = std::io::Error::from_raw_os_error(n).to_string();
        let text = whole.strip_suffix(&format!("{MARK}{n})")).unwrap_or(&whole);
        let start = at.saturating_sub(text.len());
        if out[..at].ends_with(text) {
            let mut go = text.to_string();
            if let Some(c) = go.get(..1) {
                go.replace_range(..1, &c.to_lowercase());
            }
            out.replace_range(start..end + 1, &go);
            from = start + go.len();
        } else {
            from = end;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_as_go_writes_them() {
        assert_eq!(
            as_go("writing blob sha256:ab at /x: No space left on device (os error 28)"),
            "writing blob sha256:ab at /x: no space left on device"
        );
        assert_eq!(
            as_go("a: No such file or directory (os error 2); b: Permission denied (os error 13)"),
            "a: no such file or directory; b: permission denied"
        );
        // Anything else stays.
        assert_eq!(as_go("plain"), "plain");
        assert_eq!(as_go("odd (os error x)"), "odd (os error x)");
        assert_eq!(as_go("Mismatch (os error 28)"), "Mismatch (os error 28)");
    }
}
