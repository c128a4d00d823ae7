//! What other hosts can reach: a "neighbour host" (a network namespace
//! joined to this host by a veth pair, routing the containers' subnets via
//! this host) tries a container's own address (an unpublished port and the
//! port behind a published one), a port published on 127.0.0.1 (packets
//! to 127.0.0.1 routed through this host, with and without the userland
//! proxy), a port published on 0.0.0.0 (must answer), and an `--internal`
//! network (nothing).

use crate::common;

use std::process::{Command, Output, Stdio};

use common::containers::*;
use common::*;

fn ip(args: &[&str]) -> Output {
    Command::new("ip").args(args).output().unwrap()
}

fn ok(o: Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The neighbour: its namespace and the host's end of its link, removed
/// when dropped (also on failure).
struct Neighbour {
    ns: String,
    host_if: String,
    /// This host's address on the link.
    host_ip: String,
    /// The neighbour's end of the link.
    peer: String,
}

impl Drop for Neighbour {
    fn drop(&mut self) {
        for t in [self.ns.clone(), format!("{}6", self.ns)] {
            let _ = Command::new("nft")
                .args(["delete", "table", "inet", &t])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.ns])
            .stderr(Stdio::null())
            .status();
    }
}

impl Neighbour {
    /// On the /30 `10.X.Y.252/30` of `d`'s block (`Y` = its fourth /24),
    /// routing `routes` via this host.
    fn new(d: &Daemon, tag: &str, routes: &[String]) -> Neighbour {
        let (x, y) = d.net_block;
        let pid = std::process::id();
        let n = Neighbour {
            ns: format!("bnb{tag}{pid}"),
            host_if: format!("nh{tag}{pid}"),
            host_ip: format!("10.{x}.{}.253", y + 3),
            peer: format!("nn{tag}{pid}"),
        };
        let peer = n.peer.clone();
        ok(ip(&["netns", "add", &n.ns]), "netns add");
        ok(
            ip(&[
                "link", "add", &n.host_if, "type", "veth", "peer", "name", &peer,
            ]),
            "veth",
        );
        ok(ip(&["link", "set", &peer, "netns", &n.ns]), "move");
        ok(
            ip(&[
                "addr",
                "add",
                &format!("{}/30", n.host_ip),
                "dev",
                &n.host_if,
            ]),
            "host addr",
        );
        ok(ip(&["link", "set", &n.host_if, "up"]), "host up");
        let inside = |args: &[&str]| {
            let mut a = vec!["netns", "exec", &n.ns, "ip"];
            a.extend_from_slice(args);
            ip(&a)
        };
        ok(
            inside(&[
                "addr",
                "add",
                &format!("10.{x}.{}.254/30", y + 3),
                "dev",
                &peer,
            ]),
            "ns addr",
        );
        ok(inside(&["link", "set", &peer, "up"]), "ns up");
        ok(inside(&["link", "set", "lo", "up"]), "ns lo");
        for r in routes {
            ok(inside(&["route", "add", r, "via", &n.host_ip]), "route");
        }
        // 127.0.0.1 routed to this host: the neighbour sends packets to
        // this host's loopback address (what an attacker on the link does).
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                &n.ns,
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{peer}.route_localnet=1"),
            ])
            .status();
        for local in ["127.0.0.0/8", "127.0.0.1"] {
            let _ = inside(&[
                "route", "del", "local", local, "dev", "lo", "table", "local",
            ]);
        }
        let src = format!("10.{x}.{}.254", y + 3);
        let count = format!(
            "table inet {t} {{\n  chain seen {{\n    type filter hook forward priority -10; policy accept;\n    ip saddr {src} tcp dport 80 counter\n  }}\n}}\n",
            t = n.ns
        );
        let f = d.dir.path().join(format!("count-{tag}.nft"));
        std::fs::write(&f, count).unwrap();
        ok(
            Command::new("nft").arg("-f").arg(&f).output().unwrap(),
            "the counting table",
        );
        ok(
            inside(&[
                "route",
                "add",
                "127.0.0.1/32",
                "via",
                &n.host_ip,
                "dev",
                &peer,
                "src",
                &src,
            ]),
            "the route to 127.0.0.1 via this host",
        );
        n
    }

    /// Packets from the neighbour this host forwarded (a counter in a
    /// table of the test's own, at the forward hook).
    fn forwarded(&self) -> u64 {
        let o = Command::new("nft")
            .args(["list", "chain", "inet", &self.ns, "seen"])
            .output()
            .unwrap();
        let t = String::from_utf8_lossy(&o.stdout);
        t.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(u64::MAX)
    }

    /// An HTTP GET from the neighbour: the body, or None.
    fn get(&self, url: &str) -> Option<String> {
        let o = Command::new("ip")
            .args([
                "netns", "exec", &self.ns, "curl", "-sS", "-g", "-m", "2", url,
            ])
            .output()
            .unwrap();
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }
}

