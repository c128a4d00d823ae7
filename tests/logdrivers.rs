//! Logging drivers through the docker CLI, each against a real receiver
//! the test runs on loopback or a unix socket: `local` (files, rotation,
//! `docker logs`), syslog (udp, tcp, tcp+tls, unix, unixgram; the three
//! formats), GELF (udp gzip/zlib/chunked, tcp), fluentd (forward
//! protocol, acks, async), journald (the native protocol on a datagram
//! socket standing in for journald's), 100,000 lines counted at every
//! receiver, and a receiver that is down: the container never waits, the
//! drops are counted, `docker logs` reads the dual-logging cache.

use crate::common;

use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::containers::*;
use common::*;
use serde_json::Value;

type Got = Arc<Mutex<Vec<Vec<u8>>>>;

fn got() -> Got {
    Arc::new(Mutex::new(Vec::new()))
}

fn count(g: &Got) -> usize {
    g.lock().unwrap().len()
}

fn texts(g: &Got) -> Vec<String> {
    g.lock()
        .unwrap()
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect()
}

/// Wait until `g` holds `n` messages (at most 60 s).
fn wait_count(g: &Got, n: usize) -> usize {
    wait_for(Duration::from_secs(60), || count(g) >= n);
    count(g)
}

/// Datagrams on a UDP port.
fn udp_receiver() -> (u16, Got) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    let g = got();
    let g2 = g.clone();
    std::thread::spawn(move || {
        let mut b = vec![0u8; 65536];
        while let Ok(n) = s.recv(&mut b) {
            g2.lock().unwrap().push(b[..n].to_vec());
        }
    });
    (port, g)
}

/// Messages on a stream, split at `sep`, from every connection.
fn stream_receiver<S: Read + Send + 'static>(
    accept: impl Fn() -> Option<S> + Send + 'static,
    sep: u8,
) -> Got {
    let g = got();
    let g2 = g.clone();
    std::thread::spawn(move || {
        while let Some(conn) = accept() {
            let g3 = g2.clone();
            std::thread::spawn(move || {
                let mut r = std::io::BufReader::new(conn);
                loop {
                    let mut m = Vec::new();
                    match r.read_until(sep, &mut m) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {
                            if m.last() == Some(&sep) {
                                m.pop();
                            }
                            g3.lock().unwrap().push(m);
                        }
                    }
                }
            });
        }
    });
    g
}

fn tcp_receiver(sep: u8) -> (u16, Got) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (
        port,
        stream_receiver(move || l.accept().ok().map(|c| c.0), sep),
    )
}

fn unix_receiver(path: &Path, sep: u8) -> Got {
    let l = UnixListener::bind(path).unwrap();
    stream_receiver(move || l.accept().ok().map(|c| c.0), sep)
}

fn unixgram_receiver(path: &Path) -> Got {
    let s = UnixDatagram::bind(path).unwrap();
    let g = got();
    let g2 = g.clone();
    std::thread::spawn(move || {
        let mut b = vec![0u8; 1 << 17];
        while let Ok(n) = s.recv(&mut b) {
            g2.lock().unwrap().push(b[..n].to_vec());
        }
    });
    g
}

