//! Networking through the real docker CLI against a berthd the test
//! started: the default bridge, published ports, user-defined networks with
//! the embedded DNS server, DNS options, host/none/container modes, bad
//! input, live-restore and cleanup. Every daemon has its own default bridge
//! and address block (see `Daemon::net_block`), so tests run side by side.

use crate::common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use common::containers::{daemon_with_busybox, inspect, load_busybox};
use common::{free_port, Daemon};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// GET / from host:port; the body.
fn http_get(addr: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

/// A busybox httpd serving `text` on port 80 of the container.
fn httpd(text: &str) -> String {
    format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www")
}

fn links() -> String {
    String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

fn nft_table(d: &Daemon) -> Option<String> {
    let t = berth::network::table_name(&d.exec_root);
    let o = Command::new("nft")
        .args(["list", "table", "inet", &t])
        .output()
        .unwrap();
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn wait_http(addr: &str, want: &str) -> bool {
    common::wait_for(Duration::from_secs(10), || {
        http_get(addr).map(|b| b.contains(want)).unwrap_or(false)
    })
}

/// A static UDP echo server on port 7 of the container (busybox has no
/// UDP server): answers `echo:` and the datagram.
const UDP_ECHO: &str = r#"
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
int main(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(7);
    if (bind(s, (struct sockaddr *)&a, sizeof a)) return 1;
    char b[2048];
    memcpy(b, "echo:", 5);
    for (;;) {
        struct sockaddr_storage c;
        socklen_t l = sizeof c;
        ssize_t n = recvfrom(s, b + 5, sizeof b - 5, 0, (struct sockaddr *)&c, &l);
        if (n >= 0) sendto(s, b, n + 5, 0, (struct sockaddr *)&c, l);
    }
}
"#;

/// Runs the UDP echo server in container `name` with `args` (its `-p`s).
fn run_udp_echo(d: &Daemon, name: &str, args: &[&str]) {
    let dir = d.dir.path().join(format!("udp-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    common::cc(UDP_ECHO, &dir.join("udpecho"), &["-static", "-O1"]);
    let vol = format!("{}:/u:ro", dir.display());
    let mut a = vec!["run", "-d", "--name", name, "-v", &vol];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "/u/udpecho"]);
    d.docker_ok(&a);
}

/// Whether a datagram to `addr` comes back echoed (retried while the
/// server starts).
fn udp_echoes(addr: &str) -> bool {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let local = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let s = UdpSocket::bind(local).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    common::wait_for(Duration::from_secs(10), || {
        let _ = s.send_to(b"ping", addr);
        let mut b = [0u8; 64];
        matches!(s.recv_from(&mut b), Ok((n, _)) if &b[..n] == b"echo:ping")
    })
}

#[test]
fn udp_published_ports_carry_datagrams() {
    let d = daemon_with_busybox();
    let gw = d.gateway();
    let (p, q) = (common::free_udp_port(), common::free_udp_port());
    run_udp_echo(
        &d,
        "echo",
        &[
            "-p",
            &format!("127.0.0.1:{p}:7/udp"),
            "-p",
            &format!("{q}:7/udp"),
        ],
    );
    assert!(udp_echoes(&format!("127.0.0.1:{p}")), "{}", d.log());
    assert!(udp_echoes(&format!("127.0.0.1:{q}")));
    assert!(udp_echoes(&format!("{gw}:{q}")));
    if UdpSocket::bind("[::1]:0").is_ok() {
        assert!(udp_echoes(&format!("[::1]:{q}")));
    }
    let ports = d.docker_ok(&["port", "echo", "7/udp"]);
    assert!(
        ports.lines().any(|l| l == format!("127.0.0.1:{p}")),
        "{ports}"
    );
    assert!(
        ports.lines().any(|l| l == format!("0.0.0.0:{q}")),
        "{ports}"
    );
    d.docker_ok(&["rm", "-f", "echo"]);
    assert!(!udp_echoes_once(&format!("127.0.0.1:{p}")));
    d.stop();
}

/// One try, for checking that nothing answers any more.
fn udp_echoes_once(addr: &str) -> bool {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let _ = s.send_to(b"ping", addr);
    let mut b = [0u8; 64];
    matches!(s.recv_from(&mut b), Ok((n, _)) if &b[..n] == b"echo:ping")
}

#[test]
fn default_bridge_addresses_egress_and_published_ports() {
    let d = daemon_with_busybox();
    let gw = d.gateway();
    let prefix = gw.rsplit_once('.').unwrap().0.to_string();
    let out = d.docker_ok(&["run", "--rm", "busybox", "ip", "-4", "addr", "show", "eth0"]);
    assert!(out.contains(&format!("inet {prefix}.")), "{out}");

    // Egress to a server the test runs on the bridge's host address.
    let srv = TcpListener::bind((gw.as_str(), 0)).unwrap();
    let port = srv.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut c, _) = srv.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = c.read(&mut buf);
        c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\negress")
            .unwrap();
    });
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        &format!("http://{gw}:{port}/"),
    ]);
    assert_eq!(out, "egress");
    t.join().unwrap();

    // -p 127.0.0.1:P:80 answers on the host's loopback.
    let hp = free_port();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{hp}:80"),
        "busybox",
        "sh",
        "-c",
        &httpd("hello-web"),
    ]);
    assert!(
        wait_http(&format!("127.0.0.1:{hp}"), "hello-web"),
        "{}",
        d.log()
    );
    assert_eq!(
        d.docker_ok(&["port", "web"]).trim(),
        format!("80/tcp -> 127.0.0.1:{hp}")
    );
    assert_eq!(
        inspect(&d, "web", "{{json .NetworkSettings.Ports}}"),
        format!("{{\"80/tcp\":[{{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"{hp}\"}}]}}")
    );
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(ps.contains(&format!("web 127.0.0.1:{hp}->80/tcp")), "{ps}");

    // The same host port again: dockerd's error, nothing published.
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "web2",
        "-p",
        &format!("127.0.0.1:{hp}:80"),
        "busybox",
        "sleep",
        "60",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!(
            "Bind for 127.0.0.1:{hp} failed: port is already allocated"
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(inspect(&d, "web2", "{{.State.Status}}"), "created");
    // Its failed start left no namespace behind (web's is the only one).
    assert_eq!(
        std::fs::read_dir(d.exec_root.join("netns"))
            .unwrap()
            .count(),
        1
    );

    // -P with an exposed port: an ephemeral host port, on every address.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web3",
        "-P",
        "--expose",
        "80",
        "busybox",
        "sh",
        "-c",
        &httpd("three"),
    ]);
    let line = d.docker_ok(&["port", "web3", "80/tcp"]);
    let eph: u16 = line
        .lines()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(eph >= 32768, "{line}");
    assert!(wait_http(&format!("127.0.0.1:{eph}"), "three"));
    // Without a host address it is published on IPv6 too, as dockerd
    // does, the same port, through the proxy to the IPv4-only container.
    let v6 = TcpListener::bind("[::1]:0").is_ok();
    if v6 {
        assert_eq!(line.trim(), format!("0.0.0.0:{eph}\n[::]:{eph}"));
        assert!(wait_http(&format!("[::1]:{eph}"), "three"));
    }
    // Through the bridge's address too, and from another container (hairpin).
    assert!(wait_http(&format!("{gw}:{eph}"), "three"));
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        &format!("http://{gw}:{eph}/"),
    ]);
    assert_eq!(out.trim(), "three");
    // docker stats counts the container's interface traffic.
    let net_io = d.docker_ok(&["stats", "--no-stream", "--format", "{{.NetIO}}", "web3"]);
    assert!(!net_io.trim().starts_with("0B /"), "{net_io}");

    // Stopping a container unpublishes its port (and ends its proxy).
    d.docker_ok(&["rm", "-f", "web"]);
    let left = if v6 { 2 } else { 1 };
    assert!(common::wait_for(Duration::from_secs(3), || d
        .proxy_pids()
        .len()
        == left));
    assert!(http_get(&format!("127.0.0.1:{hp}")).is_err());
    assert!(!nft_table(&d).unwrap().contains(&format!("dport {hp} ")));
    d.docker_ok(&["rm", "-f", "web2", "web3"]);
    let bridge = berth::network::default_bridge_name(&d.exec_root);
    assert!(links().contains(&format!("{bridge}:")));
    let table = berth::network::table_name(&d.exec_root);
    d.stop();
    // Without live-restore, nothing of berth's networking stays behind.
    assert!(!links().contains(&format!("{bridge}:")), "{}", links());
    let o = Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .unwrap();
    assert!(!o.status.success(), "the nftables table is left");
}

