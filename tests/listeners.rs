//! Listeners: unix socket rules, systemd fd activation, TCP with TLS.

use crate::common;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::Arc;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

#[test]
fn unix_socket_mode_group_and_private_roots() {
    let d = Daemon::prepare();
    // A loosened data-root is repaired at startup.
    std::fs::create_dir_all(&d.data_root).unwrap();
    std::fs::set_permissions(&d.data_root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut cmd = d.command();
    cmd.args(["-H", &d.docker_host(), "--group", "daemon"]);
    let d = d.spawn(cmd);
    let sock = std::fs::metadata(&d.sock).unwrap();
    assert_eq!(sock.mode() & 0o777, 0o660);
    let daemon_gid = nix::unistd::Group::from_name("daemon")
        .unwrap()
        .unwrap()
        .gid
        .as_raw();
    assert_eq!(sock.gid(), daemon_gid);
    assert_eq!(
        std::fs::metadata(&d.data_root).unwrap().mode() & 0o7777,
        0o710
    );
    assert_eq!(
        std::fs::metadata(&d.exec_root).unwrap().mode() & 0o7777,
        0o700
    );
    // At connect: a process of the group is served, one outside it is
    // refused (the test's directory made traversable for both).
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let ping_as = |gid: u32| {
        std::process::Command::new("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                &gid.to_string(),
                "--clear-groups",
            ])
            .args(["curl", "-sS", "-m", "5", "--unix-socket"])
            .arg(&d.sock)
            .arg("http://d/_ping")
            .output()
            .unwrap()
    };
    let member = ping_as(daemon_gid);
    assert_eq!(
        String::from_utf8_lossy(&member.stdout),
        "OK",
        "{}",
        String::from_utf8_lossy(&member.stderr)
    );
    let outsider = ping_as(65534);
    // curl's 7: the connect itself was refused (EACCES on the socket).
    assert_eq!(
        outsider.status.code(),
        Some(7),
        "a non-member was not refused at connect: {}",
        String::from_utf8_lossy(&outsider.stderr)
    );
    d.stop();
}

#[test]
fn stale_socket_is_replaced_and_non_socket_refused() {
    let d = Daemon::prepare();
    drop(std::os::unix::net::UnixListener::bind(&d.sock).unwrap());
    assert!(d.sock.exists());
    let mut cmd = d.command();
    cmd.args(["-H", &d.docker_host()]);
    let d = d.spawn(cmd);
    d.docker_ok(&["version"]);
    d.stop();

    let d = Daemon::prepare();
    std::fs::write(&d.sock, "not a socket").unwrap();
    let o = d.command().args(["-H", &d.docker_host()]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a socket"));
    assert_eq!(std::fs::read_to_string(&d.sock).unwrap(), "not a socket");
}

#[test]
fn a_live_pidfile_holder_refuses_a_second_daemon() {
    let first = Daemon::start();
    let second = Daemon::prepare();
    let sock2 = second.dir.path().join("other.sock");
    let o = std::process::Command::new(berthd_bin())
        .arg("--data-root")
        .arg(&second.data_root)
        .arg("--exec-root")
        .arg(&second.exec_root)
        .arg("--config-file")
        .arg(&second.config_file)
        .arg("--pidfile")
        .arg(&first.pidfile)
        .args(["-H", &format!("unix://{}", sock2.display())])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("pid file found"), "{err}");
    assert!(!sock2.exists());
    assert_eq!(
        std::fs::read_to_string(&first.pidfile).unwrap().trim(),
        first.pid().to_string()
    );
    first.stop();
}

/// Start `d` as systemd starts a socket-activated service: `listener` as
/// fd 3, `LISTEN_PID` and `LISTEN_FDS=1`, with `args` after berthd's own.
fn spawn_activated(
    d: Daemon,
    listener: &std::os::unix::net::UnixListener,
    args: &[&str],
    env: &[(&str, &Path)],
) -> Daemon {
    let fd = listener.as_raw_fd();
    let inner = d.command();
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"")
        .arg(inner.get_program())
        .args(inner.get_args())
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    d.spawn(cmd)
}

#[test]
fn fd_activation_serves_the_passed_socket() {
    let mut d = Daemon::prepare();
    d.owns_socket = false;
    let listener = std::os::unix::net::UnixListener::bind(&d.sock).unwrap();
    let d = spawn_activated(d, &listener, &["-H", "fd://"], &[]);
    let out = d.docker_ok(&["version", "--format", "{{.Server.Platform.Name}}"]);
    assert_eq!(out.trim(), "Berth");
    d.stop();
    drop(listener);
}

