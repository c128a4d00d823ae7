//! create: from the API body to a stored record, with dockerd's checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_actors::container::{
    self, ContainerError, ContainerRecord, MountPoint, NetworkAttachment, RunState, RECORD_VERSION,
};
use berth_actors::image::ImageInfo;
use berth_actors::volume::{VolumeRecord, VOLUME_RECORD_VERSION};
use serde_json::{json, Map, Value};

use super::names;
use super::spec::strings;
use super::ContainerService;
use crate::sys::runtime::spec::check_workdir;

pub struct Created {
    pub id: String,
    pub warnings: Vec<String>,
}

fn invalid(m: impl Into<String>) -> ContainerError {
    ContainerError::Invalid(m.into())
}

/// Image env first, the container's variables override by name.
fn merge_env(image: &[String], container: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<String> = image.to_vec();
    for e in container {
        let k = key(e);
        if let Some(pos) = out.iter().position(|x| key(x) == k) {
            out[pos] = e.clone();
        } else {
            out.push(e.clone());
        }
    }
    out
}

/// Resource checks with dockerd's messages (create and update).
pub fn check_update(hc: &Value, ncpu: usize) -> Result<(), ContainerError> {
    check_resources(hc, ncpu)
}

fn check_resources(hc: &Value, ncpu: usize) -> Result<(), ContainerError> {
    let n = |k: &str| hc[k].as_i64().unwrap_or(0);
    let nano = n("NanoCpus");
    if nano != 0 && (nano < 10_000_000 || nano > ncpu as i64 * 1_000_000_000) {
        return Err(invalid(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if nano > 0 && (n("CpuPeriod") > 0 || n("CpuQuota") > 0) {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set",
        ));
    }
    let mem = n("Memory");
    if mem < 0 || (mem > 0 && mem < 6 * 1024 * 1024) {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    let swap = n("MemorySwap");
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
    if n("CpuShares") < 0 {
        return Err(invalid("invalid CPU shares: it must not be negative"));
    }
    if n("ShmSize") < 0 {
        return Err(invalid("SHM size can not be less than 0"));
    }
    if let Some(cpus) = hc["CpusetCpus"].as_str().filter(|s| !s.is_empty()) {
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
    if let Some(us) = hc["Ulimits"].as_array() {
        for u in us {
            let (s, h) = (
                u["Soft"].as_i64().unwrap_or(0),
                u["Hard"].as_i64().unwrap_or(0),
            );
            if s > h {
                return Err(invalid(format!(
                    "ulimit soft limit must be less than or equal to hard limit: {s} > {h}"
                )));
            }
        }
    }
    Ok(())
}

impl ContainerService {
    pub async fn create(&self, name: &str, body: &Value) -> Result<Created, ContainerError> {
        if !body.is_object() {
            return Err(invalid(
                "config cannot be empty in order to create a container",
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
        let image_name = body["Image"].as_str().unwrap_or("").to_string();
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
        let icfg = img.config.config.clone().unwrap_or(Value::Null);
        let mut hc = body["HostConfig"].clone();
        if !hc.is_object() {
            hc = json!({});
        }
        check_resources(&hc, self.facts.ncpu.max(1))?;
        super::etc_values::check_create(body, &hc).map_err(invalid)?;
        let policy = hc["RestartPolicy"]["Name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let max = hc["RestartPolicy"]["MaximumRetryCount"]
            .as_i64()
            .unwrap_or(0);
        container::restart_policy_validate(&policy, max).map_err(invalid)?;
        if hc["AutoRemove"].as_bool().unwrap_or(false) && !matches!(policy.as_str(), "" | "no") {
            return Err(invalid(
                "can't create 'AutoRemove' container with restart policy",
            ));
        }
        if policy.is_empty() {
            hc["RestartPolicy"] = json!({"Name": "no", "MaximumRetryCount": 0});
        }
        let runtime = hc["Runtime"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or(&cfg.default_runtime)
            .to_string();
        if !cfg.all_runtimes().contains_key(&runtime) {
            return Err(invalid(format!("Unknown runtime specified {runtime}")));
        }
        hc["Runtime"] = json!(runtime);
        super::spec::validate(&hc).map_err(invalid)?;
        if hc["LogConfig"]["Type"].as_str().unwrap_or("").is_empty() {
            hc["LogConfig"]["Type"] = json!(cfg.log_driver);
        }
        let opts_empty = hc["LogConfig"]["Config"]
            .as_object()
            .is_none_or(|o| o.is_empty());
        if opts_empty && hc["LogConfig"]["Type"] == json!(cfg.log_driver) {
            hc["LogConfig"]["Config"] = json!(cfg.log_opts);
        }
        if let Some(o) = hc["LogConfig"]["Config"].as_object() {
            check_log_opts(o)?;
        } else {
            hc["LogConfig"]["Config"] = json!({});
        }
        match hc["LogConfig"]["Type"].as_str().unwrap_or("") {
            "json-file" | "none" => {}
            other => {
                return Err(invalid(format!(
                    "failed to create logger: logger: no log driver named '{other}' is registered"
                )))
            }
        }
        if hc["NetworkMode"].as_str().unwrap_or("").is_empty() {
            hc["NetworkMode"] = json!("default");
        }
        let networks = self.attachments(&mut hc, &body["NetworkingConfig"])?;

        // Config: the request over the image's.
        let mut c: Map<String, Value> = body.as_object().cloned().unwrap_or_default();
        c.remove("HostConfig");
        c.remove("NetworkingConfig");
        let entry_given = !body["Entrypoint"].is_null()
            && body["Entrypoint"].as_array().is_none_or(|a| !a.is_empty())
            || body["Entrypoint"].as_str().is_some();
        let entrypoint = if body["Entrypoint"].is_string() {
            vec![body["Entrypoint"].as_str().unwrap_or("").to_string()]
        } else if entry_given {
            strings(&body["Entrypoint"])
        } else {
            strings(&icfg["Entrypoint"])
        };
        let cmd = if body["Cmd"].is_string() {
            vec![body["Cmd"].as_str().unwrap_or("").to_string()]
        } else {
            let given = strings(&body["Cmd"]);
            if given.is_empty() && !entry_given {
                strings(&icfg["Cmd"])
            } else {
                given
            }
        };
        let mut argv: Vec<String> = entrypoint.iter().chain(&cmd).cloned().collect();
        if argv.is_empty() {
            return Err(invalid("No command specified"));
        }
        let path = argv.remove(0);
        let env = merge_env(&strings(&icfg["Env"]), &strings(&body["Env"]));
        let workdir = match body["WorkingDir"].as_str().filter(|s| !s.is_empty()) {
            Some(w) => w.to_string(),
            None => icfg["WorkingDir"].as_str().unwrap_or("").to_string(),
        };
        let workdir = if workdir.is_empty() {
            String::new()
        } else {
            check_workdir(&workdir).map_err(|e| invalid(e.to_string()))?
        };
        let mut labels: BTreeMap<String, Value> = icfg["Labels"]
            .as_object()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        if let Some(l) = body["Labels"].as_object() {
            labels.extend(l.clone());
        }
        let id = crate::ids::new_id();
        let hostname = body["Hostname"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or(&id[..12])
            .to_string();
        c.insert("Hostname".into(), json!(hostname));
        c.insert("Env".into(), json!(env));
        c.insert("Cmd".into(), json!(cmd));
        c.insert(
            "Entrypoint".into(),
            if entrypoint.is_empty() {
                Value::Null
            } else {
                json!(entrypoint)
            },
        );
        c.insert("WorkingDir".into(), json!(workdir));
        c.insert("Labels".into(), json!(labels));
        c.insert("Image".into(), json!(image_name));
        if c.get("User")
            .and_then(|u| u.as_str())
            .unwrap_or("")
            .is_empty()
        {
            c.insert(
                "User".into(),
                icfg["User"]
                    .clone()
                    .as_str()
                    .map(Value::from)
                    .unwrap_or(json!("")),
            );
        }
        if c.get("StopSignal")
            .and_then(|u| u.as_str())
            .unwrap_or("")
            .is_empty()
        {
            if let Some(s) = icfg["StopSignal"].as_str() {
                c.insert("StopSignal".into(), json!(s));
            }
        }
        if let Some(s) = c
            .get("StopSignal")
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty())
        {
            container::parse_signal(s).map_err(|_| invalid(format!("Invalid signal: {s}")))?;
        }
        // The image's VOLUMEs and the request's (`-v /path`) together.
        if let Some(iv) = icfg["Volumes"].as_object() {
            let mut v = c
                .get("Volumes")
                .and_then(|v| v.as_object())
                .cloned()
                .unwrap_or_default();
            for (k, x) in iv {
                v.entry(k.clone()).or_insert(x.clone());
            }
            c.insert("Volumes".into(), Value::Object(v));
        }
        for k in ["ExposedPorts", "Volumes", "Healthcheck", "OnBuild"] {
            if c.get(k).is_none_or(|v| v.is_null()) && !icfg[k].is_null() {
                c.insert(k.into(), icfg[k].clone());
            }
        }
        for k in [
            "AttachStdin",
            "AttachStdout",
            "AttachStderr",
            "Tty",
            "OpenStdin",
            "StdinOnce",
        ] {
            c.entry(k).or_insert(json!(false));
        }
        c.entry("Domainname").or_insert(json!(""));

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
        let mut mounts = crate::volumes::mounts::parse(&hc, &Value::Object(c.clone()))?;
        // `--volumes-from ctr[:ro|:rw]`: its volumes and binds, at the same
        // destinations, unless this container mounts something there.
        for spec in super::spec::strings(&hc["VolumesFrom"]) {
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
        let dir = self.host.container_dir(&id);
        let rec = ContainerRecord {
            version: RECORD_VERSION,
            id: id.clone(),
            name: format!("/{name}"),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            image: img.record.id.clone(),
            image_name,
            config: Value::Object(c),
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
        container::Containers::ask_supervisor(|reply| container::SupervisorMsg::Create {
            record: Box::new(rec),
            volumes,
            reply,
        })
        .await?;
        let snap = self.containers.lookup(&id)?;
        self.images
            .events
            .publish("container", "create", &id, snap.event_attrs());
        let mut warnings = Vec::new();
        if hc_num(&body["HostConfig"], "Memory") > 0 && !self.facts.swap_limit {
            warnings.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".into());
        }
        Ok(Created { id, warnings })
    }
}

/// json-file's options, as dockerd validates them.
fn check_log_opts(o: &Map<String, Value>) -> Result<(), ContainerError> {
    for (k, v) in o {
        let v = v.as_str().unwrap_or("");
        match k.as_str() {
            "max-size" => {
                crate::config::units::parse_size(v).ok_or_else(|| {
                    invalid(format!("failed to create logger: invalid max-size: {v}"))
                })?;
            }
            "max-file" => {
                if v.parse::<u32>().map(|n| n < 1).unwrap_or(true) {
                    return Err(invalid(format!(
                        "failed to create logger: invalid value for max-file: {v}"
                    )));
                }
            }
            "compress" => {
                if v != "true" && v != "false" {
                    return Err(invalid(format!(
                        "failed to create logger: invalid value for compress: {v}"
                    )));
                }
            }
            "labels" | "labels-regex" | "env" | "env-regex" | "tag" | "mode"
            | "max-buffer-size" => {}
            _ => {
                return Err(invalid(format!(
                    "failed to create logger: unknown log opt '{k}' for json-file log driver"
                )))
            }
        }
    }
    Ok(())
}

fn hc_num(hc: &Value, k: &str) -> i64 {
    hc[k].as_i64().unwrap_or(0)
}

impl ContainerService {
    /// The records of the volumes `mounts` name, in order (made if missing;
    /// an anonymous one is named here, and only those are `anonymous`: a
    /// failed create removes them, never a volume another container made).
    fn volume_claims(&self, mounts: &mut [MountPoint], hc: &Value) -> Vec<VolumeRecord> {
        let opts = crate::volumes::mounts::volume_options(hc);
        let root = &self.host.volumes.host.root;
        let mut out = Vec::new();
        for m in mounts.iter_mut().filter(|m| m.kind == "volume") {
            let anonymous = m.name.is_empty();
            if anonymous {
                m.name = crate::ids::new_id();
            }
            let (labels, options) = opts.get(&m.destination).cloned().unwrap_or_default();
            out.push(VolumeRecord {
                version: VOLUME_RECORD_VERSION,
                name: m.name.clone(),
                driver: "local".into(),
                created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                labels,
                options,
                anonymous,
                mountpoint: root.join(&m.name).join("_data").display().to_string(),
                users: Default::default(),
                active: Default::default(),
            });
        }
        out
    }

    /// The networks a new container joins (`NetworkMode` and
    /// `NetworkingConfig.EndpointsConfig`), checked as dockerd does.
    fn attachments(
        &self,
        hc: &mut Value,
        nc: &Value,
    ) -> Result<BTreeMap<String, NetworkAttachment>, ContainerError> {
        let mode = hc["NetworkMode"].as_str().unwrap_or("default").to_string();
        let mut out = BTreeMap::new();
        if mode == "host" || mode == "none" {
            return Ok(out);
        }
        if let Some(other) = mode.strip_prefix("container:") {
            let o = self.containers.lookup(other)?;
            hc["NetworkMode"] = json!(format!("container:{}", o.id));
            return Ok(out);
        }
        let primary = if mode == "default" {
            "bridge".to_string()
        } else {
            mode.clone()
        };
        let nets = self.host.network.networks.snapshot();
        let eps = nc["EndpointsConfig"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut names: Vec<String> = vec![primary.clone()];
        names.extend(
            eps.keys()
                .filter(|k| **k != primary && *k != "default")
                .cloned(),
        );
        for name in names {
            let net = nets.lookup(&name).map_err(|_| {
                ContainerError::NetworkNotFound(format!("network {name} not found"))
            })?;
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
                .unwrap_or(Value::Null);
            let aliases = strings(&ep["Aliases"]);
            let ip = ep["IPAMConfig"]["IPv4Address"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let ip6 = ep["IPAMConfig"]["IPv6Address"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if !ip6.is_empty() && ip6.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(invalid(format!("invalid IPv6 address: {ip6}")));
            }
            if !net.is_bridge() {
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
            out.insert(
                net.name.clone(),
                NetworkAttachment {
                    network_id: net.id.clone(),
                    aliases,
                    ip,
                    ip6,
                },
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_merge_overrides_by_name() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            merge_env(&s(&["PATH=/bin", "A=1"]), &s(&["A=2", "B=3"])),
            s(&["PATH=/bin", "A=2", "B=3"])
        );
    }

    #[test]
    fn resource_checks() {
        assert!(check_resources(&json!({"NanoCpus": -1000000000i64}), 2)
            .unwrap_err()
            .to_string()
            .contains("Range of CPUs"));
        assert!(check_resources(&json!({"Memory": 1024}), 2).is_err());
        assert!(check_resources(&json!({"Memory": 33554432, "MemorySwap": 1000}), 2).is_err());
        assert!(check_resources(&json!({"CpusetCpus": "0-7"}), 2).is_err());
        assert!(check_resources(
            &json!({"Memory": 33554432, "NanoCpus": 1500000000i64, "CpusetCpus": "0,1"}),
            2
        )
        .is_ok());
    }
}
