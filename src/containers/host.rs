//! The real [`ContainerHost`]: storage mounts, the OCI bundle, the shim.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use berth_actors::container::ContainerRecord;
use berth_actors::ports::{BoxFuture, ContainerHost, ShimCallError, ShimStarted};
use berth_actors::protocol::shim::{
    ExitStatus, LogConfig, Request, Response, ShimConfig, CONFIG_FILE, EXIT_FILE, PROTOCOL_VERSION,
    SOCKET_FILE,
};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::etc_files::{resolv_conf, upstream_resolvers, write_etc_files, write_hosts};
use super::shim_client::{connect, split};
use super::spec::{self, SpecContext};
use crate::config::DaemonConfig;
use crate::facts::HostFacts;
use crate::sys::atomic::write_atomic;
use crate::sys::storage::StorageDriver;

pub struct Host {
    /// `<data-root>/containers`
    pub data_dir: PathBuf,
    /// `<exec-root>/containers`
    pub state_dir: PathBuf,
    /// `<exec-root>/runtime-<name>` parent
    pub exec_root: PathBuf,
    pub driver: Arc<dyn StorageDriver>,
    pub config: watch::Receiver<Arc<DaemonConfig>>,
    pub facts: HostFacts,
    pub shim_bin: PathBuf,
    pub network: Arc<crate::network::NetworkService>,
    pub volumes: Arc<crate::volumes::VolumeService>,
    /// The containers' read model (`--network container:<id>`).
    pub containers: watch::Receiver<Arc<berth_actors::container::ContainerIndex>>,
}

/// The shim binary: next to berthd's, else on PATH.
pub fn find_shim() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("berth-shim")))
        .filter(|p| p.is_file())
        .or_else(|| spec::which("berth-shim"))
        .unwrap_or_else(|| PathBuf::from("berth-shim"))
}

/// What stands for a record that cannot be read: a dead container named
/// after its ID, whose error says which file and why.
fn unreadable_record(id: &str, path: &Path, err: &str) -> Option<ContainerRecord> {
    if !crate::ids::is_full_id(id) {
        return None;
    }
    let v = serde_json::json!({
        "version": berth_actors::container::RECORD_VERSION,
        "id": id,
        "name": format!("/unreadable-{}", &id[..12]),
        "created": "",
        "image": "",
        "image_name": "",
        "config": {},
        "host_config": {"NetworkMode": "none"},
        "path": "",
        "args": [],
        "state": {
            "status": "dead",
            "error": format!("the container's record {} is unreadable: {err}", path.display()),
        },
        "driver": "",
        "layer": id,
        "log_path": "",
        "runtime": "runc",
    });
    serde_json::from_value(v)
        .map_err(|e| warn!(%id, "standing in for its record: {e}"))
        .ok()
}

/// The container directories with no record file at all (not even an
/// unreadable one, or its temp file being written).
pub fn unrecorded_dirs(data_dir: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(data_dir) else {
        return Vec::new();
    };
    dir.flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            crate::ids::is_full_id(&name)
                && !std::fs::read_dir(p).is_ok_and(|rd| {
                    rd.flatten().any(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with("config.v2.json")
                    })
                })
        })
        .collect()
}

impl Host {
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.data_dir.join(id)
    }
    pub fn shim_dir(&self, id: &str) -> PathBuf {
        self.state_dir.join(id)
    }
    pub fn socket(&self, id: &str) -> PathBuf {
        self.shim_dir(id).join(SOCKET_FILE)
    }

    /// The directory of a layer's own files (for sizes).
    pub fn driver_diff(&self, layer: &str) -> PathBuf {
        self.driver
            .describe(layer)
            .and_then(|m| m.get("UpperDir").cloned())
            .map(PathBuf::from)
            .unwrap_or_default()
    }

    pub async fn call_shim(&self, id: &str, req: Request) -> Result<(), ShimCallError> {
        connect(&self.socket(id), &req).await.map(|_| ())
    }

    /// The container's OCI spec as written at its start.
    pub fn bundle_config(&self, id: &str) -> Option<oci_spec::runtime::Spec> {
        let b = std::fs::read(self.shim_dir(id).join("config.json")).ok()?;
        serde_json::from_slice(&b)
            .map_err(|e| tracing::warn!(container = id, "reading its config.json: {e}"))
            .ok()
    }
}

