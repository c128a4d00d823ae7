//! create: from the API body to a stored record, with dockerd's checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_actors::container::config::{self, CreateRequest, NetworkingConfig, RestartPolicy};
use berth_actors::container::{
    self, Config, ContainerError, ContainerRecord, HostConfig, MountPoint, NetworkAttachment,
    RunState, RECORD_VERSION,
};
use berth_actors::image::ImageInfo;
use berth_actors::volume::{VolumeRecord, VOLUME_RECORD_VERSION};
use serde_json::Value;

use super::names;
use super::ContainerService;
use crate::sys::runtime::spec::check_workdir;

pub struct Created {
    pub id: String,
    pub warnings: Vec<String>,
}

fn invalid(m: impl Into<String>) -> ContainerError {
    ContainerError::Invalid(m.into())
}

/// `Config.Env` as dockerd merges it: the container's variables first,
/// then the image's whose name the container does not set (a bare `V`
/// counts: it unsets V when the process starts).
fn merge_env(image: &[String], container: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<String> = container.to_vec();
    for e in image {
        if !container.iter().any(|c| key(c) == key(e)) {
            out.push(e.clone());
        }
    }
    out
}

/// `invalid port specification: "X"` unless `X` is a port (1-65535) or a
/// range of them (`a-b`, a <= b); `empty_ok` for a host port left to choose.
fn check_port(spec: &str, empty_ok: bool) -> Result<(), ContainerError> {
    let bad = || invalid(format!("invalid port specification: {spec:?}"));
    if spec.is_empty() {
        return if empty_ok { Ok(()) } else { Err(bad()) };
    }
    let port = |s: &str| s.parse::<u16>().ok().filter(|p| *p > 0);
    match spec.split_once('-') {
        Some((a, b)) => match (port(a), port(b)) {
            (Some(a), Some(b)) if a <= b => Ok(()),
            _ => Err(bad()),
        },
        None => port(spec).map(|_| ()).ok_or_else(bad),
    }
}

/// Checks of the create body dockerd makes with these messages: ports,
/// the isolation, the healthcheck's durations.
fn check_config(c: &Config, hc: &HostConfig) -> Result<(), ContainerError> {
    let container_port = |k: &str| k.split_once('/').map(|(p, _)| p).unwrap_or(k).to_string();
    for k in c.exposed() {
        check_port(&container_port(k), false)?;
    }
    for (k, bindings) in hc.port_bindings.iter().flatten() {
        check_port(&container_port(k), false)?;
        for b in bindings.iter().flatten() {
            check_port(&b.host_port, true)?;
        }
    }
    if !matches!(hc.isolation.as_str(), "" | "default") {
        return Err(invalid(format!(
            "Invalid isolation: {:?} - linux only supports 'default'",
            hc.isolation
        )));
    }
    if let Some(h) = &c.healthcheck {
        const MS: i64 = 1_000_000;
        for (name, v) in [
            ("Interval", h.interval),
            ("Timeout", h.timeout),
            ("StartPeriod", h.start_period),
            ("StartInterval", h.start_interval),
        ] {
            if v != 0 && v < MS {
                return Err(invalid(format!(
                    "{name} in Healthcheck cannot be less than 1ms"
                )));
            }
        }
        if h.retries < 0 {
            return Err(invalid("Retries in Healthcheck cannot be negative"));
        }
    }
    Ok(())
}

