//! Beyond one host: three berthd nodes, each in its own network namespace
//! with its own data-root, exec-root and socket, joined by an underlay
//! bridge this test makes, sharing an etcd (Debian's `etcd-server`) the
//! test starts on the underlay. Through the docker CLI: an overlay network
//! every node sees, containers on different nodes that ping each other
//! and move TCP data by name and alias, names that follow removal and
//! re-creation, a node's berthd killed with -9 (live-restore), actors
//! killed, etcd down for 10 s, a node that dies for good.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::containers::load_busybox;
use common::{free_port, wait_for, Daemon};

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap()
}

fn must(args: &[&str]) {
    let o = sh(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The etcd server of the test, on the underlay's host address.
struct Etcd {
    child: Option<Child>,
    dir: PathBuf,
    url: String,
    peer: String,
    log: PathBuf,
    /// With TLS: the server's certificate and key, the CA clients need.
    tls: Option<(PathBuf, PathBuf, PathBuf)>,
}

impl Etcd {
    fn start(dir: &Path, ip: &str) -> Etcd {
        Etcd::start_with(dir, ip, None)
    }

    fn start_with(dir: &Path, ip: &str, tls: Option<(PathBuf, PathBuf, PathBuf)>) -> Etcd {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut e = Etcd {
            child: None,
            dir: dir.join("etcd"),
            url: format!("{scheme}://{ip}:{}", free_port()),
            peer: format!("http://127.0.0.1:{}", free_port()),
            log: dir.join("etcd.log"),
            tls,
        };
        e.run();
        e
    }

    fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new("etcd");
        if let Some((cert, key, ca)) = &self.tls {
            cmd.arg("--cert-file")
                .arg(cert)
                .arg("--key-file")
                .arg(key)
                .arg("--trusted-ca-file")
                .arg(ca)
                .arg("--client-cert-auth");
        }
        let child = cmd
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--name", "berth-test"])
            .args(["--listen-client-urls", &self.url])
            .args(["--advertise-client-urls", &self.url])
            .args(["--listen-peer-urls", &self.peer])
            .args(["--initial-advertise-peer-urls", &self.peer])
            .args(["--initial-cluster", &format!("berth-test={}", self.peer)])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("etcd (Debian's etcd-server) must be installed");
        self.child = Some(child);
        let addr = self.url.split("://").nth(1).unwrap_or_default().to_string();
        assert!(
            wait_for(Duration::from_secs(20), || {
                std::net::TcpStream::connect(&addr).is_ok()
            }),
            "etcd did not listen: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn store(&self) -> String {
        self.url
            .replace("https://", "etcd+tls://")
            .replace("http://", "etcd://")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The underlay: a bridge on the host and one network namespace per node,
/// each with a veth on the bridge. Removed on drop (also on failure).
struct Underlay {
    bridge: String,
    namespaces: Vec<String>,
    prefix: String,
}

impl Underlay {
    fn new(tag: &str, subnet: &str, nodes: usize) -> Underlay {
        let prefix = subnet.trim_end_matches(".0/24").to_string();
        let u = Underlay {
            bridge: format!("bu{tag}"),
            namespaces: (0..nodes).map(|i| format!("berth-cl-{tag}-{i}")).collect(),
            prefix,
        };
        must(&["ip", "link", "add", &u.bridge, "type", "bridge"]);
        must(&[
            "ip",
            "addr",
            "add",
            &format!("{}.1/24", u.prefix),
            "dev",
            &u.bridge,
        ]);
        must(&["ip", "link", "set", &u.bridge, "up"]);
        for (i, ns) in u.namespaces.iter().enumerate() {
            let host_end = format!("vu{tag}{i}");
            must(&["ip", "netns", "add", ns]);
            must(&[
                "ip", "link", "add", &host_end, "type", "veth", "peer", "name", "u0", "netns", ns,
            ]);
            must(&["ip", "link", "set", &host_end, "master", &u.bridge, "up"]);
            must(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &u.node_ip(i, 24),
                "dev",
                "u0",
            ]);
            must(&["ip", "-n", ns, "link", "set", "u0", "up"]);
            must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        u
    }

    fn host_ip(&self) -> String {
        format!("{}.1", self.prefix)
    }

    fn node_ip(&self, i: usize, prefix: u8) -> String {
        if prefix == 32 {
            format!("{}.{}", self.prefix, 11 + i)
        } else {
            format!("{}.{}/{prefix}", self.prefix, 11 + i)
        }
    }
}

impl Drop for Underlay {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
        let _ = sh(&["ip", "link", "del", &self.bridge]);
    }
}

/// berthd of node `i`, in its namespace.
fn node_cmd(d: &Daemon, u: &Underlay, i: usize) -> Command {
    let inner = d.command();
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{}", u.namespaces[i]));
    cmd.arg(inner.get_program());
    cmd.args(inner.get_args());
    cmd.args(&d.extra_args);
    cmd
}

fn start_node(u: &Underlay, etcd: &Etcd, i: usize) -> Daemon {
    start_node_with(u, etcd, i, serde_json::json!({}))
}

fn start_node_with(u: &Underlay, etcd: &Etcd, i: usize, opts: serde_json::Value) -> Daemon {
    start_node_cfg(u, etcd, i, opts, serde_json::json!({}))
}

/// A node with `extra` options in its daemon.json.
fn start_node_cfg(
    u: &Underlay,
    etcd: &Etcd,
    i: usize,
    opts: serde_json::Value,
    extra: serde_json::Value,
) -> Daemon {
    let mut d = Daemon::prepare();
    let mut cfg = serde_json::json!({
        "cluster-store": etcd.store(),
        "cluster-advertise": "u0:2376",
        "cluster-store-opts": opts,
        "live-restore": true,
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        cfg[k] = v.clone();
    }
    d.write_config(&cfg);
    d.extra_args = vec![
        "--testing-chaos-control".into(),
        "-H".into(),
        d.docker_host(),
    ];
    let cmd = node_cmd(&d, u, i);
    d.spawn(cmd)
}

/// Node `i`'s metrics endpoint (`metrics-addr` 127.0.0.1:9323 in its
/// own namespace): the value of `metric`, if it is there.
fn metric(u: &Underlay, i: usize, metric: &str) -> Option<f64> {
    let o = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", u.namespaces[i]))
        .args(["curl", "-s", "-m", "5", "http://127.0.0.1:9323/metrics"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
        let (name, v) = l.rsplit_once(' ')?;
        (name == metric).then(|| v.parse().ok())?
    })
}

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A command in a running container; its output and success.
fn exec(d: &Daemon, c: &str, script: &str) -> (bool, String) {
    let o = d.docker(&["exec", c, "sh", "-c", script]);
    (o.status.success(), out(&o))
}

/// A TCP round trip by name: the server `name` answers `hello-<tag>`.
fn hello(d: &Daemon, from: &str, name: &str) -> String {
    exec(d, from, &format!("nc -w 3 {name} 80 </dev/null")).1
}

fn resolves(d: &Daemon, from: &str, name: &str) -> bool {
    exec(d, from, &format!("ping -c 1 -W 2 {name}")).0
}

/// `docker info` with its warnings (on stderr).
fn info(d: &Daemon) -> String {
    out(&d.docker(&["info"]))
}

fn kill_actor(d: &Daemon, actor: &str) {
    let r = d.raw(
        format!(
            "POST /_berth/chaos/kill?actor={actor} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 204, "kill {actor}: {}", r.text());
}

const SERVER: &str = "while true; do echo hello-$TAG | nc -l -p 80; done";

#[test]
fn overlay_network_across_three_nodes() {
    // The underlay takes a subnet of a block this test holds.
    let block = Daemon::prepare();
    let tag = format!("{:04x}a", std::process::id() % 0xffff);
    let u = Underlay::new(&tag, &block.subnet(1), 3);
    let etcd_dir = tempfile::tempdir().unwrap();
    let mut etcd = Etcd::start(etcd_dir.path(), &u.host_ip());
    let a = start_node(&u, &etcd, 0);
    let b = start_node(&u, &etcd, 1);
    let mut c = start_node_cfg(
        &u,
        &etcd,
        2,
        serde_json::json!({}),
        serde_json::json!({"metrics-addr": "127.0.0.1:9323"}),
    );
    for d in [&a, &b, &c] {
        load_busybox(d);
    }

    // Every node sees the three, and the store it uses.
    assert!(
        wait_for(Duration::from_secs(10), || {
            info(&a).contains("Cluster Nodes: 3")
        }),
        "{}",
        info(&a)
    );
    // C's metrics: connected, three nodes, the watch's changes counted.
    assert!(
        wait_for(Duration::from_secs(5), || metric(
            &u,
            2,
            "berth_cluster_nodes"
        ) == Some(3.0)),
        "{:?}",
        metric(&u, 2, "berth_cluster_nodes")
    );
    assert_eq!(metric(&u, 2, "berth_cluster_store_connected"), Some(1.0));
    let seen = metric(&u, 2, "berth_cluster_watch_events_total").unwrap_or(0.0);
    let i = info(&b);
    assert!(
        i.contains(&format!("Cluster Store: {}", etcd.store())),
        "{i}"
    );
    assert!(
        i.contains(&format!("Cluster Advertise: {}:2376", u.node_ip(1, 32))),
        "{i}"
    );

    // A global network made on A, seen by B and C.
    a.docker_ok(&["network", "create", "-d", "overlay", "--attachable", "ov"]);
    for d in [&b, &c] {
        assert!(
            wait_for(Duration::from_secs(5), || {
                d.docker_ok(&[
                    "network",
                    "ls",
                    "--filter",
                    "scope=global",
                    "--format",
                    "{{.Name}} {{.Driver}} {{.Scope}}",
                ])
                .contains("ov overlay global")
            }),
            "the overlay network did not reach a node"
        );
    }
    // C's watch delivered A's network (its record, name, subnet, VNI).
    let now = metric(&u, 2, "berth_cluster_watch_events_total").unwrap_or(0.0);
    assert!(now >= seen + 1.0, "watch events: {seen} then {now}");
    let e = b.docker(&["network", "create", "-d", "overlay", "ov"]);
    assert!(out(&e).contains("already exists"), "{}", out(&e));
    let e = b.docker(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--opt",
        "encrypted",
        "enc",
    ]);
    assert!(out(&e).contains("encrypted"), "{}", out(&e));

    // Containers on three nodes: by name and alias, ICMP and TCP.
    a.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "ov",
        "--network-alias",
        "www",
        "-e",
        "TAG=a",
        "busybox",
        "sh",
        "-c",
        SERVER,
    ]);
    b.docker_ok(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "ov",
        "busybox",
        "sleep",
        "1000",
    ]);
    c.docker_ok(&[
        "run",
        "-d",
        "--name",
        "far",
        "--network",
        "ov",
        "-e",
        "TAG=c",
        "busybox",
        "sh",
        "-c",
        SERVER,
    ]);
    assert!(wait_for(Duration::from_secs(5), || resolves(
        &b, "cli", "web"
    )));
    assert!(resolves(&b, "cli", "www"));
    assert_eq!(hello(&b, "cli", "web").trim(), "hello-a");
    assert_eq!(hello(&b, "cli", "far").trim(), "hello-c");
    assert!(resolves(&a, "web", "cli") && resolves(&c, "far", "web"));
    // MTU lowered for the VXLAN header; 2 MiB through the tunnel, whole.
    let (_, mtu) = exec(&b, "cli", "cat /sys/class/net/eth0/mtu");
    assert_eq!(mtu.trim(), "1450");
    // (busybox nc ends a connection when its own stdin ends: the
    // receiver's never does.)
    c.docker_ok(&[
        "run",
        "-d",
        "--name",
        "sink",
        "--network",
        "ov",
        "busybox",
        "sh",
        "-c",
        "sleep 1000 | nc -l -p 81 | md5sum > /sum; sleep 1000",
    ]);
    assert!(wait_for(Duration::from_secs(5), || resolves(
        &a, "web", "sink"
    )));
    let (ok, sent) = exec(
        &a,
        "web",
        "dd if=/dev/urandom of=/big bs=1024 count=2048 2>/dev/null && md5sum < /big && nc sink 81 < /big",
    );
    assert!(ok, "{sent}");
    assert!(
        wait_for(Duration::from_secs(5), || exec(&c, "sink", "cat /sum").1
            == sent),
        "sent {sent}, received {}",
        exec(&c, "sink", "cat /sum").1
    );
    // Addresses unique across nodes.
    let ips: Vec<String> = [(&a, "web"), (&b, "cli"), (&c, "far"), (&c, "sink")]
        .iter()
        .map(|(d, n)| {
            d.docker_ok(&[
                "inspect",
                "-f",
                "{{.NetworkSettings.Networks.ov.IPAddress}}",
                n,
            ])
            .trim()
            .to_string()
        })
        .collect();
    let mut uniq = ips.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 4, "{ips:?}");

    // Removed on A: its name goes on B; made again: it comes back.
    a.docker_ok(&["rm", "-f", "web"]);
    let t = Instant::now();
    assert!(wait_for(Duration::from_secs(5), || !resolves(
        &b, "cli", "web"
    )));
    eprintln!(
        "a removed container's name left node B after {:?}",
        t.elapsed()
    );
    a.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "ov",
        "-e",
        "TAG=a2",
        "busybox",
        "sh",
        "-c",
        SERVER,
    ]);
    assert!(wait_for(Duration::from_secs(5), || hello(&b, "cli", "web")
        .trim()
        == "hello-a2"));

    // kill -9 of A's berthd (live-restore): traffic and names hold while it
    // is down, and after it is back (its lease kept).
    let mut a = a;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a.pid()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    a.wait_exit_keep();
    assert_eq!(hello(&b, "cli", "web").trim(), "hello-a2");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hello(&b, "cli", "web").trim(), "hello-a2");
    let cmd = node_cmd(&a, &u, 0);
    let a = a.spawn(cmd);
    assert!(
        wait_for(Duration::from_secs(5), || a
            .log()
            .contains("keeping the lease")),
        "{}",
        a.log()
    );
    assert_eq!(hello(&b, "cli", "web").trim(), "hello-a2");
    assert!(resolves(&a, "web", "far"));

    // Actors killed on B: nothing changes for running traffic.
    for actor in ["cluster", "network:ov", "networks"] {
        kill_actor(&b, actor);
        assert_eq!(
            hello(&b, "cli", "web").trim(),
            "hello-a2",
            "after killing {actor}"
        );
    }
    assert!(wait_for(Duration::from_secs(5), || {
        info(&b).contains("Cluster Nodes: 3")
    }));

    // etcd down for 10 s: running traffic goes on, a new endpoint fails
    // clearly, then everything reconciles.
    etcd.kill();
    let down = Instant::now();
    assert!(wait_for(Duration::from_secs(10), || {
        info(&c).contains("is unreachable")
    }));
    assert_eq!(hello(&b, "cli", "web").trim(), "hello-a2");
    assert_eq!(metric(&u, 2, "berth_cluster_store_connected"), Some(0.0));
    let e = c.docker(&[
        "run",
        "--rm",
        "--name",
        "late",
        "--network",
        "ov",
        "busybox",
        "true",
    ]);
    assert!(!e.status.success());
    assert!(out(&e).contains("cluster store"), "{}", out(&e));
    while down.elapsed() < Duration::from_secs(10) {
        assert_eq!(hello(&b, "cli", "far").trim(), "hello-c");
        std::thread::sleep(Duration::from_millis(500));
    }
    etcd.run();
    assert!(
        wait_for(Duration::from_secs(15), || !info(&c)
            .contains("is unreachable")),
        "{}",
        info(&c)
    );
    assert_eq!(metric(&u, 2, "berth_cluster_store_connected"), Some(1.0));
    c.docker_ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "--network",
        "ov",
        "-e",
        "TAG=late",
        "busybox",
        "sh",
        "-c",
        SERVER,
    ]);
    assert!(wait_for(Duration::from_secs(5), || hello(
        &a, "web", "late"
    )
    .trim()
        == "hello-late"));

    // C dies for good: its endpoints go from A and B when its lease expires.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.pid()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    c.wait_exit_keep();
    assert!(
        wait_for(Duration::from_secs(25), || !resolves(&a, "web", "far")),
        "far still resolves"
    );
    assert!(wait_for(Duration::from_secs(5), || {
        info(&b).contains("Cluster Nodes: 2")
    }));
    assert!(!resolves(&b, "cli", "late"));
    // Its containers run on (live-restore): it comes back, they are found again.
    let cmd = node_cmd(&c, &u, 2);
    let c = c.spawn(cmd);
    assert!(wait_for(Duration::from_secs(10), || hello(
        &a, "web", "far"
    )
    .trim()
        == "hello-c"));

    // Clean: removal refused while endpoints exist anywhere, then done.
    let e = a.docker(&["network", "rm", "ov"]);
    assert!(out(&e).contains("active endpoints"), "{}", out(&e));
    a.docker_ok(&["rm", "-f", "web"]);
    b.docker_ok(&["rm", "-f", "cli"]);
    c.docker_ok(&["rm", "-f", "far", "sink", "late"]);
    a.docker_ok(&["network", "rm", "ov"]);
    for d in [&b, &c] {
        assert!(wait_for(Duration::from_secs(5), || {
            !d.docker_ok(&["network", "ls"]).contains(" ov ")
        }));
    }
    for (i, d) in [a, b, c].into_iter().enumerate() {
        let links = out(&sh(&["ip", "-n", &u.namespaces[i], "-o", "link"]));
        assert!(
            !links.contains("vx-") && !links.contains("ov-"),
            "node {i}: {links}"
        );
        d.stop();
    }
    drop(block);
}

