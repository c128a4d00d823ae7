//! The shim's life: create the container, serve the socket, report the exit.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_actors::protocol::shim::{
    frames, ExitStatus, HealthReport, LogCounts, Request, Response, ShimConfig, ShimStatus,
    CONFIG_FILE, EXIT_FILE, INIT_PID_FILE, PID_FILE, SOCKET_FILE,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{watch, Notify};

use super::console::{self, ConsoleSocket};
use super::fdio::{self, Fd};
use super::health;
use super::logfile;
use super::logger::Logger;
use super::reaper::Reaper;
use super::runtime::{exec_args, read_pid, ProcIo, Runtime};
use super::stdio::{self, Fanout};

/// Output that is still draining when the process exits is waited for this long.
const DRAIN: Duration = Duration::from_secs(2);
const CONSOLE_WAIT: Duration = Duration::from_secs(30);

struct Shim {
    cfg: ShimConfig,
    dir: PathBuf,
    rt: Arc<Runtime>,
    reaper: Reaper,
    pid: i32,
    status: watch::Sender<ShimStatus>,
    exit: watch::Sender<Option<ExitStatus>>,
    out: Arc<Fanout>,
    stdin: Mutex<Option<Arc<Fd>>>,
    master: Option<Arc<Fd>>,
    exec_masters: Mutex<HashMap<String, Arc<Fd>>>,
    acked: Notify,
    /// The healthcheck's report (`None`: the container has none).
    health: Option<Arc<watch::Sender<HealthReport>>>,
    /// The container's log (`None`: driver `none`).
    log: Option<Arc<Logger>>,
}

fn ready_line(ready: OwnedFd, line: &str) {
    let _ = std::fs::File::from(ready).write_all(line.as_bytes());
}

pub async fn run(cfg: ShimConfig, dir: PathBuf, ready: OwnedFd) -> i32 {
    let reaper = Reaper::default();
    if let Err(e) = reaper.start() {
        ready_line(ready, &format!("error installing the SIGCHLD handler: {e}"));
        return 1;
    }
    match start(cfg, dir, reaper).await {
        Err(e) => {
            ready_line(ready, &format!("error {e}"));
            1
        }
        Ok((shim, listener, pumps)) => {
            ready_line(ready, &format!("ok {} {}", std::process::id(), shim.pid));
            serve(shim, listener, pumps).await
        }
    }
}

