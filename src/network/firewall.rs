//! The firewall: one nftables table owned by berthd, rendered whole from
//! the desired state (networks and published ports) and replaced
//! atomically in one `nft -f -` batch. The kernel keeps forwarding while
//! berthd is down; a restarted berthd writes the same table again.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use berth_actors::network::PortMapping;
use tracing::{debug, warn};

/// A network's part of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRules {
    pub bridge: String,
    pub subnet: String,
    /// The IPv6 subnet (masqueraded with `ip6tables`).
    pub subnet6: Option<String>,
    pub masquerade: bool,
    pub icc: bool,
    pub internal: bool,
}

/// An endpoint's published ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRules {
    pub bridge: String,
    pub ip: String,
    /// The container's IPv6 address (empty without IPv6).
    pub ip6: String,
    pub ports: Vec<PortMapping>,
}

#[derive(Debug, Default)]
struct State {
    nets: BTreeMap<String, NetRules>,
    /// By `<network id>/<container id>`.
    ports: BTreeMap<String, PortRules>,
    /// Nothing is written before every network was restored.
    ready: bool,
}

/// The firewall of berthd's networks: desired state in, rules out.
pub trait Firewall: Send + Sync {
    fn set_network(&self, id: &str, r: NetRules) -> Result<(), String>;
    fn remove_network(&self, id: &str) -> Result<(), String>;
    fn set_ports(&self, key: &str, r: PortRules) -> Result<(), String>;
    fn remove_ports(&self, key: &str) -> Result<(), String>;
    /// Every network is known: the rules may be written.
    fn ready(&self) -> Result<(), String>;
    /// Remove every rule (berthd stops without live-restore).
    fn remove_all(&self);
}

/// nftables: one table, replaced whole in one `nft -f -` batch.
pub struct Nftables {
    pub table: String,
    /// `iptables: false`: berthd writes no rules at all.
    pub enabled: bool,
    /// `userland-proxy: true`: connections to 127.0.0.1 and from the
    /// port's own bridge go to the proxy, not through DNAT.
    pub proxy: bool,
    /// `ip6tables`: IPv6 egress is masqueraded too.
    pub ip6: bool,
    state: Mutex<State>,
}

