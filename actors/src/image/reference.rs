//! Image references, normalised as dockerd normalises them:
//! `busybox` = `docker.io/library/busybox:latest`.

use std::fmt;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";

/// A parsed, normalised reference: repository plus a tag and/or digest.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Reference {
    /// `domain/path`, e.g. `docker.io/library/busybox`.
    pub repo: String,
    pub tag: Option<String>,
    /// `sha256:<hex>`.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    Invalid,
    #[error("invalid reference format: repository name (library/{0}) must be lowercase")]
    Uppercase(String),
    #[error("invalid tag format")]
    Tag,
    #[error("invalid digest format")]
    Digest,
}

impl crate::HasKind for ReferenceError {
    fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::InvalidParameter
    }
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ separated by '.', '_', '__' or '-'+
    if c.is_empty() {
        return false;
    }
    let b = c.as_bytes();
    if !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    c.chars()
        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-'))
        && !c.contains("..")
        && !c.contains("___")
}

fn valid_domain(d: &str) -> bool {
    let host = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, port)) => {
                return h.parse::<std::net::Ipv6Addr>().is_ok()
                    && (port.is_empty()
                        || port
                            .strip_prefix(':')
                            .is_some_and(|p| p.parse::<u16>().is_ok()))
            }
            None => return false,
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => {
                if p.parse::<u16>().is_err() {
                    return false;
                }
                h
            }
            None => d,
        }
    };
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `sha256:<64 hex>`.
pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    })
}

impl Reference {
    /// Parse and normalise; a name without tag or digest gets no tag (use
    /// [`Reference::with_default_tag`] where dockerd adds `latest`).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() || s.len() > 4096 {
            return Err(ReferenceError::Invalid);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !valid_digest(d) {
                    return Err(ReferenceError::Digest);
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                if !valid_tag(t) {
                    return Err(ReferenceError::Tag);
                }
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(ReferenceError::Invalid);
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if domain != DEFAULT_DOMAIN && !valid_domain(&domain) {
            return Err(ReferenceError::Invalid);
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(name.to_string()));
        }
        if !path.split('/').all(valid_component) {
            return Err(ReferenceError::Invalid);
        }
        Ok(Reference {
            repo: format!("{domain}/{path}"),
            tag,
            digest,
        })
    }

    /// dockerd's `TagNameOnly`: add `latest` when there is neither tag nor digest.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    pub fn domain(&self) -> &str {
        self.repo.split('/').next().unwrap_or(DEFAULT_DOMAIN)
    }

    /// The repository as users write it (`busybox`, `127.0.0.1:5000/x/y`).
    pub fn familiar_repo(&self) -> String {
        let r = self.repo.strip_prefix("docker.io/").unwrap_or(&self.repo);
        if self.repo.starts_with("docker.io/") {
            r.strip_prefix("library/").unwrap_or(r).to_string()
        } else {
            r.to_string()
        }
    }

    /// Familiar form with tag or digest, as `docker images` shows references.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repo();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repo)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_dockerd() {
        let r = Reference::parse("busybox").unwrap().with_default_tag();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar(), "busybox:latest");
        let r = Reference::parse("127.0.0.1:5000/trace/small:latest").unwrap();
        assert_eq!(r.repo, "127.0.0.1:5000/trace/small");
        assert_eq!(r.familiar(), "127.0.0.1:5000/trace/small:latest");
        assert_eq!(r.domain(), "127.0.0.1:5000");
        let r = Reference::parse("user/app:1.0").unwrap();
        assert_eq!(r.to_string(), "docker.io/user/app:1.0");
        assert_eq!(r.familiar(), "user/app:1.0");
        let r = Reference::parse("localhost/x").unwrap();
        assert_eq!(r.repo, "localhost/x");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{d}"))
            .unwrap()
            .with_default_tag();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
    }

    #[test]
    fn refuses_bad_references() {
        assert!(Reference::parse("").is_err());
        assert!(Reference::parse("Busybox").is_err());
        assert!(Reference::parse("busybox:").is_err());
        assert!(Reference::parse("busybox:bad tag").is_err());
        assert!(Reference::parse("a//b").is_err());
        assert!(Reference::parse("busybox@sha256:xyz").is_err());
        assert!(Reference::parse("-x").is_err());
        assert!(Reference::parse("host:99999/x").is_err());
    }
}