fn metrics_value(text: &str, name: &str, driver: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && l.contains(&format!("driver=\"{driver}\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn local_driver_files_rotation_and_logs() {
    let d = daemon_with_busybox();
    d.docker_ok(&[
        "run",
        "--name",
        "loc",
        "--log-driver",
        "local",
        "--log-opt",
        "max-size=20k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "seq 1 20000; echo oops >&2",
    ]);
    assert_eq!(inspect(&d, "loc", "{{.LogPath}}"), "");
    assert_eq!(
        inspect(&d, "loc", "{{json .HostConfig.LogConfig}}"),
        r#"{"Type":"local","Config":{"max-file":"3","max-size":"20k"}}"#
    );
    let id = inspect(&d, "loc", "{{.Id}}");
    let dir = d.data_root.join("containers").join(&id).join("local-logs");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["container.log", "container.log.1.gz", "container.log.2.gz"]
    );
    // Three files of at most 20 kB (decimal, as moby's local driver) hold
    // the newest lines; docker logs reads them oldest first.
    let out = d.docker(&["logs", "loc"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<u64> = text.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(*lines.last().unwrap(), 20000);
    assert!(
        lines.windows(2).all(|w| w[1] == w[0] + 1),
        "a gap in the lines"
    );
    assert!(lines.len() > 1000 && lines.len() < 20000, "{}", lines.len());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    // The last 3 entries: two lines of stdout and the one of stderr.
    assert_eq!(
        d.docker_ok(&["logs", "--tail", "3", "loc"]),
        "19999\n20000\n"
    );
    let ts = d.docker_ok(&["logs", "-t", "--tail", "2", "loc"]);
    assert!(ts.ends_with("Z 20000\n") && ts.len() == 37, "{ts:?}");
    // The daemon's default driver, and dockerd's checks of its options.
    let bad = d.docker(&[
        "create",
        "--log-driver",
        "local",
        "--log-opt",
        "max-file=1",
        "busybox",
    ]);
    assert!(String::from_utf8_lossy(&bad.stderr)
        .contains("failed to initialize logging driver: compression cannot be enabled when max file count is 1"));
    let bad = d.docker(&["create", "--log-driver", "bogus", "busybox"]);
    assert!(String::from_utf8_lossy(&bad.stderr)
        .contains("error looking up logging plugin bogus: plugin \"bogus\" not found"));
    let bad = d.docker(&[
        "create",
        "--log-driver",
        "syslog",
        "--log-opt",
        "foo=1",
        "busybox",
    ]);
    assert!(String::from_utf8_lossy(&bad.stderr)
        .contains("unknown log opt 'foo' for syslog log driver"));
    let bad = d.docker(&["create", "--log-opt", "max-buffer-size=1m", "busybox"]);
    assert!(String::from_utf8_lossy(&bad.stderr)
        .contains("logger: max-buffer-size option is only supported with 'mode=non-blocking'"));
    let plugins = d.docker_ok(&["info", "-f", "{{json .Plugins.Log}}"]);
    assert_eq!(
        plugins.trim(),
        r#"["fluentd","gelf","journald","json-file","local","syslog"]"#
    );
    d.docker_ok(&["rm", "loc"]);
    assert!(!dir.exists());
}

#[test]
fn syslog_transports_formats_and_tags() {
    let d = daemon_with_busybox();
    let tmp = tempfile::tempdir().unwrap();
    let (udp_port, udp) = udp_receiver();
    let (tcp_port, tcp) = tcp_receiver(b'\n');
    let gram_path = tmp.path().join("gram.sock");
    let gram = unixgram_receiver(&gram_path);
    let stream_path = tmp.path().join("stream.sock");
    let stream = unix_receiver(&stream_path, b'\n');
    let run = |name: &str, opts: &[String]| {
        let mut args = vec!["run", "--name", name, "--log-driver", "syslog"];
        for o in opts {
            args.push("--log-opt");
            args.push(o);
        }
        args.extend(["busybox", "sh", "-c", "echo out; echo err >&2"]);
        // Attached output still reaches the client (the cache and the
        // stdio are apart from the driver).
        let o = d.docker(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
        inspect(&d, name, "{{.Id}}")[..12].to_string()
    };
    let id = run(
        "s1",
        &[
            format!("syslog-address=udp://127.0.0.1:{udp_port}"),
            "syslog-format=rfc5424micro".into(),
            "syslog-facility=local0".into(),
            "tag={{.Name}}/{{.ImageName}}".into(),
        ],
    );
    assert_eq!(wait_count(&udp, 2), 2);
    let mut m = texts(&udp);
    m.sort();
    // <facility 16 * 8 + severity>1 time host tag pid tag - msg
    // The host's name in the hostname field, as dockerd's srslog writes it.
    let host = nix::unistd::gethostname().unwrap();
    let re = regex::Regex::new(&format!(
        r"^<(\d+)>1 \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{{1,6}})?(Z|[+-]\d\d:\d\d) {} s1/busybox (\d+) s1/busybox - (out|err)\n$",
        regex::escape(&host.to_string_lossy())
    ))
    .unwrap();
    let c0 = re.captures(&m[0]).unwrap_or_else(|| panic!("{:?}", m[0]));
    assert_eq!((&c0[1], &c0[5]), ("131", "err"));
    let c1 = re.captures(&m[1]).unwrap_or_else(|| panic!("{:?}", m[1]));
    assert_eq!((&c1[1], &c1[5]), ("134", "out"));
    let _ = id;

    let id = run(
        "s2",
        &[
            format!("syslog-address=tcp://127.0.0.1:{tcp_port}"),
            "syslog-format=rfc3164".into(),
        ],
    );
    assert_eq!(wait_count(&tcp, 2), 2);
    let re = regex::Regex::new(&format!(
        r"^<(\d+)>[A-Z][a-z]{{2}} [ \d]\d \d\d:\d\d:\d\d \S+ {id}\[\d+\]: (out|err)$"
    ))
    .unwrap();
    for t in texts(&tcp) {
        let c = re.captures(&t).unwrap_or_else(|| panic!("{t:?}"));
        assert_eq!(&c[1], if &c[2] == "out" { "30" } else { "27" });
    }

    let id = run(
        "s3",
        &[format!("syslog-address=unixgram://{}", gram_path.display())],
    );
    assert_eq!(wait_count(&gram, 2), 2);
    let re = regex::Regex::new(&format!(
        r"^<(30|27)>[A-Z][a-z]{{2}} [ \d]\d \d\d:\d\d:\d\d {id}\[\d+\]: (out|err)\n$"
    ))
    .unwrap();
    for t in texts(&gram) {
        assert!(re.is_match(&t), "{t:?}");
    }
    run(
        "s4",
        &[format!("syslog-address=unix://{}", stream_path.display())],
    );
    assert_eq!(wait_count(&stream, 2), 2);

    // tcp+tls with the CA the receiver's certificate comes from; rfc5424
    // frames by octet counting there.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let srv_key = rcgen::KeyPair::generate().unwrap();
    let srv_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&srv_key, &issuer)
        .unwrap();
    let ca_path = tmp.path().join("ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    let tls = got();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let tls_port = l.local_addr().unwrap().port();
    {
        let cfg = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![srv_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(srv_key.serialize_der()).unwrap(),
            )
            .unwrap(),
        );
        let tls = tls.clone();
        std::thread::spawn(move || {
            while let Ok((sock, _)) = l.accept() {
                let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
                let mut s = rustls::StreamOwned::new(conn, sock);
                let mut all = Vec::new();
                let _ = s.read_to_end(&mut all);
                tls.lock().unwrap().push(all);
            }
        });
    }
    run(
        "s5",
        &[
            format!("syslog-address=tcp+tls://127.0.0.1:{tls_port}"),
            format!("syslog-tls-ca-cert={}", ca_path.display()),
            "syslog-format=rfc5424".into(),
        ],
    );
    assert_eq!(wait_count(&tls, 1), 1);
    let all = texts(&tls).remove(0);
    // "LEN <...>\n" twice, each length counting its message.
    let mut rest = all.as_str();
    let mut msgs = Vec::new();
    while !rest.is_empty() {
        let (n, r) = rest.split_once(' ').unwrap();
        let n: usize = n.parse().unwrap();
        msgs.push(r[..n].to_string());
        rest = &r[n..];
    }
    assert_eq!(msgs.len(), 2, "{all:?}");
    assert!(msgs
        .iter()
        .all(|m| m.starts_with("<30>1 ") || m.starts_with("<27>1 ")));

    // A receiver that refuses: the start fails as dockerd's does.
    let port = free_port();
    let o = d.docker(&[
        "run",
        "--log-driver",
        "syslog",
        "--log-opt",
        &format!("syslog-address=tcp://127.0.0.1:{port}"),
        "busybox",
        "true",
    ]);
    // Word for word dockerd's (no task was made).
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!(
        "Error response from daemon: failed to initialize logging driver: dial tcp 127.0.0.1:{port}: connect: connection refused\n"
    )), "{}", String::from_utf8_lossy(&o.stderr));
    // docker logs reads the dual-logging cache.
    assert_eq!(d.docker_ok(&["logs", "s2"]), "out\n");
}

#[test]
fn gelf_over_udp_and_tcp() {
    let d = daemon_with_busybox();
    let (udp_port, udp) = udp_receiver();
    let (tcp_port, tcp) = tcp_receiver(0);
    let long = "x".repeat(6000);
    let script = format!("echo '  out  '; echo {long} >&2; head -c 3000 /dev/urandom | od -A n -t x1 | tr -d ' \\n' | head -c 4000; echo");
    for (name, ty) in [("g1", "gzip"), ("g2", "zlib")] {
        d.docker_ok(&[
            "run",
            "--name",
            name,
            "--label",
            "team=a",
            "--log-opt",
            "labels=team",
            "--log-driver",
            "gelf",
            "--log-opt",
            &format!("gelf-address=udp://127.0.0.1:{udp_port}"),
            "--log-opt",
            &format!("gelf-compression-type={ty}"),
            "busybox",
            "sh",
            "-c",
            &script,
        ]);
    }
    // Decompress; reassemble chunked messages by their id.
    wait_for(Duration::from_secs(20), || count(&udp) >= 6);
    let mut chunks: std::collections::BTreeMap<Vec<u8>, Vec<(u8, Vec<u8>)>> = Default::default();
    let mut whole = Vec::new();
    for dgram in udp.lock().unwrap().iter() {
        if dgram[..2] == [0x1e, 0x0f] {
            chunks
                .entry(dgram[2..10].to_vec())
                .or_default()
                .push((dgram[10], dgram[12..].to_vec()));
        } else {
            whole.push(dgram.clone());
        }
    }
    for (_, mut c) in chunks {
        c.sort();
        whole.push(c.into_iter().flat_map(|(_, b)| b).collect());
    }
    let mut msgs: Vec<Value> = whole
        .iter()
        .map(|b| {
            let mut out = Vec::new();
            if b[..2] == [0x1f, 0x8b] {
                flate2::read::GzDecoder::new(&b[..])
                    .read_to_end(&mut out)
                    .unwrap();
            } else {
                flate2::read::ZlibDecoder::new(&b[..])
                    .read_to_end(&mut out)
                    .unwrap();
            }
            serde_json::from_slice(&out).unwrap()
        })
        .collect();
    assert_eq!(msgs.len(), 6, "{msgs:?}");
    msgs.sort_by_key(|m| {
        (
            m["_container_name"].to_string(),
            m["short_message"].as_str().unwrap_or("").len(),
        )
    });
    let id = inspect(&d, "g1", "{{.Id}}");
    let image = inspect(&d, "g1", "{{.Image}}");
    let created = inspect(&d, "g1", "{{.Created}}");
    let m = &msgs[0];
    assert_eq!(m["version"], "1.1");
    assert_eq!(m["short_message"], "  out  ");
    assert_eq!(m["level"], 6);
    assert_eq!(m["_container_id"], id.as_str());
    assert_eq!(m["_container_name"], "g1");
    assert_eq!(m["_image_id"], image.as_str());
    assert_eq!(m["_image_name"], "busybox");
    assert_eq!(m["_tag"], &id[..12]);
    assert_eq!(m["_team"], "a");
    assert_eq!(m["_created"], created.as_str());
    assert!(m["_command"]
        .as_str()
        .unwrap()
        .starts_with("sh -c echo '  out  '"));
    assert!(m["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(m["timestamp"].as_f64().unwrap() > 1.7e9);
    assert_eq!(msgs[2]["short_message"].as_str().unwrap(), long);
    assert_eq!(msgs[2]["level"], 3);
    assert_eq!(msgs[1]["short_message"].as_str().unwrap().len(), 4000);

    d.docker_ok(&[
        "run",
        "--name",
        "g3",
        "--log-driver",
        "gelf",
        "--log-opt",
        &format!("gelf-address=tcp://127.0.0.1:{tcp_port}"),
        "busybox",
        "sh",
        "-c",
        "echo a; echo b",
    ]);
    assert_eq!(wait_count(&tcp, 2), 2);
    let m: Vec<Value> = texts(&tcp)
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    assert_eq!(m[0]["short_message"], "a");
    assert_eq!(m[1]["short_message"], "b");
    let bad = d.docker(&[
        "create",
        "--log-driver",
        "gelf",
        "--log-opt",
        "gelf-address=tcp://127.0.0.1:1",
        "--log-opt",
        "gelf-compression-type=gzip",
        "busybox",
    ]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("compression is only supported on UDP"));
}

/// A MessagePack value, as much as the forward protocol uses.
#[derive(Debug, Clone, PartialEq)]
enum Mp {
    Int(u64),
    Str(String),
    Arr(Vec<Mp>),
    Map(Vec<(Mp, Mp)>),
    Ext(i8, Vec<u8>),
}

fn mp_read(r: &mut impl Read) -> std::io::Result<Mp> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    let mut take = |n: usize| -> std::io::Result<Vec<u8>> {
        let mut v = vec![0u8; n];
        r.read_exact(&mut v)?;
        Ok(v)
    };
    let be = |v: &[u8]| v.iter().fold(0u64, |a, x| a << 8 | u64::from(*x));
    Ok(match b[0] {
        x @ 0x00..=0x7f => Mp::Int(u64::from(x)),
        x @ 0xa0..=0xbf => Mp::Str(String::from_utf8_lossy(&take((x & 0x1f) as usize)?).into()),
        0xd9 => {
            let n = take(1)?[0] as usize;
            Mp::Str(String::from_utf8_lossy(&take(n)?).into())
        }
        0xda => {
            let n = be(&take(2)?) as usize;
            Mp::Str(String::from_utf8_lossy(&take(n)?).into())
        }
        0xdb => {
            let n = be(&take(4)?) as usize;
            Mp::Str(String::from_utf8_lossy(&take(n)?).into())
        }
        0xce => Mp::Int(be(&take(4)?)),
        0xcf => Mp::Int(be(&take(8)?)),
        0xd7 => {
            let t = take(9)?;
            Mp::Ext(t[0] as i8, t[1..].to_vec())
        }
        x @ 0x90..=0x9f => {
            let n = (x & 0x0f) as usize;
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(mp_read(r)?);
            }
            Mp::Arr(v)
        }
        x @ 0x80..=0x8f => {
            let n = (x & 0x0f) as usize;
            let mut v = Vec::new();
            for _ in 0..n {
                v.push((mp_read(r)?, mp_read(r)?));
            }
            Mp::Map(v)
        }
        x => {
            return Err(std::io::Error::other(format!(
                "unexpected msgpack byte {x:#x}"
            )));
        }
    })
}

fn mp_get<'a>(m: &'a Mp, k: &str) -> Option<&'a Mp> {
    match m {
        Mp::Map(v) => v
            .iter()
            .find(|(kk, _)| *kk == Mp::Str(k.into()))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// A fluentd forward receiver: every message, answering acks.
fn fluentd_receiver(l: TcpListener) -> Arc<Mutex<Vec<Mp>>> {
    let g = Arc::new(Mutex::new(Vec::new()));
    let g2 = g.clone();
    std::thread::spawn(move || {
        while let Ok((conn, _)) = l.accept() {
            let g3 = g2.clone();
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let mut r = std::io::BufReader::new(conn);
                while let Ok(m) = mp_read(&mut r) {
                    if let Mp::Arr(v) = &m {
                        if let Some(Mp::Str(chunk)) = v.get(3).and_then(|o| mp_get(o, "chunk")) {
                            let mut ack =
                                vec![0x81, 0xa3, b'a', b'c', b'k', 0xa0 | chunk.len() as u8];
                            ack.extend_from_slice(chunk.as_bytes());
                            let _ = w.write_all(&ack);
                        }
                    }
                    g3.lock().unwrap().push(m);
                }
            });
        }
    });
    g
}