/// Two httpds: `open` on port 80 (published by the caller), `secret` on 81.
fn web() -> String {
    "mkdir -p /a /b && echo open > /a/index.html && echo secret > /b/index.html && \
     httpd -p 81 -h /b && exec httpd -f -p 80 -h /a"
        .to_string()
}

fn container_ip(d: &Daemon, name: &str) -> String {
    d.docker_ok(&[
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        name,
    ])
    .trim()
    .to_string()
}

fn exposure(proxy: bool) {
    let d = Daemon::builder()
        .config(serde_json::json!({"userland-proxy": proxy}))
        .start();
    load_busybox(&d);
    let (x, y) = d.net_block;
    let host_port = free_port();
    let local_port = free_port();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("0.0.0.0:{host_port}:80"),
        "-p",
        &format!("127.0.0.1:{local_port}:80"),
        "busybox",
        "sh",
        "-c",
        &web(),
    ]);
    let internal = d.subnet(1);
    d.docker_ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        &internal,
        "inside",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "hidden",
        "--network",
        "inside",
        "busybox",
        "sh",
        "-c",
        &web(),
    ]);
    let (web_ip, hidden_ip) = (container_ip(&d, "web"), container_ip(&d, "hidden"));
    let n = Neighbour::new(
        &d,
        if proxy { "p" } else { "k" },
        &[format!("10.{x}.{y}.0/24"), internal.clone()],
    );
    // The host answers (the published port is served): (c).
    assert!(
        wait_for(std::time::Duration::from_secs(10), || n
            .get(&format!("http://{}:{host_port}/", n.host_ip))
            .as_deref()
            == Some("open")),
        "the port published on 0.0.0.0 did not answer the neighbour: {:?}\n{}",
        n.get(&format!("http://{}:{host_port}/", n.host_ip)),
        d.log()
    );
    // (a) the container's own address: neither port.
    assert_eq!(
        n.get(&format!("http://{web_ip}:81/")),
        None,
        "unpublished port reached"
    );
    assert_eq!(
        n.get(&format!("http://{web_ip}:80/")),
        None,
        "container address reached"
    );
    // (b) 127.0.0.1 through this host.
    let before = n.forwarded();
    assert_eq!(
        n.get(&format!("http://127.0.0.1:{local_port}/")),
        None,
        "a port published on 127.0.0.1 answered another host"
    );
    // (b) again, one way: no packet the neighbour sent to 127.0.0.1 was
    // forwarded to the container (its TCP could not have answered back
    // anyway: the reply's source is a loopback address; a UDP service
    // would have got the datagram).
    assert_eq!(
        n.forwarded(),
        before,
        "packets another host sent to 127.0.0.1 were forwarded to the container"
    );
    // (d) an internal network: nothing.
    assert_eq!(
        n.get(&format!("http://{hidden_ip}:80/")),
        None,
        "internal network reached"
    );
    // This host itself still reaches everything it should.
    let curl = |url: String| {
        let o = Command::new("curl")
            .args(["-sS", "-m", "3", &url])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(curl(format!("http://127.0.0.1:{local_port}/")), "open");
    assert_eq!(curl(format!("http://{web_ip}:81/")), "secret");

    drop(n);
    d.docker_ok(&["rm", "-f", "web", "hidden"]);
    d.docker_ok(&["network", "rm", "inside"]);
    d.stop();
}

