//! The Dockerfile, parsed as dockerd's builder reads it: parser directives
//! (`# escape=`), line continuations with the escape character, comments
//! (also inside continuations), instructions case-insensitive, builder
//! flags (`--from=`, `--chown=`, `--platform=`...), the JSON (exec) and
//! shell forms, and each instruction's own arguments. Variables are not
//! expanded here: the builder expands them per step with the ARG and ENV
//! values in scope (`expand.rs`).

use std::collections::BTreeMap;

/// A Dockerfile that does not parse, with the message dockerd gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(m.into()))
}

/// A command in exec form (`["a","b"]`) or shell form (`a b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

/// `HEALTHCHECK`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    None,
    Check {
        flags: BTreeMap<String, String>,
        cmd: Command,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From {
        image: String,
        alias: Option<String>,
        platform: Option<String>,
    },
    Run(Command),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    /// `KEY=value` pairs, in order.
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    /// Names with their default, if any.
    Arg(Vec<(String, Option<String>)>),
    Expose(Vec<String>),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Stopsignal(String),
    Maintainer(String),
    Onbuild(Box<Instruction>, String),
    Healthcheck(Health),
    /// `COPY`/`ADD`: sources then destination, with `--from`, `--chown`,
    /// `--chmod`.
    Copy {
        add: bool,
        sources: Vec<String>,
        dest: String,
        from: Option<String>,
        chown: Option<String>,
        chmod: Option<String>,
    },
}

/// One instruction with the line it starts on and its original text
/// (for the build's step lines and the image history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub line: usize,
    pub original: String,
    pub instruction: Instruction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub escape: char,
    pub steps: Vec<Step>,
}

/// Parser directives at the top: `# escape=` (`\` or `` ` ``), `# syntax=`
/// and `# check=` (accepted, unused); the first other line ends them.
fn directives(lines: &[&str]) -> Result<(char, usize), ParseError> {
    let mut escape = None;
    let mut seen = std::collections::BTreeSet::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.trim().strip_prefix('#') else {
            return Ok((escape.unwrap_or('\\'), i));
        };
        let Some((k, v)) = rest.split_once('=') else {
            return Ok((escape.unwrap_or('\\'), i));
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Ok((escape.unwrap_or('\\'), i));
        }
        if !seen.insert(k.clone()) {
            return err(format!("only one {k} parser directive can be used"));
        }
        if k == "escape" {
            escape = Some(match v {
                "\\" => '\\',
                "`" => '`',
                _ => return err(format!("invalid escape token '{v}' does not match ` or \\")),
            });
        }
    }
    Ok((escape.unwrap_or('\\'), lines.len()))
}

/// The Dockerfile's logical lines: continuations joined, comments and
/// empty lines dropped; each with the number of the line it starts on.
fn logical_lines(text: &str) -> Result<(char, Vec<(usize, String)>), ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let (escape, start) = directives(&lines)?;
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, raw) in lines.iter().enumerate().skip(start) {
        let trimmed = raw.trim_start();
        if trimmed.starts_with('#') {
            continue;
        }
        if trimmed.trim().is_empty() {
            continue;
        }
        // A continuation keeps its leading whitespace (dockerd joins the
        // lines as they are, the escape character and what follows it cut).
        let line = if cur.is_some() {
            raw.trim_end()
        } else {
            trimmed.trim_end()
        };
        let (body, continues) = match line.strip_suffix(escape) {
            Some(b) => (b, true),
            None => (line, false),
        };
        match cur.as_mut() {
            Some((_, acc)) => acc.push_str(body),
            None => cur = Some((i + 1, body.to_string())),
        }
        if !continues {
            if let Some(done) = cur.take() {
                out.push(done);
            }
        }
    }
    if let Some(done) = cur.take() {
        out.push(done);
    }
    Ok((escape, out))
}

pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let (escape, lines) = logical_lines(text)?;
    let mut steps = Vec::new();
    for (line, text) in lines {
        let instruction = instruction(&text, escape)
            .map_err(|e| ParseError(format!("dockerfile parse error on line {line}: {}", e.0)))?;
        steps.push(Step {
            line,
            original: text.trim().to_string(),
            instruction,
        });
    }
    if steps.is_empty() {
        return err("the Dockerfile (Dockerfile) cannot be empty");
    }
    Ok(Dockerfile { escape, steps })
}