#[test]
fn fluentd_forward_protocol_acks_and_async() {
    let d = daemon_with_busybox();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let f = fluentd_receiver(l);
    d.docker_ok(&[
        "run",
        "--name",
        "f1",
        "--label",
        "app=web",
        "--log-opt",
        "labels=app",
        "--log-driver",
        "fluentd",
        "--log-opt",
        &format!("fluentd-address=127.0.0.1:{port}"),
        "--log-opt",
        "tag=docker.{{.Name}}",
        "--log-opt",
        "fluentd-request-ack=true",
        "--log-opt",
        "fluentd-sub-second-precision=true",
        "busybox",
        "sh",
        "-c",
        "echo hello; echo oops >&2",
    ]);
    wait_for(Duration::from_secs(20), || f.lock().unwrap().len() >= 2);
    let id = inspect(&d, "f1", "{{.Id}}");
    let msgs = f.lock().unwrap().clone();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    for m in &msgs {
        let Mp::Arr(v) = m else { panic!("{m:?}") };
        assert_eq!(v[0], Mp::Str("docker.f1".into()));
        assert!(matches!(&v[1], Mp::Ext(0, b) if b.len() == 8));
        let rec = &v[2];
        assert_eq!(mp_get(rec, "container_id"), Some(&Mp::Str(id.clone())));
        assert_eq!(mp_get(rec, "container_name"), Some(&Mp::Str("/f1".into())));
        assert_eq!(mp_get(rec, "app"), Some(&Mp::Str("web".into())));
        let (src, log) = (mp_get(rec, "source").unwrap(), mp_get(rec, "log").unwrap());
        match src {
            Mp::Str(s) if s == "stdout" => assert_eq!(log, &Mp::Str("hello".into())),
            Mp::Str(s) if s == "stderr" => assert_eq!(log, &Mp::Str("oops".into())),
            other => panic!("{other:?}"),
        }
        assert!(mp_get(&v[3], "chunk").is_some());
    }
    // fluentd-async: the container starts while the receiver is down; the
    // lines reach it once it listens.
    let port2 = free_port();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "f2",
        "--log-driver",
        "fluentd",
        "--log-opt",
        &format!("fluentd-address=tcp://127.0.0.1:{port2}"),
        "--log-opt",
        "fluentd-async=true",
        "--log-opt",
        "fluentd-retry-wait=100ms",
        "busybox",
        "sh",
        "-c",
        "sleep 1; echo late",
    ]);
    let l2 = TcpListener::bind(("127.0.0.1", port2)).unwrap();
    let f2 = fluentd_receiver(l2);
    wait_for(Duration::from_secs(20), || !f2.lock().unwrap().is_empty());
    let m = f2.lock().unwrap().clone();
    let Some(Mp::Arr(v)) = m.first() else {
        panic!("{m:?}")
    };
    assert!(matches!(v[1], Mp::Int(t) if t > 1_700_000_000));
    assert_eq!(mp_get(&v[2], "log"), Some(&Mp::Str("late".into())));
    assert_eq!(d.docker_ok(&["logs", "f2"]), "late\n");
}