/// A tiny DNS resolver on `addr:53` that answers `outside.example.test`
/// with 192.0.2.77 and NXDOMAIN for everything else.
fn resolver(
    addr: &str,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::thread::JoinHandle<()>,
) {
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record, RecordType};
    let sock = UdpSocket::bind((addr, 53)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    let t = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut r = Message::response(q.metadata.id, q.metadata.op_code);
            r.metadata.recursion_desired = q.metadata.recursion_desired;
            r.metadata.recursion_available = true;
            let query = q.queries[0].clone();
            r.add_query(query.clone());
            let name = query.name().to_ascii();
            if name.trim_end_matches('.') == "outside.example.test" {
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if query.query_type() == RecordType::A {
                    r.add_answer(Record::from_rdata(
                        query.name().clone(),
                        60,
                        RData::A(A("192.0.2.77".parse().unwrap())),
                    ));
                }
            } else {
                r.metadata.response_code = ResponseCode::NXDomain;
            }
            let _ = sock.send_to(&r.to_vec().unwrap(), peer);
        }
    });
    (hits, t)
}

#[test]
fn user_networks_resolve_names_and_are_isolated() {
    let d = daemon_with_busybox();
    let since = chrono_now(&d);
    let sub = d.subnet(1);
    d.docker_ok(&[
        "network", "create", "-d", "bridge", "--subnet", &sub, "appnet",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "aa",
        "--network",
        "appnet",
        "busybox",
        "sleep",
        "600",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "bb",
        "--network",
        "appnet",
        "--network-alias",
        "bee",
        "busybox",
        "sleep",
        "600",
    ]);
    let out = d.docker_ok(&["exec", "aa", "ping", "-c1", "-W2", "bb"]);
    assert!(out.contains("1 packets received"), "{out}");
    let bb_ip = inspect(&d, "bb", "{{.NetworkSettings.Networks.appnet.IPAddress}}");
    for name in ["bb", "bee", "bb.appnet"] {
        let out = d.docker_ok(&["exec", "aa", "nslookup", name]);
        assert!(out.contains(&format!("Address: {bb_ip}")), "{name}: {out}");
    }
    let short = &inspect(&d, "bb", "{{.Id}}")[..12];
    let out = d.docker_ok(&["exec", "aa", "nslookup", short]);
    assert!(out.contains(&bb_ip), "{out}");
    assert_eq!(
        d.docker_ok(&["exec", "aa", "cat", "/etc/resolv.conf"])
            .lines()
            .next(),
        Some("nameserver 127.0.0.11")
    );
    // A fixed address.
    let want = sub.replace(".0/24", ".200");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "fixed",
        "--network",
        "appnet",
        "--ip",
        &want,
        "busybox",
        "sleep",
        "600",
    ]);
    assert_eq!(
        inspect(
            &d,
            "fixed",
            "{{.NetworkSettings.Networks.appnet.IPAddress}}"
        ),
        want
    );

    // A container on the default bridge, connected later, resolves too.
    d.docker_ok(&["run", "-d", "--name", "cc", "busybox", "sleep", "600"]);
    d.docker_ok(&["network", "connect", "--alias", "sea", "appnet", "cc"]);
    let out = d.docker_ok(&["exec", "cc", "ping", "-c1", "-W2", "aa"]);
    assert!(out.contains("1 packets received"), "{out}");
    let out = d.docker_ok(&["exec", "aa", "nslookup", "sea"]);
    let cc_ip = inspect(&d, "cc", "{{.NetworkSettings.Networks.appnet.IPAddress}}");
    assert!(out.contains(&cc_ip), "{out}");
    let ips = d.docker_ok(&[
        "network",
        "inspect",
        "appnet",
        "-f",
        "{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}",
    ]);
    for n in ["aa=", "bb=", "cc=", "fixed="] {
        assert!(ips.contains(n), "{ips}");
    }
    assert!(ips.contains(&format!("bb={bb_ip}/24")), "{ips}");

    // Another network cannot reach appnet's containers.
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(2), "othernet"]);
    let aa_ip = inspect(&d, "aa", "{{.NetworkSettings.Networks.appnet.IPAddress}}");
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "othernet",
        "busybox",
        "ping",
        "-c1",
        "-W1",
        &aa_ip,
    ]);
    assert!(!o.status.success(), "othernet reached appnet");
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "othernet",
        "busybox",
        "nslookup",
        "aa",
    ]);
    assert!(!o.status.success(), "othernet resolved appnet's names");

    // Disconnect: cc no longer on appnet.
    d.docker_ok(&["network", "disconnect", "appnet", "cc"]);
    let o = d.docker(&["exec", "aa", "ping", "-c1", "-W1", &cc_ip]);
    assert!(!o.status.success());

    // Events for create, connect, disconnect, destroy.
    d.docker_ok(&["rm", "-f", "aa", "bb", "cc", "fixed"]);
    d.docker_ok(&["network", "rm", "appnet"]);
    // prune removes unused networks, never the predefined ones.
    d.docker_ok(&["network", "create", "--label", "keep=no", "unused1"]);
    let out = d.docker_ok(&["network", "prune", "-f"]);
    assert!(out.contains("othernet") && out.contains("unused1"), "{out}");
    assert_eq!(d.docker_ok(&["network", "ls", "-q"]).lines().count(), 3);
    std::thread::sleep(Duration::from_millis(1100));
    let ev = d.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &chrono_now(&d),
        "--filter",
        "type=network",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    for want in [
        "create appnet",
        "connect appnet",
        "disconnect appnet",
        "destroy appnet",
    ] {
        assert!(ev.contains(want), "missing {want}: {ev}");
    }
    d.stop();
}

