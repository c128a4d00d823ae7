//! The healthcheck, run by the shim: probes keep their schedule while
//! berthd is down or restarting, and every result is written to
//! `health.json` (temp, fsync, rename) before anyone is told.
//!
//! The rules are dockerd's (`daemon/health.go`): the first probe one
//! interval after the start, the next one an interval after the previous
//! one ended; inside the start period and while starting, the start
//! interval; exit 0 is healthy, anything else (a timeout, a probe that
//! cannot run) a failure; failures while starting inside the start period
//! do not count; `retries` consecutive failures make it unhealthy. The last
//! five results are kept, each output capped at 4096 bytes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_actors::protocol::shim::{
    ExitStatus, Health, HealthReport, HealthResult, HealthSpec, ShimStatus, HEALTH_FILE,
};
use tokio::sync::watch;

use super::fdio::{self, Fd};
use super::logfile;
use super::reaper::Reaper;
use super::runtime::{exec_args, read_pid, ProcIo, Runtime};

/// dockerd's `maxOutputLen` and `maxLogEntries`.
const MAX_OUTPUT: usize = 4096;
const MAX_LOG: usize = 5;
/// A probe's output still held by its background children after it
/// exited is waited for this long.
const OUTPUT_DRAIN: Duration = Duration::from_millis(500);

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// What a probe needs of the shim.
pub struct Probe {
    pub id: String,
    pub dir: std::path::PathBuf,
    pub rt: Arc<Runtime>,
    pub reaper: Reaper,
}

/// The report a new shim starts with: starting, the previous run's log.
pub fn initial(spec: &HealthSpec) -> HealthReport {
    HealthReport {
        version: 1,
        health: Health {
            status: STARTING.into(),
            failing_streak: 0,
            log: spec.log.clone(),
        },
        ..Default::default()
    }
}

/// Run the probes from the container's start until it exits.
pub async fn run(
    probe: Probe,
    spec: HealthSpec,
    started: SystemTime,
    report: Arc<watch::Sender<HealthReport>>,
    status: watch::Receiver<ShimStatus>,
    mut exit: watch::Receiver<Option<ExitStatus>>,
) {
    let ns = |n: i64| Duration::from_nanos(n.max(0) as u64);
    let (interval, timeout) = (ns(spec.interval_ns), ns(spec.timeout_ns));
    let (start_period, start_interval) = (ns(spec.start_period_ns), ns(spec.start_interval_ns));
    save(&probe.dir, &report.borrow());
    loop {
        let in_start_period = started.elapsed().unwrap_or_default() < start_period;
        let wait = if in_start_period && report.borrow().health.status == STARTING {
            start_interval
        } else {
            interval
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = exit.wait_for(|e| e.is_some()) => return,
        }
        if exit.borrow().is_some() {
            return;
        }
        // A frozen container cannot run a probe: dockerd's would hang
        // until its timeout; skip the turn instead.
        if *status.borrow() == ShimStatus::Paused {
            continue;
        }
        let exec_id = crate::ids::new_id();
        report.send_modify(|r| {
            r.version += 1;
            r.probing = true;
            r.probe_id = exec_id.clone();
            r.probe_cmd = command_text(&spec.process);
        });
        let result = tokio::select! {
            r = run_probe(&probe, &spec.process, &exec_id, timeout) => r,
            // The container went while the probe ran: no result.
            _ = exit.wait_for(|e| e.is_some()) => return,
        };
        report.send_modify(|r| {
            r.version += 1;
            r.probing = false;
            r.probes += 1;
            apply(&mut r.health, result, &spec, started);
        });
        save(&probe.dir, &report.borrow());
    }
}