/// journald's socket is a test's datagram socket (BERTH_JOURNALD_SOCKET).
#[test]
fn journald_native_protocol() {
    let mut d = Daemon::prepare();
    let sock = d.dir.path().join("journal.sock");
    let j = unixgram_receiver(&sock);
    d.extra_args = vec!["-H".into(), d.docker_host()];
    let mut cmd = d.command();
    cmd.args(&d.extra_args).env("BERTH_JOURNALD_SOCKET", &sock);
    let d = d.spawn(cmd);
    load_busybox(&d);
    d.docker_ok(&[
        "run",
        "--name",
        "j1",
        "--log-driver",
        "journald",
        "--log-opt",
        "env=STAGE",
        "-e",
        "STAGE=prod",
        "busybox",
        "sh",
        "-c",
        "printf 'a\\nb\\n'; echo err >&2",
    ]);
    assert_eq!(wait_count(&j, 3), 3);
    let id = inspect(&d, "j1", "{{.Id}}");
    let mut seen = Vec::new();
    for m in texts(&j) {
        let fields: std::collections::BTreeMap<&str, &str> =
            m.lines().filter_map(|l| l.split_once('=')).collect();
        assert_eq!(fields["CONTAINER_ID"], &id[..12]);
        assert_eq!(fields["CONTAINER_ID_FULL"], id);
        assert_eq!(fields["CONTAINER_NAME"], "j1");
        assert_eq!(fields["CONTAINER_TAG"], &id[..12]);
        assert_eq!(fields["SYSLOG_IDENTIFIER"], &id[..12]);
        assert_eq!(fields["IMAGE_NAME"], "busybox");
        assert_eq!(fields["STAGE"], "prod");
        seen.push((
            fields["MESSAGE"].to_string(),
            fields["PRIORITY"].to_string(),
        ));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("a".into(), "6".into()),
            ("b".into(), "6".into()),
            ("err".into(), "3".into())
        ]
    );
    assert_eq!(d.docker_ok(&["logs", "j1"]), "a\nb\n");
    // cache-disabled: nothing to read, as dockerd (501).
    d.docker_ok(&[
        "run",
        "--name",
        "j2",
        "--log-driver",
        "journald",
        "--log-opt",
        "cache-disabled=true",
        "busybox",
        "true",
    ]);
    let r = d.get("/containers/j2/logs?stdout=1");
    assert_eq!(r.status, 501);
    assert_eq!(
        r.json()["message"],
        "configured logging driver does not support reading"
    );
}

