//! `.dockerignore`: which paths of a build context are left out, with the
//! pattern syntax of dockerd's builder (moby's patternmatcher): one
//! pattern per line, `#` comments, `!` re-includes, each pattern cleaned
//! (`./a/../b` is `b`, a leading `/` dropped) and matched against the
//! whole slash-separated path relative to the context: `*` is any run of
//! characters but `/`, `?` one of them, `[...]` a class, `**` any number
//! of directories (also none), `\` escapes. A path is left out when the
//! last pattern matching it, or one of its parent directories, is not a
//! `!` pattern.

use regex::Regex;

use super::dockerfile::ParseError;

#[derive(Clone)]
struct Pattern {
    exclusion: bool,
    re: Regex,
}

/// The patterns of one `.dockerignore`.
#[derive(Default, Clone)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// Go's `filepath.Clean` on a slash path.
pub(crate) fn clean(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    let joined = out.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// The regular expression of one (cleaned) pattern.
pub(crate) fn compile(pattern: &str) -> Result<Regex, ParseError> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                // `**/` is `**`.
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                }
                if i + 1 >= chars.len() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '\\' => {
                i += 1;
                match chars.get(i) {
                    Some(n) => re.push_str(&regex::escape(&n.to_string())),
                    None => re.push_str("\\\\"),
                }
            }
            '[' | ']' | '-' | '^' if in_class(&chars, i) => re.push(c),
            '[' | ']' => re.push(c),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).map_err(|e| ParseError(format!("syntax error in pattern {pattern:?}: {e}")))
}

/// Whether `chars[i]` is inside a `[...]` class (its `-` and `^` are the
/// class's, not literal).
fn in_class(chars: &[char], i: usize) -> bool {
    let open = chars[..i].iter().rposition(|&c| c == '[');
    let close = chars[..i].iter().rposition(|&c| c == ']');
    match (open, close) {
        (Some(o), Some(c)) => o > c,
        (Some(_), None) => true,
        _ => false,
    }
}

impl Ignore {
    /// Parse the content of a `.dockerignore`.
    pub fn parse(text: &str) -> Result<Ignore, ParseError> {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let mut p = line.trim();
            if p.is_empty() || p.starts_with('#') {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
                if p.is_empty() {
                    return Err(ParseError("illegal exclusion pattern: \"!\"".into()));
                }
            }
            let mut c = clean(p);
            if c.len() > 1 && c.starts_with('/') {
                c.remove(0);
            }
            patterns.push(Pattern {
                exclusion,
                re: compile(&c)?,
            });
        }
        Ok(Ignore { patterns })
    }

    /// Whether the context path `path` (slash-separated, relative) is left
    /// out of the build.
    pub fn excludes(&self, path: &str) -> bool {
        let path = clean(path.trim_start_matches('/'));
        let parents: Vec<&str> = path.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            // An include that already matched, or an exclusion of what
            // did not: nothing to change.
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.re.is_match(&path);
            if !hit && parents.len() > 1 {
                hit = (1..parents.len()).any(|n| p.re.is_match(&parents[..n].join("/")));
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(t: &str) -> Ignore {
        Ignore::parse(t).unwrap()
    }

    #[test]
    fn patterns_as_dockerd_matches_them() {
        let i = ig("# comment\n*.log\n!keep.log\n/build/\nnode_modules\n**/*.tmp\ndocs/**\n!docs/README.md\n./x/../secret\n");
        assert!(i.excludes("a.log"));
        assert!(!i.excludes("keep.log"));
        assert!(!i.excludes("sub/a.log"), "* does not cross /");
        assert!(i.excludes("build/out.bin"), "a parent directory matches");
        assert!(i.excludes("node_modules/x/y.js"));
        assert!(i.excludes("a.tmp") && i.excludes("deep/er/b.tmp"));
        assert!(i.excludes("docs/guide/intro.md"));
        // The parent `docs` matches the exclusion, then `!docs/README.md`
        // brings the file back (moby evaluates the path itself last).
        assert!(!i.excludes("docs/README.md"));
        assert!(i.excludes("secret"));
        assert!(!i.excludes("src/main.rs"));
        assert!(!i.excludes("x"));
    }

    #[test]
    fn classes_question_marks_and_escapes() {
        let i = ig("file?.txt\n[a-c]*.md\n\\*literal\nweird.name+(1)\n");
        assert!(i.excludes("file1.txt") && !i.excludes("file10.txt"));
        assert!(i.excludes("apple.md") && i.excludes("c.md") && !i.excludes("d.md"));
        assert!(i.excludes("*literal") && !i.excludes("xliteral"));
        assert!(i.excludes("weird.name+(1)") && !i.excludes("weirdXname+(1)"));
        assert!(Ignore::parse("!\n").is_err());
        assert!(!ig("").excludes("anything"));
    }

    #[test]
    fn double_star_forms() {
        let i = ig("**\n!src\n");
        assert!(i.excludes("a/b/c"));
        assert!(!i.excludes("src"));
        let i = ig("a/**/z\n");
        assert!(i.excludes("a/z") && i.excludes("a/b/c/z") && !i.excludes("a/b/y"));
    }
}