/// dockerd's `handleProbeResult`.
pub fn apply(h: &mut Health, result: HealthResult, spec: &HealthSpec, started: SystemTime) {
    if result.exit_code == 0 {
        h.failing_streak = 0;
        h.status = HEALTHY.into();
    } else {
        let mut count = true;
        if h.status == STARTING {
            let since_start = chrono::DateTime::parse_from_rfc3339(&result.start)
                .ok()
                .and_then(|t| SystemTime::from(t).duration_since(started).ok())
                .unwrap_or_default();
            if since_start < Duration::from_nanos(spec.start_period_ns.max(0) as u64) {
                count = false;
            }
        }
        if count {
            h.failing_streak += 1;
            let retries = if spec.retries <= 0 { 3 } else { spec.retries };
            if h.failing_streak >= retries {
                h.status = UNHEALTHY.into();
            }
        }
    }
    h.log.push(result);
    if h.log.len() > MAX_LOG {
        let drop = h.log.len() - MAX_LOG;
        h.log.drain(..drop);
    }
}

fn save(dir: &std::path::Path, r: &HealthReport) {
    let write = serde_json::to_vec(r)
        .map_err(std::io::Error::other)
        .and_then(|b| crate::sys::atomic::write_atomic(&dir.join(HEALTH_FILE), &b, 0o600));
    if let Err(e) = write {
        eprintln!("berth-shim: writing {HEALTH_FILE}: {e}");
    }
}