/// 100,000 lines through every driver to its receiver: each receiver
/// counts them all, in order, and the metrics say so.
#[test]
fn a_hundred_thousand_lines_reach_every_receiver() {
    let mut d = Daemon::prepare();
    let sock = d.dir.path().join("journal.sock");
    let j = unixgram_receiver(&sock);
    let mport = free_port();
    d.write_config(&serde_json::json!({"metrics-addr": format!("127.0.0.1:{mport}")}));
    d.extra_args = vec!["-H".into(), d.docker_host()];
    let mut cmd = d.command();
    cmd.args(&d.extra_args).env("BERTH_JOURNALD_SOCKET", &sock);
    let d = d.spawn(cmd);
    load_busybox(&d);
    let (sp, syslog) = tcp_receiver(b'\n');
    let (gp, gelf) = tcp_receiver(0);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let fp = l.local_addr().unwrap().port();
    let fluent = fluentd_receiver(l);
    let n = 100_000;
    let seq = format!("seq 1 {n}");
    for (name, driver, opt) in [
        (
            "c-syslog",
            "syslog",
            format!("syslog-address=tcp://127.0.0.1:{sp}"),
        ),
        (
            "c-gelf",
            "gelf",
            format!("gelf-address=tcp://127.0.0.1:{gp}"),
        ),
        (
            "c-fluentd",
            "fluentd",
            format!("fluentd-address=127.0.0.1:{fp}"),
        ),
        ("c-journald", "journald", "tag=j".to_string()),
        ("c-local", "local", "max-size=100m".to_string()),
    ] {
        d.docker_ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--log-driver",
            driver,
            "--log-opt",
            &opt,
            "busybox",
            "sh",
            "-c",
            &seq,
        ]);
    }
    for name in ["c-syslog", "c-gelf", "c-fluentd", "c-journald", "c-local"] {
        assert_eq!(d.docker_ok(&["wait", name]).trim(), "0");
    }
    assert_eq!(wait_count(&syslog, n), n);
    assert_eq!(wait_count(&gelf, n), n);
    assert_eq!(wait_count(&j, n), n);
    wait_for(Duration::from_secs(60), || {
        fluent.lock().unwrap().len() >= n
    });
    assert_eq!(fluent.lock().unwrap().len(), n);
    let last = texts(&syslog).pop().unwrap();
    assert!(last.ends_with(&format!(": {n}")), "{last}");
    let v: Value = serde_json::from_str(&texts(&gelf).pop().unwrap()).unwrap();
    assert_eq!(v["short_message"], n.to_string());
    for name in ["c-syslog", "c-local", "c-journald"] {
        let out = d.docker(&["logs", "--tail", "1", name]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{n}\n"),
            "{name}"
        );
    }
    // The shims' counters, through the metrics endpoint.
    wait_for(Duration::from_secs(10), || {
        let t = http_get(mport, "/metrics");
        ["syslog", "gelf", "fluentd", "journald", "local"]
            .iter()
            .all(|dr| metrics_value(&t, "berth_log_lines_written_total", dr) == n as u64)
    });
    let t = http_get(mport, "/metrics");
    for dr in ["syslog", "gelf", "fluentd", "journald", "local"] {
        assert_eq!(
            metrics_value(&t, "berth_log_lines_written_total", dr),
            n as u64,
            "{dr}"
        );
        assert_eq!(
            metrics_value(&t, "berth_log_lines_dropped_total", dr),
            0,
            "{dr}"
        );
    }
}

