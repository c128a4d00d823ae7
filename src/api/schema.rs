//! The Go types of dockerd's request bodies, and the check that makes a
//! body fit them before anything reads it.
//!
//! dockerd decodes bodies with Go's `encoding/json` into typed structs: a
//! value of the wrong type is refused (`"User": 1000`, `"Memory": "1"`),
//! field names match case-insensitively, `null` leaves a field unset, and
//! unknown fields are ignored. berthd reads bodies as JSON values, so a
//! wrong type would otherwise read as "unset" and fail open (a container
//! meant to run as 1000 ran as root). [`check`] walks a body against the
//! tables below with Go's rules, refuses the first mismatch with Go's
//! message (400, as current dockerd: `invalid JSON: json: cannot unmarshal
//! ...`), and normalizes what dockerd accepts in another form: keys to
//! their canonical case, a string where dockerd's `StrSlice` takes a list
//! (`"CapDrop": "ALL"` is `["ALL"]`).

use serde_json::{Map, Value};

/// A Go type of a request body.
pub enum Ty {
    Str,
    Bool,
    /// A signed integer of `bits` bits (`name` as Go prints it).
    Int(u32, &'static str),
    /// An unsigned integer of `bits` bits.
    Uint(u32, &'static str),
    /// `strslice.StrSlice`: a list of strings, or one string.
    StrSlice,
    /// A list (`[]T` or `[N]T`, Go's name for it).
    List(&'static Ty, &'static str),
    /// A map with string keys (Go's name for it).
    Map(&'static Ty, &'static str),
    /// `struct {}` (the values of port and volume sets).
    Empty,
    Struct(&'static Struct),
}

/// A Go struct: its type name as the error context names it, its
/// qualified name, and its JSON fields (embedded structs flattened).
pub struct Struct {
    pub name: &'static str,
    pub go: &'static str,
    pub fields: &'static [(&'static str, Ty)],
}

const STRS: Ty = Ty::List(&Ty::Str, "[]string");
const STR_MAP: Ty = Ty::Map(&Ty::Str, "map[string]string");
const I64: Ty = Ty::Int(64, "int64");
const INT: Ty = Ty::Int(64, "int");
const U16: Ty = Ty::Uint(16, "uint16");
const U64: Ty = Ty::Uint(64, "uint64");
const DURATION: Ty = Ty::Int(64, "time.Duration");

const HEALTH: Struct = Struct {
    name: "HealthConfig",
    go: "container.HealthConfig",
    fields: &[
        ("Test", STRS),
        ("Interval", DURATION),
        ("Timeout", DURATION),
        ("StartPeriod", DURATION),
        ("StartInterval", DURATION),
        ("Retries", INT),
    ],
};

/// `container.Config` (embedded in the create request).
const CONFIG_FIELDS: &[(&str, Ty)] = &[
    ("Hostname", Ty::Str),
    ("Domainname", Ty::Str),
    ("User", Ty::Str),
    ("AttachStdin", Ty::Bool),
    ("AttachStdout", Ty::Bool),
    ("AttachStderr", Ty::Bool),
    ("ExposedPorts", Ty::Map(&Ty::Empty, "nat.PortSet")),
    ("Tty", Ty::Bool),
    ("OpenStdin", Ty::Bool),
    ("StdinOnce", Ty::Bool),
    ("Env", STRS),
    ("Cmd", Ty::StrSlice),
    ("Healthcheck", Ty::Struct(&HEALTH)),
    ("ArgsEscaped", Ty::Bool),
    ("Image", Ty::Str),
    ("Volumes", Ty::Map(&Ty::Empty, "map[string]struct {}")),
    ("WorkingDir", Ty::Str),
    ("Entrypoint", Ty::StrSlice),
    ("NetworkDisabled", Ty::Bool),
    ("MacAddress", Ty::Str),
    ("OnBuild", STRS),
    ("Labels", STR_MAP),
    ("StopSignal", Ty::Str),
    ("StopTimeout", INT),
    ("Shell", Ty::StrSlice),
    ("HostConfig", Ty::Struct(&HOST_CONFIG)),
    ("NetworkingConfig", Ty::Struct(&NETWORKING_CONFIG)),
];

/// Whether `key` names a field of the container `Config` (as Go's decoder
/// matches it: case-insensitively), HostConfig and NetworkingConfig aside.
pub fn is_config_field(key: &str) -> bool {
    CONFIG_FIELDS.iter().any(|(name, _)| {
        name.eq_ignore_ascii_case(key) && *name != "HostConfig" && *name != "NetworkingConfig"
    })
}

const ULIMIT: Struct = Struct {
    name: "Ulimit",
    go: "units.Ulimit",
    fields: &[("Name", Ty::Str), ("Hard", I64), ("Soft", I64)],
};

const WEIGHT_DEVICE: Struct = Struct {
    name: "WeightDevice",
    go: "blkiodev.WeightDevice",
    fields: &[("Path", Ty::Str), ("Weight", U16)],
};

const THROTTLE_DEVICE: Struct = Struct {
    name: "ThrottleDevice",
    go: "blkiodev.ThrottleDevice",
    fields: &[("Path", Ty::Str), ("Rate", U64)],
};

const DEVICE_MAPPING: Struct = Struct {
    name: "DeviceMapping",
    go: "container.DeviceMapping",
    fields: &[
        ("PathOnHost", Ty::Str),
        ("PathInContainer", Ty::Str),
        ("CgroupPermissions", Ty::Str),
    ],
};

const DEVICE_REQUEST: Struct = Struct {
    name: "DeviceRequest",
    go: "container.DeviceRequest",
    fields: &[
        ("Driver", Ty::Str),
        ("Count", INT),
        ("DeviceIDs", STRS),
        ("Capabilities", Ty::List(&STRS, "[][]string")),
        ("Options", STR_MAP),
    ],
};

const THROTTLES: Ty = Ty::List(&Ty::Struct(&THROTTLE_DEVICE), "[]*blkiodev.ThrottleDevice");

/// `container.Resources` (embedded in HostConfig and UpdateConfig).
macro_rules! resources {
    ($($more:tt)*) => {
        &[
            ("CpuShares", I64),
            ("Memory", I64),
            ("NanoCpus", I64),
            ("CgroupParent", Ty::Str),
            ("BlkioWeight", U16),
            ("BlkioWeightDevice", Ty::List(&Ty::Struct(&WEIGHT_DEVICE), "[]*blkiodev.WeightDevice")),
            ("BlkioDeviceReadBps", THROTTLES),
            ("BlkioDeviceWriteBps", THROTTLES),
            ("BlkioDeviceReadIOps", THROTTLES),
            ("BlkioDeviceWriteIOps", THROTTLES),
            ("CpuPeriod", I64),
            ("CpuQuota", I64),
            ("CpuRealtimePeriod", I64),
            ("CpuRealtimeRuntime", I64),
            ("CpusetCpus", Ty::Str),
            ("CpusetMems", Ty::Str),
            ("Devices", Ty::List(&Ty::Struct(&DEVICE_MAPPING), "[]container.DeviceMapping")),
            ("DeviceCgroupRules", STRS),
            ("DeviceRequests", Ty::List(&Ty::Struct(&DEVICE_REQUEST), "[]container.DeviceRequest")),
            ("KernelMemory", I64),
            ("KernelMemoryTCP", I64),
            ("MemoryReservation", I64),
            ("MemorySwap", I64),
            ("MemorySwappiness", I64),
            ("OomKillDisable", Ty::Bool),
            ("PidsLimit", I64),
            ("Ulimits", Ty::List(&Ty::Struct(&ULIMIT), "[]*units.Ulimit")),
            ("CpuCount", I64),
            ("CpuPercent", I64),
            ("IOMaximumIOps", U64),
            ("IOMaximumBandwidth", U64),
            $($more)*
        ]
    };
}

const LOG_CONFIG: Struct = Struct {
    name: "LogConfig",
    go: "container.LogConfig",
    fields: &[("Type", Ty::Str), ("Config", STR_MAP)],
};

const RESTART_POLICY: Struct = Struct {
    name: "RestartPolicy",
    go: "container.RestartPolicy",
    fields: &[("Name", Ty::Str), ("MaximumRetryCount", INT)],
};

const PORT_BINDING: Struct = Struct {
    name: "PortBinding",
    go: "nat.PortBinding",
    fields: &[("HostIp", Ty::Str), ("HostPort", Ty::Str)],
};

const BIND_OPTIONS: Struct = Struct {
    name: "BindOptions",
    go: "mount.BindOptions",
    fields: &[
        ("Propagation", Ty::Str),
        ("NonRecursive", Ty::Bool),
        ("CreateMountpoint", Ty::Bool),
        ("ReadOnlyNonRecursive", Ty::Bool),
        ("ReadOnlyForceRecursive", Ty::Bool),
    ],
};

const DRIVER: Struct = Struct {
    name: "Driver",
    go: "mount.Driver",
    fields: &[("Name", Ty::Str), ("Options", STR_MAP)],
};

const VOLUME_OPTIONS: Struct = Struct {
    name: "VolumeOptions",
    go: "mount.VolumeOptions",
    fields: &[
        ("NoCopy", Ty::Bool),
        ("Labels", STR_MAP),
        ("Subpath", Ty::Str),
        ("DriverConfig", Ty::Struct(&DRIVER)),
    ],
};

const TMPFS_OPTIONS: Struct = Struct {
    name: "TmpfsOptions",
    go: "mount.TmpfsOptions",
    fields: &[
        ("SizeBytes", I64),
        ("Mode", Ty::Uint(32, "fs.FileMode")),
        ("Options", Ty::List(&STRS, "[][]string")),
    ],
};

const MOUNT: Struct = Struct {
    name: "Mount",
    go: "mount.Mount",
    fields: &[
        ("Type", Ty::Str),
        ("Source", Ty::Str),
        ("Target", Ty::Str),
        ("ReadOnly", Ty::Bool),
        ("Consistency", Ty::Str),
        ("BindOptions", Ty::Struct(&BIND_OPTIONS)),
        ("VolumeOptions", Ty::Struct(&VOLUME_OPTIONS)),
        ("TmpfsOptions", Ty::Struct(&TMPFS_OPTIONS)),
    ],
};

pub const HOST_CONFIG: Struct = Struct {
    name: "HostConfig",
    go: "container.HostConfig",
    fields: resources!(
        ("Binds", STRS),
        ("ContainerIDFile", Ty::Str),
        ("LogConfig", Ty::Struct(&LOG_CONFIG)),
        ("NetworkMode", Ty::Str),
        (
            "PortBindings",
            Ty::Map(
                &Ty::List(&Ty::Struct(&PORT_BINDING), "[]nat.PortBinding"),
                "nat.PortMap"
            )
        ),
        ("RestartPolicy", Ty::Struct(&RESTART_POLICY)),
        ("AutoRemove", Ty::Bool),
        ("VolumeDriver", Ty::Str),
        ("VolumesFrom", STRS),
        ("ConsoleSize", Ty::List(&Ty::Uint(64, "uint"), "[2]uint")),
        ("Annotations", STR_MAP),
        ("CapAdd", Ty::StrSlice),
        ("CapDrop", Ty::StrSlice),
        ("CgroupnsMode", Ty::Str),
        ("Dns", STRS),
        ("DnsOptions", STRS),
        ("DnsSearch", STRS),
        ("ExtraHosts", STRS),
        ("GroupAdd", STRS),
        ("IpcMode", Ty::Str),
        ("Cgroup", Ty::Str),
        ("Links", STRS),
        ("OomScoreAdj", INT),
        ("PidMode", Ty::Str),
        ("Privileged", Ty::Bool),
        ("PublishAllPorts", Ty::Bool),
        ("ReadonlyRootfs", Ty::Bool),
        ("SecurityOpt", STRS),
        ("StorageOpt", STR_MAP),
        ("Tmpfs", STR_MAP),
        ("UTSMode", Ty::Str),
        ("UsernsMode", Ty::Str),
        ("ShmSize", I64),
        ("Sysctls", STR_MAP),
        ("Runtime", Ty::Str),
        ("Isolation", Ty::Str),
        ("Mounts", Ty::List(&Ty::Struct(&MOUNT), "[]mount.Mount")),
        ("MaskedPaths", STRS),
        ("ReadonlyPaths", STRS),
        ("Init", Ty::Bool),
    ),
};

const ENDPOINT_IPAM: Struct = Struct {
    name: "EndpointIPAMConfig",
    go: "network.EndpointIPAMConfig",
    fields: &[
        ("IPv4Address", Ty::Str),
        ("IPv6Address", Ty::Str),
        ("LinkLocalIPs", STRS),
    ],
};

pub const ENDPOINT_SETTINGS: Struct = Struct {
    name: "EndpointSettings",
    go: "network.EndpointSettings",
    fields: &[
        ("IPAMConfig", Ty::Struct(&ENDPOINT_IPAM)),
        ("Links", STRS),
        ("Aliases", STRS),
        ("DriverOpts", STR_MAP),
        ("GwPriority", INT),
        ("NetworkID", Ty::Str),
        ("EndpointID", Ty::Str),
        ("Gateway", Ty::Str),
        ("IPAddress", Ty::Str),
        ("IPPrefixLen", INT),
        ("IPv6Gateway", Ty::Str),
        ("GlobalIPv6Address", Ty::Str),
        ("GlobalIPv6PrefixLen", INT),
        ("MacAddress", Ty::Str),
        ("DNSNames", STRS),
    ],
};

const NETWORKING_CONFIG: Struct = Struct {
    name: "NetworkingConfig",
    go: "network.NetworkingConfig",
    fields: &[(
        "EndpointsConfig",
        Ty::Map(
            &Ty::Struct(&ENDPOINT_SETTINGS),
            "map[string]*network.EndpointSettings",
        ),
    )],
};

/// `POST /containers/create`.
pub const CONTAINER_CREATE: Struct = Struct {
    name: "CreateRequest",
    go: "container.CreateRequest",
    fields: CONFIG_FIELDS,
};

/// `POST /containers/{id}/update`.
pub const CONTAINER_UPDATE: Struct = Struct {
    name: "UpdateConfig",
    go: "container.UpdateConfig",
    fields: resources!(("RestartPolicy", Ty::Struct(&RESTART_POLICY)),),
};

/// `POST /containers/{id}/exec`.
pub const EXEC_CREATE: Struct = Struct {
    name: "ExecOptions",
    go: "container.ExecOptions",
    fields: &[
        ("User", Ty::Str),
        ("Privileged", Ty::Bool),
        ("Tty", Ty::Bool),
        ("ConsoleSize", Ty::List(&Ty::Uint(64, "uint"), "[2]uint")),
        ("AttachStdin", Ty::Bool),
        ("AttachStderr", Ty::Bool),
        ("AttachStdout", Ty::Bool),
        ("Detach", Ty::Bool),
        ("DetachKeys", Ty::Str),
        ("Env", STRS),
        ("WorkingDir", Ty::Str),
        ("Cmd", Ty::StrSlice),
    ],
};

/// `POST /exec/{id}/start`.
pub const EXEC_START: Struct = Struct {
    name: "ExecStartOptions",
    go: "container.ExecStartOptions",
    fields: &[
        ("Detach", Ty::Bool),
        ("Tty", Ty::Bool),
        ("ConsoleSize", Ty::List(&Ty::Uint(64, "uint"), "[2]uint")),
    ],
};

const IPAM_CONFIG: Struct = Struct {
    name: "IPAMConfig",
    go: "network.IPAMConfig",
    fields: &[
        ("Subnet", Ty::Str),
        ("IPRange", Ty::Str),
        ("Gateway", Ty::Str),
        ("AuxiliaryAddresses", STR_MAP),
    ],
};

const IPAM: Struct = Struct {
    name: "IPAM",
    go: "network.IPAM",
    fields: &[
        ("Driver", Ty::Str),
        ("Options", STR_MAP),
        (
            "Config",
            Ty::List(&Ty::Struct(&IPAM_CONFIG), "[]network.IPAMConfig"),
        ),
    ],
};

/// `POST /networks/create`.
pub const NETWORK_CREATE: Struct = Struct {
    name: "CreateRequest",
    go: "network.CreateRequest",
    fields: &[
        ("Name", Ty::Str),
        ("CheckDuplicate", Ty::Bool),
        ("Driver", Ty::Str),
        ("Scope", Ty::Str),
        ("EnableIPv4", Ty::Bool),
        ("EnableIPv6", Ty::Bool),
        ("IPAM", Ty::Struct(&IPAM)),
        ("Internal", Ty::Bool),
        ("Attachable", Ty::Bool),
        ("Ingress", Ty::Bool),
        ("ConfigOnly", Ty::Bool),
        ("Options", STR_MAP),
        ("Labels", STR_MAP),
    ],
};

/// `POST /networks/{id}/connect`.
pub const NETWORK_CONNECT: Struct = Struct {
    name: "ConnectOptions",
    go: "network.ConnectOptions",
    fields: &[
        ("Container", Ty::Str),
        ("EndpointConfig", Ty::Struct(&ENDPOINT_SETTINGS)),
    ],
};

/// `POST /networks/{id}/disconnect`.
pub const NETWORK_DISCONNECT: Struct = Struct {
    name: "DisconnectOptions",
    go: "network.DisconnectOptions",
    fields: &[("Container", Ty::Str), ("Force", Ty::Bool)],
};

/// `POST /volumes/create`.
pub const VOLUME_CREATE: Struct = Struct {
    name: "CreateOptions",
    go: "volume.CreateOptions",
    fields: &[
        ("Name", Ty::Str),
        ("Driver", Ty::Str),
        ("DriverOpts", STR_MAP),
        ("Labels", STR_MAP),
    ],
};

/// Go's name for the kind of a JSON value in its messages.
fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

struct Ctx<'a> {
    /// The innermost struct being decoded (Go's error context).
    within: &'static str,
    /// The JSON field names from the top.
    stack: &'a [&'static str],
}

