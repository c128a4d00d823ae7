//! System endpoints: `/_ping`, `/version`, `/info`, `/system/df`.

use std::sync::atomic::Ordering;

use hyper::header::HeaderValue;
use hyper::{Method, Response};
use serde_json::{json, Value};

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::router::{ok_json, HandlerFuture, Req};
use crate::api::version::{MAX_API, MIN_API};
use crate::api::ApiContext;

pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn ping(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let text = if r.method == Method::HEAD { "" } else { "OK" };
        let mut resp = Response::new(body::full(text));
        let h = resp.headers_mut();
        h.insert(
            "Content-Type",
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        h.insert(
            "Cache-Control",
            HeaderValue::from_static("no-cache, no-store, must-revalidate"),
        );
        h.insert("Pragma", HeaderValue::from_static("no-cache"));
        h.insert("Swarm", HeaderValue::from_static("inactive"));
        h.insert("Content-Length", HeaderValue::from(text.len()));
        Ok(resp)
    })
}

/// Go's names for the architecture (`docker version` shows GOARCH).
fn goarch(machine: &str) -> &str {
    match machine {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "i686" | "i386" => "386",
        "armv7l" => "arm",
        other => other,
    }
}

pub fn version(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let ctx = &r.ctx;
        let cfg = ctx.config();
        let arch = goarch(&ctx.host.architecture);
        let mut components = vec![json!({
            "Name": "Engine",
            "Version": ENGINE_VERSION,
            "Details": {
                "ApiVersion": MAX_API.to_string(),
                "Arch": arch,
                "BuildTime": env!("BERTH_BUILD_TIME"),
                "Experimental": cfg.experimental.to_string(),
                "GitCommit": env!("BERTH_GIT_COMMIT"),
                "GoVersion": env!("BERTH_RUSTC"),
                "KernelVersion": ctx.host.kernel_version,
                "MinAPIVersion": MIN_API.to_string(),
                "Os": "linux",
            }
        })];
        if let Some(v) = &ctx.host.runc {
            components.push(
                json!({"Name": "runc", "Version": v.version, "Details": {"GitCommit": v.commit}}),
            );
        }
        if let Some(v) = &ctx.host.init {
            components.push(json!({"Name": "docker-init", "Version": v.version, "Details": {"GitCommit": v.commit}}));
        }
        ok_json(&json!({
            "Platform": {"Name": "Berth"},
            "Components": components,
            "Version": ENGINE_VERSION,
            "ApiVersion": MAX_API.to_string(),
            "MinAPIVersion": MIN_API.to_string(),
            "GitCommit": env!("BERTH_GIT_COMMIT"),
            "GoVersion": env!("BERTH_RUSTC"),
            "Os": "linux",
            "Arch": arch,
            "KernelVersion": ctx.host.kernel_version,
            "Experimental": cfg.experimental,
            "BuildTime": env!("BERTH_BUILD_TIME"),
        }))
    })
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn registry_config(ctx: &ApiContext) -> Value {
    let cfg = ctx.config();
    let mut cidrs = vec!["::1/128".to_string(), "127.0.0.0/8".to_string()];
    let mut index = serde_json::Map::new();
    index.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": cfg.registry_mirrors, "Secure": true, "Official": true}),
    );
    for r in &cfg.insecure_registries {
        if r.parse::<ipnet::IpNet>().is_ok() {
            if !cidrs.contains(r) {
                cidrs.push(r.clone());
            }
        } else {
            index.insert(
                r.clone(),
                json!({"Name": r, "Mirrors": [], "Secure": false, "Official": false}),
            );
        }
    }
    let (an_cidrs, an_hosts): (Vec<&String>, Vec<&String>) = cfg
        .allow_nondistributable_artifacts
        .iter()
        .partition(|s| s.parse::<ipnet::IpNet>().is_ok());
    json!({
        "AllowNondistributableArtifactsCIDRs": an_cidrs,
        "AllowNondistributableArtifactsHostnames": an_hosts,
        "InsecureRegistryCIDRs": cidrs,
        "IndexConfigs": index,
        "Mirrors": cfg.registry_mirrors,
    })
}