fn chrono_now(d: &Daemon) -> String {
    let _ = d;
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}

#[test]
fn dns_options_forwarding_and_network_modes() {
    let d = daemon_with_busybox();
    let gw = d.gateway();
    let (hits, _t) = resolver(&gw);
    let flags = [
        "--dns",
        gw.as_str(),
        "--dns-search",
        "example.test",
        "--dns-option",
        "ndots:2",
    ];
    // Default bridge: the resolver itself in resolv.conf.
    let mut args = vec!["run", "--rm"];
    args.extend(flags);
    args.extend(["busybox", "cat", "/etc/resolv.conf"]);
    let rc = d.docker_ok(&args);
    assert!(rc.contains(&format!("nameserver {gw}\n")), "{rc}");
    assert!(rc.contains("search example.test\n"), "{rc}");
    assert!(rc.contains("options ndots:2\n"), "{rc}");
    // A user-defined network: the embedded server, which forwards.
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(1), "dnsnet"]);
    let mut args = vec!["run", "--rm", "--network", "dnsnet"];
    args.extend(flags);
    args.extend([
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup outside",
    ]);
    let out = d.docker_ok(&args);
    assert!(out.starts_with("nameserver 127.0.0.11\n"), "{out}");
    assert!(
        out.contains("search example.test\n") && out.contains("options ndots:2\n"),
        "{out}"
    );
    assert!(out.contains("Address: 192.0.2.77"), "{out}");
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) > 0);

    // none: only lo. host: the host's interfaces.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("lo:"), "{out}");
    let bridge = berth::network::default_bridge_name(&d.exec_root);
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert!(out.contains(&format!("{bridge}:")), "{out}");
    // container:<name> shares its namespace.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "owner",
        "--network",
        "dnsnet",
        "busybox",
        "sleep",
        "600",
    ]);
    let ip = inspect(
        &d,
        "owner",
        "{{.NetworkSettings.Networks.dnsnet.IPAddress}}",
    );
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        "busybox",
        "ip",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains(&format!("inet {ip}/")), "{out}");
    d.docker_ok(&["rm", "-f", "owner"]);
    d.docker_ok(&["network", "rm", "dnsnet"]);
    d.stop();
}

