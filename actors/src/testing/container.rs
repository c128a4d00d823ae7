//! A fake ContainerHost: each container's "shim" is a few fields in
//! memory and its "process" exits when signalled (unless it ignores the
//! signal) or when the test says so. ContainerActor tests run on it in
//! milliseconds, without runc.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::container::ContainerRecord;
use crate::ports::{BoxFuture, ContainerHost, ShimCallError, ShimStarted};
use crate::protocol::shim::{ExitStatus, Request, Response, ShimStatus};

/// One container's shim and process.
#[derive(Debug, Clone)]
pub struct FakeShim {
    pub status: ShimStatus,
    pub pid: i32,
    pub exit: Option<ExitStatus>,
}

#[derive(Default)]
pub struct FakeContainerState {
    /// Live shims by container ID.
    pub shims: BTreeMap<String, FakeShim>,
    /// Exit files the shims wrote (they outlive the shim).
    pub exit_files: BTreeMap<String, ExitStatus>,
    /// Processes started per container (a restart policy's runs).
    pub starts: BTreeMap<String, u32>,
    /// Signals the processes ignore.
    pub ignore: BTreeSet<i32>,
    /// Records saved, by ID (the last one).
    pub saved: BTreeMap<String, ContainerRecord>,
    pub destroyed: Vec<String>,
    pub released: Vec<String>,
    pub network_ups: u32,
    pub network_downs: u32,
    /// Every request to a shim, as (id, request name).
    pub calls: Vec<(String, &'static str)>,
    pub next_pid: i32,
    /// `docker update`: the Memory last pushed to each runtime.
    pub resources: BTreeMap<String, i64>,
    /// Make the runtime refuse updates with this message.
    pub fail_update: Option<String>,
    /// The shim's ends of the stdio connections handed out, as
    /// (id, request name, stream).
    pub stdio: Vec<(String, &'static str, tokio::io::DuplexStream)>,
    /// Root filesystems lent for copies (by layer), not yet given back.
    pub borrowed: Vec<String>,
    /// Containers whose layer and directory exist (prepared, not discarded).
    pub prepared: BTreeSet<String>,
    /// Make `prepare` fail with this message.
    pub fail_prepare: Option<String>,
}

#[derive(Clone, Default)]
pub struct FakeContainerHost {
    pub state: Arc<Mutex<FakeContainerState>>,
    changed: Arc<Notify>,
}

fn name(r: &Request) -> &'static str {
    match r {
        Request::State => "state",
        Request::Start => "start",
        Request::Kill { .. } => "kill",
        Request::Wait => "wait",
        Request::Attach { .. } => "attach",
        Request::Resize { .. } => "resize",
        Request::AckExit => "ack-exit",
        Request::Pause => "pause",
        Request::Resume => "resume",
        Request::Exec { .. } => "exec",
        _ => "other",
    }
}

fn exited(code: i32) -> ExitStatus {
    ExitStatus {
        code,
        exited_at: "2026-01-01T00:00:00.000000000Z".into(),
        oom_killed: false,
    }
}

impl FakeContainerHost {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, FakeContainerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The container's process exits by itself with `code`.
    pub fn exit(&self, id: &str, code: i32) {
        let mut s = self.lock();
        let e = exited(code);
        if let Some(sh) = s.shims.get_mut(id) {
            sh.status = ShimStatus::Exited;
            sh.exit = Some(e.clone());
        }
        s.exit_files.insert(id.to_string(), e);
        drop(s);
        self.changed.notify_waiters();
    }

    /// The shim dies (its process with it unless it had exited already).
    pub fn kill_shim(&self, id: &str) {
        self.lock().shims.remove(id);
        self.changed.notify_waiters();
    }

    pub fn starts(&self, id: &str) -> u32 {
        self.lock().starts.get(id).copied().unwrap_or(0)
    }

