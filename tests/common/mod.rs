//! Integration-test harness: a berthd on temp data-root, exec-root, pidfile
//! and socket; a docker CLI runner; a raw HTTP client. Stopping checks that
//! nothing is left behind; dropping kills the daemon by PID if a test failed.

#![allow(dead_code)]

pub mod containers;
pub mod images;
pub mod registry;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const DOCKER: &str = "/usr/local/bin/docker";

pub fn berthd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_berthd")
}

/// A running berthd owned by one test.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub pidfile: PathBuf,
    pub config_file: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// Whether berthd created (and must remove) the socket at `sock`.
    pub owns_socket: bool,
    /// Arguments given after the roots (for restarts).
    pub extra_args: Vec<String>,
    /// This daemon's private address block `10.X.Y.0/22`: the default
    /// bridge is `10.X.Y.1/24`, [`Daemon::subnet`] hands out the rest.
    pub net_block: (u8, u8),
    child: Option<Child>,
}

/// How to start a berthd.
pub struct Builder {
    config: serde_json::Value,
    args: Vec<String>,
    extra_hosts: Vec<String>,
    symlinked_roots: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            config: serde_json::json!({}),
            args: Vec::new(),
            extra_hosts: Vec::new(),
            symlinked_roots: false,
        }
    }
}

impl Builder {
    pub fn config(mut self, v: serde_json::Value) -> Self {
        self.config = v;
        self
    }
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }
    /// The data-root and exec-root given as symlinks to the real
    /// directories (as `/var/run` is a link to `/run` on Debian).
    pub fn roots_behind_symlinks(mut self) -> Self {
        self.symlinked_roots = true;
        self
    }
    pub fn host(mut self, h: &str) -> Self {
        self.extra_hosts.push(h.to_string());
        self
    }
    pub fn start(self) -> Daemon {
        let mut d = Daemon::prepare();
        if self.symlinked_roots {
            for p in [&d.data_root, &d.exec_root] {
                let real = p.with_extension("real");
                std::fs::create_dir(&real).unwrap();
                std::os::unix::fs::symlink(&real, p).unwrap();
            }
        }
        d.write_config(&self.config);
        d.extra_args = self.args.clone();
        d.extra_args.push("-H".into());
        d.extra_args.push(d.docker_host());
        for h in &self.extra_hosts {
            d.extra_args.push("-H".into());
            d.extra_args.push(h.clone());
        }
        let mut cmd = d.command();
        cmd.args(&d.extra_args);
        d.spawn(cmd)
    }
}

impl Daemon {
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub fn start() -> Daemon {
        Builder::default().start()
    }