#[test]
fn bad_network_input_is_refused_and_nothing_is_half_created() {
    let d = daemon_with_busybox();
    let sub = d.subnet(1);
    d.docker_ok(&["network", "create", "--subnet", &sub, "goodnet"]);
    let before_fw = nft_table(&d).unwrap();
    let post = |body: serde_json::Value| {
        let b = body.to_string();
        d.raw(format!(
            "POST /v1.47/networks/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
            b.len()
        ).as_bytes())
    };
    let over = sub.replace(".0/24", ".128/25");
    let cases = [
        (
            serde_json::json!({"Name": "ov", "IPAM": {"Config": [{"Subnet": over}]}}),
            403,
            "overlaps",
        ),
        (
            serde_json::json!({"Name": "bad", "IPAM": {"Config": [{"Subnet": "10.300.0.0/24"}]}}),
            400,
            "invalid subnet",
        ),
        (
            serde_json::json!({"Name": "gw", "IPAM": {"Config": [{"Subnet": d.subnet(2), "Gateway": "192.0.2.1"}]}}),
            400,
            "gateway",
        ),
        (
            serde_json::json!({"Name": "drv", "Driver": "nosuch"}),
            404,
            "plugin \"nosuch\" not found",
        ),
        (
            serde_json::json!({"Name": "goodnet"}),
            409,
            "already exists",
        ),
        (serde_json::json!({"Name": "bridge"}), 403, "pre-defined"),
    ];
    for (body, code, msg) in cases {
        let r = post(body.clone());
        assert_eq!(r.status, code, "{body}: {}", r.text());
        assert!(
            r.json()["message"].as_str().unwrap().contains(msg),
            "{body}: {}",
            r.text()
        );
    }
    let records = std::fs::read_dir(d.data_root.join("network/networks"))
        .unwrap()
        .count();
    assert_eq!(records, 4, "a network record was left");
    assert_eq!(nft_table(&d).unwrap(), before_fw);
    let names = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(names.lines().count(), 4, "{names}");

    // In use, twice, bad --ip: refused with dockerd's codes.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "user1",
        "--network",
        "goodnet",
        "busybox",
        "sleep",
        "600",
    ]);
    let net_id = d
        .docker_ok(&["network", "inspect", "goodnet", "-f", "{{.Id}}"])
        .trim()
        .to_string();
    let veth = berth_actors::network::host_ifname(&net_id, &inspect(&d, "user1", "{{.Id}}"));
    let bridge = format!("br-{}", &net_id[..12]);
    assert!(links().contains(&format!(" {veth}@")), "{}", links());
    assert!(links().contains(&format!(" {bridge}:")));
    let o = d.docker(&["network", "rm", "goodnet"]);
    assert!(
        stderr(&o).contains("has active endpoints"),
        "{}",
        stderr(&o)
    );
    let id = inspect(&d, "user1", "{{.Id}}");
    let r =
        d.raw(b"DELETE /v1.47/networks/goodnet HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 403);
    let o = d.docker(&["network", "connect", "goodnet", "user1"]);
    assert!(
        stderr(&o).contains("already exists in network goodnet"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "goodnet",
        "--ip",
        "192.0.2.9",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    let o = d.docker(&["run", "--rm", "--ip", "10.1.2.3", "busybox", "true"]);
    assert!(
        stderr(&o).contains("user specified IP address is supported on user defined networks only"),
        "{}",
        stderr(&o)
    );
    // A network that does not exist: created (as dockerd), refused at
    // start with 404, and nothing of it is plumbed.
    let b =
        serde_json::json!({"Image": "busybox", "HostConfig": {"NetworkMode": "nonet"}}).to_string();
    let r = d.raw(format!(
        "POST /v1.47/containers/create?name=nonetc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
        b.len()
    ).as_bytes());
    assert_eq!(r.status, 201, "{}", r.text());
    let r = d.raw(b"POST /containers/nonetc/start HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "network nonet not found");
    d.docker_ok(&["rm", "nonetc"]);
    // The daemon is up; the endpoints are the one container's.
    let eps = d.docker_ok(&["network", "inspect", "goodnet", "-f", "{{len .Containers}}"]);
    assert_eq!(eps.trim(), "1");
    d.docker_ok(&["rm", "-f", &id]);
    d.docker_ok(&["network", "rm", "goodnet"]);
    // Everything removed: no berth link, rule or namespace is left.
    let l = links();
    assert!(!l.contains(&format!(" {veth}@")), "veth left: {l}");
    assert!(!l.contains(&format!(" {bridge}:")), "bridge left: {l}");
    assert_eq!(
        std::fs::read_dir(d.exec_root.join("netns"))
            .unwrap()
            .count(),
        0
    );
    assert!(!nft_table(&d).unwrap().contains("dnat ip to"));
    d.stop();
}

#[test]
fn live_restore_keeps_ports_addresses_and_names() {
    let d = Daemon::builder()
        .config(serde_json::json!({"live-restore": true}))
        .start();
    load_busybox(&d);
    let hp = free_port();
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(1), "appnet"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{hp}:80"),
        "busybox",
        "sh",
        "-c",
        &httpd("alive"),
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "target",
        "--network",
        "appnet",
        "busybox",
        "sleep",
        "600",
    ]);
    let ip = inspect(
        &d,
        "target",
        "{{.NetworkSettings.Networks.appnet.IPAddress}}",
    );
    // A pinger that prints one line per reply, by address.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "pinger",
        "--network",
        "appnet",
        "busybox",
        "ping",
        "-i",
        "0.2",
        &ip,
    ]);
    // A resolver loop: berth-dns answers while berthd is down too.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "asker",
        "--network",
        "appnet",
        "busybox",
        "sh",
        "-c",
        "while true; do if nslookup target >/dev/null 2>&1; then echo ok; else echo FAIL; fi; sleep 0.2; done",
    ]);
    assert!(wait_http(&format!("127.0.0.1:{hp}"), "alive"));
    let before = d.docker_ok(&[
        "network",
        "inspect",
        "appnet",
        "-f",
        "{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}",
    ]);
    let mut d = d;
    d.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = d.wait_exit_keep();
    // berthd is down: the published port and the containers' traffic flow.
    for _ in 0..3 {
        assert_eq!(
            http_get(&format!("127.0.0.1:{hp}")).unwrap().trim(),
            "alive"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let down_at = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(d.dns_pids().len(), 1, "berth-dns went with berthd");
    let d = d.restart();
    let down = down_at.elapsed();
    assert_eq!(d.dns_pids().len(), 1, "a second berth-dns");
    let after = d.docker_ok(&[
        "network",
        "inspect",
        "appnet",
        "-f",
        "{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}",
    ]);
    assert_eq!(before, after);
    let out = d.docker_ok(&["exec", "pinger", "nslookup", "target"]);
    assert!(out.contains(&format!("Address: {ip}")), "{out}");
    assert_eq!(
        http_get(&format!("127.0.0.1:{hp}")).unwrap().trim(),
        "alive"
    );
    // The pinger's sequence has no hole over the downtime (a reply every
    // 0.2 s: at least 2.5 s of the downtime are in the log).
    let logs = d.docker_ok(&["logs", "pinger"]);
    let seqs: Vec<u64> = logs
        .lines()
        .filter_map(|l| {
            l.split("seq=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(seqs.len() as f64 >= down.as_secs_f64() / 0.2, "{logs}");
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0] + 1, "lost replies: {logs}");
    }
    let asked = d.docker_ok(&["logs", "asker"]);
    assert!(!asked.contains("FAIL"), "a name did not resolve: {asked}");
    assert!(
        asked.lines().count() as f64 >= down.as_secs_f64() / 0.3,
        "{asked}"
    );
    d.docker_ok(&["rm", "-f", "web", "target", "pinger", "asker"]);
    d.docker_ok(&["network", "rm", "appnet"]);
    d.stop();
}

#[test]
fn kernel_dnat_without_userland_proxy() {
    let d = Daemon::builder()
        .config(serde_json::json!({"userland-proxy": false}))
        .start();
    load_busybox(&d);
    let gw = d.gateway();
    let hp = free_port();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "kweb",
        "-p",
        &format!("{hp}:80"),
        "busybox",
        "sh",
        "-c",
        &httpd("kernel"),
    ]);
    // 127.0.0.1 through route_localnet and DNAT, the bridge address, and
    // hairpin from a container of the same bridge: no proxy process.
    assert!(
        wait_http(&format!("127.0.0.1:{hp}"), "kernel"),
        "{}",
        d.log()
    );
    assert!(wait_http(&format!("{gw}:{hp}"), "kernel"));
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        &format!("http://{gw}:{hp}/"),
    ]);
    assert_eq!(out.trim(), "kernel");
    // UDP through the kernel too.
    let up = common::free_udp_port();
    run_udp_echo(&d, "kecho", &["-p", &format!("{up}:7/udp")]);
    assert!(udp_echoes(&format!("127.0.0.1:{up}")), "{}", d.log());
    assert!(udp_echoes(&format!("{gw}:{up}")));
    assert!(d.proxy_pids().is_empty());
    let fw = nft_table(&d).unwrap();
    assert!(fw.contains(&format!("tcp dport {hp} dnat ip to")), "{fw}");
    assert!(fw.contains(&format!("udp dport {up} dnat ip to")), "{fw}");
    d.docker_ok(&["rm", "-f", "kweb", "kecho"]);
    d.stop();
}

