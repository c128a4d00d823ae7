//! top: the host's `ps`, filtered to the container's processes (its
//! cgroup's members), as dockerd does it.

use berth_actors::container::ContainerRecord;
use serde_json::{json, Value};

use super::host::Host;

/// Pids in the container's cgroup (any v1 controller we mount, or v2).
pub fn container_pids(host: &Host, rec: &ContainerRecord) -> Result<Vec<i32>, String> {
    let cfg = host.config.borrow().clone();
    let path = super::spec::cgroups_path(rec, &cfg);
    for base in [
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/cpu,cpuacct",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup",
    ] {
        let f = format!("{base}{path}/cgroup.procs");
        if let Ok(t) = std::fs::read_to_string(&f) {
            return Ok(t.lines().filter_map(|l| l.trim().parse().ok()).collect());
        }
    }
    Err(format!("no cgroup found for container {}", rec.id))
}

/// Run `ps <args>` and keep the header and the rows of `pids`.
pub async fn ps(args: &str, pids: &[i32]) -> Result<Value, String> {
    let argv: Vec<&str> = args.split_whitespace().collect();
    let out = tokio::process::Command::new("ps")
        .args(&argv)
        .output()
        .await
        .map_err(|e| format!("running ps: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ps: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse(&String::from_utf8_lossy(&out.stdout), pids)
}

pub fn parse(text: &str, pids: &[i32]) -> Result<Value, String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or("ps printed nothing")?;
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| format!("Couldn't find PID field in ps output: {header}"))?;
    let mut procs = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() <= pid_col {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        // The last column keeps its spaces (the command line).
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok(json!({"Titles": titles, "Processes": procs}))
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_rows_by_pid() {
        let t = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init\nroot 42 1 0 10:01 ? 00:00:00 sleep 100\n";
        let v = super::parse(t, &[42]).unwrap();
        assert_eq!(v["Processes"][0][7], "sleep 100");
        assert_eq!(v["Processes"].as_array().unwrap().len(), 1);
        assert!(super::parse("A B\n", &[]).is_err());
    }
}