    /// Temp roots and an empty config file, nothing started yet.
    pub fn prepare() -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .unwrap();
        let d = Daemon {
            sock: dir.path().join("berthd.sock"),
            pidfile: dir.path().join("berthd.pid"),
            config_file: dir.path().join("daemon.json"),
            data_root: dir.path().join("data"),
            exec_root: dir.path().join("exec"),
            owns_socket: true,
            extra_args: Vec::new(),
            net_block: free_block(dir.path()),
            dir,
            child: None,
        };
        d.write_config(&serde_json::json!({}));
        d
    }

    /// Write daemon.json; without `bridge` or `bip` in it, the default
    /// bridge gets this daemon's own subnet (tests run side by side).
    pub fn write_config(&self, v: &serde_json::Value) {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            if !o.contains_key("bridge") && !o.contains_key("bip") {
                let (x, y) = self.net_block;
                o.insert("bip".into(), format!("10.{x}.{y}.1/24").into());
            }
        }
        std::fs::write(&self.config_file, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }

    /// A subnet of this daemon's block for a test network (k = 1..=3).
    pub fn subnet(&self, k: u8) -> String {
        let (x, y) = self.net_block;
        format!("10.{x}.{}.0/24", y + k)
    }

    /// The default bridge's gateway address.
    pub fn gateway(&self) -> String {
        let (x, y) = self.net_block;
        format!("10.{x}.{y}.1")
    }

    /// Remove what berthd's networking left on the host (after a kill):
    /// the bridges of its networks and its nftables table.
    pub fn cleanup_network(&self) {
        let dir = self.data_root.join("network").join("networks");
        // The names berthd derives from its exec-root, given or resolved.
        let roots = [self.exec_root.clone(), self.real_exec_root()];
        let mut bridges: Vec<String> = roots
            .iter()
            .map(|r| berth::network::default_bridge_name(r))
            .collect();
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let v: serde_json::Value = std::fs::read(e.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                if let Some(b) = v["bridge"].as_str().filter(|b| !b.is_empty()) {
                    bridges.push(b.to_string());
                }
            }
        }
        for b in bridges {
            let _ = Command::new("ip").args(["link", "del", &b]).output();
        }
        for r in &roots {
            let table = berth::network::table_name(r);
            let _ = Command::new("nft")
                .args(["delete", "table", "inet", &table])
                .stderr(Stdio::null())
                .output();
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("berthd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// berthd with this daemon's temp roots and config file (no -H).
    pub fn command(&self) -> Command {
        self.command_with(Path::new(berthd_bin()))
    }

    /// The same with another berthd binary (an earlier build).
    pub fn command_with(&self, berthd: &Path) -> Command {
        let mut cmd = Command::new(berthd);
        cmd.arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("--pidfile")
            .arg(&self.pidfile)
            .arg("--config-file")
            .arg(&self.config_file)
            .arg("--raw-logs");
        cmd
    }

    /// Spawn `cmd` as this daemon and wait for `/_ping` on its socket.
    pub fn spawn(mut self, mut cmd: Command) -> Daemon {
        let log = std::fs::File::create(self.log_path()).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("spawn berthd"));
        self.wait_ready();
        self
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if !self.alive() {
                panic!("berthd exited during startup:\n{}", self.log());
            }
            if let Ok(r) = try_request(
                &self.sock,
                b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            ) {
                if r.status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("berthd did not answer /_ping within 20s:\n{}", self.log());
    }

    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// Run the real docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        docker_cmd(self.dir.path())
            .env("DOCKER_HOST", self.docker_host())
            .args(args)
            .output()
            .expect("run docker")
    }

    /// Like [`Daemon::docker`] but asserts success and returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed: {}\n{}\nberthd log:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Send raw bytes, read the whole response.
    pub fn raw(&self, req: &[u8]) -> Response {
        try_request(&self.sock, req)
            .unwrap_or_else(|e| panic!("request failed: {e}\n{}", self.log()))
    }

    pub fn get(&self, path: &str) -> Response {
        self.raw(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// SIGTERM, wait, and check the socket and pid file are gone.
    pub fn stop(mut self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("berthd did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "berthd exited with {status}:\n{}",
            self.log()
        );
        if self.owns_socket {
            assert!(!self.sock.exists(), "socket left behind");
        }
        assert!(!self.pidfile.exists(), "pid file left behind");
    }

    /// Wait for the process to exit (e.g. after SIGKILL), keeping the roots.
    pub fn wait_exit_keep(&mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().unwrap();
        let status = child.wait().unwrap();
        (status.code(), self.log())
    }

    /// Start berthd again on the same roots with the same arguments.
    pub fn restart(self) -> Daemon {
        assert!(self.child.is_none(), "stop the daemon first");
        let mut cmd = self.command();
        cmd.args(&self.extra_args);
        self.spawn(cmd)
    }

    /// Wait for the process to exit on its own; returns its exit code.
    pub fn wait_exit(mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().unwrap();
        let status = child.wait().unwrap();
        (status.code(), self.log())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.cleanup_containers();
        self.cleanup_network();
    }
}

/// A `10.X.Y.0/22` block no host route overlaps, picked from the test's
/// random temp dir name (X in 160..224).
fn free_block(dir: &Path) -> (u8, u8) {
    use std::hash::{Hash, Hasher};
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let mut seed = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        dir.hash(&mut h);
        std::process::id().hash(&mut h);
        h.finish()
    };
    loop {
        let x = 160 + (seed % 64) as u8;
        let y = (((seed >> 8) % 64) * 4) as u8;
        let (lo, hi) = (
            u32::from_be_bytes([10, x, y, 0]),
            u32::from_be_bytes([10, x, y + 3, 255]),
        );
        let clash = routes.lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (Some(d), Some(m)) = (f.get(1), f.get(7)) else {
                return false;
            };
            let (Ok(d), Ok(m)) = (u32::from_str_radix(d, 16), u32::from_str_radix(m, 16)) else {
                return false;
            };
            let (d, m) = (
                u32::from_be_bytes(d.to_le_bytes()),
                u32::from_be_bytes(m.to_le_bytes()),
            );
            m != 0 && (lo & m) == (d & m) || (d >= lo && d <= hi)
        });
        if !clash {
            return (x, y);
        }
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
    }
}

/// A docker CLI command isolated from the host's CLI config.
pub fn docker_cmd(dir: &Path) -> Command {
    let mut c = Command::new(DOCKER);
    c.env("DOCKER_CONFIG", dir.join("cli-config"))
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_CONTEXT");
    c
}

/// Run berthd to completion (for configurations that must be refused).
pub fn run_berthd(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(berthd_bin()).args(args).output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

pub fn try_request(sock: &Path, req: &[u8]) -> std::io::Result<Response> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    // The daemon may answer (413, 431) and close before it read everything
    // we send: a failed write still leaves its answer to read.
    let written = s.write_all(req);
    match read_response(&mut s) {
        Ok(r) => Ok(r),
        Err(e) => {
            written?;
            Err(e)
        }
    }
}