async fn start(
    cfg: ShimConfig,
    dir: PathBuf,
    reaper: Reaper,
) -> Result<(Arc<Shim>, UnixListener, Vec<tokio::task::JoinHandle<()>>), String> {
    let sock = dir.join(SOCKET_FILE);
    let _ = std::fs::remove_file(&sock);
    let listener =
        UnixListener::bind(SOCKET_FILE).map_err(|e| format!("binding {}: {e}", sock.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600));
    }
    let _ = std::fs::write(dir.join(PID_FILE), std::process::id().to_string());
    let log = match &cfg.log {
        Some(l) => {
            Some(Logger::open(l).map_err(|e| format!("failed to initialize logging driver: {e}"))?)
        }
        None => None,
    };
    let rt = Arc::new(Runtime::new(&cfg, &dir, reaper.clone()));
    let pid_file = dir.join(INIT_PID_FILE);
    let out = Arc::new(Fanout::default());
    let mut pumps = Vec::new();
    let mut stdin = None;
    let mut master = None;
    let pid_arg = pid_file.display().to_string();
    if cfg.tty {
        let cs = ConsoleSocket::bind(Path::new("console.sock"))
            .map_err(|e| format!("console socket: {e}"))?;
        let cs_path = cs.path().display().to_string();
        let recv = tokio::spawn(cs.receive(CONSOLE_WAIT));
        let created = rt
            .call(
                &[
                    "create",
                    "--bundle",
                    &cfg.bundle,
                    "--pid-file",
                    &pid_arg,
                    "--console-socket",
                    &cs_path,
                    &cfg.id,
                ],
                ProcIo::null(),
            )
            .await;
        if let Err(e) = created {
            recv.abort();
            return Err(e);
        }
        let fd = recv
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("receiving the console: {e}"))?;
        let m = Arc::new(Fd::new(fd).map_err(|e| e.to_string())?);
        pumps.push(stdio::pump(
            m.clone(),
            frames::STDOUT,
            log.clone(),
            out.clone(),
        ));
        stdin = Some(m.clone());
        master = Some(m);
    } else {
        let p = |what: &str| fdio::pipe().map_err(|e| format!("{what} pipe: {e}"));
        let (out_r, out_w) = p("stdout")?;
        let (err_r, err_w) = p("stderr")?;
        let (in_r, in_w) = if cfg.stdin {
            let (r, w) = p("stdin")?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        rt.call(
            &[
                "create",
                "--bundle",
                &cfg.bundle,
                "--pid-file",
                &pid_arg,
                &cfg.id,
            ],
            ProcIo {
                stdin: in_r,
                stdout: Some(out_w),
                stderr: Some(err_w),
            },
        )
        .await?;
        let f = |fd| Fd::new(fd).map(Arc::new).map_err(|e| e.to_string());
        pumps.push(stdio::pump(
            f(out_r)?,
            frames::STDOUT,
            log.clone(),
            out.clone(),
        ));
        pumps.push(stdio::pump(
            f(err_r)?,
            frames::STDERR,
            log.clone(),
            out.clone(),
        ));
        if let Some(w) = in_w {
            stdin = Some(f(w)?);
        }
    }
    let pid = read_pid(&pid_file)?;
    let health = cfg
        .health
        .as_ref()
        .map(|h| Arc::new(watch::channel(health::initial(h)).0));
    let shim = Arc::new(Shim {
        cfg,
        dir,
        rt,
        reaper,
        pid,
        status: watch::channel(ShimStatus::Created).0,
        exit: watch::channel(None).0,
        out,
        stdin: Mutex::new(stdin),
        master,
        exec_masters: Mutex::new(HashMap::new()),
        acked: Notify::new(),
        health,
        log,
    });
    Ok((shim, listener, pumps))
}