/// The probe's command as dockerd names it in its exec events.
fn command_text(process: &serde_json::Value) -> String {
    process["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// One probe: `runtime exec` with stdout and stderr into one pipe, the
/// first 4096 bytes kept, killed at the timeout.
async fn run_probe(
    p: &Probe,
    process: &serde_json::Value,
    exec_id: &str,
    timeout: Duration,
) -> HealthResult {
    let start = logfile::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let (code, output) = match exec(p, process, exec_id, deadline).await {
        Ok(Some(x)) => x,
        Ok(None) => (
            -1,
            format!("Health check exceeded timeout ({})", go_duration(timeout)),
        ),
        Err(e) => (-1, format!("OCI runtime exec failed: {e}: unknown")),
    };
    HealthResult {
        start,
        end: logfile::now(),
        exit_code: code,
        output,
    }
}

/// The exit code and output, `None` at the timeout (the process killed).
async fn exec(
    p: &Probe,
    process: &serde_json::Value,
    exec_id: &str,
    deadline: tokio::time::Instant,
) -> Result<Option<(i64, String)>, String> {
    let short = &exec_id[..exec_id.len().min(16)];
    let spec = p.dir.join(format!("probe-{short}.json"));
    let pid_file = p.dir.join(format!("probe-{short}.pid"));
    let data = serde_json::to_vec(process).map_err(|e| e.to_string())?;
    std::fs::write(&spec, data).map_err(|e| e.to_string())?;
    let (r, w) = fdio::pipe().map_err(|e| e.to_string())?;
    let w2 = w.try_clone().map_err(|e| e.to_string())?;
    let args = exec_args(&spec, &pid_file, None, &p.id);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let call = p.rt.call(
        &args,
        ProcIo {
            stdin: None,
            stdout: Some(w),
            stderr: Some(w2),
        },
    );
    let created = tokio::time::timeout_at(deadline, call).await;
    let _ = std::fs::remove_file(&spec);
    let pid = read_pid(&pid_file).ok();
    let _ = std::fs::remove_file(&pid_file);
    match created {
        Err(_) => {
            if let Some(pid) = pid {
                kill(pid);
                p.reaper.wait(pid).await;
            }
            return Ok(None);
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(())) => {}
    }
    let pid = pid.ok_or("the runtime wrote no pid")?;
    let reader = tokio::spawn(read_capped(r));
    let code = match tokio::time::timeout_at(deadline, p.reaper.wait(pid)).await {
        Ok(c) => c,
        Err(_) => {
            kill(pid);
            p.reaper.wait(pid).await;
            reader.abort();
            return Ok(None);
        }
    };
    let output = match tokio::time::timeout(OUTPUT_DRAIN, reader).await {
        Ok(Ok(o)) => o,
        _ => String::new(),
    };
    Ok(Some((code as i64, output)))
}

fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Read to the end; keep the first 4096 bytes, `...` if there was more
/// (dockerd's `limitedBuffer`).
async fn read_capped(r: std::os::fd::OwnedFd) -> String {
    let Ok(fd) = Fd::new(r) else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 8192];
    loop {
        match fd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT - kept.len();
                kept.extend_from_slice(&buf[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
    let mut s = String::from_utf8_lossy(&kept).into_owned();
    if truncated {
        s.push_str("...");
    }
    s
}

/// Go's `time.Duration.String()`: `1s`, `1.5s`, `500ms`, `1m30s`, `2h0m0s`.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    let frac = |v: u128, unit: u128| {
        let whole = v / unit;
        let rest = v % unit;
        if rest == 0 {
            whole.to_string()
        } else {
            let digits = unit.ilog10() as usize;
            let f = format!("{rest:0digits$}");
            format!("{whole}.{}", f.trim_end_matches('0'))
        }
    };
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns, 1_000_000));
    }
    let secs_ns = ns % 60_000_000_000;
    let mins = ns / 60_000_000_000;
    let s = format!("{}s", frac(secs_ns, 1_000_000_000));
    if mins == 0 {
        return s;
    }
    let (h, m) = (mins / 60, mins % 60);
    if h == 0 {
        format!("{m}m{s}")
    } else {
        format!("{h}h{m}m{s}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(retries: i64, start_period_s: i64) -> HealthSpec {
        HealthSpec {
            process: serde_json::json!({"args": ["/bin/sh", "-c", "true"]}),
            interval_ns: 1_000_000_000,
            timeout_ns: 1_000_000_000,
            start_period_ns: start_period_s * 1_000_000_000,
            start_interval_ns: 5_000_000_000,
            retries,
            log: vec![],
        }
    }

    fn result_at(t: SystemTime, code: i64) -> HealthResult {
        let s = chrono::DateTime::<chrono::Utc>::from(t)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        HealthResult {
            start: s.clone(),
            end: s,
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn streaks_and_statuses_as_dockerd() {
        let started = SystemTime::now();
        let sp = spec(2, 0);
        let mut h = initial(&sp).health;
        apply(&mut h, result_at(started, 1), &sp, started);
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 1));
        apply(&mut h, result_at(started, 0), &sp, started);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        apply(&mut h, result_at(started, 3), &sp, started);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 1));
        apply(&mut h, result_at(started, -1), &sp, started);
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
        // The streak goes on counting; the log keeps the last five.
        for _ in 0..4 {
            apply(&mut h, result_at(started, 1), &sp, started);
        }
        assert_eq!(h.failing_streak, 6);
        assert_eq!(h.log.len(), 5);
        // Zero retries means dockerd's default, 3.
        let sp = spec(0, 0);
        let mut h = initial(&sp).health;
        for _ in 0..2 {
            apply(&mut h, result_at(started, 1), &sp, started);
        }
        assert_eq!(h.status, STARTING);
        apply(&mut h, result_at(started, 1), &sp, started);
        assert_eq!(h.status, UNHEALTHY);
    }

    #[test]
    fn failures_inside_the_start_period_do_not_count_while_starting() {
        let started = SystemTime::now();
        let sp = spec(1, 10);
        let mut h = initial(&sp).health;
        apply(&mut h, result_at(started, 1), &sp, started);
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
        let later = started + Duration::from_secs(11);
        apply(&mut h, result_at(later, 1), &sp, started);
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 1));
        // Once healthy, the start period no longer forgives.
        let mut h = initial(&sp).health;
        apply(&mut h, result_at(started, 0), &sp, started);
        apply(&mut h, result_at(started, 1), &sp, started);
        assert_eq!(h.status, UNHEALTHY);
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(ms(1000)), "1s");
        assert_eq!(go_duration(ms(1500)), "1.5s");
        assert_eq!(go_duration(ms(500)), "500ms");
        assert_eq!(go_duration(ms(90_000)), "1m30s");
        assert_eq!(go_duration(ms(7_200_000)), "2h0m0s");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::from_nanos(2500)), "2.5µs");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }
}