/// One `read`, again when a signal interrupted it (a test binary's other
/// tests spawn processes; a SIGCHLD handler may be installed).
fn read_some(s: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match s.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Read one response (Content-Length, chunked, or until EOF).
pub fn read_response(s: &mut impl Read) -> std::io::Result<Response> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let n = read_some(s, &mut tmp)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before headers",
            ));
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut rest = buf[head_end + 4..].to_vec();
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let body = if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while rest.len() < len {
            let n = read_some(s, &mut tmp)?;
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&tmp[..n]);
        }
        rest.truncate(len);
        rest
    } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            if find(&rest, b"0\r\n\r\n").is_some() && dechunk(&rest).is_some() {
                break;
            }
            let n = read_some(s, &mut tmp)?;
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&tmp[..n]);
        }
        dechunk(&rest).unwrap_or(rest)
    } else {
        let _ = s.read_to_end(&mut rest);
        rest
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decode a complete chunked body; None if incomplete.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let i = find(b, b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&b[..i]).ok()?.trim(), 16).ok()?;
        b = &b[i + 2..];
        if size == 0 {
            return Some(out);
        }
        if b.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free UDP port on the loopback (for a moment).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Compiles C source `src` into `out` with the host's `cc` (installed by
/// scripts/install-deps.sh) and `flags`; panics when it cannot.
pub fn cc(src: &str, out: &std::path::Path, flags: &[&str]) {
    let c = out.with_extension("c");
    std::fs::write(&c, src).unwrap();
    let o = std::process::Command::new("cc")
        .args(flags)
        .arg("-o")
        .arg(out)
        .arg(&c)
        .output()
        .expect("cc (scripts/install-deps.sh installs gcc and libc6-dev)");
    assert!(
        o.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Poll `f` until it returns true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

impl Daemon {
    /// Kill and remove what this daemon's containers may have left: their
    /// processes (through the runtime, by its state), their shims (by the
    /// pid in their state directory, checked against the command line),
    /// and every mount under the temp dir.
    pub fn cleanup_containers(&self) {
        let runtime_root = self.exec_root.join("runtime-runc");
        if let Ok(o) = Command::new("runc")
            .arg("--root")
            .arg(&runtime_root)
            .args(["list", "-q"])
            .output()
        {
            for id in String::from_utf8_lossy(&o.stdout).lines() {
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&runtime_root)
                    .args(["kill", id, "KILL"])
                    .output();
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&runtime_root)
                    .args(["delete", "-f", id])
                    .output();
            }
        }
        for pid in self
            .shim_pids()
            .into_iter()
            .chain(self.proxy_pids())
            .chain(self.dns_pids())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        unmount_under(self.dir.path());
    }

    /// Pids of this daemon's berth-dns (working directory: its
    /// exec-root's dns directory).
    /// The exec-root as berthd and the kernel name it (symlinks resolved).
    pub fn real_exec_root(&self) -> PathBuf {
        std::fs::canonicalize(&self.exec_root).unwrap_or_else(|_| self.exec_root.clone())
    }

    pub fn dns_pids(&self) -> Vec<i32> {
        let dir = self.real_exec_root().join("dns");
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return vec![];
        };
        rd.flatten()
            .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
            .filter(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&cmd).contains("berth-dns")
                    && std::fs::read_link(format!("/proc/{pid}/cwd"))
                        .ok()
                        .as_deref()
                        == Some(dir.as_path())
            })
            .collect()
    }

    /// Pids of this daemon's userland proxies (working directory: its
    /// exec-root).
    pub fn proxy_pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return out;
        };
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if !String::from_utf8_lossy(&cmd).contains("-container-ip") {
                continue;
            }
            if std::fs::read_link(format!("/proc/{pid}/cwd")).ok() == Some(self.real_exec_root()) {
                out.push(pid);
            }
        }
        out
    }

    /// Pids of this daemon's live shims: every berth-shim process whose
    /// state directory is under this daemon's exec-root (also those whose
    /// directory is gone), zombies excluded.
    pub fn shim_pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        let root = self.real_exec_root().join("containers");
        let root = root.to_string_lossy();
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return out;
        };
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let is_shim = args.first().is_some_and(|a| a.ends_with("berth-shim"))
                && args.get(1).is_some_and(|d| d.starts_with(&*root));
            if !is_shim {
                continue;
            }
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z'));
            if !zombie {
                out.push(pid);
            }
        }
        out
    }
}

/// Unmount (lazily, deepest first) every mount below `dir`.
pub fn unmount_under(dir: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Mount points under `dir` (this process's view).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect()
}

/// The ports of a bridge (none if it does not exist).
pub fn bridge_ports(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A child process (a CLI stream, a helper server) killed by PID and
/// reaped when the test ends, also when it fails.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
