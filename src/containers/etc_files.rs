//! The files berth writes for a container and bind-mounts into it:
//! hostname, hosts, resolv.conf; and the resolvers its embedded DNS server
//! forwards to.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use berth_actors::container::HostConfig;

use crate::config::DaemonConfig;

/// Files a container gets at create: hostname, hosts, resolv.conf.
pub fn write_etc_files(
    dir: &Path,
    hostname: &str,
    cfg: &DaemonConfig,
    hc: &HostConfig,
    host_gateway: &str,
) -> std::io::Result<()> {
    let mut f = std::fs::File::create(dir.join("hostname"))?;
    writeln!(f, "{hostname}")?;
    // Bind-mounted empty at /.dockerenv, as dockerd's init layer has it.
    std::fs::File::create(dir.join(".dockerenv"))?;
    write_hosts(dir, hc, &[], None, host_gateway)?;
    std::fs::write(dir.join("resolv.conf"), resolv_conf(cfg, hc, false))?;
    Ok(())
}

/// The container's /etc/hosts: localhost, `--add-host` (`host-gateway` is
/// the host's address on the default bridge, as dockerd's default
/// `host-gateway-ip`), and its own address with its hostname once it has one.
pub fn write_hosts(
    dir: &Path,
    hc: &HostConfig,
    links: &[String],
    own: Option<(&str, &str)>,
    host_gateway: &str,
) -> std::io::Result<()> {
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in hc.extra_hosts() {
        if let Some((name, ip)) = h.split_once(':') {
            let ip = match ip {
                // No default bridge (`bridge: none`): nothing to point at.
                "host-gateway" if host_gateway.is_empty() => continue,
                "host-gateway" => host_gateway,
                ip => ip,
            };
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    // Legacy links' children: `ip\talias hostname name`.
    for l in links {
        hosts.push_str(l);
        hosts.push('\n');
    }
    if let Some((ip, name)) = own {
        if !name.is_empty() {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    std::fs::write(dir.join("hosts"), hosts)
}

/// The host's resolv.conf without loopback resolvers (unreachable from the
/// container), with `--dns*` options over the daemon's.
pub fn resolv_conf(cfg: &DaemonConfig, hc: &HostConfig, embedded: bool) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let pick = |c: &[String], d: &Vec<String>| {
        if !c.is_empty() {
            c.to_vec()
        } else {
            d.clone()
        }
    };
    let dns = pick(hc.dns(), &cfg.dns);
    let search = pick(hc.dns_search(), &cfg.dns_search);
    let opts = pick(hc.dns_options(), &cfg.dns_opts);
    let mut out = String::new();
    let mut servers = Vec::new();
    for line in BufReader::new(host.as_bytes())
        .lines()
        .map_while(Result::ok)
    {
        let t = line.trim();
        if let Some(ns) = t.strip_prefix("nameserver") {
            let ns = ns.trim();
            if !(ns.starts_with("127.") || ns == "::1") {
                servers.push(ns.to_string());
            }
        } else if ((t.starts_with("search") || t.starts_with("domain")) && search.is_empty())
            || (t.starts_with("options") && opts.is_empty())
        {
            out.push_str(t);
            out.push('\n');
        }
    }
    if !dns.is_empty() {
        servers = dns;
    }
    if embedded {
        // The embedded server forwards to the others.
        servers = vec![crate::network::dns::DNS_ADDR.to_string()];
    }
    if servers.is_empty() {
        servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    let mut head = String::new();
    for s in servers {
        head.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        head.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !opts.is_empty() {
        head.push_str(&format!("options {}\n", opts.join(" ")));
    }
    head + &out
}

/// The resolvers the embedded DNS server forwards to: `--dns`, `dns`, else
/// the host's (loopback ones too: berthd forwards from its namespace).
pub fn upstream_resolvers(cfg: &DaemonConfig, hc: &HostConfig) -> Vec<std::net::SocketAddr> {
    let mut ips = hc.dns().to_vec();
    if ips.is_empty() {
        ips = cfg.dns.clone();
    }
    if ips.is_empty() {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        ips = host
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .map(|s| s.trim().to_string())
            .collect();
    }
    ips.iter()
        .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .collect()
}