/// Load every record. A record that cannot be read (tampered, cut short)
/// is reported and comes back as a `dead` container under its directory's
/// ID, its error naming the file, so `docker ps -a` shows it and `docker rm`
/// removes it with its layer (the rest of the containers come back).
pub fn load_records(data_dir: &Path) -> Vec<ContainerRecord> {
    {
        let mut out = Vec::new();
        let Ok(dir) = std::fs::read_dir(data_dir) else {
            return out;
        };
        for e in dir.flatten() {
            let p = e.path().join("config.v2.json");
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            match serde_json::from_slice::<ContainerRecord>(&bytes) {
                Ok(r) if r.id == e.file_name().to_string_lossy() => out.push(r),
                Ok(r) => {
                    warn!(path = %p.display(), "container record names another ID ({}); skipped", r.id)
                }
                Err(err) => {
                    let id = e.file_name().to_string_lossy().into_owned();
                    warn!(path = %p.display(), "container record is unreadable; listed as dead: {err}");
                    if let Some(r) = unreadable_record(&id, &p, &err.to_string()) {
                        out.push(r);
                    }
                }
            }
        }
        out
    }
}

impl Host {
    /// `runtime delete --force` when the runtime still has state for the
    /// container (its shim died): the processes go with it, none is left
    /// running unmanaged.
    fn delete_runtime_state(&self, rec: &ContainerRecord) {
        let runtime_root = self.exec_root.join(format!("runtime-{}", rec.runtime));
        if !runtime_root.join(&rec.id).exists() {
            return;
        }
        let cfg = self.config.borrow().clone();
        let runtimes = cfg.all_runtimes();
        let Some(rt) = runtimes.get(&rec.runtime) else {
            return;
        };
        warn!(id = %rec.id, "removing the runtime state its shim left");
        let _ = Command::new(&rt.path)
            .args(&rt.runtime_args)
            .arg("--root")
            .arg(&runtime_root)
            .args(["delete", "--force", &rec.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    fn create_blocking(&self, rec: &ContainerRecord) -> Result<ShimStarted, String> {
        let t0 = std::time::Instant::now();
        let cfg = self.config.borrow().clone();
        let dir = self.shim_dir(&rec.id);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let rootfs = self
            .driver
            .mount_rw(&rec.layer)
            .map_err(|e| format!("mounting the container's filesystem: {e}"))?;
        let result = (|| {
            init_paths(&rootfs);
            self.prepare_volumes(rec, &rootfs)?;
            // Unmounted when this closure ends: after the runtime's create.
            let volume_path = |n: &str| self.volumes.data_path(n);
            let staged = super::subpath::stage(rec, &volume_path, &self.exec_root)?;
            let hc = &rec.host_config;
            let shm = if hc.ipc_mode == "shareable" {
                let size = if hc.shm_size > 0 {
                    hc.shm_size as u64
                } else {
                    cfg.default_shm_bytes()
                };
                Some(super::shm::mount_shm(&self.exec_root, &rec.id, size)?)
            } else {
                hc.ipc_mode
                    .strip_prefix("container:")
                    .map(|donor| super::shm::path(&self.exec_root, donor))
            };
            let runtimes = cfg.all_runtimes();
            let rt = runtimes
                .get(&rec.runtime)
                .ok_or_else(|| format!("unknown or invalid runtime name: {}", rec.runtime))?;
            let s = spec::build(
                rec,
                &SpecContext {
                    cfg: &cfg,
                    host: &self.facts,
                    rootfs: &rootfs,
                    container_dir: &self.container_dir(&rec.id),
                    volume_path: &volume_path,
                    staged: &staged.by_destination,
                    shm: shm.as_deref(),
                },
            )?;
            // A shim that died without cleaning up leaves the runtime's
            // state of the old process behind: remove it first.
            self.delete_runtime_state(rec);
            let t_spec = t0.elapsed();
            let spec_bytes = serde_json::to_vec(&s).map_err(|e| e.to_string())?;
            std::fs::write(dir.join("config.json"), spec_bytes).map_err(|e| e.to_string())?;
            let shim_cfg = ShimConfig {
                version: PROTOCOL_VERSION,
                id: rec.id.clone(),
                bundle: dir.display().to_string(),
                runtime: rt.path.clone(),
                runtime_args: rt.runtime_args.clone(),
                runtime_root: self
                    .exec_root
                    .join(format!("runtime-{}", rec.runtime))
                    .display()
                    .to_string(),
                log: log_config(rec)?,
                tty: rec.tty(),
                stdin: rec.config.open_stdin,
                stdin_once: rec.config.stdin_once,
                memory_cgroup: Some(format!(
                    "/sys/fs/cgroup/memory{}",
                    spec::cgroups_path(rec, &cfg)
                )),
                health: super::health::spec(rec, &s)?,
            };
            let b = serde_json::to_vec(&shim_cfg).map_err(|e| e.to_string())?;
            std::fs::write(dir.join(CONFIG_FILE), b).map_err(|e| e.to_string())?;
            let t_shim = std::time::Instant::now();
            let out = Command::new(&self.shim_bin)
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output()
                .map_err(|e| format!("starting {}: {e}", self.shim_bin.display()))?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
            }
            debug!(id = %rec.id, mount_and_spec = ?t_spec, shim_and_runtime_create = ?t_shim.elapsed(), "container created");
            let text = String::from_utf8_lossy(&out.stdout);
            let mut it = text
                .split_whitespace()
                .map(|x| x.parse::<i32>().unwrap_or(0));
            Ok(ShimStarted {
                shim_pid: it.next().unwrap_or(0),
                pid: it.next().unwrap_or(0),
            })
        })();
        if result.is_err() {
            super::shm::unmount_shm(&self.exec_root, &rec.id);
            let _ = self.driver.unmount(&rec.layer);
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }
}

/// What dockerd's init layer gives every container and a runtime does not
/// make: `/etc/mtab` as a link to `/proc/mounts` (mount, df and friends
/// read it), unless the image has its own. Made in the container's
/// writable layer, resolved inside the root; `docker diff` leaves it out,
/// as dockerd does. Best effort: a read-only or odd root just lacks it.
fn init_paths(rootfs: &Path) {
    use nix::fcntl::OFlag;
    let Ok(root) = std::fs::File::open(rootfs).map(std::os::fd::OwnedFd::from) else {
        return;
    };
    let etc = match super::archive::open_in_root(&root, "/etc", OFlag::O_PATH | OFlag::O_DIRECTORY)
    {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => {
            if nix::sys::stat::mkdirat(
                &root,
                "etc",
                nix::sys::stat::Mode::from_bits_truncate(0o755),
            )
            .is_err()
            {
                return;
            }
            match super::archive::open_in_root(&root, "/etc", OFlag::O_PATH | OFlag::O_DIRECTORY) {
                Ok(fd) => fd,
                Err(_) => return,
            }
        }
        Err(_) => return,
    };
    // EEXIST (the image's own mtab, or a start before this one) is fine.
    let _ = nix::unistd::symlinkat("/proc/mounts", &etc, "mtab");
}

/// What the shim's logger needs: the driver, its options and the
/// container's facts (the tag expanded), the file or the dual-logging
/// cache. The options were validated at create; a value that still does
/// not parse takes the driver's default.
fn log_config(rec: &ContainerRecord) -> Result<Option<LogConfig>, String> {
    use crate::logdrivers::{self, local, tag};
    let driver = rec.log_driver().to_string();
    if driver == "none" {
        return Ok(None);
    }
    let opts = rec
        .host_config
        .log_config
        .config
        .clone()
        .unwrap_or_default();
    let mut attrs = std::collections::BTreeMap::new();
    let labels = rec.labels();
    let env: Vec<(String, String)> = rec
        .config
        .env()
        .iter()
        .filter_map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let list = |k: &str| -> Vec<String> {
        opts.get(k)
            .map(|v| {
                v.split(',')
                    .filter(|x| !x.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    for k in list("labels") {
        if let Some(v) = labels.get(&k) {
            attrs.insert(k, v.clone());
        }
    }
    if let Some(re) = opts
        .get("labels-regex")
        .and_then(|r| regex::Regex::new(r).ok())
    {
        for (k, v) in &labels {
            if re.is_match(k) {
                attrs.insert(k.clone(), v.clone());
            }
        }
    }
    for k in list("env") {
        if let Some((_, v)) = env.iter().find(|(ek, _)| *ek == k) {
            attrs.insert(k, v.clone());
        }
    }
    if let Some(re) = opts
        .get("env-regex")
        .and_then(|r| regex::Regex::new(r).ok())
    {
        for (k, v) in &env {
            if re.is_match(k) {
                attrs.insert(k.clone(), v.clone());
            }
        }
    }
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut command = vec![rec.path.clone()];
    command.extend(rec.args.iter().cloned());
    let facts = tag::Facts {
        id: rec.id.clone(),
        name: rec.name.clone(),
        image_id: rec.image.clone(),
        image_name: rec.image_name.clone(),
        command: command.join(" "),
        hostname: hostname.clone(),
    };
    let remote = logdrivers::is_remote(&driver);
    // json-file and local put the tag among the attributes, only when asked.
    let given_tag = opts.get("tag").filter(|t| !t.is_empty());
    let tag = tag::expand(
        given_tag.map(String::as_str).unwrap_or(tag::DEFAULT),
        &facts,
    )
    .map_err(|e| format!("failed to initialize logging driver: {e}"))?;
    if !remote && given_tag.is_some() {
        attrs.insert("tag".into(), tag.clone());
    }
    let rotation = |o: &std::collections::BTreeMap<String, String>, d: local::Settings| {
        local::Settings::parse(o, d).unwrap_or(d)
    };
    let (path, rot) = match driver.as_str() {
        "local" => (
            rec.log_read_path().unwrap_or_default(),
            rotation(&opts, local::DEFAULTS),
        ),
        _ => (
            rec.log_path.clone(),
            local::Settings {
                max_size: opts
                    .get("max-size")
                    .and_then(|s| crate::config::units::parse_size(s))
                    .unwrap_or(0),
                max_file: opts
                    .get("max-file")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(1),
                compress: opts.get("compress").is_some_and(|s| s == "true"),
            },
        ),
    };
    let cache = match (remote, rec.log_read_path()) {
        (true, Some(p)) => {
            let o: std::collections::BTreeMap<String, String> = opts
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("cache-")?.to_string(), v.clone())))
                .collect();
            let r = rotation(&o, local::CACHE_DEFAULTS);
            Some(berth_actors::protocol::shim::LogCache {
                path: p,
                max_size: r.max_size,
                max_file: r.max_file,
                compress: r.compress,
            })
        }
        _ => None,
    };
    let non_blocking = opts.get("mode").is_some_and(|m| m == "non-blocking");
    Ok(Some(LogConfig {
        path,
        max_size: rot.max_size,
        max_file: rot.max_file,
        compress: rot.compress,
        attrs,
        driver: driver.clone(),
        opts: opts.clone(),
        info: berth_actors::protocol::shim::LogInfo {
            id: rec.id.clone(),
            name: rec.name.clone(),
            image_id: rec.image.clone(),
            image_name: rec.image_name.clone(),
            command: facts.command.clone(),
            created: rec.created.clone(),
            tag,
            hostname,
            journald_socket: std::env::var("BERTH_JOURNALD_SOCKET").unwrap_or_default(),
        },
        cache,
        non_blocking,
        max_buffer_size: opts
            .get("max-buffer-size")
            .and_then(|s| crate::config::units::parse_size(s))
            .unwrap_or(0),
        counts_path: rec
            .dir()
            .join(berth_actors::protocol::shim::LOG_COUNTS_FILE)
            .display()
            .to_string(),
    }))
}

/// A run that lost log entries says so in berthd's log (the counts are
/// also in the metrics): drops are never silent.
fn warn_dropped_log_entries(rec: &ContainerRecord) {
    let path = rec
        .dir()
        .join(berth_actors::protocol::shim::LOG_COUNTS_FILE);
    let Some(k) = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<berth_actors::protocol::shim::LogCounts>(&b).ok())
    else {
        return;
    };
    if k.dropped > 0 {
        tracing::warn!(
            id = %rec.id,
            driver = rec.log_driver(),
            written = k.written,
            dropped = k.dropped,
            "log entries of this container were dropped (its receiver was down or slower than the container)"
        );
    }
}

impl ContainerHost for Host {
    fn prepare(&self, rec: &ContainerRecord) -> BoxFuture<Result<(), String>> {
        let (me, rec) = (self.clone_handle(), rec.clone());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || -> Result<(), String> {
                use std::os::unix::fs::DirBuilderExt;
                me.driver
                    .create(&rec.layer, rec.image_layer.as_deref())
                    .map_err(|e| format!("creating the container layer: {e}"))?;
                let dir = me.container_dir(&rec.id);
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o710)
                    .create(&dir)
                    .map_err(|e| e.to_string())?;
                let cfg = me.config.borrow().clone();
                let hostname = rec.config.hostname.as_str();
                write_etc_files(&dir, hostname, &cfg, &rec.host_config, &me.host_gateway())
                    .map_err(|e| e.to_string())?;
                // `-v /host/path:...` whose source is missing: made, as dockerd.
                for m in rec.mounts.iter().filter(|m| m.kind == "bind") {
                    if !Path::new(&m.source).exists() {
                        std::fs::create_dir_all(&m.source).map_err(|e| {
                            format!("error while creating mount source path '{}': {e}", m.source)
                        })?;
                    }
                }
                Ok(())
            })
            .await
            .map_err(|e| e.to_string())?
        })
    }

    fn discard(&self, rec: &ContainerRecord) -> BoxFuture<()> {
        let (me, rec) = (self.clone_handle(), rec.clone());
        Box::pin(async move {
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = me.driver.remove(&rec.layer) {
                    debug!(id = %rec.id, "removing the layer of a failed create: {e}");
                }
                let _ = std::fs::remove_dir_all(me.container_dir(&rec.id));
            })
            .await;
        })
    }

    fn create(&self, rec: &ContainerRecord) -> BoxFuture<Result<ShimStarted, String>> {
        let rec = rec.clone();
        let me = self.clone_handle();
        let lock = creating(&rec.id);
        Box::pin(async move {
            let held = lock.lock_owned().await;
            // The lock goes with the blocking work: an actor killed while
            // it waits drops this future, the work goes on, and its next
            // incarnation's shim calls wait for it to end.
            tokio::task::spawn_blocking(move || {
                let _held = held;
                me.create_blocking(&rec)
            })
            .await
            .map_err(|e| e.to_string())?
        })
    }

    fn call(&self, id: &str, req: Request) -> BoxFuture<Result<Response, ShimCallError>> {
        let sock = self.socket(id);
        let lock = creating(id);
        Box::pin(async move {
            // A shim being made for this container answers once made.
            drop(lock.lock().await);
            connect(&sock, &req).await.map(|(r, _)| r)
        })
    }

    fn open_stdio(
        &self,
        id: &str,
        req: Request,
    ) -> BoxFuture<Result<berth_actors::container::stdio::Stdio, ShimCallError>> {
        let sock = self.socket(id);
        Box::pin(async move {
            let (resp, stream) = connect(&sock, &req).await?;
            let (r, w) = split(stream);
            Ok(berth_actors::container::stdio::Stdio::new(
                Box::new(r),
                Box::new(w),
                resp.pid,
            ))
        })
    }

    fn exec_process(
        &self,
        rec: &ContainerRecord,
        exec: &berth_actors::exec::ExecRecord,
    ) -> Result<serde_json::Value, berth_actors::container::ContainerError> {
        use berth_actors::container::ContainerError;
        // A spec that is gone is the daemon's trouble (500); a process that
        // cannot be built from the exec's settings is the client's (400).
        let bundle = self
            .bundle_config(&rec.id)
            .ok_or_else(|| ContainerError::System("the container's spec is missing".into()))?;
        super::exec::process(
            &bundle,
            exec,
            &rec.config,
            rec.host_config.group_add(),
            &rec.state.link_env,
        )
        .map_err(ContainerError::Invalid)
    }

    fn stats_sample(&self, rec: &ContainerRecord, pid: i32) -> BoxFuture<serde_json::Value> {
        let cfg = self.config.borrow().clone();
        let cgroup = super::spec::cgroups_path(rec, &cfg);
        let (ncpu, mem_total) = (self.facts.ncpu.max(1), self.facts.mem_total);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || super::stats::sample(&cgroup, ncpu, mem_total, pid))
                .await
                .unwrap_or_default()
        })
    }

    fn top(
        &self,
        rec: &ContainerRecord,
        ps_args: &str,
    ) -> BoxFuture<Result<serde_json::Value, String>> {
        let pids = super::top::container_pids(self, rec);
        let args = ps_args.to_string();
        Box::pin(async move { super::top::ps(&args, &pids?).await })
    }

    fn borrow_root(&self, rec: &ContainerRecord) -> Result<PathBuf, String> {
        self.driver.borrow_rw(&rec.layer).map_err(|e| e.to_string())
    }

    fn give_back_root(&self, layer: &str) {
        if let Err(e) = self.driver.give_back_rw(layer) {
            warn!(%layer, "giving back a container's root filesystem: {e}");
        }
    }

    fn layer_dirs(&self, rec: &ContainerRecord) -> Result<(PathBuf, Vec<PathBuf>), String> {
        let d = self.driver.describe(&rec.layer).unwrap_or_default();
        let Some(upper) = d.get("UpperDir").filter(|u| !u.is_empty()) else {
            return Err(format!(
                "changes are not available with the {} storage driver",
                self.driver.name()
            ));
        };
        // The image's layers, compared by descriptor (never a mounted view).
        let lowers = d
            .get("LowerDir")
            .map(|l| {
                l.split(':')
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok((PathBuf::from(upper), lowers))
    }

    fn exit_file(&self, id: &str) -> Option<ExitStatus> {
        let b = std::fs::read(self.shim_dir(id).join(EXIT_FILE)).ok()?;
        serde_json::from_slice(&b).ok()
    }

    fn release(&self, rec: &ContainerRecord) {
        warn_dropped_log_entries(rec);
        self.delete_runtime_state(rec);
        super::shm::unmount_shm(&self.exec_root, &rec.id);
        if let Err(e) = self.driver.unmount(&rec.layer) {
            debug!(id = %rec.id, "unmounting: {e}");
        }
        let _ = std::fs::remove_dir_all(self.shim_dir(&rec.id));
    }

    fn destroy(&self, rec: &ContainerRecord) -> BoxFuture<Result<(), String>> {
        let (me, rec) = (self.clone_handle(), rec.clone());
        Box::pin(async move {
            me.release(&rec);
            me.driver
                .remove(&rec.layer)
                .map_err(|e| format!("removing the layer: {e}"))?;
            berth_actors::failpoint::hit("container-rm:layer-removed");
            match std::fs::remove_dir_all(me.container_dir(&rec.id)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.to_string()),
            }
            forget_creating(&rec.id);
            Ok(())
        })
    }

    fn sandbox_create(&self, rec: &ContainerRecord) -> BoxFuture<Result<String, String>> {
        let path = self.network.sandbox_path(&rec.id);
        Box::pin(async move {
            let p = path.clone();
            tokio::task::spawn_blocking(move || -> Result<(), String> {
                crate::network::netns::remove(&p);
                crate::network::netns::create(&p)
                    .map_err(|e| format!("creating the network namespace: {e}"))?;
                crate::network::netns::run_in(&p, || {
                    crate::network::link::configure_inside(
                        None,
                        [0; 6],
                        std::net::Ipv4Addr::UNSPECIFIED,
                        0,
                        None,
                        None,
                    )
                })
                .map_err(|e| e.to_string())?
            })
            .await
            .map_err(|e| e.to_string())??;
            Ok(path.display().to_string())
        })
    }

    fn sandbox_remove(&self, rec: &ContainerRecord) -> BoxFuture<()> {
        let ours = self.network.sandbox_path(&rec.id);
        let mine = Path::new(&rec.state.sandbox) == ours || rec.state.sandbox.is_empty();
        Box::pin(async move {
            if mine {
                let _ =
                    tokio::task::spawn_blocking(move || crate::network::netns::remove(&ours)).await;
            }
        })
    }

    fn publish_ip(&self) -> String {
        // `ip` left at 0.0.0.0: published on every address of both
        // families (the network host expands the empty address).
        match self.config.borrow().ip.as_str() {
            "0.0.0.0" => String::new(),
            ip => ip.to_string(),
        }
    }

    fn dns_start(&self, rec: &ContainerRecord, wait: bool) -> BoxFuture<()> {
        self.start_dns(rec);
        let (dns, sandbox, id) = (
            self.network.dns.clone(),
            self.network.sandbox_path(&rec.id),
            rec.id.clone(),
        );
        Box::pin(async move {
            if !wait {
                return;
            }
            let served = tokio::task::spawn_blocking(move || {
                dns.wait_served(&sandbox, Duration::from_secs(2))
            })
            .await
            .unwrap_or(false);
            if !served {
                warn!(%id, "the embedded DNS server is not serving the container yet");
            }
        })
    }

    fn dns_stop(&self, rec: &ContainerRecord) {
        self.network.dns.stop(&rec.id);
    }

    fn write_net_files(&self, rec: &ContainerRecord, ip: Option<&str>, embedded: bool) {
        let cfg = self.config.borrow().clone();
        let dir = self.container_dir(&rec.id);
        if let Some(ip) = ip {
            let hostname = rec.config.hostname.as_str();
            let _ = write_hosts(
                &dir,
                &rec.host_config,
                &rec.state.link_hosts,
                Some((ip, hostname)),
                &self.host_gateway(),
            );
        }
        let _ = std::fs::write(
            dir.join("resolv.conf"),
            resolv_conf(&cfg, &rec.host_config, embedded),
        );
    }

    fn apply_resources(&self, rec: &ContainerRecord) -> BoxFuture<Result<(), ShimCallError>> {
        let resources = super::spec::update_resources(&rec.host_config);
        let sock = self.socket(&rec.id);
        Box::pin(async move {
            connect(&sock, &Request::Update { resources })
                .await
                .map(|_| ())
        })
    }

    fn save(&self, rec: &ContainerRecord) -> std::io::Result<()> {
        let dir = self.container_dir(&rec.id);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o710)
            .create(&dir)?;
        let b = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
        write_atomic(&dir.join("config.v2.json"), &b, 0o600)
    }
}

