//! moby's seccomp profile format → the OCI runtime spec's `linux.seccomp`,
//! as dockerd translates it: rules apply by architecture, by the
//! container's bounding capabilities and by kernel version.
//!
//! `seccomp-default.json` next to this file is moby's default profile
//! (github.com/moby/profiles/seccomp, Apache-2.0), embedded in berthd.

use serde::Deserialize;
use serde_json::{json, Value};

/// moby's default profile.
pub const DEFAULT_PROFILE: &str = include_str!("seccomp-default.json");

/// moby's profiles write `null` for empty lists.
fn nullable<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Deserialize)]
struct Profile {
    #[serde(rename = "defaultAction")]
    default_action: String,
    #[serde(rename = "defaultErrnoRet", default)]
    default_errno_ret: Option<u32>,
    #[serde(rename = "archMap", default, deserialize_with = "nullable")]
    arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "nullable")]
    architectures: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    flags: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    syscalls: Vec<Syscall>,
}

#[derive(Debug, Deserialize)]
struct ArchMap {
    architecture: String,
    #[serde(rename = "subArchitectures", default, deserialize_with = "nullable")]
    sub_architectures: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
struct Filter {
    #[serde(default, deserialize_with = "nullable")]
    caps: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    arches: Vec<String>,
    #[serde(rename = "minKernel", default)]
    min_kernel: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Syscall {
    #[serde(default, deserialize_with = "nullable")]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default, deserialize_with = "nullable")]
    args: Vec<Value>,
    #[serde(default, deserialize_with = "nullable")]
    includes: Filter,
    #[serde(default, deserialize_with = "nullable")]
    excludes: Filter,
    #[serde(rename = "errnoRet", default)]
    errno_ret: Option<u32>,
}

/// What the translation depends on.
pub struct Target<'a> {
    /// Go's name for the architecture (`amd64`, `arm64`, ...).
    pub goarch: &'a str,
    /// The container's bounding capabilities (`CAP_...`).
    pub capabilities: &'a [String],
    /// The host kernel as (major, minor).
    pub kernel: (u32, u32),
}

fn scmp_arch(goarch: &str) -> &'static str {
    match goarch {
        "amd64" => "SCMP_ARCH_X86_64",
        "386" => "SCMP_ARCH_X86",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => "",
    }
}

/// Parse `major.minor[.patch...]` of a kernel release.
pub fn kernel_version(release: &str) -> (u32, u32) {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let major = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (major, minor)
}

/// Translate a profile (moby's JSON) for `target`; errors name the problem.
pub fn translate(profile_json: &str, target: &Target) -> Result<Value, String> {
    let p: Profile =
        serde_json::from_str(profile_json).map_err(|e| format!("invalid seccomp profile: {e}"))?;
    if !p.architectures.is_empty() && !p.arch_map.is_empty() {
        return Err("invalid seccomp profile: both architectures and archMap are set".into());
    }
    let native = scmp_arch(target.goarch);
    let mut arches: Vec<String> = p.architectures.clone();
    for m in &p.arch_map {
        if m.architecture == native {
            arches.push(m.architecture.clone());
            arches.extend(m.sub_architectures.iter().cloned());
        }
    }
    let has = |c: &String| target.capabilities.iter().any(|x| x == c);
    let mut rules = Vec::new();
    for s in &p.syscalls {
        if !s.includes.arches.is_empty() && !s.includes.arches.iter().any(|a| a == target.goarch) {
            continue;
        }
        if s.excludes.arches.iter().any(|a| a == target.goarch) {
            continue;
        }
        if !s.includes.caps.is_empty() && !s.includes.caps.iter().all(has) {
            continue;
        }
        if s.excludes.caps.iter().any(has) {
            continue;
        }
        if let Some(min) = &s.includes.min_kernel {
            if target.kernel < kernel_version(min) {
                continue;
            }
        }
        let mut names = s.names.clone();
        if let Some(n) = &s.name {
            names.push(n.clone());
        }
        if names.is_empty() {
            return Err("invalid seccomp profile: a rule without syscall names".into());
        }
        let mut rule = json!({"names": names, "action": s.action});
        if let Some(e) = s.errno_ret {
            rule["errnoRet"] = json!(e);
        }
        if !s.args.is_empty() {
            rule["args"] = json!(s.args);
        }
        rules.push(rule);
    }
    let mut out = json!({
        "defaultAction": p.default_action,
        "architectures": arches,
        "syscalls": rules,
    });
    if let Some(e) = p.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    if !p.flags.is_empty() {
        out["flags"] = json!(p.flags);
    }
    Ok(out)
}