pub fn info(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let ctx = &r.ctx;
        let cfg = ctx.config();
        let snap = ctx.view.borrow().clone();
        let h = &ctx.host;
        let cluster = ctx.cluster.as_ref().map(|c| c.borrow().clone());
        let mut warnings = ctx.warnings.clone();
        // The live nodes, as dockerd's SystemStatus once listed a cluster's.
        let mut system_status: Option<Vec<[String; 2]>> = None;
        if let Some(c) = &cluster {
            if !c.connected {
                warnings.push(format!(
                    "WARNING: the cluster store {} is unreachable: {}",
                    c.store, c.last_error
                ));
            }
            let mut rows = vec![
                ["Cluster Store".to_string(), c.store.clone()],
                ["Cluster Advertise".to_string(), c.advertise.clone()],
                ["Cluster Nodes".to_string(), c.nodes.len().to_string()],
            ];
            rows.extend(
                c.nodes
                    .values()
                    .map(|n| [format!(" {}", n.id), n.addr.clone()]),
            );
            system_status = Some(rows);
        }
        // Plugins berthd has activated, after the built-in drivers.
        let plugins = berth_actors::plugin::list().await;
        let implementing = |i: &str| -> Vec<String> {
            plugins
                .iter()
                .filter(|p| p.implements.iter().any(|x| x == i))
                .map(|p| p.name.clone())
                .collect()
        };
        let mut volume_drivers = vec!["local".to_string()];
        volume_drivers.extend(implementing("VolumeDriver"));
        let mut network_drivers: Vec<String> =
            ["bridge", "host", "null"].map(String::from).to_vec();
        if cluster.is_some() {
            network_drivers.push("overlay".into());
        }
        network_drivers.extend(implementing("NetworkDriver"));
        let runtimes: serde_json::Map<String, Value> = cfg
            .all_runtimes()
            .into_iter()
            .map(|(name, rt)| {
                let mut v = json!({"path": rt.path});
                if !rt.runtime_args.is_empty() {
                    v["runtimeArgs"] = json!(rt.runtime_args);
                }
                (name, v)
            })
            .collect();
        let mut security = vec![format!(
            "name=seccomp,profile={}",
            match cfg.seccomp_profile.as_str() {
                "" | "builtin" => "builtin",
                other => other,
            }
        )];
        if cfg.default_cgroupns_mode == "private"
            || (cfg.default_cgroupns_mode.is_empty() && h.cgroup_version == "2")
        {
            security.push("name=cgroupns".into());
        }
        if cfg.no_new_privileges {
            security.push("name=no-new-privileges".into());
        }
        let driver_status = ctx.images.driver.status();
        let env = |k: &str| {
            std::env::var(k)
                .or_else(|_| std::env::var(k.to_ascii_lowercase()))
                .unwrap_or_default()
        };
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        ok_json(&json!({
            "ID": ctx.engine_id,
            "Containers": snap.containers(),
            "ContainersRunning": snap.containers_running,
            "ContainersPaused": snap.containers_paused,
            "ContainersStopped": snap.containers_stopped,
            "Images": snap.images,
            "Driver": ctx.images.driver.name(),
            "DriverStatus": driver_status,
            "DockerRootDir": cfg.data_root,
            "Plugins": {
                "Volume": volume_drivers,
                "Network": network_drivers,
                "Authorization": (!cfg.authorization_plugins.is_empty())
                    .then(|| cfg.authorization_plugins.clone()),
                "Log": crate::logdrivers::DRIVERS,
            },
            "MemoryLimit": h.memory_limit,
            "SwapLimit": h.swap_limit,
            "CpuCfsPeriod": h.cpu_cfs,
            "CpuCfsQuota": h.cpu_cfs,
            "CPUShares": h.cpu_shares,
            "CPUSet": h.cpuset,
            "PidsLimit": h.pids_limit,
            "OomKillDisable": h.oom_kill_disable,
            "IPv4Forwarding": h.ipv4_forwarding,
            "Debug": cfg.debug,
            "NFd": open_fds(),
            "NGoroutines": tasks,
            "SystemTime": chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "LoggingDriver": cfg.log_driver,
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": h.cgroup_version,
            "NEventsListener": ctx.event_listeners.load(Ordering::Relaxed),
            "KernelVersion": h.kernel_version,
            "OperatingSystem": h.operating_system,
            "OSVersion": h.os_version,
            "OSType": "linux",
            "Architecture": h.architecture,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": registry_config(ctx),
            "NCPU": h.ncpu,
            "MemTotal": h.mem_total,
            "GenericResources": null,
            "HttpProxy": env("HTTP_PROXY"),
            "HttpsProxy": env("HTTPS_PROXY"),
            "NoProxy": env("NO_PROXY"),
            "Name": h.hostname,
            "Labels": cfg.labels,
            "ExperimentalBuild": cfg.experimental,
            "ServerVersion": ENGINE_VERSION,
            "Runtimes": runtimes,
            "DefaultRuntime": cfg.default_runtime,
            "Swarm": {
                "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                "ControlAvailable": false, "Error": "", "RemoteManagers": null,
            },
            "LiveRestoreEnabled": cfg.live_restore,
            "Isolation": "",
            "InitBinary": "docker-init",
            "ContainerdCommit": {"ID": ""},
            "RuncCommit": {"ID": h.runc.as_ref().map(|v| v.commit.clone()).unwrap_or_default()},
            "InitCommit": {"ID": h.init.as_ref().map(|v| v.commit.clone()).unwrap_or_default()},
            "SecurityOptions": security,
            "CDISpecDirs": [],
            "SystemStatus": system_status,
            "ClusterStore": cluster.as_ref().map(|c| c.store.clone()).unwrap_or_default(),
            "ClusterAdvertise": cluster.as_ref().map(|c| c.advertise.clone()).unwrap_or_default(),
            "Warnings": warnings,
        }))
    })
}