/// The unit in docs/systemd: its ExecStart's arguments, socket activation
/// as systemd passes it (fd 3, LISTEN_PID, LISTEN_FDS) and the notify
/// protocol its `Type=notify` relies on (READY=1 once the API serves).
#[test]
fn the_shipped_systemd_unit_starts_berthd_through_fd_activation() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/systemd/berthd.service"),
    )
    .unwrap();
    let line = |key: &str| -> String {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key}= missing from the unit"))
            .to_string()
    };
    assert_eq!(line("KillMode"), "process", "shims must outlive berthd");
    assert_eq!(line("Type"), "notify");
    let exec = line("ExecStart");
    let mut words = exec.split_whitespace();
    assert!(words.next().unwrap().ends_with("/berthd"), "{exec}");
    let unit_args: Vec<String> = words.map(String::from).collect();
    assert_eq!(unit_args, ["-H", "fd://"], "{exec}");
    let socket = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/systemd/berthd.socket"),
    )
    .unwrap();
    assert!(
        socket.contains("ListenStream=/var/run/docker.sock"),
        "{socket}"
    );

    let mut d = Daemon::prepare();
    d.owns_socket = false;
    let listener = std::os::unix::net::UnixListener::bind(&d.sock).unwrap();
    let notify_path = d.dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let args: Vec<&str> = unit_args.iter().map(String::as_str).collect();
    let d = spawn_activated(d, &listener, &args, &[("NOTIFY_SOCKET", &notify_path)]);
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("no READY=1 from berthd");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.contains("READY=1"), "{msg}");
    let out = d.docker_ok(&["version", "--format", "{{.Server.Platform.Name}}"]);
    assert_eq!(out.trim(), "Berth");
    d.stop();
    drop(listener);
}

#[test]
fn fd_host_without_activation_is_refused() {
    let d = Daemon::prepare();
    let o = d.command().args(["-H", "fd://"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("socket activation"));
}

#[test]
fn non_loopback_tcp_without_tlsverify_refuses_to_start() {
    let port = free_port();
    let d = Daemon::prepare();
    let host = format!("tcp://0.0.0.0:{port}");
    let o = d
        .command()
        .args(["-H", &d.docker_host(), "-H", &host])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("without TLS client verification"), "{err}");
    assert!(!d.sock.exists(), "nothing left behind");

    // Explicitly turning TLS off starts, with dockerd's warning in info.
    let d = Daemon::builder().host(&host).arg("--tls=false").start();
    let w = d.docker_ok(&["info", "--format", "{{json .Warnings}}"]);
    assert!(w.contains("without encryption"), "{w}");
    let tcp = docker_cmd(d.dir.path())
        .args([
            "-H",
            &format!("tcp://127.0.0.1:{port}"),
            "version",
            "--format",
            "{{.Server.Platform.Name}}",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&tcp.stdout).trim(), "Berth");
    d.stop();
}

struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Pki {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Pki {
        ca_pem: cert.pem(),
        issuer: Issuer::new(p, key),
    }
}

fn leaf(pki: &Pki, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(
        DnType::CommonName,
        sans.first().copied().unwrap_or("client"),
    );
    p.extended_key_usages = vec![usage];
    p.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &pki.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write_certs(dir: &Path, ca: &str, cert: &str, key: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("ca.pem"), ca).unwrap();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
}

#[test]
fn tls_verify_admits_only_clients_of_the_ca() {
    let good = ca("berth test CA");
    let other = ca("another CA");
    let (srv_cert, srv_key) = leaf(
        &good,
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (cli_cert, cli_key) = leaf(&good, &["client"], ExtendedKeyUsagePurpose::ClientAuth);
    let (bad_cert, bad_key) = leaf(&other, &["client"], ExtendedKeyUsagePurpose::ClientAuth);

    let port = free_port();
    let d = Daemon::prepare();
    let server_dir = d.dir.path().join("server-certs");
    write_certs(&server_dir, &good.ca_pem, &srv_cert, &srv_key);
    let good_dir = d.dir.path().join("good-client");
    write_certs(&good_dir, &good.ca_pem, &cli_cert, &cli_key);
    let bad_dir = d.dir.path().join("other-ca-client");
    write_certs(&bad_dir, &good.ca_pem, &bad_cert, &bad_key);

    let mut cmd = d.command();
    let tcp = format!("tcp://127.0.0.1:{port}");
    cmd.args(["-H", &d.docker_host(), "-H", &tcp, "--tlsverify"])
        .arg("--tlscacert")
        .arg(server_dir.join("ca.pem"))
        .arg("--tlscert")
        .arg(server_dir.join("cert.pem"))
        .arg("--tlskey")
        .arg(server_dir.join("key.pem"));
    let d = d.spawn(cmd);

    let docker_tls = |cert_dir: &Path| {
        docker_cmd(d.dir.path())
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", cert_dir)
            .args([
                "-H",
                &tcp,
                "version",
                "--format",
                "{{.Server.Platform.Name}}",
            ])
            .output()
            .unwrap()
    };
    let ok = docker_tls(&good_dir);
    assert!(
        ok.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&ok.stderr),
        d.log()
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "Berth");

    // A client certificate from another CA.
    let bad = docker_tls(&bad_dir);
    assert!(!bad.status.success(), "a certificate of another CA got in");

    // Plain HTTP to the TLS port.
    let plain = docker_cmd(d.dir.path())
        .args(["-H", &tcp, "version"])
        .output()
        .unwrap();
    assert!(!plain.status.success());
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("Berth"));

    // TLS without any client certificate: no HTTP answer.
    assert!(tls_without_client_cert(port, &good.ca_pem).is_err());

    // Still up, on both sockets.
    assert_eq!(d.get("/_ping").status, 200);
    assert!(docker_tls(&good_dir).status.success());
    d.stop();
}

/// Speak TLS (trusting the CA) without a client certificate and try a ping.
fn tls_without_client_cert(port: u16, ca_pem: &str) -> Result<String, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").unwrap())
            .map_err(|e| e.to_string())?;
    let sock = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    tls.read_to_string(&mut out).map_err(|e| e.to_string())?;
    if out.starts_with("HTTP/1.1 200") {
        Ok(out)
    } else {
        Err(format!("no answer: {out:?}"))
    }
}
