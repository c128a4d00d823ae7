//! Calls into the OCI runtime's command line. Children are spawned, never
//! waited for with `Command::output`: the [`Reaper`] collects them.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_actors::protocol::shim::ShimConfig;

use super::reaper::Reaper;

pub struct Runtime {
    bin: String,
    args: Vec<String>,
    /// Where each call's own JSON log goes (`runtime-<n>.log`), so calls
    /// that overlap (an exec and a healthcheck probe) never read each
    /// other's errors.
    dir: PathBuf,
    calls: std::sync::atomic::AtomicU64,
    reaper: Reaper,
}

/// The stdio a created process gets.
pub struct ProcIo {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl ProcIo {
    pub fn null() -> ProcIo {
        ProcIo {
            stdin: None,
            stdout: None,
            stderr: None,
        }
    }
}

fn stdio(fd: Option<OwnedFd>) -> Stdio {
    fd.map(Stdio::from).unwrap_or_else(Stdio::null)
}

impl Runtime {
    pub fn new(cfg: &ShimConfig, dir: &Path, reaper: Reaper) -> Runtime {
        let mut args = cfg.runtime_args.clone();
        args.extend(["--root".to_string(), cfg.runtime_root.clone()]);
        Runtime {
            bin: cfg.runtime.clone(),
            args,
            dir: dir.to_path_buf(),
            calls: std::sync::atomic::AtomicU64::new(0),
            reaper,
        }
    }

    /// Run one runtime command to completion; its error message on failure.
    pub async fn call(&self, verb: &[&str], io: ProcIo) -> Result<(), String> {
        let n = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.dir.join(format!("runtime-{n}.log"));
        let _ = std::fs::remove_file(&log);
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args)
            .arg("--log")
            .arg(&log)
            .args(["--log-format", "json"])
            .args(verb)
            .stdin(stdio(io.stdin))
            .stdout(stdio(io.stdout))
            .stderr(stdio(io.stderr));
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting the runtime {}: {e}", self.bin))?;
        let pid = child.id() as i32;
        // The reaper collects the child; the handle is only dropped.
        drop(child);
        let code = self.reaper.wait(pid).await;
        let r = if code == 0 {
            Ok(())
        } else {
            Err(last_error(&log).unwrap_or_else(|| {
                format!(
                    "{} {} exited with status {code}",
                    self.bin,
                    verb.first().copied().unwrap_or("")
                )
            }))
        };
        let _ = std::fs::remove_file(&log);
        r
    }
}

/// The last error the runtime wrote to its JSON log.
fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        (v["level"] == "error" || v["level"] == "fatal")
            .then(|| v["msg"].as_str().map(str::to_string))
            .flatten()
    })
}

/// `runtime exec --detach` of the process in `spec` (it is re-parented
/// to the shim), its pid written to `pid_file`, with a console socket for
/// a TTY.
pub fn exec_args(spec: &Path, pid_file: &Path, console: Option<&str>, id: &str) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "exec".into(),
        "--detach".into(),
        "--process".into(),
        spec.display().to_string(),
        "--pid-file".into(),
        pid_file.display().to_string(),
    ];
    if let Some(c) = console {
        a.extend(["--console-socket".to_string(), c.to_string()]);
    }
    a.push(id.to_string());
    a
}

pub fn read_pid(path: &Path) -> Result<i32, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("reading {}: {e}", path.display()))?
        .trim()
        .parse()
        .map_err(|e| format!("bad pid in {}: {e}", path.display()))
}
