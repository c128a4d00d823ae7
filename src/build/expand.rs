//! Variable substitution in Dockerfile words, as dockerd's builder does
//! it for `ENV`, `ARG`, `LABEL`, `COPY`, `ADD`, `WORKDIR`, `USER`,
//! `EXPOSE`, `VOLUME`, `STOPSIGNAL`, `FROM` (before the first stage, the
//! ARGs only): `$VAR`, `${VAR}`, `${VAR:-word}` and `${VAR-word}` (a
//! default), `${VAR:+word}` and `${VAR+word}` (an alternative); single
//! quotes keep everything literal, double quotes still expand; the escape
//! character makes the next character literal; quotes are removed.

use super::dockerfile::ParseError;

/// `word` with its variables (from `lookup`) substituted.
pub fn expand(
    word: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, ParseError> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == escape {
            if let Some(&n) = chars.get(i + 1) {
                out.push(n);
                i += 2;
            } else {
                out.push(c);
                i += 1;
            }
        } else if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == '\'')
                .ok_or_else(|| ParseError(format!("unexpected end of statement while looking for matching single-quote in {word:?}")))?;
            out.extend(&chars[i + 1..i + 1 + end]);
            i += end + 2;
        } else if c == '"' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(ParseError(format!(
                            "unexpected end of statement while looking for matching double-quote in {word:?}"
                        )))
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&e) if e == escape => match chars.get(i + 1) {
                        Some(&n) if n == '"' || n == '$' || n == escape => {
                            out.push(n);
                            i += 2;
                        }
                        _ => {
                            out.push(e);
                            i += 1;
                        }
                    },
                    Some('$') => i = variable(&chars, i, lookup, escape, &mut out)?,
                    Some(&x) => {
                        out.push(x);
                        i += 1;
                    }
                }
            }
        } else if c == '$' {
            i = variable(&chars, i, lookup, escape, &mut out)?;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The variable at `chars[at]` (a `$`) into `out`; the index after it.
fn variable(
    chars: &[char],
    at: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
    out: &mut String,
) -> Result<usize, ParseError> {
    let mut i = at + 1;
    if chars.get(i) != Some(&'{') {
        let start = i;
        while chars.get(i).is_some_and(|&c| is_name(c)) {
            i += 1;
        }
        if i == start {
            out.push('$');
            return Ok(i);
        }
        let name: String = chars[start..i].iter().collect();
        out.push_str(&lookup(&name).unwrap_or_default());
        return Ok(i);
    }
    i += 1;
    let start = i;
    while chars.get(i).is_some_and(|&c| is_name(c)) {
        i += 1;
    }
    let name: String = chars[start..i].iter().collect();
    let missing = || ParseError("missing ':' in substitution".to_string());
    match chars.get(i) {
        Some('}') => {
            out.push_str(&lookup(&name).unwrap_or_default());
            Ok(i + 1)
        }
        Some(&c @ (':' | '-' | '+')) => {
            let colon = c == ':';
            let op = if colon {
                chars.get(i + 1).copied()
            } else {
                Some(c)
            };
            let body_start = if colon { i + 2 } else { i + 1 };
            // The word runs to the matching `}`, nested braces counted.
            let mut depth = 1;
            let mut j = body_start;
            while j < chars.len() {
                match chars[j] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            if j >= chars.len() {
                return Err(ParseError(format!(
                    "missing '}}' in substitution of {name}"
                )));
            }
            let word: String = chars[body_start..j].iter().collect();
            let value = lookup(&name);
            let set = if colon {
                value.as_deref().is_some_and(|v| !v.is_empty())
            } else {
                value.is_some()
            };
            match op {
                Some('-') => {
                    if set {
                        out.push_str(&value.unwrap_or_default());
                    } else {
                        out.push_str(&expand(&word, lookup, escape)?);
                    }
                }
                Some('+') => {
                    if set {
                        out.push_str(&expand(&word, lookup, escape)?);
                    }
                }
                Some(o) => {
                    return Err(ParseError(format!(
                        "unsupported modifier ({o}) in substitution"
                    )))
                }
                None => return Err(missing()),
            }
            Ok(j + 1)
        }
        _ => Err(ParseError(format!(
            "missing '}}' in substitution of {name}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(word: &str) -> Result<String, ParseError> {
        let lookup = |k: &str| match k {
            "A" => Some("1".to_string()),
            "EMPTY" => Some(String::new()),
            "PATHS" => Some("/a b".to_string()),
            _ => None,
        };
        expand(word, &lookup, '\\')
    }

    #[test]
    fn substitutions() {
        assert_eq!(x("$A").unwrap(), "1");
        assert_eq!(x("${A}x").unwrap(), "1x");
        assert_eq!(x("a$Ab").unwrap(), "a");
        assert_eq!(x("$NOPE-").unwrap(), "-");
        assert_eq!(x("${NOPE:-def}").unwrap(), "def");
        assert_eq!(x("${EMPTY:-def}").unwrap(), "def");
        assert_eq!(x("${EMPTY-def}").unwrap(), "");
        assert_eq!(x("${A:-def}").unwrap(), "1");
        assert_eq!(x("${A:+alt}").unwrap(), "alt");
        assert_eq!(x("${NOPE:+alt}").unwrap(), "");
        assert_eq!(x("${EMPTY+alt}").unwrap(), "alt");
        assert_eq!(x("${NOPE:-${A}}").unwrap(), "1");
        assert_eq!(x("$").unwrap(), "$");
        assert_eq!(x("cost: 5$").unwrap(), "cost: 5$");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(x("'$A'").unwrap(), "$A");
        assert_eq!(x("\"$A b\"").unwrap(), "1 b");
        assert_eq!(x("\\$A").unwrap(), "$A");
        assert_eq!(x("two\\ words").unwrap(), "two words");
        assert_eq!(x("\"a \\\"q\\\" \\$A \\n\"").unwrap(), "a \"q\" $A \\n");
        assert_eq!(expand("`$A", &|_| Some("v".into()), '`').unwrap(), "$A");
        assert!(x("'open").is_err());
        assert!(x("\"open").is_err());
        assert!(x("${A").is_err());
        assert!(x("${A:?x}")
            .unwrap_err()
            .0
            .contains("unsupported modifier (?)"));
    }
}
