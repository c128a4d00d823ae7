//! stats: a container's resource usage from its cgroup (v1, as this host
//! has it; v2 files where present), in dockerd's JSON shape.

use serde_json::{json, Value};

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn num(path: &str) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

/// The first existing controller directory for a cgroup path.
fn dir(controllers: &[&str], cgroup: &str) -> Option<String> {
    controllers
        .iter()
        .map(|c| format!("/sys/fs/cgroup/{c}{cgroup}"))
        .find(|d| std::path::Path::new(d).is_dir())
}

/// The host's CPU time in nanoseconds (/proc/stat, USER_HZ = 100).
fn system_cpu_ns() -> u64 {
    read("/proc/stat")
        .and_then(|t| {
            t.lines().next().map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .take(7)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum::<u64>()
                    * 10_000_000
            })
        })
        .unwrap_or(0)
}

/// Interface counters of a process's network namespace (`/proc/<pid>/net/dev`),
/// loopback left out, as dockerd's `networks`.
fn networks(pid: i32) -> Value {
    let mut out = serde_json::Map::new();
    let Some(t) = (pid > 0)
        .then(|| read(&format!("/proc/{pid}/net/dev")))
        .flatten()
    else {
        return Value::Null;
    };
    for l in t.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 16 {
            continue;
        }
        out.insert(
            name.to_string(),
            json!({
                "rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11],
            }),
        );
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

/// One sample: cpu_stats, memory_stats, pids_stats, networks.
pub fn sample(cgroup: &str, ncpu: usize, mem_total: u64, pid: i32) -> Value {
    let cpu = dir(&["cpuacct", "cpu,cpuacct", "cpuacct,cpu"], cgroup);
    let total = cpu
        .as_ref()
        .and_then(|d| num(&format!("{d}/cpuacct.usage")))
        .unwrap_or(0);
    let percpu: Vec<u64> = cpu
        .as_ref()
        .and_then(|d| read(&format!("{d}/cpuacct.usage_percpu")))
        .map(|t| {
            t.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let (mut user, mut system) = (0u64, 0u64);
    if let Some(t) = cpu
        .as_ref()
        .and_then(|d| read(&format!("{d}/cpuacct.stat")))
    {
        for l in t.lines() {
            let mut it = l.split_whitespace();
            match (it.next(), it.next().and_then(|v| v.parse::<u64>().ok())) {
                (Some("user"), Some(v)) => user = v * 10_000_000,
                (Some("system"), Some(v)) => system = v * 10_000_000,
                _ => {}
            }
        }
    }
    let mem = dir(&["memory"], cgroup);
    let mut mstats = serde_json::Map::new();
    if let Some(t) = mem.as_ref().and_then(|d| read(&format!("{d}/memory.stat"))) {
        for l in t.lines() {
            if let Some((k, v)) = l.split_once(' ') {
                if let Ok(v) = v.trim().parse::<u64>() {
                    mstats.insert(k.to_string(), json!(v));
                }
            }
        }
    }
    let m = |f: &str| mem.as_ref().and_then(|d| num(&format!("{d}/{f}")));
    let pids = dir(&["pids"], cgroup);
    let pids_limit = pids
        .as_ref()
        .and_then(|d| read(&format!("{d}/pids.max")))
        .and_then(|v| v.trim().parse::<u64>().ok());
    json!({
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": total,
                "percpu_usage": percpu,
                "usage_in_kernelmode": system,
                "usage_in_usermode": user,
            },
            "system_cpu_usage": system_cpu_ns(),
            "online_cpus": ncpu,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "memory_stats": {
            "usage": m("memory.usage_in_bytes").unwrap_or(0),
            "max_usage": m("memory.max_usage_in_bytes").unwrap_or(0),
            "stats": mstats,
            // Unlimited is the host's memory, as dockerd reports it.
            "limit": m("memory.limit_in_bytes").map(|l| if mem_total > 0 { l.min(mem_total) } else { l }).unwrap_or(mem_total),
        },
        "pids_stats": {
            "current": pids.as_ref().and_then(|d| num(&format!("{d}/pids.current"))).unwrap_or(0),
            "limit": pids_limit,
        },
        "networks": networks(pid),
    })
}

/// The whole stats object: `cur` now, `pre` the previous sample (or empty).
pub fn object(id: &str, name: &str, cur: &Value, pre: Option<&Value>, pre_read: &str) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let empty_cpu = json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}});
    let mut o = json!({
        "read": now,
        "preread": pre_read,
        "pids_stats": cur["pids_stats"],
        "blkio_stats": {
            "io_service_bytes_recursive": null, "io_serviced_recursive": null,
            "io_queue_recursive": null, "io_service_time_recursive": null,
            "io_wait_time_recursive": null, "io_merged_recursive": null,
            "io_time_recursive": null, "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cur["cpu_stats"],
        "precpu_stats": pre.map(|p| p["cpu_stats"].clone()).unwrap_or(empty_cpu),
        "memory_stats": cur["memory_stats"],
        "name": name,
        "id": id,
    });
    if !cur["networks"].is_null() {
        o["networks"] = cur["networks"].clone();
    }
    o
}
