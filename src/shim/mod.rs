//! berth-shim: the monitor of one container (see `docs/shim-protocol.md`).
//!
//! `berth-shim <state dir>` reads `shim.json`, detaches (fork, new session,
//! subreaper, oom_score_adj -1000, inherited fds closed) before any async
//! runtime exists, creates the container with the OCI runtime, reports
//! `ok <shim pid> <container pid>` (or `error <message>`) on its stdout
//! through the parent that berthd waits for, then serves its socket until
//! the container has exited and berthd has acknowledged the exit.

mod console;
mod fdio;
mod health;
pub mod logfile;
mod logger;
mod reaper;
mod receivers;
mod runtime;
mod server;
mod stdio;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_actors::protocol::shim::{ShimConfig, CONFIG_FILE, PROTOCOL_VERSION};
use nix::unistd::{fork, ForkResult};

/// Entry point of the binary: returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let Some(dir) = args.get(1).map(PathBuf::from) else {
        eprintln!("usage: berth-shim <state directory>");
        return 2;
    };
    if dir.as_os_str() == "--version" {
        println!(
            "berth-shim {} protocol {PROTOCOL_VERSION}",
            env!("CARGO_PKG_VERSION")
        );
        return 0;
    }
    let cfg: ShimConfig = match std::fs::read(dir.join(CONFIG_FILE))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "berth-shim: reading {}: {e}",
                dir.join(CONFIG_FILE).display()
            );
            return 2;
        }
    };
    let (ready_r, ready_w) = match fdio::pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth-shim: pipe: {e}");
            return 1;
        }
    };
    // SAFETY: single-threaded here (no runtime, no threads started yet), so
    // the child may run arbitrary code after fork.
    match unsafe { fork() } {
        Err(e) => {
            eprintln!("berth-shim: fork: {e}");
            1
        }
        Ok(ForkResult::Parent { .. }) => {
            drop(ready_w);
            // The child writes one line and closes: relay it to berthd.
            let mut msg = String::new();
            let _ = std::fs::File::from(ready_r).read_to_string(&mut msg);
            let msg = msg.trim();
            if let Some(ok) = msg.strip_prefix("ok ") {
                println!("{ok}");
                0
            } else {
                let m = msg.strip_prefix("error ").unwrap_or(msg);
                eprintln!(
                    "{}",
                    if m.is_empty() {
                        "berth-shim exited during start"
                    } else {
                        m
                    }
                );
                1
            }
        }
        Ok(ForkResult::Child) => {
            drop(ready_r);
            let code = match detach(&dir, &ready_w) {
                Ok(()) => daemon(cfg, dir, ready_w),
                Err(e) => {
                    let _ = std::fs::File::from(ready_w)
                        .write_all(format!("error detaching: {e}").as_bytes());
                    1
                }
            };
            std::process::exit(code)
        }
    }
}

/// Become a daemon that outlives berthd. Each step, and why:
fn detach(dir: &Path, keep: &OwnedFd) -> std::io::Result<()> {
    // Own session: no controlling terminal, not killed with berthd's group.
    nix::unistd::setsid()?;
    // Processes whose parent dies (the container's init after `runc create`
    // exits, exec processes after `runc exec -d`) become our children.
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer argument.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The OOM killer picks the container, never its monitor.
    let _ = std::fs::write("/proc/self/oom_score_adj", "-1000");
    // Work in the state directory: sockets are bound by relative names, so
    // a long exec-root never exceeds the 108 bytes of a socket address (the
    // runtime resolves a relative console socket from its own cwd, which it
    // inherits, or from the bundle, which is this directory too).
    std::env::set_current_dir(dir)?;
    // stdin/stdout to /dev/null, stderr to the shim's own log.
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("shim.log"))?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&log)?;
    drop((null, log));
    // Close everything else inherited from berthd (listening sockets, other
    // containers' descriptors): keep only stdio and the ready pipe.
    close_inherited(&[0, 1, 2, keep.as_raw_fd()]);
    Ok(())
}

fn close_inherited(keep: &[i32]) {
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => (3..1024).collect(),
    };
    for fd in fds {
        if !keep.contains(&fd) {
            // SAFETY: closing a descriptor number we do not hold as an owned
            // object anywhere (the process just forked; no Rust value owns it).
            unsafe {
                libc::close(fd);
            }
        }
    }
}

fn daemon(cfg: ShimConfig, dir: PathBuf, ready: OwnedFd) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = std::fs::File::from(ready).write_all(format!("error runtime: {e}").as_bytes());
            return 1;
        }
    };
    rt.block_on(server::run(cfg, dir, ready))
}
