//! A container's `Config`, `HostConfig` and `NetworkingConfig`, typed as
//! dockerd's Go structs are (`container.Config`, `container.HostConfig`
//! with its embedded `Resources`, `network.NetworkingConfig`).
//!
//! Decoding follows Go's `encoding/json`: `null` leaves a field unset, a
//! missing field is its zero value. A field this berthd does not know is
//! kept in `extra` and written back (inspect shows what the client sent, a
//! record of a newer berthd survives a downgrade). Encoding follows Go's
//! tags: `omitempty` fields are left out when empty, the others are always
//! written (`null` for an unset list or map), so inspect has dockerd's
//! shape whatever the client sent.
//!
//! Records are read with [`lenient`]: a value of the wrong type in a record
//! written before bodies were type-checked is dropped with a warning (it
//! was read as unset then too) instead of making the record unreadable.

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, Deserializer, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `null` as the zero value (Go leaves the field unset).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_empty_str(s: &str) -> bool {
    s.is_empty()
}

fn no_map<K, V>(m: &Option<BTreeMap<K, V>>) -> bool {
    m.as_ref().is_none_or(BTreeMap::is_empty)
}

fn no_list<T>(l: &Option<Vec<T>>) -> bool {
    l.as_ref().is_none_or(Vec::is_empty)
}

/// A Go struct: `Default`, PascalCase names, every field null-tolerant;
/// the fields after `flatten` are embedded structs or the unknown rest.
macro_rules! go_struct {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $( $(#[$fm:meta])* $field:ident : $ty:ty, )*
        }
        $( flatten { $( $(#[$xm:meta])* $xf:ident : $xt:ty, )* } )?
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "PascalCase", default)]
        pub struct $name {
            $(
                $(#[$fm])*
                #[serde(deserialize_with = "nullable")]
                pub $field: $ty,
            )*
            $($(
                $(#[$xm])*
                #[serde(flatten)]
                pub $xf: $xt,
            )*)?
        }
    };
}

/// The value of a Go `struct{}` set (`ExposedPorts`, `Volumes`): `{}`,
/// whatever was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Empty;

impl Serialize for Empty {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Map::new().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| Empty)
    }
}

pub type Set = BTreeMap<String, Empty>;

/// Go's `[2]uint`: `[height, width]`; a shorter list leaves zeros, a
/// longer one's rest is ignored (as Go decodes a fixed-size array).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ConsoleSize(pub [u64; 2]);

impl<'de> Deserialize<'de> for ConsoleSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v: Vec<u64> = Vec::deserialize(d)?;
        let mut out = [0; 2];
        for (o, x) in out.iter_mut().zip(v) {
            *o = x;
        }
        Ok(ConsoleSize(out))
    }
}
pub type Labels = BTreeMap<String, String>;

go_struct! {
    /// `container.HealthConfig`: every field `omitempty`.
    pub struct HealthConfig {
        #[serde(skip_serializing_if = "no_list")]
        test: Option<Vec<String>>,
        #[serde(skip_serializing_if = "is_zero")]
        interval: i64,
        #[serde(skip_serializing_if = "is_zero")]
        timeout: i64,
        #[serde(skip_serializing_if = "is_zero")]
        start_period: i64,
        #[serde(skip_serializing_if = "is_zero")]
        start_interval: i64,
        #[serde(skip_serializing_if = "is_zero")]
        retries: i64,
    }
    flatten {
        extra: Map<String, Value>,
    }
}

