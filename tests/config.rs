//! Configuration through the real binary: refusals, --validate, SIGHUP.

use crate::common;

use std::time::Duration;

use common::containers::load_busybox;
use common::*;

fn with_file(json: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("daemon.json");
    std::fs::write(&f, json).unwrap();
    let mut args = vec!["--config-file", f.to_str().unwrap()];
    args.extend_from_slice(extra);
    let dr = dir.path().join("data");
    let er = dir.path().join("exec");
    let pf = dir.path().join("pid");
    let sock = format!("unix://{}", dir.path().join("s.sock").display());
    let roots = [
        "--data-root",
        dr.to_str().unwrap(),
        "--exec-root",
        er.to_str().unwrap(),
        "--pidfile",
        pf.to_str().unwrap(),
        "-H",
        &sock,
    ];
    let mut all: Vec<&str> = args.clone();
    if !extra.contains(&"--validate") {
        all.extend_from_slice(&roots);
    }
    let r = run_berthd(&all);
    assert!(
        !dir.path().join("s.sock").exists(),
        "a refused start must not leave a socket"
    );
    r
}

#[test]
fn bad_configurations_exit_1_naming_key_and_value() {
    let cases: &[(&str, &[&str], &str)] = &[
        (r#"{"debug": true, "no-such-option": 1}"#, &[], "the following directives don't match any configuration option: no-such-option"),
        (r#"{"debug": false}"#, &["--debug"], "the following directives are specified both as a flag and in the configuration file: debug: (from flag: true, from file: false)"),
        (r#"{"bip": "172.17.0.1/40"}"#, &[], "invalid value for bip: 172.17.0.1/40"),
        (r#"{"fixed-cidr": "10.0.0.0/xx"}"#, &[], "invalid value for fixed-cidr: 10.0.0.0/xx"),
        (r#"{"default-shm-size": "64Q"}"#, &[], "invalid value for default-shm-size: 64Q"),
        (r#"{"log-level": "chatty"}"#, &[], "invalid value for log-level: chatty"),
        (r#"{"max-concurrent-uploads": -2}"#, &[], "invalid value for max-concurrent-uploads: -2"),
        (r#"{"runtimes": {"kata": {"runtimeArgs": []}}}"#, &[], "invalid value for runtimes: kata"),
        (r#"{"mtu": "large"}"#, &[], "invalid value for mtu: \"large\""),
        (r#"{not json"#, &[], "unable to configure the Docker daemon with file"),
        (r#"{"log-format": "xml"}"#, &[], "invalid value for log-format: xml"),
        (r#"{"metrics-addr": "0.0.0.0:9323"}"#, &[], "invalid value for metrics-addr: 0.0.0.0:9323: the metrics would be served without TLS beyond this host"),
        (r#"{"metrics-addr": "9323"}"#, &[], "invalid value for metrics-addr: 9323: expected host:port"),
        (r#"{"default-ipc-mode": "host"}"#, &[], "IPC mode \"host\" is not supported as default value; use \"shareable\" or \"private\""),
        (r#"{"default-ipc-mode": "bogus"}"#, &[], "default IPC mode setting (bogus) is invalid"),
        (r#"{"host-gateway-ip": "gw"}"#, &[], "invalid value for host-gateway-ip: gw"),
        (r#"{"bip6": "10.0.0.1/24"}"#, &[], "invalid value for bip6: 10.0.0.1/24"),
        (r#"{"proxies": {"http-proxy": 3}}"#, &[], "invalid value for proxies"),
        (r#"{"default-network-opts": {"bridge": {"x": 1}}}"#, &[], "invalid value for default-network-opts"),
    ];
    for (json, flags, expect) in cases {
        for validate in [false, true] {
            let mut f: Vec<&str> = flags.to_vec();
            if validate {
                f.push("--validate");
            }
            let (code, out, err) = with_file(json, &f);
            assert_eq!(code, Some(1), "{json} {f:?}: stdout {out} stderr {err}");
            assert!(
                err.contains(expect),
                "{json} {f:?}: expected {expect:?} in {err:?}"
            );
            assert!(!out.contains("configuration OK"));
        }
    }
}

#[test]
fn validate_accepts_a_good_file() {
    let (code, out, err) = with_file(
        r#"{"debug": true, "labels": ["a=b"], "default-shm-size": "128m", "containerd": "/run/x.sock"}"#,
        &["--validate"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "configuration OK");
}

#[test]
fn unused_options_start_with_a_warning_shown_in_info() {
    let d = Daemon::builder()
        .config(serde_json::json!({"containerd": "/run/containerd/containerd.sock"}))
        .start();
    let info = d.docker_ok(&["info", "--format", "{{json .Warnings}}"]);
    assert!(info.contains("containerd is ignored"), "{info}");
    assert!(d.log().contains("containerd is ignored"));
    d.stop();
}

/// A cluster store other than etcd, or one without an advertise address,
/// refuses the start with the option named (dockerd's exit code 1).
#[test]
fn a_cluster_store_berth_cannot_use_refuses_the_start() {
    for (cfg, want) in [
        (
            serde_json::json!({"cluster-store": "consul://127.0.0.1:8500", "cluster-advertise": "lo:2376"}),
            "supports etcd",
        ),
        (
            serde_json::json!({"cluster-store": "etcd://127.0.0.1:2379"}),
            "cluster-advertise",
        ),
    ] {
        let d = Daemon::prepare();
        d.write_config(&cfg);
        let o = d.command().arg("-H").arg(d.docker_host()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{cfg}: {err}");
        assert!(err.contains(want), "{cfg}: {err}");
    }
}

/// Every option of current dockerd (28) is accepted: applied, or named in
/// a warning that `docker info` shows; none refuses the start.
#[test]
fn newer_dockerd_options_are_accepted_applied_or_named() {
    let d = Daemon::builder()
        .config(serde_json::json!({
            "allow-direct-routing": false,
            "bip6": "fd00:1234::1/64",
            "builder": {"gc": {"enabled": true, "defaultKeepStorage": "10GB"}},
            "cdi-spec-dirs": ["/etc/cdi"],
            "cpu-rt-period": 0,
            "cri-containerd": false,
            "default-ipc-mode": "shareable",
            "default-network-opts": {"bridge": {"com.docker.network.driver.mtu": "1400"}},
            "firewall-backend": "nftables",
            "host-gateway-ip": "192.0.2.77",
            "ip-forward-no-drop": false,
            "log-format": "json",
            "network-control-plane-mtu": 1400,
            "proxies": {"http-proxy": "http://proxy.invalid:3128", "no-proxy": "localhost"},
            "resolv-conf": "",
            "rootless": false,
            "swarm-raft-heartbeat-tick": 0,
        }))
        .start();
    load_busybox(&d);
    let info = d.docker_ok(&["info", "--format", "{{json .Warnings}}"]);
    for key in [
        "bip6",
        "builder",
        "cdi-spec-dirs",
        "default-network-opts",
        "firewall-backend",
        "network-control-plane-mtu",
        "proxies",
    ] {
        assert!(
            info.contains(&format!("WARNING: {key} is accepted but not applied: ")),
            "{key}: {info}"
        );
    }
    // Applied: the default IPC mode, the host gateway address, JSON logs.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ipc",
        "--add-host",
        "gw.test:host-gateway",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.HostConfig.IpcMode}}", "ipc"])
            .trim(),
        "shareable"
    );
    let hosts = d.docker_ok(&["exec", "ipc", "cat", "/etc/hosts"]);
    assert!(hosts.contains("192.0.2.77\tgw.test"), "{hosts}");
    // Another container can join its IPC namespace (shareable).
    d.docker_ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:ipc",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("API listen on"))
        .unwrap_or_else(|| panic!("{log}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["level"], "INFO", "{line}");
    assert!(
        v["message"].as_str().unwrap().contains("API listen on"),
        "{line}"
    );
    d.docker_ok(&["rm", "-f", "ipc"]);
    d.stop();
}

#[test]
fn sighup_reloads_debug_and_emits_an_event() {
    let d = Daemon::builder()
        .config(serde_json::json!({"debug": false, "mtu": 1500}))
        .start();
    let debug = |d: &Daemon| {
        d.docker_ok(&["info", "--format", "{{.Debug}}"])
            .trim()
            .to_string()
    };
    assert_eq!(debug(&d), "false");
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;

    // A file that fails validation changes nothing.
    std::fs::write(&d.config_file, r#"{"debug": true, "bogus": 1}"#).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(wait_for(Duration::from_secs(5), || d
        .log()
        .contains("error reloading the configuration")));
    assert_eq!(debug(&d), "false");

    // A valid one flips debug (mtu is not reloadable and stays).
    d.write_config(&serde_json::json!({"debug": true, "mtu": 9000}));
    d.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        wait_for(Duration::from_secs(5), || debug(&d) == "true"),
        "{}",
        d.log()
    );
    assert!(
        d.log().contains("need a restart to change: mtu"),
        "{}",
        d.log()
    );
    // The CLI sends `--until 0s` truncated to whole seconds (as for dockerd):
    // let the second of the reload pass.
    std::thread::sleep(Duration::from_millis(1100));
    let events = d.docker_ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        "0s",
        "--filter",
        "type=daemon",
        "--format",
        "{{.Type}} {{.Action}} {{index .Actor.Attributes \"debug\"}}",
    ]);
    assert!(
        events.lines().any(|l| l == "daemon reload true"),
        "{events}"
    );
    assert!(
        wait_for(Duration::from_secs(5), || d.log().contains("Calling GET")),
        "debug logging is on"
    );
    d.stop();
}

/// A fake runtime that prints a runc version.
fn fake_runc(dir: &std::path::Path, version: &str, commit: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(format!("runc-{version}"));
    std::fs::write(
        &p,
        format!("#!/bin/sh\necho 'runc version {version}'\necho 'commit: {commit}'\n"),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn runtimes_known_to_break_out_are_refused_or_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let old = fake_runc(dir.path(), "1.0.0-rc5", "old");
    let d = Daemon::prepare();
    d.write_config(
        &serde_json::json!({"runtimes": {"oldrunc": {"path": old}}, "default-runtime": "oldrunc"}),
    );
    let o = d.command().args(["-H", &d.docker_host()]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("CVE-2019-5736"), "{err}");
    assert!(
        !d.sock.exists() && !d.pidfile.exists(),
        "a refused start leaves nothing"
    );

    let vulnerable = fake_runc(dir.path(), "1.1.11", "v1.1.11");
    let d = Daemon::builder()
        .config(serde_json::json!({"runtimes": {"vrunc": {"path": vulnerable}}, "default-runtime": "vrunc"}))
        .start();
    let w = d.docker_ok(&["info", "--format", "{{json .Warnings}}"]);
    assert!(w.contains("CVE-2024-21626"), "{w}");
    d.stop();
}