fn mismatch(value: String, go: &str, ctx: &Ctx) -> String {
    format!(
        "invalid JSON: json: cannot unmarshal {value} into Go struct field {}.{} of type {go}",
        ctx.within,
        ctx.stack.join(".")
    )
}

fn check_value(v: &mut Value, ty: &Ty, ctx: &Ctx) -> Result<(), String> {
    if v.is_null() {
        return Ok(()); // Go leaves the field as it was.
    }
    match ty {
        Ty::Str => match v {
            Value::String(_) => Ok(()),
            _ => Err(mismatch(kind(v), "string", ctx)),
        },
        Ty::Bool => match v {
            Value::Bool(_) => Ok(()),
            _ => Err(mismatch(kind(v), "bool", ctx)),
        },
        Ty::Int(bits, go) => match v {
            Value::Number(n) => {
                let fits = n.as_i64().is_some_and(|i| {
                    *bits >= 64 || (i >= -(1i64 << (bits - 1)) && i < (1i64 << (bits - 1)))
                });
                if fits {
                    Ok(())
                } else {
                    Err(mismatch(format!("number {n}"), go, ctx))
                }
            }
            _ => Err(mismatch(kind(v), go, ctx)),
        },
        Ty::Uint(bits, go) => match v {
            Value::Number(n) => {
                let fits = n
                    .as_u64()
                    .is_some_and(|u| *bits >= 64 || u < (1u64 << bits));
                if fits {
                    Ok(())
                } else {
                    Err(mismatch(format!("number {n}"), go, ctx))
                }
            }
            _ => Err(mismatch(kind(v), go, ctx)),
        },
        Ty::StrSlice => match v {
            Value::String(s) => {
                *v = Value::Array(vec![Value::String(std::mem::take(s))]);
                Ok(())
            }
            Value::Array(a) if a.iter().all(|x| x.is_string() || x.is_null()) => {
                for x in a.iter_mut().filter(|x| x.is_null()) {
                    *x = Value::String(String::new());
                }
                Ok(())
            }
            _ => Err(mismatch(kind(v), "string", ctx)),
        },
        Ty::List(elem, go) => match v {
            Value::Array(a) => {
                for x in a.iter_mut() {
                    check_value(x, elem, ctx)?;
                    if x.is_null() {
                        // Go decodes a null element as the zero value.
                        *x = zero(elem, true);
                    }
                }
                Ok(())
            }
            _ => Err(mismatch(kind(v), go, ctx)),
        },
        Ty::Map(val, go) => match v {
            Value::Object(o) => {
                for x in o.values_mut() {
                    check_value(x, val, ctx)?;
                    if x.is_null() {
                        *x = zero(val, false);
                    }
                }
                Ok(())
            }
            _ => Err(mismatch(kind(v), go, ctx)),
        },
        Ty::Empty => match v {
            Value::Object(_) => Ok(()),
            _ => Err(mismatch(kind(v), "struct {}", ctx)),
        },
        Ty::Struct(s) => match v {
            Value::Object(o) => check_struct(o, s, ctx.stack),
            _ => Err(mismatch(kind(v), s.go, ctx)),
        },
    }
}