go_struct! {
    /// `container.Config`.
    pub struct Config {
        hostname: String,
        domainname: String,
        user: String,
        attach_stdin: bool,
        attach_stdout: bool,
        attach_stderr: bool,
        #[serde(skip_serializing_if = "no_map")]
        exposed_ports: Option<Set>,
        tty: bool,
        open_stdin: bool,
        stdin_once: bool,
        env: Option<Vec<String>>,
        cmd: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        healthcheck: Option<HealthConfig>,
        #[serde(skip_serializing_if = "is_false")]
        args_escaped: bool,
        image: String,
        volumes: Option<Set>,
        working_dir: String,
        entrypoint: Option<Vec<String>>,
        #[serde(skip_serializing_if = "is_false")]
        network_disabled: bool,
        #[serde(skip_serializing_if = "is_empty_str")]
        mac_address: String,
        on_build: Option<Vec<String>>,
        labels: Option<Labels>,
        #[serde(skip_serializing_if = "is_empty_str")]
        stop_signal: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        stop_timeout: Option<i64>,
        #[serde(skip_serializing_if = "no_list")]
        shell: Option<Vec<String>>,
    }
    flatten {
        extra: Map<String, Value>,
    }
}

go_struct! {
    /// `units.Ulimit`.
    pub struct Ulimit {
        name: String,
        hard: i64,
        soft: i64,
    }
}

go_struct! {
    /// `blkiodev.WeightDevice`.
    pub struct WeightDevice {
        path: String,
        weight: u16,
    }
}

go_struct! {
    /// `blkiodev.ThrottleDevice`.
    pub struct ThrottleDevice {
        path: String,
        rate: u64,
    }
}

go_struct! {
    /// `container.DeviceMapping`.
    pub struct DeviceMapping {
        path_on_host: String,
        path_in_container: String,
        cgroup_permissions: String,
    }
}

go_struct! {
    /// `container.DeviceRequest`.
    pub struct DeviceRequest {
        driver: String,
        count: i64,
        #[serde(rename = "DeviceIDs")]
        device_ids: Option<Vec<String>>,
        capabilities: Option<Vec<Vec<String>>>,
        options: Option<Labels>,
    }
}

go_struct! {
    /// `container.Resources`, embedded in `HostConfig` and in the body of
    /// `POST /containers/{id}/update`.
    pub struct Resources {
        cpu_shares: i64,
        memory: i64,
        nano_cpus: i64,
        cgroup_parent: String,
        blkio_weight: u16,
        blkio_weight_device: Option<Vec<WeightDevice>>,
        blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
        blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
        #[serde(rename = "BlkioDeviceReadIOps")]
        blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
        #[serde(rename = "BlkioDeviceWriteIOps")]
        blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
        cpu_period: i64,
        cpu_quota: i64,
        cpu_realtime_period: i64,
        cpu_realtime_runtime: i64,
        cpuset_cpus: String,
        cpuset_mems: String,
        devices: Option<Vec<DeviceMapping>>,
        device_cgroup_rules: Option<Vec<String>>,
        device_requests: Option<Vec<DeviceRequest>>,
        #[serde(skip_serializing_if = "is_zero")]
        kernel_memory: i64,
        #[serde(rename = "KernelMemoryTCP", skip_serializing_if = "is_zero")]
        kernel_memory_tcp: i64,
        memory_reservation: i64,
        memory_swap: i64,
        memory_swappiness: Option<i64>,
        oom_kill_disable: Option<bool>,
        pids_limit: Option<i64>,
        ulimits: Option<Vec<Ulimit>>,
        cpu_count: i64,
        cpu_percent: i64,
        #[serde(rename = "IOMaximumIOps")]
        io_maximum_iops: u64,
        #[serde(rename = "IOMaximumBandwidth")]
        io_maximum_bandwidth: u64,
    }
}

impl Resources {
    /// `docker update`: the limits the patch sets (a zero value leaves a
    /// limit as it is: the CLI sends every field).
    pub fn apply_update(&mut self, p: &Resources) {
        fn set<T: PartialEq + Default + Clone>(to: &mut T, from: &T) {
            if *from != T::default() {
                *to = from.clone();
            }
        }
        set(&mut self.memory, &p.memory);
        set(&mut self.memory_swap, &p.memory_swap);
        set(&mut self.memory_reservation, &p.memory_reservation);
        set(&mut self.nano_cpus, &p.nano_cpus);
        set(&mut self.cpu_shares, &p.cpu_shares);
        set(&mut self.cpu_period, &p.cpu_period);
        set(&mut self.cpu_quota, &p.cpu_quota);
        set(&mut self.cpuset_cpus, &p.cpuset_cpus);
        set(&mut self.cpuset_mems, &p.cpuset_mems);
        set(&mut self.blkio_weight, &p.blkio_weight);
        set(&mut self.kernel_memory, &p.kernel_memory);
        if p.pids_limit.is_some_and(|n| n != 0) {
            self.pids_limit = p.pids_limit;
        }
    }
}