/// `etcd+tls://` with `kv.cacertfile`, `kv.certfile`, `kv.keyfile`: a node
/// with its client certificate joins and makes a global network; one
/// without a client certificate is refused by etcd and says so in `docker
/// info`.
#[test]
fn etcd_over_tls_with_client_certificates() {
    let block = Daemon::prepare();
    let tag = format!("{:04x}t", std::process::id() % 0xffff);
    let u = Underlay::new(&tag, &block.subnet(1), 2);
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let write = |name: &str, pem: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    let ca = write("ca.pem", ca_cert.pem());
    let srv_key = rcgen::KeyPair::generate().unwrap();
    let srv = rcgen::CertificateParams::new(vec![u.host_ip()])
        .unwrap()
        .signed_by(&srv_key, &issuer)
        .unwrap();
    let srv_pem = write("server.pem", srv.pem());
    let srv_key_pem = write("server-key.pem", srv_key.serialize_pem());
    let cli_key = rcgen::KeyPair::generate().unwrap();
    let cli = rcgen::CertificateParams::new(vec!["node".to_string()])
        .unwrap()
        .signed_by(&cli_key, &issuer)
        .unwrap();
    let cli_pem = write("client.pem", cli.pem());
    let cli_key_pem = write("client-key.pem", cli_key.serialize_pem());
    let etcd = Etcd::start_with(
        dir.path(),
        &u.host_ip(),
        Some((srv_pem, srv_key_pem, ca.clone())),
    );
    assert!(etcd.store().starts_with("etcd+tls://"));
    let a = start_node_with(
        &u,
        &etcd,
        0,
        serde_json::json!({
            "kv.cacertfile": ca,
            "kv.certfile": cli_pem,
            "kv.keyfile": cli_key_pem,
        }),
    );
    assert!(
        wait_for(Duration::from_secs(10), || info(&a)
            .contains("Cluster Nodes: 1")),
        "{}",
        info(&a)
    );
    a.docker_ok(&["network", "create", "-d", "overlay", "secure"]);
    // Without a client certificate etcd refuses the node.
    let b = start_node_with(&u, &etcd, 1, serde_json::json!({"kv.cacertfile": ca}));
    assert!(
        wait_for(Duration::from_secs(10), || info(&b)
            .contains("is unreachable")),
        "{}",
        info(&b)
    );
    let e = b.docker(&["network", "create", "-d", "overlay", "other"]);
    assert!(out(&e).contains("cluster store"), "{}", out(&e));
    assert!(!b.docker_ok(&["network", "ls"]).contains("secure"));
    a.docker_ok(&["network", "rm", "secure"]);
    a.stop();
    b.stop();
    drop(block);
}