async fn serve(
    shim: Arc<Shim>,
    listener: UnixListener,
    pumps: Vec<tokio::task::JoinHandle<()>>,
) -> i32 {
    let s = shim.clone();
    tokio::spawn(async move {
        let code = s.reaper.wait(s.pid).await;
        stdio::drain(pumps, DRAIN).await;
        let exit = ExitStatus {
            code,
            exited_at: logfile::now(),
            oom_killed: oom_killed(s.cfg.memory_cgroup.as_deref()),
        };
        // The log's counts as they are at the exit, for berthd's warning.
        if let Some(l) = &s.log {
            write_log_counts(l, &mut None);
        }
        // The fact first, on disk; then anyone is told.
        if let Err(e) = write_exit(&s.dir, &exit) {
            eprintln!("berth-shim: writing the exit file: {e}");
        }
        // The runtime's state goes before anyone is told, so a restart of
        // the same container never meets the old one.
        if let Err(e) =
            s.rt.call(&["delete", "--force", &s.cfg.id], ProcIo::null())
                .await
        {
            eprintln!("berth-shim: runtime delete: {e}");
        }
        s.exit.send_replace(Some(exit));
        s.status.send_replace(ShimStatus::Exited);
    });
    if let Some(l) = shim.log.clone() {
        tokio::spawn(async move {
            let mut last = None;
            loop {
                write_log_counts(&l, &mut last);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            r = listener.accept() => {
                if let Ok((conn, _)) = r {
                    let s = shim.clone();
                    tokio::spawn(async move { let _ = connection(s, conn).await; });
                }
            }
            _ = shim.acked.notified() => break,
            _ = tick.tick() => {
                // Exited and berthd removed the state directory (the
                // container is gone): nobody will acknowledge; go.
                if shim.exit.borrow().is_some() && !shim.dir.join(CONFIG_FILE).exists() {
                    break;
                }
            }
        }
    }
    // What the log writer still holds goes out before the shim does
    // (bounded: a receiver that is down makes it drop and count).
    if let Some(l) = &shim.log {
        let l2 = l.clone();
        let _ = tokio::time::timeout(
            Duration::from_secs(40),
            tokio::task::spawn_blocking(move || l2.close()),
        )
        .await;
        write_log_counts(l, &mut None);
    }
    // Give the acknowledging client its answer, then go. The socket file
    // stays: berthd removes the state directory, and may already have
    // started the next shim of this container there (its socket has the
    // same name).
    tokio::time::sleep(Duration::from_millis(20)).await;
    0
}

/// The log's counters to their file when they changed (berthd's
/// metrics read them).
fn write_log_counts(l: &Logger, last: &mut Option<LogCounts>) {
    let now = l.counts();
    if *last == Some(now) || l.counts_path().is_empty() {
        return;
    }
    if let Ok(b) = serde_json::to_vec(&now) {
        let p = Path::new(l.counts_path());
        // Once a second while they change: replaced whole, not fsynced.
        if crate::sys::atomic::replace(p, &b, 0o600).is_ok() {
            *last = Some(now);
        }
    }
}

fn write_exit(dir: &Path, e: &ExitStatus) -> std::io::Result<()> {
    let data = serde_json::to_vec(e).map_err(std::io::Error::other)?;
    crate::sys::atomic::write_atomic(&dir.join(EXIT_FILE), &data, 0o600)
}

/// cgroup v1 `memory.oom_control` (`oom_kill N`), or cgroup v2
/// `memory.events` (`oom_kill N`).
fn oom_killed(dir: Option<&str>) -> bool {
    let Some(dir) = dir else { return false };
    ["memory.oom_control", "memory.events"].iter().any(|f| {
        std::fs::read_to_string(Path::new(dir).join(f))
            .map(|t| {
                t.lines().any(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse::<u64>().ok())
                        .is_some_and(|n| n > 0)
                })
            })
            .unwrap_or(false)
    })
}

async fn reply(w: &mut OwnedWriteHalf, r: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await
}

fn state(shim: &Shim) -> Response {
    Response {
        status: Some(*shim.status.borrow()),
        pid: Some(shim.pid),
        exit: shim.exit.borrow().clone(),
        log: shim.log.as_ref().map(|l| l.counts()),
        ..Response::ok()
    }
}