go_struct! {
    /// `container.LogConfig`.
    pub struct LogConfig {
        #[serde(rename = "Type")]
        kind: String,
        config: Option<Labels>,
    }
}

go_struct! {
    /// `container.RestartPolicy`.
    pub struct RestartPolicy {
        name: String,
        maximum_retry_count: i64,
    }
}

go_struct! {
    /// `nat.PortBinding`.
    pub struct PortBinding {
        #[serde(rename = "HostIp")]
        host_ip: String,
        host_port: String,
    }
}

go_struct! {
    /// `mount.BindOptions` (`omitempty` fields).
    pub struct BindOptions {
        #[serde(skip_serializing_if = "is_empty_str")]
        propagation: String,
        #[serde(skip_serializing_if = "is_false")]
        non_recursive: bool,
        #[serde(skip_serializing_if = "is_false")]
        create_mountpoint: bool,
        #[serde(skip_serializing_if = "is_false")]
        read_only_non_recursive: bool,
        #[serde(skip_serializing_if = "is_false")]
        read_only_force_recursive: bool,
    }
}

go_struct! {
    /// `mount.Driver`.
    pub struct Driver {
        #[serde(skip_serializing_if = "is_empty_str")]
        name: String,
        #[serde(skip_serializing_if = "no_map")]
        options: Option<Labels>,
    }
}

go_struct! {
    /// `mount.VolumeOptions`.
    pub struct VolumeOptions {
        #[serde(skip_serializing_if = "is_false")]
        no_copy: bool,
        #[serde(skip_serializing_if = "no_map")]
        labels: Option<Labels>,
        #[serde(skip_serializing_if = "is_empty_str")]
        subpath: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        driver_config: Option<Driver>,
    }
}