#[test]
fn ipv6_dual_stack_networks() {
    if !std::path::Path::new("/proc/net/if_inet6").exists() {
        eprintln!("IPv6 is disabled on this host: nothing to test");
        return;
    }
    // A unique local /48 of this daemon's own: fdXX:YY00::/48.
    let d0 = Daemon::prepare();
    let (x, y) = d0.net_block;
    drop(d0);
    let bridge6 = format!("fd{x:02x}:{y:02x}01::/64");
    let user6 = format!("fd{x:02x}:{y:02x}02::/64");
    let d = Daemon::builder()
        .config(serde_json::json!({"ipv6": true, "fixed-cidr-v6": bridge6}))
        .start();
    load_busybox(&d);
    // The default bridge is dual-stack.
    let out = d.docker_ok(&["run", "--rm", "busybox", "ip", "-6", "addr", "show", "eth0"]);
    let first: std::net::Ipv6Addr = bridge6.replace("::/64", "::2").parse().unwrap();
    assert!(out.contains(&format!("inet6 {first}/64")), "{out}");
    // A user-defined dual-stack network: addresses, --ip6, AAAA, ping6.
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
    let fixed = user6
        .replace("::/64", "::99")
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .to_string();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "six1",
        "--network",
        "net6",
        "busybox",
        "sleep",
        "600",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "six2",
        "--network",
        "net6",
        "--ip6",
        &fixed,
        "busybox",
        "sleep",
        "600",
    ]);
    assert_eq!(
        inspect(
            &d,
            "six2",
            "{{.NetworkSettings.Networks.net6.GlobalIPv6Address}}"
        ),
        fixed
    );
    let out = d.docker_ok(&["exec", "six1", "nslookup", "-type=aaaa", "six2"]);
    assert!(out.contains(&format!("Address: {fixed}")), "{out}");
    let out = d.docker_ok(&["exec", "six1", "ping6", "-c1", "-W2", "six2"]);
    assert!(out.contains("1 packets received"), "{out}");
    let ips = d.docker_ok(&[
        "network",
        "inspect",
        "net6",
        "-f",
        "{{.EnableIPv6}} {{range .Containers}}{{.IPv6Address}} {{end}}",
    ]);
    assert!(
        ips.starts_with("true ") && ips.contains(&format!("{fixed}/64")),
        "{ips}"
    );
    // An IPv6 host address published to the container's IPv6 address.
    let hp = free_port();
    let gw6 = user6
        .replace("::/64", "::1")
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .to_string();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web6",
        "--network",
        "net6",
        "-p",
        &format!("[{gw6}]:{hp}:80"),
        "busybox",
        "sh",
        "-c",
        &httpd("six"),
    ]);
    assert!(wait_http(&format!("[{gw6}]:{hp}"), "six"), "{}", d.log());
    // IPv6 refused without --ipv6; overlapping IPv6 subnets refused.
    let o = d.docker(&[
        "network",
        "create",
        "--subnet",
        &user6.replace("02::", "03::"),
        "no6",
    ]);
    assert!(stderr(&o).contains("IPv6 is not enabled"), "{}", stderr(&o));
    let o = d.docker(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &d.subnet(2),
        "--subnet",
        &user6,
        "dup6",
    ]);
    assert!(stderr(&o).contains("overlaps"), "{}", stderr(&o));
    d.docker_ok(&["rm", "-f", "six1", "six2", "web6"]);
    d.docker_ok(&["network", "rm", "net6"]);
    d.stop();
}