async fn connection(shim: Arc<Shim>, conn: UnixStream) -> std::io::Result<()> {
    let (r, mut w) = conn.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    let n = (&mut r).take(1 << 20).read_line(&mut line).await?;
    if n == 0 {
        return Ok(());
    }
    let req: Request = match serde_json::from_str(&line) {
        Ok(q) => q,
        Err(e) => return reply(&mut w, &Response::err(format!("bad request: {e}"))).await,
    };
    let id = shim.cfg.id.clone();
    match req {
        Request::State => reply(&mut w, &state(&shim)).await,
        Request::Start => {
            let r = match shim.rt.call(&["start", &id], ProcIo::null()).await {
                // runc removes its exec.fifo once the process was released;
                // a short-lived process on a loaded host can race runc's own
                // second look (`remove .../exec.fifo: no such file or
                // directory`) although it started: it did, the reaper has
                // its exit.
                Err(e) if e.contains("exec.fifo: no such file or directory") => {
                    eprintln!("berth-shim: runtime start of {id}: {e}; the process was released");
                    Ok(())
                }
                r => r,
            };
            if r.is_ok() && *shim.status.borrow() == ShimStatus::Created {
                shim.status.send_replace(ShimStatus::Running);
                start_health(&shim);
            }
            reply(&mut w, &result(r, &shim)).await
        }
        Request::Kill { signal, all } => {
            let sig = signal.to_string();
            let mut args = vec!["kill"];
            if all {
                args.push("--all");
            }
            args.extend([id.as_str(), sig.as_str()]);
            let r = shim.rt.call(&args, ProcIo::null()).await;
            reply(&mut w, &result(r, &shim)).await
        }
        Request::Pause | Request::Resume => {
            let (verb, next) = if req == Request::Pause {
                ("pause", ShimStatus::Paused)
            } else {
                ("resume", ShimStatus::Running)
            };
            let r = shim.rt.call(&[verb, &id], ProcIo::null()).await;
            if r.is_ok() {
                shim.status.send_replace(next);
            }
            reply(&mut w, &result(r, &shim)).await
        }
        Request::Wait => {
            let mut rx = shim.exit.subscribe();
            let _ = rx.wait_for(|e| e.is_some()).await;
            reply(&mut w, &state(&shim)).await
        }
        Request::Update { resources } => {
            let file = shim.dir.join("resources.json");
            let r = match std::fs::write(&file, resources.to_string()) {
                Err(e) => Err(e.to_string()),
                Ok(()) => {
                    let f = file.display().to_string();
                    shim.rt
                        .call(&["update", "--resources", &f, &id], ProcIo::null())
                        .await
                }
            };
            let _ = std::fs::remove_file(&file);
            reply(&mut w, &result(r, &shim)).await
        }
        Request::Resize {
            exec_id,
            width,
            height,
        } => {
            let fd = match exec_id {
                Some(e) => shim
                    .exec_masters
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&e)
                    .cloned(),
                None => shim.master.clone(),
            };
            let r = match fd {
                Some(fd) => console::resize(fd.raw(), width, height).map_err(|e| e.to_string()),
                None => Err("no terminal to resize".into()),
            };
            reply(&mut w, &result(r, &shim)).await
        }
        Request::AckExit => {
            reply(&mut w, &Response::ok()).await?;
            if shim.exit.borrow().is_some() {
                shim.acked.notify_one();
            }
            Ok(())
        }
        Request::Health { after } => {
            let Some(h) = &shim.health else {
                return reply(&mut w, &Response::err("the container has no healthcheck")).await;
            };
            let mut rx = h.subscribe();
            let mut exit = shim.exit.subscribe();
            tokio::select! {
                _ = rx.wait_for(|r| r.version > after) => {}
                _ = exit.wait_for(|e| e.is_some()) => {}
            }
            let report = h.borrow().clone();
            let resp = Response {
                health: Some(report),
                ..state(&shim)
            };
            reply(&mut w, &resp).await
        }
        Request::Attach {
            stdin,
            stdout,
            stderr,
        } => attach(shim, r, w, stdin, stdout, stderr).await,
        Request::Exec {
            exec_id,
            process,
            tty,
            stdin,
        } => exec(shim, r, w, exec_id, process, tty, stdin).await,
    }
}

/// The container runs: its probes start (their schedule counts from now).
fn start_health(shim: &Arc<Shim>) {
    let (Some(spec), Some(tx)) = (shim.cfg.health.clone(), shim.health.clone()) else {
        return;
    };
    let probe = health::Probe {
        id: shim.cfg.id.clone(),
        dir: shim.dir.clone(),
        rt: shim.rt.clone(),
        reaper: shim.reaper.clone(),
    };
    tokio::spawn(health::run(
        probe,
        spec,
        std::time::SystemTime::now(),
        tx,
        shim.status.subscribe(),
        shim.exit.subscribe(),
    ));
}

fn result(r: Result<(), String>, shim: &Shim) -> Response {
    match r {
        Ok(()) => state(shim),
        Err(e) => Response::err(e),
    }
}

async fn write_frame(w: &mut OwnedWriteHalf, kind: u8, data: &[u8]) -> std::io::Result<()> {
    for piece in data.chunks(frames::MAX_PAYLOAD) {
        w.write_all(&frames::header(kind, piece.len())).await?;
        w.write_all(piece).await?;
    }
    Ok(())
}