/// dockerd's defaults, written into the HostConfig at create (so inspect
/// shows what runs, as dockerd's `adaptContainerSettings` does): shm size,
/// IPC and cgroup namespace modes, masked and read-only paths, swap twice
/// the memory limit, OOM killer on; `-1` swappiness and a zero or negative
/// pids limit are unset. The IPC mode is checked as dockerd checks it.
fn apply_defaults(
    hc: &mut HostConfig,
    cfg: &crate::config::DaemonConfig,
) -> Result<(), ContainerError> {
    if hc.shm_size == 0 {
        hc.shm_size = cfg.default_shm_bytes() as i64;
    }
    match hc.pid_mode.as_str() {
        "" | "host" => {}
        // The donor is looked up (and named by its ID) in `create`.
        m if m.starts_with("container:") => {}
        m => return Err(invalid(format!("invalid PID mode: {m}"))),
    }
    match hc.uts_mode.as_str() {
        "" | "host" => {}
        m => return Err(invalid(format!("invalid UTS mode: {m}"))),
    }
    match hc.ipc_mode.as_str() {
        // `default-ipc-mode` (private or shareable), else private.
        "" if cfg.default_ipc_mode.is_empty() => hc.ipc_mode = "private".into(),
        "" => hc.ipc_mode = cfg.default_ipc_mode.clone(),
        "private" | "shareable" | "host" | "none" => {}
        m if m.starts_with("container:") => {}
        m => return Err(invalid(format!("invalid IPC mode: {m}"))),
    }
    if hc.cgroupns_mode.is_empty() {
        let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        hc.cgroupns_mode = if !cfg.default_cgroupns_mode.is_empty() && (!hc.privileged || unified) {
            cfg.default_cgroupns_mode.clone()
        } else if unified {
            "private".into()
        } else {
            "host".into()
        };
    }
    if !hc.privileged {
        let list = |l: &[&str]| Some(l.iter().map(|p| p.to_string()).collect::<Vec<_>>());
        if hc.masked_paths.is_none() {
            hc.masked_paths = list(crate::sys::runtime::spec::MASKED_PATHS);
        }
        if hc.readonly_paths.is_none() {
            hc.readonly_paths = list(crate::sys::runtime::spec::READONLY_PATHS);
        }
    }
    let r = &mut hc.resources;
    if r.memory > 0 && r.memory_swap == 0 {
        r.memory_swap = r.memory * 2;
    }
    if r.memory_swappiness == Some(-1) {
        r.memory_swappiness = None;
    }
    if r.pids_limit.is_some_and(|n| n <= 0) {
        r.pids_limit = None;
    }
    if r.oom_kill_disable.is_none() {
        r.oom_kill_disable = Some(false);
    }
    Ok(())
}

/// Resource checks with dockerd's messages (create and update).
pub fn check_update(hc: &HostConfig, ncpu: usize) -> Result<(), ContainerError> {
    check_resources(hc, ncpu)
}