/// Leading `--name=value` (or `--name`) words, then the rest.
fn flags(args: &str) -> (BTreeMap<String, String>, &str) {
    let mut out = BTreeMap::new();
    let mut rest = args.trim_start();
    while let Some(f) = rest.strip_prefix("--") {
        let end = f.find(char::is_whitespace).unwrap_or(f.len());
        let word = &f[..end];
        let (k, v) = word.split_once('=').unwrap_or((word, ""));
        out.insert(k.to_ascii_lowercase(), v.to_string());
        rest = f[end..].trim_start();
    }
    (out, rest)
}

fn check_flags(flags: &BTreeMap<String, String>, allowed: &[&str]) -> Result<(), ParseError> {
    for k in flags.keys() {
        if !allowed.contains(&k.as_str()) {
            return err(format!("unknown flag: {k}"));
        }
    }
    Ok(())
}

/// The JSON array form, if `args` is one (`["a", "b"]`).
fn json_form(args: &str) -> Option<Vec<String>> {
    let t = args.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn command(args: &str) -> Command {
    match json_form(args) {
        Some(v) => Command::Exec(v),
        None => Command::Shell(args.trim().to_string()),
    }
}

/// Words split on whitespace, quotes and the escape character kept for
/// the expansion (dockerd splits `EXPOSE`, `VOLUME`, `ARG` words so).
fn words(args: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (_, c) if c == escape => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `KEY=value` pairs (values may be quoted, spaces escaped), or the
/// legacy `KEY value` form (one pair, the rest of the line its value).
fn pairs(instr: &str, args: &str, escape: char) -> Result<Vec<(String, String)>, ParseError> {
    let ws = words(args, escape);
    if ws.is_empty() {
        return err(format!("{instr} requires at least one argument"));
    }
    if !ws[0].contains('=') {
        // The legacy form: `ENV KEY value with spaces`.
        let t = args.trim();
        let (k, v) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        if v.trim().is_empty() {
            return err(format!("{instr} must have two arguments"));
        }
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    for w in ws {
        let Some((k, v)) = w.split_once('=') else {
            return err(format!(
                "Syntax error - can't find = in \"{w}\". Must be of the form: name=value"
            ));
        };
        if k.is_empty() {
            return err(format!("{instr} names can not be blank"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

fn one(instr: &str, args: &str) -> Result<String, ParseError> {
    let t = args.trim();
    if t.is_empty() {
        return err(format!("{instr} requires exactly one argument"));
    }
    Ok(t.to_string())
}

fn instruction(text: &str, escape: char) -> Result<Instruction, ParseError> {
    let t = text.trim();
    let (kw, args) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    let kw = kw.to_ascii_uppercase();
    let need = |what: &str| -> Result<(), ParseError> {
        if args.trim().is_empty() {
            return err(format!("{what} requires at least one argument"));
        }
        Ok(())
    };
    Ok(match kw.as_str() {
        "FROM" => {
            let (f, rest) = flags(args);
            check_flags(&f, &["platform"])?;
            let ws: Vec<&str> = rest.split_whitespace().collect();
            let (image, alias) = match ws.as_slice() {
                [image] => (image.to_string(), None),
                [image, as_kw, alias] if as_kw.eq_ignore_ascii_case("as") => {
                    (image.to_string(), Some(alias.to_ascii_lowercase()))
                }
                [] => return err("FROM requires either one or three arguments"),
                _ => return err("FROM requires either one or three arguments"),
            };
            Instruction::From {
                image,
                alias,
                platform: f.get("platform").cloned(),
            }
        }
        "RUN" => {
            need("RUN")?;
            Instruction::Run(command(args))
        }
        "CMD" => Instruction::Cmd(command(args)),
        "ENTRYPOINT" => Instruction::Entrypoint(command(args)),
        "SHELL" => match json_form(args) {
            Some(v) if !v.is_empty() => Instruction::Shell(v),
            _ => return err("SHELL requires the arguments to be in JSON form"),
        },
        "ENV" => Instruction::Env(pairs("ENV", args, escape)?),
        "LABEL" => Instruction::Label(pairs("LABEL", args, escape)?),
        "ARG" => {
            let ws = words(args, escape);
            if ws.is_empty() {
                return err("ARG requires at least one argument");
            }
            Instruction::Arg(
                ws.into_iter()
                    .map(|w| match w.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (w, None),
                    })
                    .collect(),
            )
        }
        "EXPOSE" => {
            need("EXPOSE")?;
            Instruction::Expose(words(args, escape))
        }
        "VOLUME" => {
            need("VOLUME")?;
            Instruction::Volume(json_form(args).unwrap_or_else(|| words(args, escape)))
        }
        "USER" => Instruction::User(one("USER", args)?),
        "WORKDIR" => Instruction::Workdir(one("WORKDIR", args)?),
        "STOPSIGNAL" => Instruction::Stopsignal(one("STOPSIGNAL", args)?),
        "MAINTAINER" => Instruction::Maintainer(one("MAINTAINER", args)?),
        "ONBUILD" => {
            need("ONBUILD")?;
            let inner = args.trim();
            let ikw = inner
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match ikw.as_str() {
                "ONBUILD" => return err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
                "FROM" | "MAINTAINER" => {
                    return err(format!("{ikw} isn't allowed as an ONBUILD trigger"))
                }
                _ => {}
            }
            Instruction::Onbuild(Box::new(instruction(inner, escape)?), inner.to_string())
        }
        "HEALTHCHECK" => {
            let (f, rest) = flags(args);
            let rest = rest.trim();
            let (sub, cmd) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            match sub.to_ascii_uppercase().as_str() {
                "NONE" if f.is_empty() && cmd.trim().is_empty() => {
                    Instruction::Healthcheck(Health::None)
                }
                "NONE" => return err("HEALTHCHECK NONE takes no arguments"),
                "CMD" => {
                    check_flags(
                        &f,
                        &[
                            "interval",
                            "timeout",
                            "start-period",
                            "start-interval",
                            "retries",
                        ],
                    )?;
                    if cmd.trim().is_empty() {
                        return err("Missing command after HEALTHCHECK CMD");
                    }
                    Instruction::Healthcheck(Health::Check {
                        flags: f,
                        cmd: command(cmd),
                    })
                }
                other => return err(format!("Unknown type \"{other}\" in HEALTHCHECK (try CMD)")),
            }
        }
        "COPY" | "ADD" => {
            let add = kw == "ADD";
            let (f, rest) = flags(args);
            let allowed: &[&str] = if add {
                &["chown", "chmod", "checksum", "keep-git-dir", "link"]
            } else {
                &["from", "chown", "chmod", "link", "parents", "exclude"]
            };
            check_flags(&f, allowed)?;
            let mut all = json_form(rest).unwrap_or_else(|| words(rest, escape));
            if all.len() < 2 {
                return err(format!("{kw} requires at least two arguments, but only one was provided. Destination could not be determined."));
            }
            let dest = all.pop().unwrap_or_default();
            Instruction::Copy {
                add,
                sources: all,
                dest,
                from: f.get("from").cloned(),
                chown: f.get("chown").cloned(),
                chmod: f.get("chmod").cloned(),
            }
        }
        "" => return err("empty instruction"),
        other => return err(format!("unknown instruction: {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ins(text: &str) -> Vec<Instruction> {
        parse(text)
            .unwrap()
            .steps
            .into_iter()
            .map(|s| s.instruction)
            .collect()
    }

    #[test]
    fn continuations_comments_and_case() {
        let d = parse(
            "# syntax=docker/dockerfile:1\nfrom busybox AS Base\n\n# a comment\nrun echo a \\\n  # inside\n  && echo b\ncmd [\"sh\", \"-c\", \"echo hi\"]\n",
        )
        .unwrap();
        assert_eq!(d.escape, '\\');
        assert_eq!(d.steps.len(), 3);
        assert_eq!(
            d.steps[0].instruction,
            Instruction::From {
                image: "busybox".into(),
                alias: Some("base".into()),
                platform: None
            }
        );
        assert_eq!(d.steps[1].line, 5);
        assert_eq!(
            d.steps[1].instruction,
            Instruction::Run(Command::Shell("echo a   && echo b".into()))
        );
        assert_eq!(
            d.steps[2].instruction,
            Instruction::Cmd(Command::Exec(vec![
                "sh".into(),
                "-c".into(),
                "echo hi".into()
            ]))
        );
    }

    #[test]
    fn escape_directive() {
        let d = parse("# escape=`\nFROM scratch\nCOPY a `\n  c:\\dir\\\n").unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(
            d.steps[1].instruction,
            Instruction::Copy {
                add: false,
                sources: vec!["a".into()],
                dest: "c:\\dir\\".into(),
                from: None,
                chown: None,
                chmod: None
            }
        );
        assert!(parse("# escape=x\nFROM scratch\n")
            .unwrap_err()
            .0
            .contains("invalid escape token 'x'"));
        // A directive after the first instruction is a comment.
        let d = parse("FROM scratch\n# escape=`\nRUN a \\\n b\n").unwrap();
        assert_eq!(d.escape, '\\');
        assert_eq!(
            d.steps[1].instruction,
            Instruction::Run(Command::Shell("a  b".into()))
        );
    }

    #[test]
    fn env_label_arg_forms() {
        let i = ins("FROM x\nENV A=1 B=\"two words\" C=three\\ words\nENV LEGACY some value here\nLABEL \"com.x\"=y k=v\nARG V=1 W\n");
        assert_eq!(
            i[1],
            Instruction::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"two words\"".into()),
                ("C".into(), "three\\ words".into())
            ])
        );
        assert_eq!(
            i[2],
            Instruction::Env(vec![("LEGACY".into(), "some value here".into())])
        );
        assert_eq!(
            i[3],
            Instruction::Label(vec![
                ("\"com.x\"".into(), "y".into()),
                ("k".into(), "v".into())
            ])
        );
        assert_eq!(
            i[4],
            Instruction::Arg(vec![("V".into(), Some("1".into())), ("W".into(), None)])
        );
    }

    #[test]
    fn copy_add_healthcheck_onbuild() {
        let i = ins("FROM x\nCOPY --from=build --chown=1:2 --chmod=644 [\"a b\", \"/c/\"]\nADD src1 src2 /dst\nHEALTHCHECK --interval=5s --retries=3 CMD curl -f http://x/\nHEALTHCHECK NONE\nONBUILD RUN echo hi\nSHELL [\"/bin/bash\", \"-c\"]\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\nEXPOSE 80/tcp 53/udp\n");
        assert_eq!(
            i[1],
            Instruction::Copy {
                add: false,
                sources: vec!["a b".into()],
                dest: "/c/".into(),
                from: Some("build".into()),
                chown: Some("1:2".into()),
                chmod: Some("644".into())
            }
        );
        assert!(
            matches!(&i[2], Instruction::Copy { add: true, sources, dest, .. } if sources.len() == 2 && dest == "/dst")
        );
        match &i[3] {
            Instruction::Healthcheck(Health::Check { flags, cmd }) => {
                assert_eq!(flags["interval"], "5s");
                assert_eq!(flags["retries"], "3");
                assert_eq!(cmd, &Command::Shell("curl -f http://x/".into()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(i[4], Instruction::Healthcheck(Health::None));
        assert_eq!(
            i[5],
            Instruction::Onbuild(
                Box::new(Instruction::Run(Command::Shell("echo hi".into()))),
                "RUN echo hi".into()
            )
        );
        assert_eq!(
            i[6],
            Instruction::Shell(vec!["/bin/bash".into(), "-c".into()])
        );
        assert_eq!(i[7], Instruction::Volume(vec!["/a".into(), "/b".into()]));
        assert_eq!(i[8], Instruction::Volume(vec!["/c".into(), "/d".into()]));
        assert_eq!(
            i[9],
            Instruction::Expose(vec!["80/tcp".into(), "53/udp".into()])
        );
    }

    #[test]
    fn errors_as_dockerd_words_them() {
        let e = |t: &str| parse(t).unwrap_err().0;
        assert!(e("").contains("cannot be empty"));
        assert!(e("# only a comment\n").contains("cannot be empty"));
        assert_eq!(
            e("FROM x\nFOO bar\n"),
            "dockerfile parse error on line 2: unknown instruction: FOO"
        );
        assert!(e("FROM x\nSHELL /bin/sh -c\n")
            .contains("SHELL requires the arguments to be in JSON form"));
        assert!(e("FROM x\nCOPY onlyone\n").contains("COPY requires at least two arguments"));
        assert!(e("FROM x\nONBUILD ONBUILD RUN x\n").contains("Chaining ONBUILD"));
        assert!(e("FROM x\nONBUILD FROM y\n").contains("FROM isn't allowed as an ONBUILD trigger"));
        assert!(
            e("FROM x\nHEALTHCHECK BOGUS x\n").contains("Unknown type \"BOGUS\" in HEALTHCHECK")
        );
        assert!(e("FROM x\nCOPY --bogus=1 a b\n").contains("unknown flag: bogus"));
        assert!(e("FROM a b\n").contains("FROM requires either one or three arguments"));
        assert!(e("# escape=\\\n# escape=`\nFROM x\n").contains("only one escape parser directive"));
        assert!(e("FROM x\nENV A\n").contains("ENV must have two arguments"));
        assert!(e("FROM x\nENV A=1 B\n").contains("can't find = in \"B\""));
    }
}