    pub fn pid(&self, id: &str) -> Option<i32> {
        self.lock().shims.get(id).map(|s| s.pid)
    }

    fn answer(&self, id: &str, req: &Request) -> Result<Option<Response>, ShimCallError> {
        let mut s = self.lock();
        s.calls.push((id.to_string(), name(req)));
        let Some(sh) = s.shims.get(id).cloned() else {
            return Err(ShimCallError::Gone(id.to_string()));
        };
        let mut r = Response::ok();
        match req {
            Request::State => {
                r.status = Some(sh.status);
                r.pid = Some(sh.pid);
                r.exit = sh.exit.clone();
            }
            Request::Start => {
                *s.starts.entry(id.to_string()).or_default() += 1;
                if let Some(x) = s.shims.get_mut(id) {
                    x.status = ShimStatus::Running;
                }
            }
            Request::Kill { signal, .. } if sh.exit.is_none() && !s.ignore.contains(signal) => {
                let e = exited(128 + signal);
                if let Some(x) = s.shims.get_mut(id) {
                    x.status = ShimStatus::Exited;
                    x.exit = Some(e.clone());
                }
                s.exit_files.insert(id.to_string(), e);
                drop(s);
                self.changed.notify_waiters();
            }
            Request::Wait => {
                if sh.exit.is_none() {
                    return Ok(None); // not yet: the caller waits
                }
                r.exit = sh.exit.clone();
            }
            Request::AckExit => {
                // The shim's work is done: it goes.
                s.shims.remove(id);
            }
            Request::Pause => {
                if let Some(x) = s.shims.get_mut(id) {
                    x.status = ShimStatus::Paused;
                }
            }
            Request::Resume => {
                if let Some(x) = s.shims.get_mut(id) {
                    x.status = ShimStatus::Running;
                }
            }
            _ => {}
        }
        Ok(Some(r))
    }
}

impl ContainerHost for FakeContainerHost {
    fn prepare(&self, rec: &ContainerRecord) -> BoxFuture<Result<(), String>> {
        let mut s = self.lock();
        // Made halfway, then refused: `discard` must clean it.
        s.prepared.insert(rec.id.clone());
        let r = match &s.fail_prepare {
            Some(m) => Err(m.clone()),
            None => Ok(()),
        };
        Box::pin(async move { r })
    }

    fn discard(&self, rec: &ContainerRecord) -> BoxFuture<()> {
        let mut s = self.lock();
        s.prepared.remove(&rec.id);
        s.saved.remove(&rec.id);
        Box::pin(async {})
    }

    fn create(&self, rec: &ContainerRecord) -> BoxFuture<Result<ShimStarted, String>> {
        let mut s = self.lock();
        s.next_pid += 1;
        let pid = 1000 + s.next_pid;
        s.shims.insert(
            rec.id.clone(),
            FakeShim {
                status: ShimStatus::Created,
                pid,
                exit: None,
            },
        );
        s.exit_files.remove(&rec.id);
        Box::pin(async move {
            Ok(ShimStarted {
                shim_pid: pid + 500,
                pid,
            })
        })
    }

    fn call(&self, id: &str, req: Request) -> BoxFuture<Result<Response, ShimCallError>> {
        let (me, id) = (self.clone(), id.to_string());
        Box::pin(async move {
            loop {
                let notified = me.changed.notified();
                if let Some(r) = me.answer(&id, &req)? {
                    return Ok(r);
                }
                notified.await;
            }
        })
    }

    fn open_stdio(
        &self,
        id: &str,
        req: Request,
    ) -> BoxFuture<Result<crate::container::stdio::Stdio, ShimCallError>> {
        let r = self.answer(id, &req).map(|_| {
            let (ours, theirs) = tokio::io::duplex(1 << 16);
            self.lock().stdio.push((id.to_string(), name(&req), theirs));
            let (rd, wr) = tokio::io::split(ours);
            crate::container::stdio::Stdio::new(Box::new(rd), Box::new(wr), Some(4242))
        });
        Box::pin(async move { r })
    }