fn http_get(port: u16, path: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A receiver that stops reading: the container still runs at full speed
/// to its end, what does not fit the buffer is dropped and counted (the
/// metric and the shim's warning), and `docker logs` has every line from
/// the cache.
#[test]
fn a_stuck_receiver_never_blocks_the_container() {
    let mport = free_port();
    let d = Daemon::builder()
        .config(serde_json::json!({"metrics-addr": format!("127.0.0.1:{mport}")}))
        .start();
    load_busybox(&d);
    // Accepts, then never reads: the socket buffers fill.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let h2 = held.clone();
    std::thread::spawn(move || {
        while let Ok((c, _)) = l.accept() {
            h2.lock().unwrap().push(c);
        }
    });
    let n = 400_000;
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "stuck",
        "--log-driver",
        "syslog",
        "--log-opt",
        &format!("syslog-address=tcp://127.0.0.1:{port}"),
        "--log-opt",
        "mode=non-blocking",
        "--log-opt",
        "max-buffer-size=64k",
        "busybox",
        "sh",
        "-c",
        &format!("seq 1 {n} | sed 's/$/ padding the line to be longer/'"),
    ]);
    assert!(wait_inspect(
        &d,
        "stuck",
        "{{.State.Status}}",
        "exited",
        Duration::from_secs(60)
    ));
    let out = d.docker(&["logs", "--tail", "1", "stuck"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{n} padding the line to be longer\n")
    );
    assert_eq!(d.docker_ok(&["logs", "stuck"]).lines().count(), n);
    wait_for(Duration::from_secs(10), || {
        metrics_value(
            &http_get(mport, "/metrics"),
            "berth_log_lines_dropped_total",
            "syslog",
        ) > 0
    });
    let t = http_get(mport, "/metrics");
    let dropped = metrics_value(&t, "berth_log_lines_dropped_total", "syslog");
    let written = metrics_value(&t, "berth_log_lines_written_total", "syslog");
    assert!(dropped > 1000, "dropped {dropped}, written {written}");
    // berthd's log names the container and the count when its run ends.
    let id = inspect(&d, "stuck", "{{.Id}}");
    assert!(wait_for(Duration::from_secs(60), || d.log().lines().any(
        |l| l.contains("log entries of this container were dropped") && l.contains(&id)
    )));
    drop(held);
}

