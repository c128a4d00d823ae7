//! Legacy links on the default bridge (`--link name:alias`,
//! `HostConfig.Links`): resolved when the parent starts, from the
//! children's records in the index. The parent gets dockerd's variables
//! (`ALIAS_PORT_80_TCP_ADDR`, `ALIAS_NAME`, `ALIAS_ENV_X`, ...) and a
//! line in its /etc/hosts per child. On a user-defined network links are
//! the endpoint's names instead (the NetworkActor and berth-dns serve them).

use super::index::ContainerIndex;
use super::model::{parse_link, ContainerRecord};
use super::ContainerError;

/// The default bridge's name.
const BRIDGE: &str = "bridge";

/// What a parent's links give it at start: its variables and hosts lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    pub env: Vec<String>,
    pub hosts: Vec<String>,
}

/// `/web:/parent/db`, as inspect's `HostConfig.Links` shows a link; the
/// child by its current name when it still exists.
pub fn shown(index: &ContainerIndex, parent: &ContainerRecord, link: &str) -> Option<String> {
    let (target, alias) = parse_link(link).ok()?;
    let child = index
        .lookup(&target)
        .map(|c| c.name.clone())
        .unwrap_or_else(|_| format!("/{target}"));
    Some(format!("{child}:{}/{alias}", parent.name))
}

/// The links of `parent` (which just joined the default bridge), from
/// the children as they run now. dockerd's errors for a child that is
/// gone, stopped, or not on the default bridge.
pub fn resolve(
    index: &ContainerIndex,
    parent: &ContainerRecord,
) -> Result<Resolved, ContainerError> {
    resolve_with(|t| index.lookup(t).ok(), parent, true)
}

/// The hosts lines of a running `parent` after its child `moved` got a
/// new address (dockerd rewrites a parent's hosts when a child starts);
/// `None` when `parent` does not link to it. Its variables stay as the
/// parent's process got them.
pub fn hosts_after_move(
    index: &ContainerIndex,
    parent: &ContainerRecord,
    moved: &ContainerRecord,
) -> Option<Vec<String>> {
    let links = parent.host_config.links.as_deref().unwrap_or_default();
    let names_it = links.iter().any(|l| {
        parse_link(l).is_ok_and(|(t, _)| {
            t == moved.id || t == moved.short_name() || (t.len() >= 12 && moved.id.starts_with(&t))
        })
    });
    if !names_it || !parent.state.status.is_live() {
        return None;
    }
    let lookup = |t: &str| {
        if t == moved.id || t == moved.short_name() || moved.id.starts_with(t) && t.len() >= 12 {
            Some(std::sync::Arc::new(moved.clone()))
        } else {
            index.lookup(t).ok()
        }
    };
    resolve_with(lookup, parent, false).ok().map(|r| r.hosts)
}

fn resolve_with(
    lookup: impl Fn(&str) -> Option<std::sync::Arc<ContainerRecord>>,
    parent: &ContainerRecord,
    strict: bool,
) -> Result<Resolved, ContainerError> {
    let mut out = Resolved::default();
    let links = parent.host_config.links.as_deref().unwrap_or_default();
    if links.is_empty() || !parent.state.endpoints.contains_key(BRIDGE) {
        return Ok(out);
    }
    for l in links {
        let (target, alias) = parse_link(l).map_err(ContainerError::Invalid)?;
        let link_name = format!("{}/{alias}", parent.name);
        let child = match lookup(&target) {
            Some(c) => c,
            None if !strict => continue,
            None => {
                return Err(ContainerError::Invalid(format!(
                    "could not get container for {target}: No such container: {target}"
                )))
            }
        };
        if strict && !child.state.status.is_live() {
            return Err(ContainerError::System(format!(
                "Cannot link to a non running container: {} AS {link_name}",
                child.name
            )));
        }
        let Some(ep) = child.state.endpoints.get(BRIDGE) else {
            if !strict {
                continue;
            }
            return Err(ContainerError::System(format!(
                "container {} not attached to default bridge network",
                child.id
            )));
        };
        let ports: Vec<(u16, String)> = child
            .config
            .exposed()
            .filter_map(|k| {
                let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
                Some((p.parse().ok()?, proto.to_ascii_lowercase()))
            })
            .collect();
        out.env
            .extend(env_vars(&link_name, &ep.ip, ports, child.config.env()));
        // Reached by its alias, its hostname and its name (dockerd's order).
        let short = child.short_name();
        let mut names = format!("{alias} {}", child.config.hostname);
        if alias != short {
            names.push(' ');
            names.push_str(short);
        }
        out.hosts.push(format!("{}\t{names}", ep.ip));
        if !ep.ipv6.is_empty() {
            out.hosts.push(format!("{}\t{names}", ep.ipv6));
        }
    }
    Ok(out)
}