/// The zero value Go decodes a `null` element of a list (or value of a
/// map) into. In a map a null list or struct stays null (a nil slice or
/// pointer, as Go keeps it); in a list it becomes empty.
fn zero(ty: &Ty, in_list: bool) -> Value {
    match ty {
        Ty::Str => Value::String(String::new()),
        Ty::Bool => Value::Bool(false),
        Ty::Int(..) | Ty::Uint(..) => Value::from(0),
        Ty::Empty => Value::Object(Map::new()),
        Ty::StrSlice | Ty::List(..) if in_list => Value::Array(Vec::new()),
        Ty::Map(..) | Ty::Struct(_) if in_list => Value::Object(Map::new()),
        _ => Value::Null,
    }
}

fn check_struct(
    o: &mut Map<String, Value>,
    s: &'static Struct,
    stack: &[&'static str],
) -> Result<(), String> {
    let keys: Vec<String> = o.keys().cloned().collect();
    for key in keys {
        // Go prefers the exact name, then any case-insensitive match.
        let field = s
            .fields
            .iter()
            .find(|(n, _)| *n == key)
            .or_else(|| s.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(&key)));
        let Some((name, ty)) = field else {
            continue; // unknown fields are ignored
        };
        let mut path = stack.to_vec();
        path.push(name);
        let ctx = Ctx {
            within: s.name,
            stack: &path,
        };
        let Some(mut v) = o.remove(&key) else {
            continue;
        };
        check_value(&mut v, ty, &ctx)?;
        if key != *name && o.contains_key(*name) {
            // Both spellings given: the exact one wins, as the later of
            // the two would in Go only by chance of order.
            continue;
        }
        o.insert((*name).to_string(), v);
    }
    Ok(())
}