fn check_resources(hc: &HostConfig, ncpu: usize) -> Result<(), ContainerError> {
    let r = &hc.resources;
    let nano = r.nano_cpus;
    // As dockerd: only the upper bound (the 0.01 is in the message only).
    if nano < 0 || nano > ncpu as i64 * 1_000_000_000 {
        return Err(invalid(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if nano > 0 && (r.cpu_period > 0 || r.cpu_quota > 0) {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set",
        ));
    }
    let mem = r.memory;
    if mem < 0 || (mem > 0 && mem < 6 * 1024 * 1024) {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    let swap = r.memory_swap;
    if swap > 0 && mem > 0 && swap < mem {
        return Err(invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if swap > 0 && mem == 0 {
        return Err(invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if r.cpu_shares < 0 {
        return Err(invalid("invalid CPU shares: it must not be negative"));
    }
    if let Some(v) = r
        .memory_swappiness
        .filter(|v| *v != -1 && !(0..=100).contains(v))
    {
        return Err(invalid(format!(
            "Invalid value: {v}, valid memory swappiness range is 0-100"
        )));
    }
    if r.cpu_period != 0 && !(1000..=1_000_000).contains(&r.cpu_period) {
        return Err(invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if r.cpu_quota > 0 && r.cpu_quota < 1000 {
        return Err(invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    if r.blkio_weight > 0 && !(10..=1000).contains(&r.blkio_weight) {
        return Err(invalid("Range of blkio weight is from 10 to 1000"));
    }
    if !(-1000..=1000).contains(&hc.oom_score_adj) {
        return Err(invalid(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            hc.oom_score_adj
        )));
    }
    if hc.shm_size < 0 {
        return Err(invalid("SHM size can not be less than 0"));
    }
    let cpus = &r.cpuset_cpus;
    if !cpus.is_empty() {
        let ok = cpus.split(',').all(|part| {
            part.split('-')
                .all(|x| x.parse::<usize>().is_ok_and(|c| c < ncpu))
        });
        if !ok {
            return Err(invalid(format!(
                "Requested CPUs are not available - requested {cpus}, available: 0-{}",
                ncpu - 1
            )));
        }
    }
    for u in r.ulimits.iter().flatten() {
        if u.soft > u.hard {
            return Err(invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            )));
        }
    }
    Ok(())
}

impl ContainerService {
    /// `recursive_ro`: read-only mounts are read-only below their
    /// submounts too (API 1.44 and later).
    pub async fn create(
        &self,
        name: &str,
        body: &Value,
        recursive_ro: bool,
    ) -> Result<Created, ContainerError> {
        // dockerd decodes the Config fields into an embedded pointer that
        // stays nil when none is given (`null`, `{}`, only HostConfig or
        // keys that name no field).
        let has_config = body
            .as_object()
            .is_some_and(|o| o.keys().any(|k| crate::api::schema::is_config_field(k)));
        if !has_config {
            return Err(invalid(
                "Config cannot be empty in order to create a container",
            ));
        }
        let cfg = self.config.borrow().clone();
        let name = if name.is_empty() {
            let ix = self.containers.snapshot();
            let mut n = String::new();
            for retry in 0..10 {
                n = names::generate(&crate::ids::random_bytes(), retry);
                if !ix.names.contains_key(&n) {
                    break;
                }
            }
            n
        } else {
            let n = name.trim_start_matches('/');
            if !container::valid_name(n) {
                return Err(invalid(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
            n.to_string()
        };
        let req: CreateRequest = config::from_value_lenient("create request", body.clone());
        let mut c = req.config;
        let image_name = c.image.clone();
        if image_name.is_empty() {
            return Err(invalid("config.Image: an image is required"));
        }
        let img: Arc<ImageInfo> = self
            .images
            .images
            .snapshot()
            .resolve(&image_name)
            .cloned()
            .ok_or_else(|| {
                let shown = berth_actors::image::Reference::parse(&image_name)
                    .map(|r| r.with_default_tag().familiar())
                    .unwrap_or_else(|_| image_name.clone());
                ContainerError::NoSuchImage(shown)
            })?;
        let icfg: Config = config::from_value_lenient(
            "image config",
            img.config.config.clone().unwrap_or(Value::Null),
        );
        let mut hc = req.host_config.unwrap_or_default();
        check_resources(&hc, self.facts.ncpu.max(1))?;
        check_config(&c, &hc)?;
        super::etc_values::check_create(&c, &hc).map_err(invalid)?;
        let policy = hc.restart_policy.name.clone();
        let max = hc.restart_policy.maximum_retry_count;
        container::restart_policy_validate(&policy, max).map_err(invalid)?;
        if hc.auto_remove && !matches!(policy.as_str(), "" | "no") {
            return Err(invalid(
                "can't create 'AutoRemove' container with restart policy",
            ));
        }
        if policy.is_empty() {
            hc.restart_policy = RestartPolicy {
                name: "no".into(),
                maximum_retry_count: 0,
            };
        }
        let runtime = match hc.runtime.as_str() {
            "" => cfg.default_runtime.clone(),
            r => r.to_string(),
        };
        if !cfg.all_runtimes().contains_key(&runtime) {
            return Err(invalid(format!("Unknown runtime specified {runtime}")));
        }
        hc.runtime = runtime.clone();
        super::spec::validate(&hc).map_err(invalid)?;
        let lc = &mut hc.log_config;
        if lc.kind.is_empty() {
            lc.kind = cfg.log_driver.clone();
        }
        if lc.config.as_ref().is_none_or(|o| o.is_empty()) && lc.kind == cfg.log_driver {
            lc.config = Some(cfg.log_opts.clone());
        }
        let opts = lc.config.get_or_insert_with(Default::default);
        // dockerd's MergeDefaultLogConfig: the daemon's dual-logging cache
        // options apply to every container that does not set its own.
        for (k, v) in &cfg.log_opts {
            if k.starts_with("cache-") && !opts.contains_key(k) {
                opts.insert(k.clone(), v.clone());
            }
        }
        crate::logdrivers::validate(&lc.kind, opts).map_err(invalid)?;
        if hc.network_mode.is_empty() {
            hc.network_mode = "default".into();
        }
        apply_defaults(&mut hc, &cfg)?;
        // `--ipc`/`--pid container:X`: X must exist now and is kept by its
        // ID (dockerd's 400 and form); it must run when this one starts.
        for mode in [&mut hc.ipc_mode, &mut hc.pid_mode] {
            if let Some(other) = mode.strip_prefix("container:") {
                let o = self
                    .containers
                    .lookup(other)
                    .map_err(|_| invalid(format!("No such container: {other}")))?;
                *mode = format!("container:{}", o.id);
            }
        }
        let networks = self.attachments(&mut hc, req.networking_config.as_ref(), &c.mac_address)?;
        self.check_legacy_links(&hc)?;

        // Config: the request over the image's, as dockerd merges them: an
        // entrypoint given drops the image's command; `null` (not `[]`)
        // takes the image's entrypoint; `[""]` (`--entrypoint ''`) is none.
        let entry_given = c.entrypoint.as_ref().is_some_and(|e| !e.is_empty());
        let mut entrypoint = match &c.entrypoint {
            Some(e) if !e.is_empty() => e.clone(),
            Some(_) => Vec::new(),
            None => icfg.entrypoint.clone().unwrap_or_default(),
        };
        if entrypoint.len() == 1 && entrypoint[0].is_empty() {
            entrypoint.clear();
        }
        let cmd = {
            let given = c.cmd.clone().unwrap_or_default();
            if given.is_empty() && !entry_given {
                icfg.cmd.clone().unwrap_or_default()
            } else {
                given
            }
        };
        let mut argv: Vec<String> = entrypoint.iter().chain(&cmd).cloned().collect();
        if argv.is_empty() {
            return Err(invalid("No command specified"));
        }
        let path = argv.remove(0);
        let env = merge_env(icfg.env(), c.env());
        let workdir = if c.working_dir.is_empty() {
            icfg.working_dir.clone()
        } else {
            c.working_dir.clone()
        };
        let workdir = if workdir.is_empty() {
            String::new()
        } else {
            check_workdir(&workdir).map_err(|e| invalid(e.to_string()))?
        };
        let mut labels = icfg.labels();
        labels.extend(c.labels());
        let id = crate::ids::new_id();
        if c.hostname.is_empty() {
            // As dockerd: the host's name when the container shares the
            // host's network or UTS namespace, else its short ID.
            c.hostname = if hc.network_mode == "host" || hc.uts_mode == "host" {
                nix::unistd::gethostname()
                    .ok()
                    .and_then(|h| h.into_string().ok())
                    .unwrap_or_else(|| id[..12].to_string())
            } else {
                id[..12].to_string()
            };
        }
        c.env = Some(env);
        c.cmd = Some(cmd);
        c.entrypoint = (!entrypoint.is_empty()).then_some(entrypoint);
        c.working_dir = workdir;
        c.labels = Some(labels);
        if c.user.is_empty() {
            c.user = icfg.user.clone();
        }
        if c.stop_signal.is_empty() {
            c.stop_signal = icfg.stop_signal.clone();
        }
        if !c.stop_signal.is_empty() {
            container::parse_signal(&c.stop_signal)
                .map_err(|_| invalid(format!("Invalid signal: {}", c.stop_signal)))?;
        }
        // The image's VOLUMEs and the request's (`-v /path`) together.
        if let Some(iv) = &icfg.volumes {
            let v = c.volumes.get_or_insert_with(Default::default);
            for (k, x) in iv {
                v.entry(k.clone()).or_insert(*x);
            }
        }
        if c.exposed_ports.is_none() {
            c.exposed_ports = icfg.exposed_ports.clone();
        }
        if c.healthcheck.is_none() {
            c.healthcheck = icfg.healthcheck.clone();
        }
        if c.on_build.is_none() {
            c.on_build = icfg.on_build.clone();
        }

        // Storage and files, then the record through the supervisor.
        let top = img.record.layers.last().and_then(|chain| {
            self.images
                .images
                .snapshot()
                .layers
                .get(chain)
                .map(|l| l.cache_id.clone())
        });
        // Mounts: checked before anything is created.
        let mut mounts = crate::volumes::mounts::parse(&hc, &c, recursive_ro)?;
        // `--volumes-from ctr[:ro|:rw]`: its volumes and binds, at the same
        // destinations, unless this container mounts something there.
        for spec in hc.volumes_from() {
            let (name, mode) = match spec.rsplit_once(':') {
                Some((n, m)) if m == "ro" || m == "rw" => (n.to_string(), Some(m == "rw")),
                Some(_) => return Err(invalid(format!("invalid mode for volumes-from: {spec}"))),
                None => (spec.clone(), None),
            };
            let other = self.containers.lookup(&name)?;
            for m in other.mounts.iter().filter(|m| m.kind != "tmpfs") {
                if mounts.iter().any(|x| x.destination == m.destination) {
                    continue;
                }
                let mut m = m.clone();
                if let Some(rw) = mode {
                    m.rw = rw;
                }
                m.copy = false;
                if m.from.is_empty() {
                    m.from = other.id.clone();
                }
                mounts.push(m);
            }
        }
        // The volumes the mounts name: anonymous ones get their name now.
        let volumes = self.volume_claims(&mut mounts, &hc);
        let layer = id.clone();
        let memory = hc.resources.memory;
        let dir = self.host.container_dir(&id);
        let rec = ContainerRecord {
            version: RECORD_VERSION,
            id: id.clone(),
            name: format!("/{name}"),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            image: img.record.id.clone(),
            image_name,
            config: c,
            host_config: hc,
            path,
            args: argv,
            state: RunState::default(),
            restart_count: 0,
            has_been_started: false,
            driver: self.images.driver.name().to_string(),
            layer: layer.clone(),
            image_layer: top,
            log_path: dir.join(format!("{id}-json.log")).display().to_string(),
            runtime,
            hostname_path: dir.join("hostname").display().to_string(),
            hosts_path: dir.join("hosts").display().to_string(),
            resolv_conf_path: dir.join("resolv.conf").display().to_string(),
            networks,
            mounts,
            extra: BTreeMap::new(),
        };
        // The supervisor holds the name while the layer, files and volumes
        // are prepared; a failure is undone there, in one place.
        container::Containers::ask_supervisor_again(|reply| container::SupervisorMsg::Create {
            record: Box::new(rec.clone()),
            volumes: volumes.clone(),
            reply,
        })
        .await?;
        let snap = self.containers.lookup(&id)?;
        self.images
            .events
            .publish("container", "create", &id, snap.event_attrs());
        let mut warnings = Vec::new();
        if memory > 0 && !self.facts.swap_limit {
            warnings.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".into());
        }
        Ok(Created { id, warnings })
    }
}

impl ContainerService {
    /// The records of the volumes `mounts` name, in order (made if missing;
    /// an anonymous one is named here, and only those are `anonymous`: a
    /// failed create removes them, never a volume another container made).
    fn volume_claims(&self, mounts: &mut [MountPoint], hc: &HostConfig) -> Vec<VolumeRecord> {
        let opts = crate::volumes::mounts::volume_options(hc);
        let root = &self.host.volumes.host.root;
        let mut out = Vec::new();
        for m in mounts.iter_mut().filter(|m| m.kind == "volume") {
            let anonymous = m.name.is_empty();
            if anonymous {
                m.name = crate::ids::new_id();
            }
            let (labels, options, named) = opts.get(&m.destination).cloned().unwrap_or_default();
            // `--mount volume-driver=`, else `--volume-driver`, else
            // whichever driver made an existing volume (empty: the
            // supervisor takes the existing one, or `local`).
            let driver = if named.is_empty() {
                hc.volume_driver.clone()
            } else {
                named
            };
            let plugin = berth_actors::volume::driver::is_plugin(&driver);
            out.push(VolumeRecord {
                version: VOLUME_RECORD_VERSION,
                name: m.name.clone(),
                driver,
                created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                labels,
                options,
                anonymous,
                mountpoint: if plugin {
                    String::new()
                } else {
                    root.join(&m.name).join("_data").display().to_string()
                },
                scope: "local".into(),
                users: Default::default(),
                active: Default::default(),
            });
        }
        out
    }

    /// The networks a new container joins (`NetworkMode` and
    /// `NetworkingConfig.EndpointsConfig`), checked as dockerd does.
    /// Legacy links (left in `HostConfig.Links` for the default bridge):
    /// each child must exist now (dockerd registers them at create).
    fn check_legacy_links(&self, hc: &HostConfig) -> Result<(), ContainerError> {
        let links = hc.links.as_deref().unwrap_or_default();
        if links.is_empty() {
            return Ok(());
        }
        if hc.network_mode == "host" {
            return Err(invalid(
                "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
            ));
        }
        if hc.network_mode.starts_with("container:") {
            return Err(invalid(
                "conflicting options: container type network can't be used with links. This would result in undefined behavior",
            ));
        }
        for l in links {
            let (target, _) = berth_actors::container::parse_link(l).map_err(invalid)?;
            if self.containers.lookup(&target).is_err() {
                return Err(invalid(format!(
                    "could not get container for {target}: No such container: {target}"
                )));
            }
        }
        Ok(())
    }

    fn attachments(
        &self,
        hc: &mut HostConfig,
        nc: Option<&NetworkingConfig>,
        container_mac: &str,
    ) -> Result<BTreeMap<String, NetworkAttachment>, ContainerError> {
        let mode = hc.network_mode.clone();
        let mut out = BTreeMap::new();
        if mode == "host" || mode == "none" {
            return Ok(out);
        }
        if let Some(other) = mode.strip_prefix("container:") {
            let o = self.containers.lookup(other)?;
            hc.network_mode = format!("container:{}", o.id);
            return Ok(out);
        }
        let primary = if mode == "default" {
            "bridge".to_string()
        } else {
            mode.clone()
        };
        let nets = self.host.network.networks.snapshot();
        let eps = nc
            .and_then(|n| n.endpoints_config.clone())
            .unwrap_or_default();
        let mut names: Vec<String> = vec![primary.clone()];
        names.extend(
            eps.keys()
                .filter(|k| **k != primary && *k != "default")
                .cloned(),
        );
        for name in names {
            let Ok(net) = nets.lookup(&name) else {
                // As dockerd: a network that does not exist is kept by name
                // and refused at start (404 "network X not found"), so the
                // CLI reports it instead of pulling the image.
                let ep = eps.get(&name).cloned().flatten().unwrap_or_default();
                let ipam = ep.ipam_config.unwrap_or_default();
                out.insert(
                    name.clone(),
                    NetworkAttachment {
                        network_id: String::new(),
                        aliases: ep.aliases.unwrap_or_default(),
                        ip: ipam.ipv4_address,
                        ip6: ipam.ipv6_address,
                        links: ep.links.unwrap_or_default(),
                        mac: String::new(),
                    },
                );
                continue;
            };
            let ep = eps
                .get(&name)
                .or_else(|| eps.get(&net.id))
                .or_else(|| {
                    if name == primary {
                        eps.get("default")
                    } else {
                        None
                    }
                })
                .cloned()
                .flatten()
                .unwrap_or_default();
            let aliases = ep.aliases.unwrap_or_default();
            let ipam = ep.ipam_config.unwrap_or_default();
            let (ip, ip6) = (ipam.ipv4_address, ipam.ipv6_address);
            if !ip6.is_empty() && ip6.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(invalid(format!("invalid IPv6 address: {ip6}")));
            }
            if !net.connectable() {
                return Err(invalid(format!(
                    "container cannot be connected to network {} (driver {})",
                    net.name, net.driver
                )));
            }
            if !net.user_defined() {
                if !aliases.is_empty() {
                    return Err(invalid(
                        "network-scoped aliases are only supported for user-defined networks",
                    ));
                }
                if !ip.is_empty() || !ip6.is_empty() {
                    return Err(invalid(
                        "user specified IP address is supported on user defined networks only",
                    ));
                }
            }
            if !ip.is_empty() && ip.parse::<std::net::Ipv4Addr>().is_err() {
                return Err(invalid(format!("invalid IPv4 address: {ip}")));
            }
            // As dockerd: on a user-defined network, links are the
            // endpoint's (`EndpointSettings.Links`, where the CLI puts
            // `--link`); `HostConfig.Links` there are dropped (dockerd
            // registers no legacy link for such a container and inspect
            // shows none). On the default bridge they are legacy links.
            let mut links = ep.links.unwrap_or_default();
            if net.user_defined() && name == primary {
                hc.links = None;
            }
            for l in &links {
                berth_actors::container::parse_link(l).map_err(invalid)?;
            }
            // The endpoint's MAC, or the create's `Config.MacAddress` for
            // the first network (API before 1.44).
            let mac = match (ep.mac_address.as_str(), name == primary) {
                ("", true) => container_mac,
                (m, _) => m,
            };
            let mac = if mac.is_empty() {
                String::new()
            } else {
                berth_actors::container::parse_mac(mac).map_err(invalid)?
            };
            if !net.user_defined() && !links.is_empty() {
                // EndpointSettings.Links on the default bridge: legacy.
                hc.links.get_or_insert_with(Vec::new).append(&mut links);
            }
            out.insert(
                net.name.clone(),
                NetworkAttachment {
                    network_id: net.id.clone(),
                    aliases,
                    ip,
                    ip6,
                    links,
                    mac,
                },
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_resources(hc: Value, ncpu: usize) -> Result<(), ContainerError> {
        super::check_resources(&serde_json::from_value(hc).unwrap(), ncpu)
    }

    #[test]
    fn env_merge_overrides_by_name() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            merge_env(&s(&["PATH=/bin", "A=1", "V=img"]), &s(&["A=2", "B=3", "V"])),
            s(&["A=2", "B=3", "V", "PATH=/bin"])
        );
    }

    #[test]
    fn resource_checks() {
        assert!(check_resources(json!({"NanoCpus": -1000000000i64}), 2)
            .unwrap_err()
            .to_string()
            .contains("Range of CPUs"));
        assert!(check_resources(json!({"Memory": 1024}), 2).is_err());
        assert!(check_resources(json!({"Memory": 33554432, "MemorySwap": 1000}), 2).is_err());
        assert!(check_resources(json!({"CpusetCpus": "0-7"}), 2).is_err());
        assert!(check_resources(
            json!({"Memory": 33554432, "NanoCpus": 1500000000i64, "CpusetCpus": "0,1"}),
            2
        )
        .is_ok());
    }
}