    fn exec_process(
        &self,
        _rec: &ContainerRecord,
        exec: &crate::exec::ExecRecord,
    ) -> Result<serde_json::Value, crate::container::ContainerError> {
        Ok(serde_json::json!({ "args": exec.cmd }))
    }

    fn borrow_root(&self, rec: &ContainerRecord) -> Result<std::path::PathBuf, String> {
        self.lock().borrowed.push(rec.layer.clone());
        Ok(format!("/fake/{}/merged", rec.layer).into())
    }

    fn give_back_root(&self, layer: &str) {
        let mut s = self.lock();
        if let Some(i) = s.borrowed.iter().position(|l| l == layer) {
            s.borrowed.remove(i);
        }
    }

    fn layer_dirs(
        &self,
        rec: &ContainerRecord,
    ) -> Result<(std::path::PathBuf, Vec<std::path::PathBuf>), String> {
        Ok((format!("/fake/{}/diff", rec.layer).into(), vec![]))
    }

    fn stats_sample(&self, _rec: &ContainerRecord, pid: i32) -> BoxFuture<serde_json::Value> {
        Box::pin(async move { serde_json::json!({ "pid": pid }) })
    }

    fn top(
        &self,
        _rec: &ContainerRecord,
        ps_args: &str,
    ) -> BoxFuture<Result<serde_json::Value, String>> {
        let a = ps_args.to_string();
        Box::pin(async move { Ok(serde_json::json!({ "Titles": [a] })) })
    }

    fn exit_file(&self, id: &str) -> Option<ExitStatus> {
        self.lock().exit_files.get(id).cloned()
    }

    fn release(&self, rec: &ContainerRecord) {
        self.lock().released.push(rec.id.clone());
    }

    fn destroy(&self, rec: &ContainerRecord) -> BoxFuture<Result<(), String>> {
        self.lock().destroyed.push(rec.id.clone());
        Box::pin(async { Ok(()) })
    }

    fn save(&self, rec: &ContainerRecord) -> std::io::Result<()> {
        self.lock().saved.insert(rec.id.clone(), rec.clone());
        Ok(())
    }

    fn sandbox_create(&self, rec: &ContainerRecord) -> BoxFuture<Result<String, String>> {
        self.lock().network_ups += 1;
        let p = format!("/fake/netns/{}", rec.id);
        Box::pin(async move { Ok(p) })
    }

    fn sandbox_remove(&self, _rec: &ContainerRecord) -> BoxFuture<()> {
        self.lock().network_downs += 1;
        Box::pin(async {})
    }

    fn publish_ip(&self) -> String {
        String::new()
    }

    fn dns_start(&self, rec: &ContainerRecord, _wait: bool) -> BoxFuture<()> {
        self.lock().calls.push((rec.id.clone(), "dns-start"));
        Box::pin(async {})
    }

    fn dns_stop(&self, rec: &ContainerRecord) {
        self.lock().calls.push((rec.id.clone(), "dns-stop"));
    }

    fn write_net_files(&self, rec: &ContainerRecord, _ip: Option<&str>, _embedded: bool) {
        self.lock().calls.push((rec.id.clone(), "net-files"));
    }

    fn apply_resources(&self, rec: &ContainerRecord) -> BoxFuture<Result<(), ShimCallError>> {
        let mut s = self.lock();
        s.calls.push((rec.id.clone(), "update"));
        let r = if !s.shims.contains_key(&rec.id) {
            Err(ShimCallError::Gone(rec.id.clone()))
        } else if let Some(e) = s.fail_update.clone() {
            Err(ShimCallError::Failed(e))
        } else {
            s.resources
                .insert(rec.id.clone(), rec.host_config.resources.memory);
            Ok(())
        };
        Box::pin(async move { r })
    }
}