/// Check `body` against `s` (see the module docs) and normalize it.
pub fn check(body: &mut Value, s: &'static Struct) -> Result<(), String> {
    match body {
        Value::Object(o) => check_struct(o, s, &[]),
        Value::Null => Ok(()),
        v => Err(format!(
            "invalid JSON: json: cannot unmarshal {} into Go value of type {}",
            kind(v),
            s.go
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn err(mut v: Value) -> String {
        check(&mut v, &CONTAINER_CREATE).unwrap_err()
    }

    #[test]
    fn wrong_types_are_refused_with_gos_messages() {
        let pre = "invalid JSON: json: cannot unmarshal";
        assert_eq!(
            err(json!({"Image": "busybox", "User": 1000})),
            format!("{pre} number into Go struct field CreateRequest.User of type string")
        );
        assert_eq!(
            err(json!({"user": 1000})),
            format!("{pre} number into Go struct field CreateRequest.User of type string")
        );
        assert_eq!(
            err(json!({"HostConfig": {"ReadonlyRootfs": "true"}})),
            format!("{pre} string into Go struct field HostConfig.HostConfig.ReadonlyRootfs of type bool")
        );
        assert_eq!(
            err(json!({"HostConfig": {"Memory": "104857600"}})),
            format!("{pre} string into Go struct field HostConfig.HostConfig.Memory of type int64")
        );
        assert_eq!(
            err(json!({"HostConfig": {"Memory": 1.5}})),
            format!(
                "{pre} number 1.5 into Go struct field HostConfig.HostConfig.Memory of type int64"
            )
        );
        assert_eq!(
            err(json!({"HostConfig": {"BlkioWeight": 70000}})),
            format!("{pre} number 70000 into Go struct field HostConfig.HostConfig.BlkioWeight of type uint16")
        );
        assert_eq!(
            err(json!({"HostConfig": {"SecurityOpt": "no-new-privileges"}})),
            format!("{pre} string into Go struct field HostConfig.HostConfig.SecurityOpt of type []string")
        );
        assert_eq!(
            err(json!({"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": "1"}]}})),
            format!(
                "{pre} string into Go struct field Ulimit.HostConfig.Ulimits.Soft of type int64"
            )
        );
        assert_eq!(
            err(json!({"NetworkingConfig": {"EndpointsConfig": {"x": {"Aliases": "a"}}}})),
            format!("{pre} string into Go struct field EndpointSettings.NetworkingConfig.EndpointsConfig.Aliases of type []string")
        );
        assert_eq!(
            err(json!({"Cmd": [1]})),
            format!("{pre} array into Go struct field CreateRequest.Cmd of type string")
        );
        assert_eq!(
            err(json!({"ExposedPorts": {"80/tcp": 1}})),
            format!(
                "{pre} number into Go struct field CreateRequest.ExposedPorts of type struct {{}}"
            )
        );
        assert_eq!(
            err(json!({"HostConfig": 5})),
            format!("{pre} number into Go struct field CreateRequest.HostConfig of type container.HostConfig")
        );
        assert_eq!(
            err(json!({"Labels": {"a": 1}})),
            format!("{pre} number into Go struct field CreateRequest.Labels of type string")
        );
        assert_eq!(
            err(json!({"Healthcheck": {"Interval": "1s"}})),
            format!("{pre} string into Go struct field HealthConfig.Healthcheck.Interval of type time.Duration")
        );
        assert_eq!(
            err(json!({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": 80}]}}})),
            format!("{pre} number into Go struct field PortBinding.HostConfig.PortBindings.HostPort of type string")
        );
        assert_eq!(
            err(json!([1])),
            format!("{pre} array into Go value of type container.CreateRequest")
        );
    }

    #[test]
    fn what_dockerd_accepts_is_normalized() {
        let mut v = json!({
            "image": "busybox", "user": "1000", "Cmd": "echo hi",
            "hostconfig": {"capdrop": "ALL", "CapAdd": ["NET_RAW"], "memory": 104857600,
                           "PidsLimit": null, "Unknown": {"x": 1}},
            "Env": null
        });
        check(&mut v, &CONTAINER_CREATE).unwrap();
        assert_eq!(
            v,
            json!({
                "Image": "busybox", "User": "1000", "Cmd": ["echo hi"],
                "HostConfig": {"CapDrop": ["ALL"], "CapAdd": ["NET_RAW"], "Memory": 104857600,
                               "PidsLimit": null, "Unknown": {"x": 1}},
                "Env": null
            })
        );
        let mut u = json!({"memory": "1"});
        assert_eq!(
            check(&mut u, &CONTAINER_UPDATE).unwrap_err(),
            "invalid JSON: json: cannot unmarshal string into Go struct field UpdateConfig.Memory of type int64"
        );
        let mut e = json!({"User": 0, "Cmd": ["id"]});
        assert!(check(&mut e, &EXEC_CREATE)
            .unwrap_err()
            .contains("ExecOptions.User"));
    }
}