#[test]
fn icc_off_isolates_containers_of_the_default_bridge() {
    let d = Daemon::builder()
        .config(serde_json::json!({"icc": false}))
        .start();
    load_busybox(&d);
    d.docker_ok(&["run", "-d", "--name", "icc1", "busybox", "sleep", "600"]);
    let ip = inspect(&d, "icc1", "{{.NetworkSettings.IPAddress}}");
    let o = d.docker(&["run", "--rm", "busybox", "ping", "-c1", "-W1", &ip]);
    if std::path::Path::new("/proc/sys/net/bridge").exists() {
        assert!(!o.status.success(), "icc=false let containers talk");
    } else {
        // Without br_netfilter the kernel never shows bridged traffic to
        // nftables' inet tables: berthd says so.
        assert!(
            d.log().contains("br_netfilter is not loaded"),
            "{}",
            d.log()
        );
    }
    // The host (gateway) is still reachable.
    let out = d.docker_ok(&["run", "--rm", "busybox", "ping", "-c1", "-W2", &d.gateway()]);
    assert!(out.contains("1 packets received"), "{out}");
    d.docker_ok(&["rm", "-f", "icc1"]);
    d.stop();
}

/// Roots given through symlinks (Debian's `/var/run` is a link to `/run`):
/// berthd finds its proxies and its berth-dns by their working directory,
/// which the kernel reports without links, so it resolves its roots first.
/// Before that fix a removed container's proxy was left running, a second
/// berth-dns was started and neither was stopped with berthd.
#[test]
fn roots_behind_symlinks_leave_no_proxy_or_dns_behind() {
    let d = Daemon::builder().roots_behind_symlinks().start();
    load_busybox(&d);
    d.docker_ok(&["network", "create", "--subnet", &d.subnet(1), "linknet"]);
    let hp = free_port();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "lweb",
        "--network",
        "linknet",
        "-p",
        &format!("127.0.0.1:{hp}:80"),
        "busybox",
        "sh",
        "-c",
        &httpd("linked"),
    ]);
    assert!(wait_http(&format!("127.0.0.1:{hp}"), "linked"));
    assert_eq!(d.proxy_pids().len(), 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(d.dns_pids().len(), 1, "berth-dns started twice");
    d.docker_ok(&["rm", "-f", "lweb"]);
    assert!(
        common::wait_for(Duration::from_secs(3), || d.proxy_pids().is_empty()),
        "the removed container's proxy is still running"
    );
    d.docker_ok(&["network", "rm", "linknet"]);
    let dns = d.dns_pids();
    d.stop();
    for pid in dns {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map(|s| s.contains(") Z "))
                    .unwrap_or(true),
            "berth-dns {pid} outlived berthd"
        );
    }
}