#[test]
fn other_hosts_reach_only_published_ports_with_the_proxy() {
    exposure(true);
}

#[test]
fn other_hosts_reach_only_published_ports_without_the_proxy() {
    exposure(false);
}

#[test]
fn other_hosts_reach_no_container_address_over_ipv6() {
    if !std::path::Path::new("/proc/net/if_inet6").exists() {
        eprintln!("IPv6 is disabled on this host: nothing to test");
        return;
    }
    let d = Daemon::start();
    load_busybox(&d);
    let (x, y) = d.net_block;
    let user6 = format!("fd{x:02x}:{y:02x}02::/64");
    d.docker_ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &d.subnet(1),
        "--subnet",
        &user6,
        "net6",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web6",
        "--network",
        "net6",
        "busybox",
        "sh",
        "-c",
        &web(),
    ]);
    let ip6 = d
        .docker_ok(&[
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}",
            "web6",
        ])
        .trim()
        .to_string();
    assert!(ip6.contains(':'), "{ip6}");
    let n = Neighbour::new(&d, "s", &[]);
    let (h6, n6) = (
        format!("fd{x:02x}:{y:02x}03::1"),
        format!("fd{x:02x}:{y:02x}03::2"),
    );
    ok(
        ip(&[
            "-6",
            "addr",
            "add",
            &format!("{h6}/126"),
            "dev",
            &n.host_if,
            "nodad",
        ]),
        "host v6",
    );
    let inside = |args: &[&str]| {
        let mut a = vec!["netns", "exec", &n.ns, "ip"];
        a.extend_from_slice(args);
        ip(&a)
    };
    ok(
        inside(&[
            "-6",
            "addr",
            "add",
            &format!("{n6}/126"),
            "dev",
            &n.peer,
            "nodad",
        ]),
        "ns v6",
    );
    ok(
        inside(&["-6", "route", "add", &user6, "via", &h6]),
        "ns v6 route",
    );
    // The path works: the neighbour reaches this host's address on the
    // network's bridge (the gateway, a host address)...
    let gw6 = user6.replace("::/64", "::1");
    let ping = || {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &n.ns,
                "/bin/busybox",
                "ping",
                "-6",
                "-c",
                "1",
                "-W",
                "1",
            ])
            .arg(&gw6)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        wait_for(std::time::Duration::from_secs(10), ping),
        "the neighbour cannot reach this host over IPv6"
    );
    // A counter of the test's own: packets from the neighbour this host
    // forwards towards the container's port.
    let count = format!(
        "table inet {t}6 {{\n  chain seen {{\n    type filter hook forward priority -10; policy accept;\n    ip6 saddr {n6} tcp dport 81 counter\n  }}\n}}\n",
        t = n.ns
    );
    let f = d.dir.path().join("count6.nft");
    std::fs::write(&f, count).unwrap();
    ok(
        Command::new("nft").arg("-f").arg(&f).output().unwrap(),
        "the counting table",
    );
    let forwarded = || {
        let o = Command::new("nft")
            .args(["list", "chain", "inet", &format!("{}6", n.ns), "seen"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|x| x.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    };
    // ...and not the container's IPv6 address, which this host reaches.
    assert_eq!(
        n.get(&format!("http://[{ip6}]:81/")),
        None,
        "container IPv6 address reached"
    );
    let seen = forwarded();
    let _ = Command::new("nft")
        .args(["delete", "table", "inet", &format!("{}6", n.ns)])
        .status();
    assert_eq!(
        seen, 0,
        "packets to the container's IPv6 address were forwarded"
    );
    let o = Command::new("curl")
        .args(["-sS", "-g", "-m", "3", &format!("http://[{ip6}]:81/")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "secret");
    drop(n);
    d.docker_ok(&["rm", "-f", "web6"]);
    d.docker_ok(&["network", "rm", "net6"]);
    d.stop();
}