/// live-restore with a remote driver: berthd SIGKILLed while a container
/// logs to a syslog receiver; the shim holds the connection, so every line
/// written while berthd is down arrives, in order, none twice.
#[test]
fn lines_keep_reaching_the_receiver_while_berthd_is_down() {
    let mut d = Daemon::builder()
        .config(serde_json::json!({"live-restore": true}))
        .start();
    load_busybox(&d);
    let (port, got) = tcp_receiver(b'\n');
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "--log-driver",
        "syslog",
        "--log-opt",
        &format!("syslog-address=tcp://127.0.0.1:{port}"),
        "--log-opt",
        "tag=t",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo $i; sleep 0.05; done",
    ]);
    assert!(wait_for(Duration::from_secs(20), || count(&got) >= 5));
    d.signal(nix::sys::signal::Signal::SIGKILL);
    d.wait_exit_keep();
    let at_kill = count(&got);
    // The container finishes while berthd is down; its lines keep coming.
    assert!(
        wait_for(Duration::from_secs(30), || count(&got) >= 60),
        "{}",
        count(&got)
    );
    assert!(at_kill < 60, "the container ended before berthd was down");
    let d = d.restart();
    let nums: Vec<u32> = texts(&got)
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(nums, (1..=60).collect::<Vec<_>>());
    assert!(wait_inspect(
        &d,
        "ticker",
        "{{.State.Status}}",
        "exited",
        Duration::from_secs(20)
    ));
    assert_eq!(d.docker_ok(&["logs", "ticker"]).lines().count(), 60);
}