/// A translated profile as the runtime spec's type (a profile the OCI
/// types cannot hold is refused: unknown action, architecture or flag).
pub fn to_oci(v: Value) -> Result<oci_spec::runtime::LinuxSeccomp, String> {
    serde_json::from_value(v).map_err(|e| format!("invalid seccomp profile: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(extra: &[&str]) -> Vec<String> {
        super::super::DEFAULT_CAPABILITIES
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    }

    fn allowed(spec: &Value, name: &str) -> bool {
        spec["syscalls"].as_array().unwrap().iter().any(|r| {
            r["action"] == "SCMP_ACT_ALLOW"
                && r["names"].as_array().unwrap().iter().any(|n| n == name)
                && r.get("args").is_none()
        })
    }

    #[test]
    fn default_profile_for_amd64_and_the_default_capabilities() {
        let c = caps(&[]);
        let spec = translate(
            DEFAULT_PROFILE,
            &Target {
                goarch: "amd64",
                capabilities: &c,
                kernel: (6, 18),
            },
        )
        .unwrap();
        assert_eq!(spec["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(spec["defaultErrnoRet"], 1);
        assert_eq!(
            spec["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        assert!(allowed(&spec, "read"));
        assert!(allowed(&spec, "arch_prctl"), "amd64-only rule included");
        assert!(!allowed(&spec, "mount"), "mount needs CAP_SYS_ADMIN");
        // The runtime spec's types hold it whole, and write it back the same.
        let oci = to_oci(spec.clone()).unwrap();
        let back = serde_json::to_value(&oci).unwrap();
        assert_eq!(back["syscalls"], spec["syscalls"]);
        assert_eq!(back["architectures"], spec["architectures"]);
        assert!(!allowed(&spec, "reboot"));
        assert!(allowed(&spec, "ptrace"), "ptrace on kernels >= 4.8");
        // Arguments are carried through (socket families).
        assert!(spec["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["names"] == json!(["socket"]) && r["args"].is_array()));
    }

    #[test]
    fn capabilities_and_kernels_select_rules() {
        let c = caps(&["CAP_SYS_ADMIN"]);
        let spec = translate(
            DEFAULT_PROFILE,
            &Target {
                goarch: "amd64",
                capabilities: &c,
                kernel: (4, 4),
            },
        )
        .unwrap();
        assert!(allowed(&spec, "mount"));
        assert!(
            !allowed(&spec, "ptrace"),
            "not on a 4.4 kernel without CAP_SYS_PTRACE"
        );
        let arm = translate(
            DEFAULT_PROFILE,
            &Target {
                goarch: "arm64",
                capabilities: &c,
                kernel: (6, 1),
            },
        )
        .unwrap();
        assert_eq!(
            arm["architectures"],
            json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
        );
        assert!(!allowed(&arm, "arch_prctl"));
    }

    #[test]
    fn bad_profiles_are_refused() {
        let t = Target {
            goarch: "amd64",
            capabilities: &[],
            kernel: (6, 0),
        };
        assert!(translate("{", &t).is_err());
        assert!(translate(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["x"],"archMap":[{"architecture":"y"}]}"#, &t).is_err());
        assert!(translate(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}"#,
            &t
        )
        .is_err());
        assert_eq!(kernel_version("6.18.44-fc-v657"), (6, 18));
    }
}