impl Host {
    fn clone_handle(&self) -> Arc<Host> {
        Arc::new(Host {
            data_dir: self.data_dir.clone(),
            state_dir: self.state_dir.clone(),
            exec_root: self.exec_root.clone(),
            driver: self.driver.clone(),
            config: self.config.clone(),
            facts: self.facts.clone(),
            shim_bin: self.shim_bin.clone(),
            network: self.network.clone(),
            volumes: self.volumes.clone(),
            containers: self.containers.clone(),
        })
    }
}

type CreateLocks = std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

/// The locks shim creations hold, one per container ID (dropped with the
/// container).
static CREATING: std::sync::LazyLock<CreateLocks> = std::sync::LazyLock::new(Default::default);

/// The lock a creation of container `id`'s shim holds.
fn creating(id: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut locks = CREATING.lock().unwrap_or_else(|p| p.into_inner());
    locks.entry(id.to_string()).or_default().clone()
}

/// A removed container's lock goes.
fn forget_creating(id: &str) {
    CREATING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(id);
}

impl Host {
    /// Copy-up: an empty volume over a path with content in the image gets
    /// that content (the VolumeActors mounted the volumes already).
    fn prepare_volumes(&self, rec: &ContainerRecord, rootfs: &Path) -> Result<(), String> {
        for m in rec
            .mounts
            .iter()
            .filter(|m| m.kind == "volume" && m.copy && m.subpath.is_empty())
        {
            let vol = self
                .volumes
                .volumes
                .lookup(&m.name)
                .map_err(|e| e.to_string())?;
            let data = Path::new(&vol.mountpoint);
            if crate::volumes::copyup::is_empty(data) {
                crate::volumes::copyup::copy_up(rootfs, &m.destination, data).map_err(|e| {
                    format!(
                        "copying the image's {} into volume {}: {e}",
                        m.destination, m.name
                    )
                })?;
            }
        }
        Ok(())
    }
}