/// Read client frames: stdin data and close-stdin. Returns when the client
/// closes its side or sends garbage.
async fn read_stdin(
    mut r: BufReader<OwnedReadHalf>,
    sink: impl Fn() -> Option<Arc<Fd>>,
    close: impl Fn(),
) {
    let mut h = [0u8; 8];
    let mut buf = Vec::new();
    loop {
        if r.read_exact(&mut h).await.is_err() {
            return;
        }
        let Some((kind, len)) = frames::parse(&h) else {
            return;
        };
        buf.resize(len, 0);
        if r.read_exact(&mut buf).await.is_err() {
            return;
        }
        match kind {
            frames::STDIN => {
                if let Some(fd) = sink() {
                    let _ = fd.write_all(&buf).await;
                }
            }
            frames::CLOSE_STDIN => close(),
            _ => return,
        }
    }
}

async fn attach(
    shim: Arc<Shim>,
    r: BufReader<OwnedReadHalf>,
    mut w: OwnedWriteHalf,
    want_in: bool,
    want_out: bool,
    want_err: bool,
) -> std::io::Result<()> {
    let mut rx = shim.out.subscribe();
    let mut exit = shim.exit.subscribe();
    reply(&mut w, &state(&shim)).await?;
    if want_in {
        let s = shim.clone();
        let s2 = shim.clone();
        // dockerd: StdinOnce closes stdin when the attached client goes,
        // except with a TTY (a detached terminal session stays usable).
        let once = shim.cfg.stdin_once && !shim.cfg.tty;
        tokio::spawn(async move {
            let close = move || {
                s2.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
            };
            read_stdin(
                r,
                move || s.stdin.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                &close,
            )
            .await;
            // The client went away: with StdinOnce its stdin closes too.
            if once {
                close();
            }
        });
    }
    let wanted = |k: u8| (k == frames::STDOUT && want_out) || (k == frames::STDERR && want_err);
    loop {
        let exited = exit.borrow_and_update().is_some();
        if exited {
            // Output always precedes the exit: it was drained first.
            while let Ok((k, data)) = rx.try_recv() {
                if wanted(k) {
                    write_frame(&mut w, k, &data).await?;
                }
            }
            break;
        }
        tokio::select! {
            c = rx.recv() => match c {
                Some((k, data)) => if wanted(k) { write_frame(&mut w, k, &data).await? },
                None => break,
            },
            r = exit.changed() => if r.is_err() { break },
        }
    }
    let e = shim.exit.borrow().clone();
    if let Some(e) = e {
        let payload = serde_json::to_vec(&e).map_err(std::io::Error::other)?;
        write_frame(&mut w, frames::EXIT, &payload).await?;
    }
    w.shutdown().await
}

#[allow(clippy::too_many_arguments)]
async fn exec(
    shim: Arc<Shim>,
    r: BufReader<OwnedReadHalf>,
    mut w: OwnedWriteHalf,
    exec_id: String,
    process: serde_json::Value,
    tty: bool,
    want_in: bool,
) -> std::io::Result<()> {
    let mut replied = false;
    let res = exec_inner(
        shim,
        r,
        &mut w,
        &mut replied,
        exec_id,
        process,
        tty,
        want_in,
    )
    .await;
    match res {
        Err(e) if !replied => reply(&mut w, &Response::err(format!("exec: {e}"))).await,
        r => r,
    }
}

