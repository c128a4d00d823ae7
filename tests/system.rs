//! System endpoints through the real docker CLI and raw HTTP.

use crate::common;

use common::*;

#[test]
fn docker_version_names_berth_and_is_not_downgraded() {
    let d = Daemon::start();
    let out = d.docker_ok(&["version"]);
    assert!(out.contains("Server: Berth"), "{out}");
    assert!(
        out.contains("API version:      1.53 (minimum version 1.40)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("Version:          {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert!(!out.contains("downgraded"), "{out}");
    let client_api = d.docker_ok(&["version", "--format", "{{.Client.APIVersion}}"]);
    assert_eq!(client_api.trim(), "1.50");
    d.stop();
}

#[test]
fn docker_info_prints_true_values_without_error() {
    let d = Daemon::builder()
        .config(serde_json::json!({"labels": ["team=berth"], "live-restore": true}))
        .start();
    let o = d.docker(&["info"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(!stderr.to_lowercase().contains("error"), "{stderr}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("Docker Root Dir: {}", d.data_root.display())),
        "{out}"
    );
    assert!(out.contains("Live Restore Enabled: true"), "{out}");
    assert!(out.contains("team=berth"), "{out}");

    let info: serde_json::Value =
        serde_json::from_str(&d.docker_ok(&["info", "--format", "{{json .}}"])).unwrap();
    let ncpu = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!(info["NCPU"].as_u64(), Some(ncpu));
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(info["MemTotal"].as_u64(), Some(mem_kb * 1024));
    let uname = std::process::Command::new("uname")
        .arg("-r")
        .output()
        .unwrap();
    assert_eq!(
        info["KernelVersion"].as_str().unwrap(),
        String::from_utf8_lossy(&uname.stdout).trim()
    );
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(info["Name"].as_str(), Some(host.as_str()));
    assert_eq!(info["Containers"].as_u64(), Some(0));
    assert_eq!(info["Images"].as_u64(), Some(0));
    assert_eq!(info["LoggingDriver"].as_str(), Some("json-file"));
    assert_eq!(info["DefaultRuntime"].as_str(), Some("runc"));
    assert!(info["Runtimes"]["runc"].is_object());
    assert_eq!(
        info["ServerVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert!(info["Driver"].as_str() == Some("overlay2") || info["Driver"].as_str() == Some("vfs"));
    let os = std::fs::read_to_string("/etc/os-release").unwrap();
    let pretty = os
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .unwrap()
        .trim_matches('"');
    assert_eq!(info["OperatingSystem"].as_str(), Some(pretty));
    assert!(info["RegistryConfig"]["InsecureRegistryCIDRs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "127.0.0.0/8"));

    // The engine ID is persistent across restarts on the same data-root.
    let id = info["ID"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read_to_string(d.data_root.join("engine-id"))
            .unwrap()
            .trim(),
        id
    );
    d.stop();
}

#[test]
fn docker_events_and_system_df() {
    let d = Daemon::start();
    let o = d.docker(&["events", "--since", "1m", "--until", "0s"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let df = d.docker_ok(&["system", "df"]);
    for row in ["Images", "Containers", "Local Volumes", "Build Cache"] {
        assert!(df.contains(row), "{df}");
    }
    // The shape follows the API version: lists before 1.52, both in 1.52,
    // per-type usage only from 1.53.
    let v = d.get("/v1.51/system/df?type=image").json();
    assert_eq!(v["LayersSize"], 0);
    assert!(v.get("Containers").is_none() && v.get("ImageUsage").is_none());
    let v = d.get("/v1.52/system/df").json();
    assert!(
        v["Images"].is_array() && v["ImageUsage"]["TotalCount"] == 0,
        "{v}"
    );
    let v = d.get("/v1.53/system/df").json();
    assert!(
        v.get("Images").is_none() && v.get("LayersSize").is_none(),
        "{v}"
    );
    for k in [
        "ImageUsage",
        "ContainerUsage",
        "VolumeUsage",
        "BuildCacheUsage",
    ] {
        assert_eq!(v[k]["TotalCount"], 0, "{v}");
        assert!(v[k].get("Items").is_none(), "{v}");
    }
    d.docker_ok(&["volume", "create", "dfvol"]);
    let v = d.get("/v1.53/system/df?verbose=1&type=volume").json();
    assert_eq!(v["VolumeUsage"]["TotalCount"], 1, "{v}");
    assert_eq!(v["VolumeUsage"]["Items"][0]["Name"], "dfvol", "{v}");
    assert!(v.get("ImageUsage").is_none(), "{v}");
    assert_eq!(d.get("/system/df?type=bogus").status, 400);
    d.stop();
}

#[test]
fn ping_and_headers_match_dockerd() {
    let d = Daemon::start();
    let r = d.raw(b"HEAD /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Api-Version"), Some("1.53"));
    assert_eq!(r.header("Ostype"), Some("linux"));
    assert_eq!(r.header("Docker-Experimental"), Some("false"));
    assert_eq!(r.header("Content-Length"), Some("0"));
    assert!(r.header("Server").unwrap().starts_with("Berth/"));
    assert_eq!(
        r.header("Cache-Control"),
        Some("no-cache, no-store, must-revalidate")
    );
    // On the wire in Go's canonical case, as dockerd writes them (scripts
    // grep for `Api-Version:`).
    let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
    for want in [
        "Api-Version",
        "Ostype",
        "Docker-Experimental",
        "Server",
        "Content-Length",
        "Cache-Control",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    let g = d.get("/_ping");
    assert_eq!(g.text(), "OK");
    let v = d.get("/v1.40/version").json();
    assert_eq!(v["ApiVersion"], "1.53");
    assert_eq!(v["MinAPIVersion"], "1.40");
    assert_eq!(v["Platform"]["Name"], "Berth");
    d.stop();
}

#[test]
fn api_cors_header_is_honoured() {
    let d = Daemon::builder()
        .config(serde_json::json!({"api-cors-header": "https://example.test"}))
        .start();
    let r = d.get("/version");
    assert_eq!(
        r.header("Access-Control-Allow-Origin"),
        Some("https://example.test")
    );
    let pre = d.raw(b"OPTIONS /containers/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(pre.status, 200);
    assert!(pre
        .header("Access-Control-Allow-Methods")
        .unwrap()
        .contains("POST"));
    d.stop();
}