impl Host {
    fn start_dns(&self, rec: &ContainerRecord) {
        let cfg = self.config.borrow().clone();
        let upstreams = upstream_resolvers(&cfg, &rec.host_config);
        let sandbox = self.network.sandbox_path(&rec.id);
        self.network.dns.start(&rec.id, &sandbox, upstreams);
    }

    /// The address `host-gateway` stands for: `host-gateway-ip` (or the
    /// first of `host-gateway-ips`), else the default bridge's gateway (as
    /// dockerd); empty without either.
    fn host_gateway(&self) -> String {
        let cfg = self.config.borrow().clone();
        if let Some(ip) = std::iter::once(&cfg.host_gateway_ip)
            .chain(cfg.host_gateway_ips.iter())
            .find(|s| !s.is_empty())
        {
            return ip.clone();
        }
        self.network
            .networks
            .snapshot()
            .lookup("bridge")
            .ok()
            .and_then(|n| n.pools.first().map(|p| p.gateway.clone()))
            .unwrap_or_default()
    }

    /// After a berthd restart: serve DNS again to a running container.
    pub fn adopt_network(&self, rec: &ContainerRecord) {
        if rec.state.sandbox.is_empty() || !rec.state.status.is_live() {
            return;
        }
        let snap = self.network.networks.snapshot();
        if snap.of_container(&rec.id).any(|n| n.user_defined()) {
            self.start_dns(rec);
        }
    }
}