/// dockerd's link variables for the child at `ip` named `link_name`
/// (`/parent/alias`): the first port as `ALIAS_PORT`, four variables per
/// exposed port (TCP first, then by number), `_START`/`_END` for runs of
/// consecutive ports, `ALIAS_NAME`, and the child's own variables as
/// `ALIAS_ENV_*` (but HOME and PATH).
pub fn env_vars(
    link_name: &str,
    ip: &str,
    mut ports: Vec<(u16, String)>,
    child_env: &[String],
) -> Vec<String> {
    let alias = link_name
        .rsplit('/')
        .next()
        .unwrap_or(link_name)
        .to_uppercase()
        .replace('-', "_");
    ports.sort_by(|(a, pa), (b, pb)| {
        let rank = |p: &str| if p == "tcp" { 0 } else { 1 };
        rank(pa)
            .cmp(&rank(pb))
            .then_with(|| pa.cmp(pb))
            .then(a.cmp(b))
    });
    ports.dedup();
    let mut env = Vec::new();
    if let Some((n, proto)) = ports.first() {
        env.push(format!("{alias}_PORT={proto}://{ip}:{n}"));
    }
    let mut i = 0;
    while i < ports.len() {
        // A run of consecutive ports of one protocol: [i, j].
        let mut j = i;
        while j + 1 < ports.len()
            && ports[j + 1].1 == ports[i].1
            && ports[j + 1].0 == ports[j].0.wrapping_add(1)
        {
            j += 1;
        }
        for (n, proto) in &ports[i..=j] {
            let pre = format!("{alias}_PORT_{n}_{}", proto.to_uppercase());
            env.push(format!("{pre}={proto}://{ip}:{n}"));
            env.push(format!("{pre}_ADDR={ip}"));
            env.push(format!("{pre}_PORT={n}"));
            env.push(format!("{pre}_PROTO={proto}"));
        }
        if j > i {
            let ((a, proto), (b, _)) = (&ports[i], &ports[j]);
            let pre = format!("{alias}_PORT_{a}_{}", proto.to_uppercase());
            env.push(format!("{pre}_START={proto}://{ip}:{a}"));
            env.push(format!("{pre}_PORT_START={a}"));
            env.push(format!("{pre}_END={proto}://{ip}:{b}"));
            env.push(format!("{pre}_PORT_END={b}"));
        }
        i = j + 1;
    }
    env.push(format!("{alias}_NAME={link_name}"));
    for v in child_env {
        let Some((k, val)) = v.split_once('=') else {
            continue;
        };
        if k != "HOME" && k != "PATH" {
            env.push(format!("{alias}_ENV_{k}={val}"));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn variables_as_dockerd_writes_them() {
        let ports = vec![
            (6380, "tcp".into()),
            (53, "udp".into()),
            (6379, "tcp".into()),
            (8080, "tcp".into()),
        ];
        let env = env_vars(
            "/app/my-db",
            "172.17.0.2",
            ports,
            &s(&["PATH=/bin", "PASSWORD=x=y", "HOME=/root", "BARE"]),
        );
        assert_eq!(
            env,
            s(&[
                "MY_DB_PORT=tcp://172.17.0.2:6379",
                "MY_DB_PORT_6379_TCP=tcp://172.17.0.2:6379",
                "MY_DB_PORT_6379_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_6379_TCP_PORT=6379",
                "MY_DB_PORT_6379_TCP_PROTO=tcp",
                "MY_DB_PORT_6380_TCP=tcp://172.17.0.2:6380",
                "MY_DB_PORT_6380_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_6380_TCP_PORT=6380",
                "MY_DB_PORT_6380_TCP_PROTO=tcp",
                "MY_DB_PORT_6379_TCP_START=tcp://172.17.0.2:6379",
                "MY_DB_PORT_6379_TCP_PORT_START=6379",
                "MY_DB_PORT_6379_TCP_END=tcp://172.17.0.2:6380",
                "MY_DB_PORT_6379_TCP_PORT_END=6380",
                "MY_DB_PORT_8080_TCP=tcp://172.17.0.2:8080",
                "MY_DB_PORT_8080_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_8080_TCP_PORT=8080",
                "MY_DB_PORT_8080_TCP_PROTO=tcp",
                "MY_DB_PORT_53_UDP=udp://172.17.0.2:53",
                "MY_DB_PORT_53_UDP_ADDR=172.17.0.2",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_NAME=/app/my-db",
                "MY_DB_ENV_PASSWORD=x=y",
            ])
        );
        assert_eq!(
            env_vars("/p/db", "10.0.0.2", vec![], &[]),
            s(&["DB_NAME=/p/db"])
        );
    }
}