#[allow(clippy::too_many_arguments)]
async fn exec_inner(
    shim: Arc<Shim>,
    r: BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
    replied: &mut bool,
    exec_id: String,
    process: serde_json::Value,
    tty: bool,
    want_in: bool,
) -> std::io::Result<()> {
    if exec_id.is_empty() || !exec_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        *replied = true;
        return reply(w, &Response::err("bad exec id")).await;
    }
    let spec = shim.dir.join(format!("exec-{exec_id}.json"));
    let pid_file = shim.dir.join(format!("exec-{exec_id}.pid"));
    let data = serde_json::to_vec(&process).map_err(std::io::Error::other)?;
    std::fs::write(&spec, data)?;
    let tx = Arc::new(Fanout::default());
    let mut rx = tx.subscribe();
    let mut pumps = Vec::new();
    let stdin: Arc<Mutex<Option<Arc<Fd>>>> = Arc::new(Mutex::new(None));
    let id = shim.cfg.id.clone();
    let exec_args = |console: Option<&str>| exec_args(&spec, &pid_file, console, &id);
    let created = if tty {
        let cs = ConsoleSocket::bind(Path::new(&format!(
            "console-{}.sock",
            &exec_id[..exec_id.len().min(16)]
        )))?;
        let cs_path = cs.path().display().to_string();
        let recv = tokio::spawn(cs.receive(CONSOLE_WAIT));
        let args = exec_args(Some(&cs_path));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match shim.rt.call(&args, ProcIo::null()).await {
            Err(e) => {
                recv.abort();
                Err(e)
            }
            Ok(()) => match recv.await {
                Ok(Ok(fd)) => {
                    let m = Arc::new(Fd::new(fd)?);
                    pumps.push(stdio::pump(m.clone(), frames::STDOUT, None, tx.clone()));
                    *stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(m.clone());
                    shim.exec_masters
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(exec_id.clone(), m);
                    Ok(())
                }
                Ok(Err(e)) => Err(format!("receiving the console: {e}")),
                Err(e) => Err(e.to_string()),
            },
        }
    } else {
        let (out_r, out_w) = fdio::pipe()?;
        let (err_r, err_w) = fdio::pipe()?;
        let (in_r, in_w) = if want_in {
            let (r, w) = fdio::pipe()?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let args = exec_args(None);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = shim
            .rt
            .call(
                &args,
                ProcIo {
                    stdin: in_r,
                    stdout: Some(out_w),
                    stderr: Some(err_w),
                },
            )
            .await;
        if r.is_ok() {
            pumps.push(stdio::pump(
                Arc::new(Fd::new(out_r)?),
                frames::STDOUT,
                None,
                tx.clone(),
            ));
            pumps.push(stdio::pump(
                Arc::new(Fd::new(err_r)?),
                frames::STDERR,
                None,
                tx.clone(),
            ));
            if let Some(wfd) = in_w {
                *stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(Fd::new(wfd)?));
            }
        }
        r
    };
    let _ = std::fs::remove_file(&spec);
    if let Err(e) = created {
        *replied = true;
        return reply(w, &Response::err(e)).await;
    }
    let pid = match read_pid(&pid_file) {
        Ok(p) => p,
        Err(e) => {
            *replied = true;
            return reply(w, &Response::err(e)).await;
        }
    };
    let _ = std::fs::remove_file(&pid_file);
    let resp = Response {
        pid: Some(pid),
        status: Some(ShimStatus::Running),
        ..Response::ok()
    };
    // The client may be gone at any point: the process must never block on
    // its output, so output keeps being read (and dropped) whatever happens.
    *replied = true;
    let mut client_ok = reply(w, &resp).await.is_ok();
    if want_in {
        let (s1, s2) = (stdin.clone(), stdin.clone());
        tokio::spawn(read_stdin(
            r,
            move || s1.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            move || {
                s2.lock().unwrap_or_else(|p| p.into_inner()).take();
            },
        ));
    }
    let reaper = shim.reaper.clone();
    let mut done = Box::pin(async move {
        let code = reaper.wait(pid).await;
        stdio::drain(pumps, DRAIN).await;
        code
    });
    let code = loop {
        tokio::select! {
            Some((k, data)) = rx.recv() => {
                if client_ok && write_frame(w, k, &data).await.is_err() { client_ok = false }
            },
            code = &mut done => break code,
        }
    };
    while let Ok((k, data)) = rx.try_recv() {
        if client_ok && write_frame(w, k, &data).await.is_err() {
            client_ok = false;
        }
    }
    shim.exec_masters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&exec_id);
    stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
    if client_ok {
        let e = ExitStatus {
            code,
            exited_at: logfile::now(),
            oom_killed: false,
        };
        let payload = serde_json::to_vec(&e).map_err(std::io::Error::other)?;
        write_frame(w, frames::EXIT, &payload).await?;
        w.shutdown().await?;
    }
    Ok(())
}