go_struct! {
    /// `mount.TmpfsOptions`.
    pub struct TmpfsOptions {
        #[serde(skip_serializing_if = "is_zero")]
        size_bytes: i64,
        #[serde(skip_serializing_if = "is_zero_u32")]
        mode: u32,
        #[serde(skip_serializing_if = "no_list")]
        options: Option<Vec<Vec<String>>>,
    }
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

go_struct! {
    /// `mount.Mount` (`--mount`).
    pub struct Mount {
        #[serde(rename = "Type", skip_serializing_if = "is_empty_str")]
        kind: String,
        #[serde(skip_serializing_if = "is_empty_str")]
        source: String,
        #[serde(skip_serializing_if = "is_empty_str")]
        target: String,
        #[serde(skip_serializing_if = "is_false")]
        read_only: bool,
        #[serde(skip_serializing_if = "is_empty_str")]
        consistency: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        bind_options: Option<BindOptions>,
        #[serde(skip_serializing_if = "Option::is_none")]
        volume_options: Option<VolumeOptions>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tmpfs_options: Option<TmpfsOptions>,
    }
}

/// `nat.PortMap`: container port (`80/tcp`) to its host bindings.
pub type PortMap = BTreeMap<String, Option<Vec<PortBinding>>>;

go_struct! {
    /// `container.HostConfig`.
    pub struct HostConfig {
        binds: Option<Vec<String>>,
        #[serde(rename = "ContainerIDFile")]
        container_id_file: String,
        log_config: LogConfig,
        network_mode: String,
        port_bindings: Option<PortMap>,
        restart_policy: RestartPolicy,
        auto_remove: bool,
        volume_driver: String,
        volumes_from: Option<Vec<String>>,
        console_size: ConsoleSize,
        #[serde(skip_serializing_if = "no_map")]
        annotations: Option<Labels>,
        cap_add: Option<Vec<String>>,
        cap_drop: Option<Vec<String>>,
        cgroupns_mode: String,
        dns: Option<Vec<String>>,
        dns_options: Option<Vec<String>>,
        dns_search: Option<Vec<String>>,
        extra_hosts: Option<Vec<String>>,
        group_add: Option<Vec<String>>,
        ipc_mode: String,
        cgroup: String,
        links: Option<Vec<String>>,
        oom_score_adj: i64,
        pid_mode: String,
        privileged: bool,
        publish_all_ports: bool,
        readonly_rootfs: bool,
        security_opt: Option<Vec<String>>,
        #[serde(skip_serializing_if = "no_map")]
        storage_opt: Option<Labels>,
        #[serde(skip_serializing_if = "no_map")]
        tmpfs: Option<Labels>,
        #[serde(rename = "UTSMode")]
        uts_mode: String,
        #[serde(rename = "UsernsMode")]
        userns_mode: String,
        shm_size: i64,
        #[serde(skip_serializing_if = "no_map")]
        sysctls: Option<Labels>,
        #[serde(skip_serializing_if = "is_empty_str")]
        runtime: String,
        isolation: String,
        #[serde(skip_serializing_if = "no_list")]
        mounts: Option<Vec<Mount>>,
        masked_paths: Option<Vec<String>>,
        readonly_paths: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        init: Option<bool>,
    }
    flatten {
        resources: Resources,
        extra: Map<String, Value>,
    }
}

go_struct! {
    /// `network.EndpointIPAMConfig`.
    pub struct EndpointIpamConfig {
        #[serde(rename = "IPv4Address", skip_serializing_if = "is_empty_str")]
        ipv4_address: String,
        #[serde(rename = "IPv6Address", skip_serializing_if = "is_empty_str")]
        ipv6_address: String,
        #[serde(rename = "LinkLocalIPs", skip_serializing_if = "no_list")]
        link_local_ips: Option<Vec<String>>,
    }
}

go_struct! {
    /// `network.EndpointSettings` as a create request sends it.
    pub struct EndpointSettings {
        #[serde(rename = "IPAMConfig")]
        ipam_config: Option<EndpointIpamConfig>,
        links: Option<Vec<String>>,
        aliases: Option<Vec<String>>,
        driver_opts: Option<Labels>,
        #[serde(rename = "NetworkID")]
        network_id: String,
        #[serde(rename = "MacAddress")]
        mac_address: String,
    }
    flatten {
        extra: Map<String, Value>,
    }
}

go_struct! {
    /// `network.NetworkingConfig`.
    pub struct NetworkingConfig {
        endpoints_config: Option<BTreeMap<String, Option<EndpointSettings>>>,
    }
}

go_struct! {
    /// `POST /containers/create`: the `Config` with the two others beside it.
    pub struct CreateRequest {
        host_config: Option<HostConfig>,
        networking_config: Option<NetworkingConfig>,
    }
    flatten {
        config: Config,
    }
}

go_struct! {
    /// `POST /containers/{id}/update`: `Resources` and the restart policy.
    pub struct UpdateConfig {
        restart_policy: Option<RestartPolicy>,
    }
    flatten {
        resources: Resources,
    }
}

/// Decodes `v` as `T`; a member whose value does not fit is dropped with
/// a warning (Go would have refused the body; a stored record is read).
pub fn from_value_lenient<T: DeserializeOwned + Default>(what: &str, v: Value) -> T {
    match serde_json::from_value::<T>(v.clone()) {
        Ok(t) => t,
        Err(first) => {
            let Value::Object(mut map) = v else {
                if !v.is_null() {
                    tracing::warn!(what, error = %first, "not an object: read as empty");
                }
                return T::default();
            };
            let bad: Vec<String> = map
                .iter()
                .filter(|(k, x)| {
                    let one = Value::Object(Map::from_iter([((*k).clone(), (*x).clone())]));
                    serde_json::from_value::<T>(one).is_err()
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in &bad {
                tracing::warn!(what, field = %k, value = %map[k], "a value of the wrong type is dropped");
                map.remove(k);
            }
            serde_json::from_value::<T>(Value::Object(map)).unwrap_or_else(|e| {
                tracing::warn!(what, error = %e, "read as empty");
                T::default()
            })
        }
    }
}

/// `deserialize_with` for records: [`from_value_lenient`].
pub fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    let v = Value::deserialize(d)?;
    Ok(from_value_lenient(std::any::type_name::<T>(), v))
}

impl Config {
    pub fn labels(&self) -> Labels {
        self.labels.clone().unwrap_or_default()
    }

    pub fn env(&self) -> &[String] {
        self.env.as_deref().unwrap_or_default()
    }

    pub fn exposed(&self) -> impl Iterator<Item = &String> {
        self.exposed_ports.iter().flat_map(|m| m.keys())
    }

    /// The healthcheck probe's command from `Healthcheck.Test`: `CMD
    /// args...` as is, `CMD-SHELL cmd` through the shell (`Shell`, else
    /// `/bin/sh -c`). `None` for `NONE`, an empty test or an unknown kind:
    /// dockerd runs no probe then either.
    pub fn health_probe(&self) -> Option<Vec<String>> {
        let test = self.healthcheck.as_ref()?.test.as_ref()?;
        let (kind, rest) = test.split_first()?;
        match kind.as_str() {
            "CMD" => Some(rest.to_vec()),
            "CMD-SHELL" => {
                let mut cmd = match self.shell.as_deref() {
                    Some(s) if !s.is_empty() => s.to_vec(),
                    _ => vec!["/bin/sh".into(), "-c".into()],
                };
                cmd.extend(rest.iter().cloned());
                Some(cmd)
            }
            _ => None,
        }
    }
}

impl HostConfig {
    pub fn binds(&self) -> &[String] {
        self.binds.as_deref().unwrap_or_default()
    }

    pub fn dns(&self) -> &[String] {
        self.dns.as_deref().unwrap_or_default()
    }

    pub fn dns_search(&self) -> &[String] {
        self.dns_search.as_deref().unwrap_or_default()
    }

    pub fn dns_options(&self) -> &[String] {
        self.dns_options.as_deref().unwrap_or_default()
    }

    pub fn group_add(&self) -> &[String] {
        self.group_add.as_deref().unwrap_or_default()
    }

    pub fn extra_hosts(&self) -> &[String] {
        self.extra_hosts.as_deref().unwrap_or_default()
    }

    pub fn volumes_from(&self) -> &[String] {
        self.volumes_from.as_deref().unwrap_or_default()
    }

    pub fn security_opt(&self) -> &[String] {
        self.security_opt.as_deref().unwrap_or_default()
    }

    pub fn mounts(&self) -> &[Mount] {
        self.mounts.as_deref().unwrap_or_default()
    }

    pub fn log_opts(&self) -> Labels {
        self.log_config.config.clone().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn null_is_unset_and_unknown_fields_round_trip() {
        let v = json!({
            "Hostname": null, "User": "1000", "Env": ["A=1"], "Cmd": null,
            "Labels": {"a": "b"}, "ExposedPorts": {"80/tcp": {}}, "StopTimeout": 3,
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000},
            "FutureField": {"x": [1, 2]}
        });
        let c: Config = from_value_lenient("t", v);
        assert_eq!(c.hostname, "");
        assert_eq!(c.user, "1000");
        assert_eq!(c.cmd, None);
        assert_eq!(c.stop_timeout, Some(3));
        assert_eq!(c.exposed().collect::<Vec<_>>(), ["80/tcp"]);
        assert_eq!(
            c.healthcheck.as_ref().map(|h| h.interval),
            Some(1_000_000_000)
        );
        let out = serde_json::to_value(&c).unwrap();
        assert_eq!(out["FutureField"], json!({"x": [1, 2]}));
        assert_eq!(out["Cmd"], Value::Null);
        assert_eq!(out["ExposedPorts"], json!({"80/tcp": {}}));
        // Go's omitempty.
        assert!(out.get("StopSignal").is_none() && out.get("Shell").is_none());
        assert_eq!(
            out["Healthcheck"],
            json!({"Test": ["CMD", "true"], "Interval": 1000000000})
        );
        // And back: the same value.
        let again: Config = from_value_lenient("t", out);
        assert_eq!(again, c);
    }

    #[test]
    fn host_config_has_dockerds_shape_and_resources_embedded() {
        let hc: HostConfig = from_value_lenient(
            "t",
            json!({"Memory": 33554432, "PidsLimit": null, "RestartPolicy": {"Name": "always"},
                   "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "81/tcp": null},
                   "Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024}}],
                   "SomethingNew": true}),
        );
        assert_eq!(hc.resources.memory, 33554432);
        assert_eq!(hc.resources.pids_limit, None);
        assert_eq!(hc.restart_policy.name, "always");
        assert_eq!(
            hc.mounts()[0].tmpfs_options.as_ref().unwrap().size_bytes,
            1024
        );
        let out = serde_json::to_value(&hc).unwrap();
        assert_eq!(out["Memory"], 33554432);
        assert_eq!(out["PidsLimit"], Value::Null);
        assert_eq!(out["Binds"], Value::Null);
        assert_eq!(out["ConsoleSize"], json!([0, 0]));
        assert_eq!(out["SomethingNew"], true);
        assert_eq!(out["PortBindings"]["81/tcp"], Value::Null);
        assert!(out.get("Init").is_none() && out.get("Tmpfs").is_none());
        assert!(out.get("KernelMemory").is_none());
        let again: HostConfig = from_value_lenient("t", out);
        assert_eq!(again, hc);
    }

    #[test]
    fn a_stored_value_of_the_wrong_type_is_dropped_not_fatal() {
        let hc: HostConfig = from_value_lenient(
            "t",
            json!({"Memory": "lots", "CapDrop": "ALL", "Privileged": true, "Dns": ["1.1.1.1"]}),
        );
        assert_eq!(hc.resources.memory, 0);
        assert_eq!(hc.cap_drop, None);
        assert!(hc.privileged);
        assert_eq!(hc.dns(), ["1.1.1.1"]);
        let c: Config = from_value_lenient("t", json!("not an object"));
        assert_eq!(c, Config::default());
    }

    #[test]
    fn create_request_splits_its_parts() {
        let r: CreateRequest = from_value_lenient(
            "t",
            json!({"Image": "busybox", "Cmd": ["true"],
                   "HostConfig": {"NetworkMode": "br1", "Memory": 8388608},
                   "NetworkingConfig": {"EndpointsConfig": {"br1": {"Aliases": ["a"]}, "x": null}}}),
        );
        assert_eq!(r.config.image, "busybox");
        assert!(r.config.extra.is_empty(), "{:?}", r.config.extra);
        let hc = r.host_config.unwrap();
        assert_eq!(
            (hc.network_mode.as_str(), hc.resources.memory),
            ("br1", 8388608)
        );
        let eps = r.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(
            eps["br1"].as_ref().unwrap().aliases,
            Some(vec!["a".to_string()])
        );
        assert!(eps["x"].is_none());
    }

    #[test]
    fn update_sets_only_what_the_patch_sets() {
        let mut r = Resources {
            memory: 64 << 20,
            pids_limit: Some(10),
            cpu_shares: 512,
            ..Default::default()
        };
        r.apply_update(&Resources {
            memory: 128 << 20,
            pids_limit: Some(0),
            ..Default::default()
        });
        assert_eq!(
            (r.memory, r.pids_limit, r.cpu_shares),
            (128 << 20, Some(10), 512)
        );
    }
}