const DF_TYPES: &[&str] = &["container", "image", "volume", "build-cache"];

/// `(count in use, total size, size of those not in use)` of `(size, in
/// use)` items: a usage entry of `system df` from API 1.52.
fn tally(items: impl Iterator<Item = (u64, bool)>) -> (u64, u64, u64) {
    items.fold((0, 0, 0), |(active, size, free), (s, used)| {
        if used {
            (active + 1, size + s, free)
        } else {
            (active, size + s, free + s)
        }
    })
}

pub fn df(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let types = r.query.all("type");
        for t in &types {
            if !DF_TYPES.contains(t) {
                return Err(ApiError::invalid(format!("invalid type: {t}")));
            }
        }
        let want = |t: &str| types.is_empty() || types.contains(&t);
        let snap = r.ctx.view.borrow().clone();
        let verbose = r.query.bool("verbose");
        // API 1.52 added per-type usage and dropped the lists (kept in 1.52
        // unless verbose); from 1.53 only the usage, with `Items` if verbose.
        let usage = r.version >= crate::api::version::ApiVersion(1, 52);
        let legacy = r.version < crate::api::version::ApiVersion(1, 52)
            || (r.version < crate::api::version::ApiVersion(1, 53) && !verbose);
        let mut out = serde_json::Map::new();
        let summary = |active: u64, total: u64, size: u64, reclaimable: u64, items: &[Value]| {
            let mut u = json!({
                "ActiveCount": active, "TotalCount": total,
                "TotalSize": size, "Reclaimable": reclaimable,
            });
            if verbose && !items.is_empty() {
                u["Items"] = json!(items);
            }
            u
        };
        if want("image") {
            let index = r.ctx.images.images.snapshot();
            let cs = r.ctx.containers.containers.snapshot();
            let used_by = |id: &str| cs.by_id.values().filter(|c| c.image == id).count() as u64;
            // A layer used by more than one image is shared.
            let mut users: std::collections::HashMap<&String, u32> = Default::default();
            for i in index.images.values() {
                for c in &i.record.layers {
                    *users.entry(c).or_default() += 1;
                }
            }
            let images: Vec<_> = index
                .images
                .values()
                .map(|i| {
                    let shared: u64 = i
                        .record
                        .layers
                        .iter()
                        .filter(|c| users.get(c).copied().unwrap_or(0) > 1)
                        .filter_map(|c| index.layers.get(c))
                        .map(|l| l.size)
                        .sum();
                    crate::api::render::image_summary(
                        i,
                        false,
                        Some((shared, used_by(&i.record.id))),
                    )
                })
                .collect();
            if legacy {
                out.insert("LayersSize".into(), json!(snap.layers_size));
                out.insert("Images".into(), json!(images));
            }
            if usage {
                // Reclaimable: the layers no image in use holds.
                let active: Vec<_> = index
                    .images
                    .values()
                    .filter(|i| used_by(&i.record.id) > 0)
                    .collect();
                let held: std::collections::HashSet<&String> =
                    active.iter().flat_map(|i| i.record.layers.iter()).collect();
                let held_size: u64 = held
                    .iter()
                    .filter_map(|c| index.layers.get(*c))
                    .map(|l| l.size)
                    .sum();
                out.insert(
                    "ImageUsage".into(),
                    summary(
                        active.len() as u64,
                        index.images.len() as u64,
                        snap.layers_size,
                        snap.layers_size.saturating_sub(held_size),
                        &images,
                    ),
                );
            }
        }
        if want("container") {
            let cs = r.ctx.containers.containers.snapshot();
            let list: Vec<_> = cs
                .by_id
                .values()
                .map(|c| crate::api::render::container_summary(&r, c, true))
                .collect();
            if usage {
                let (active, size, reclaimable) =
                    tally(cs.by_id.values().zip(&list).map(|(c, j)| {
                        (j["SizeRw"].as_u64().unwrap_or(0), c.state.status.is_live())
                    }));
                out.insert(
                    "ContainerUsage".into(),
                    summary(active, list.len() as u64, size, reclaimable, &list),
                );
            }
            if legacy {
                out.insert("Containers".into(), json!(list));
            }
        }
        if want("volume") {
            let vs = r.ctx.volumes.volumes.snapshot();
            let list: Vec<_> = vs
                .by_name
                .values()
                .map(|v| {
                    let mut j = crate::api::render::volume_json(v);
                    let size = r.ctx.volumes.size(v);
                    j["UsageData"] = json!({"Size": size, "RefCount": v.users.len()});
                    j
                })
                .collect();
            if usage {
                let (active, size, reclaimable) = tally(list.iter().map(|j| {
                    let u = &j["UsageData"];
                    (
                        u["Size"].as_u64().unwrap_or(0),
                        u["RefCount"].as_u64().unwrap_or(0) > 0,
                    )
                }));
                out.insert(
                    "VolumeUsage".into(),
                    summary(active, list.len() as u64, size, reclaimable, &list),
                );
            }
            if legacy {
                out.insert("Volumes".into(), json!(list));
            }
        }
        if want("build-cache") {
            let records = crate::build::cache::records(
                &r.ctx.images.images.snapshot(),
                &crate::api::shared::used_images(&r),
            );
            let list: Vec<Value> = records.iter().map(|c| c.json()).collect();
            if usage {
                let (active, size, reclaimable) = tally(records.iter().map(|c| (c.size, c.shared)));
                out.insert(
                    "BuildCacheUsage".into(),
                    summary(active, list.len() as u64, size, reclaimable, &list),
                );
            }
            if legacy {
                out.insert("BuildCache".into(), json!(list));
            }
        }
        ok_json(&out)
    })
}
