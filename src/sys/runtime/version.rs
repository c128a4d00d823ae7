//! Guarding against known OCI runtime breakouts by what the runtime is, not
//! by trusting a version string alone:
//! - runc older than 1.0.0-rc6 (CVE-2019-5736, /proc/self/exe overwrite):
//!   berthd refuses to start with it as the default runtime.
//! - runc before 1.1.12 (CVE-2024-21626, leaked fds / WorkingDir in /proc)
//!   is "known vulnerable" unless it is a distribution build that carries
//!   the fix (Debian 1.1.5+ds1-1+deb12u1 does): a `docker info` warning.
//!   berth mitigates regardless (every fd CLOEXEC before the runtime runs,
//!   WorkingDir under /proc refused).

/// (major, minor, patch, rc): `1.0.0-rc6` → (1, 0, 0, Some(6)); a release sorts after its rcs.
pub fn parse(version: &str) -> Option<(u32, u32, u32, Option<u32>)> {
    let v = version.trim().trim_start_matches('v');
    let (core, rest) = match v.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, ""),
    };
    let mut nums = core.split('.').map(|n| n.parse::<u32>().ok());
    let major = nums.next()??;
    let minor = nums.next().flatten().unwrap_or(0);
    let patch = nums.next().flatten().unwrap_or(0);
    let rc = rest
        .strip_prefix("-rc")
        .or_else(|| rest.strip_prefix("-rc."))
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok());
    Some((major, minor, patch, rc))
}

fn key(v: (u32, u32, u32, Option<u32>)) -> (u32, u32, u32, u32) {
    (v.0, v.1, v.2, v.3.unwrap_or(u32::MAX))
}

/// Distribution builds known to carry the CVE-2024-21626 fix in an older version.
const PATCHED_BACKPORTS: &[&str] = &["1.1.5+ds1-1+deb12u1"];

/// What berth concludes about a runc-compatible runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Start, with this `docker info` warning.
    Warn(String),
    /// Refuse to start.
    Refuse(String),
}

/// Judge a runtime named `name` from its `--version` output fields.
pub fn judge(name: &str, version: &str, commit: &str) -> Verdict {
    let Some(v) = parse(version) else {
        return Verdict::Ok; // not runc-versioned (crun, ...): nothing known
    };
    if key(v) < key((1, 0, 0, Some(6))) {
        return Verdict::Refuse(format!(
            "the OCI runtime {name} {version} is older than runc 1.0.0-rc6 and vulnerable to CVE-2019-5736; upgrade it"
        ));
    }
    let patched = PATCHED_BACKPORTS
        .iter()
        .any(|p| commit == *p || version == *p);
    if key(v) < key((1, 1, 12, None)) && !patched {
        return Verdict::Warn(format!(
            "WARNING: the OCI runtime {name} {version} is known to be vulnerable to CVE-2024-21626; upgrade to runc 1.1.12 or later"
        ));
    }
    Verdict::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse("1.0.0-rc6"), Some((1, 0, 0, Some(6))));
        assert_eq!(parse("1.1.5+ds1"), Some((1, 1, 5, None)));
        assert_eq!(parse("1.2.0"), Some((1, 2, 0, None)));
        assert_eq!(parse("crun"), None);
    }

    #[test]
    fn verdicts() {
        assert!(matches!(judge("runc", "1.0.0-rc5", ""), Verdict::Refuse(_)));
        assert!(matches!(judge("runc", "0.1.1", ""), Verdict::Refuse(_)));
        assert!(matches!(judge("runc", "1.0.0-rc6", ""), Verdict::Warn(_)));
        assert!(matches!(judge("runc", "1.1.11", ""), Verdict::Warn(_)));
        assert_eq!(judge("runc", "1.1.12", ""), Verdict::Ok);
        assert_eq!(judge("runc", "1.2.3", ""), Verdict::Ok);
        // Debian's backport on this machine carries the fix.
        assert_eq!(
            judge("runc", "1.1.5+ds1", "1.1.5+ds1-1+deb12u1"),
            Verdict::Ok
        );
        assert!(matches!(
            judge("runc", "1.1.5+ds1", "1.1.5+ds1-1"),
            Verdict::Warn(_)
        ));
    }
}