impl Nftables {
    pub fn new(table: String, enabled: bool, proxy: bool, ip6: bool) -> Nftables {
        Nftables {
            table,
            enabled,
            proxy,
            ip6,
            state: Mutex::new(State::default()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }
}

impl Firewall for Nftables {
    fn set_network(&self, id: &str, r: NetRules) -> Result<(), String> {
        self.with(|s| s.nets.insert(id.to_string(), r));
        self.apply()
    }

    fn remove_network(&self, id: &str) -> Result<(), String> {
        self.with(|s| s.nets.remove(id));
        self.apply()
    }

    fn set_ports(&self, key: &str, r: PortRules) -> Result<(), String> {
        self.with(|s| s.ports.insert(key.to_string(), r));
        self.apply()
    }

    fn remove_ports(&self, key: &str) -> Result<(), String> {
        if self.with(|s| s.ports.remove(key)).is_none() {
            return Ok(());
        }
        self.apply()
    }

    /// Every network is known: write the table.
    fn ready(&self) -> Result<(), String> {
        self.with(|s| s.ready = true);
        self.apply()
    }

    fn remove_all(&self) {
        self.remove_table();
    }
}

impl Nftables {
    /// Render and write the table (under the lock, so batches never
    /// interleave).
    fn apply(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        let g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !g.ready {
            return Ok(());
        }
        let text = render(&self.table, &g.nets, &g.ports, self.proxy, self.ip6);
        debug!(table = %self.table, "writing the firewall");
        run_nft(&text)
    }

    /// Remove the table (berthd stops without live-restore).
    pub fn remove_table(&self) {
        if !self.enabled {
            return;
        }
        let t = &self.table;
        if let Err(e) = run_nft(&format!("table inet {t}\ndelete table inet {t}\n")) {
            warn!("removing the firewall table: {e}");
        }
    }
}

fn run_nft(text: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running nft (is nftables installed?): {e}"))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(text.as_bytes())
            .map_err(|e| format!("writing to nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft refused the firewall table: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('"', ""))
}

/// The whole table as one nft batch: create-if-missing, delete, define.
pub fn render(
    table: &str,
    nets: &BTreeMap<String, NetRules>,
    ports: &BTreeMap<String, PortRules>,
    proxy: bool,
    ip6: bool,
) -> String {
    let mut o = format!("table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n");
    // Before conntrack and NAT (dockerd 28's raw rules): a packet to a
    // container's address that did not come through its bridge, or to a
    // loopback address from outside the host, never reaches it, whatever
    // the forward policy and `ip_forward` were. Published ports still
    // work: their packets are addressed to the host until DNAT (later).
    o.push_str(
        "  chain raw_prerouting {\n    type filter hook prerouting priority raw; policy accept;\n",
    );
    o.push_str("    iifname != \"lo\" ip daddr 127.0.0.0/8 drop\n");
    o.push_str("    iifname != \"lo\" ip6 daddr ::1 drop\n");
    for n in nets.values() {
        let b = q(&n.bridge);
        o.push_str(&format!(
            "    iifname != {b} ip daddr {} fib daddr type != local drop\n",
            n.subnet
        ));
        if let Some(s6) = &n.subnet6 {
            o.push_str(&format!(
                "    iifname != {b} ip6 daddr {s6} fib daddr type != local drop\n"
            ));
        }
    }
    o.push_str("  }\n");
    o.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }\n");
    // With the proxy, loopback connections reach it (dockerd's rules).
    let local = if proxy {
        "fib daddr type local ip daddr != 127.0.0.0/8 jump ports\n    fib daddr type local ip6 daddr != ::1 jump ports"
    } else {
        "fib daddr type local jump ports"
    };
    o.push_str(&format!(
        "  chain output {{\n    type nat hook output priority -100; policy accept;\n    {local}\n  }}\n"
    ));
    o.push_str("  chain ports {\n");
    for p in ports.values() {
        for m in &p.ports {
            let v6 = m.host_ip.contains(':');
            if v6 && p.ip6.is_empty() {
                // Only the userland proxy can carry IPv6 to an IPv4 address.
                continue;
            }
            let daddr = if m.host_ip.is_empty() || m.host_ip == "0.0.0.0" {
                String::new()
            } else if m.host_ip == "::" {
                "ip6 daddr != ::1 ".to_string()
            } else if v6 {
                format!("ip6 daddr {} ", m.host_ip)
            } else {
                format!("ip daddr {} ", m.host_ip)
            };
            // With the proxy, hairpin traffic (from the port's own
            // bridge) reaches it too.
            let iif = if proxy {
                format!("iifname != {} ", q(&p.bridge))
            } else {
                String::new()
            };
            if v6 {
                o.push_str(&format!(
                    "    meta nfproto ipv6 {iif}{daddr}{} dport {} dnat ip6 to [{}]:{}\n",
                    m.proto, m.host_port, p.ip6, m.container_port
                ));
            } else {
                o.push_str(&format!(
                    "    meta nfproto ipv4 {iif}{daddr}{} dport {} dnat ip to {}:{}\n",
                    m.proto, m.host_port, p.ip, m.container_port
                ));
            }
        }
    }
    o.push_str("  }\n");
    o.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for n in nets.values() {
        let b = q(&n.bridge);
        if n.masquerade && !n.internal {
            o.push_str(&format!(
                "    ip saddr {} oifname != {b} masquerade\n",
                n.subnet
            ));
            if let (true, Some(s6)) = (ip6, &n.subnet6) {
                o.push_str(&format!("    ip6 saddr {s6} oifname != {b} masquerade\n"));
            }
        }
        if !proxy {
            // Published ports reached on 127.0.0.1 (route_localnet) and
            // from a container of the same bridge (hairpin).
            o.push_str(&format!(
                "    ip saddr 127.0.0.0/8 oifname {b} masquerade\n"
            ));
            o.push_str(&format!(
                "    oifname {b} ip saddr {} ct status dnat masquerade\n",
                n.subnet
            ));
        }
    }
    o.push_str("  }\n");
    o.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
    // Published ports are reachable from every network (isolation is for
    // direct traffic between networks).
    o.push_str("    ct status dnat accept\n");
    let bridges: Vec<&str> = nets.values().map(|n| n.bridge.as_str()).collect();
    for n in nets.values() {
        let b = q(&n.bridge);
        if n.internal {
            o.push_str(&format!("    iifname {b} oifname != {b} drop\n"));
            o.push_str(&format!("    oifname {b} iifname != {b} drop\n"));
        }
        if !n.icc {
            o.push_str(&format!("    iifname {b} oifname {b} drop\n"));
        }
        let others: Vec<String> = bridges
            .iter()
            .filter(|x| **x != n.bridge)
            .map(|x| q(x))
            .collect();
        if !others.is_empty() {
            o.push_str(&format!(
                "    iifname {b} oifname {{ {} }} drop\n",
                others.join(", ")
            ));
        }
    }
    o.push_str("  }\n}\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_ports_masquerade_and_isolation() {
        let mut nets = BTreeMap::new();
        for (id, br, sub) in [("a", "bra", "10.1.0.0/24"), ("b", "brb", "10.2.0.0/24")] {
            nets.insert(
                id.to_string(),
                NetRules {
                    bridge: br.into(),
                    subnet: sub.into(),
                    subnet6: None,
                    masquerade: true,
                    icc: true,
                    internal: false,
                },
            );
        }
        let mut ports = BTreeMap::new();
        ports.insert(
            "a/c".to_string(),
            PortRules {
                bridge: "bra".into(),
                ip: "10.1.0.2".into(),
                ip6: String::new(),
                ports: vec![PortMapping {
                    proto: "tcp".into(),
                    container_port: 80,
                    host_ip: "127.0.0.1".into(),
                    host_port: 18080,
                    host_port_end: 0,
                }],
            },
        );
        let t = render("berth", &nets, &ports, false, false);
        assert!(t.starts_with("table inet berth\ndelete table inet berth\n"));
        assert!(t.contains("ip daddr 127.0.0.1 tcp dport 18080 dnat ip to 10.1.0.2:80"));
        assert!(t.contains("ip saddr 10.1.0.0/24 oifname != \"bra\" masquerade"));
        assert!(t.contains("iifname \"bra\" oifname { \"brb\" } drop"));
        assert!(t.contains("iifname \"brb\" oifname { \"bra\" } drop"));
        // Container addresses only through their bridge; loopback only
        // from the host.
        assert!(t.contains("type filter hook prerouting priority raw"));
        assert!(t.contains("iifname != \"bra\" ip daddr 10.1.0.0/24 fib daddr type != local drop"));
        assert!(t.contains("iifname != \"lo\" ip daddr 127.0.0.0/8 drop"));
        let p = render("berth", &nets, &ports, true, false);
        assert!(p.contains("fib daddr type local ip daddr != 127.0.0.0/8 jump ports"));
        assert!(p.contains("fib daddr type local ip6 daddr != ::1 jump ports"));
        assert!(p.contains("iifname != \"bra\" ip daddr 127.0.0.1 tcp dport 18080"));
        assert!(!p.contains("ip saddr 127.0.0.0/8 oifname"));
    }
}
