//! The healthcheck a container's shim runs: `Config.Healthcheck` (the
//! image's merged in at create) with dockerd's defaults, and the probe as
//! an OCI process derived from the container's spec, as an exec's is.

use berth_actors::container::ContainerRecord;
use berth_actors::exec::ExecRecord;
use berth_actors::protocol::shim::HealthSpec;
use oci_spec::runtime::Spec;

/// dockerd's defaults (`daemon/health.go`).
const DEFAULT_INTERVAL: i64 = 30_000_000_000;
const DEFAULT_TIMEOUT: i64 = 30_000_000_000;
const DEFAULT_START_INTERVAL: i64 = 5_000_000_000;
const DEFAULT_RETRIES: i64 = 3;

/// What the shim needs to run the healthcheck, if the container has one.
pub fn spec(rec: &ContainerRecord, bundle: &Spec) -> Result<Option<HealthSpec>, String> {
    let Some(cmd) = rec.config.health_probe() else {
        if let Some(kind) = rec
            .config
            .healthcheck
            .as_ref()
            .and_then(|h| h.test.as_ref()?.first())
            .filter(|k| *k != "NONE")
        {
            tracing::warn!(id = %rec.id, "Unknown healthcheck type '{kind}' (expected 'CMD') in container {}", rec.id);
        }
        return Ok(None);
    };
    let Some(h) = rec.config.healthcheck.as_ref() else {
        return Ok(None);
    };
    let exec = ExecRecord {
        id: String::new(),
        container_id: rec.id.clone(),
        cmd,
        tty: false,
        attach_stdin: false,
        attach_stdout: true,
        attach_stderr: true,
        env: Vec::new(),
        user: rec.config.user.clone(),
        workdir: String::new(),
        privileged: false,
        detach_keys: String::new(),
        running: false,
        started: false,
        exit_code: None,
        pid: 0,
    };
    let process = super::exec::process(
        bundle,
        &exec,
        &rec.config,
        rec.host_config.group_add(),
        &rec.state.link_env,
    )?;
    let or = |v: i64, d: i64| if v > 0 { v } else { d };
    Ok(Some(HealthSpec {
        process,
        interval_ns: or(h.interval, DEFAULT_INTERVAL),
        timeout_ns: or(h.timeout, DEFAULT_TIMEOUT),
        start_period_ns: h.start_period.max(0),
        start_interval_ns: or(h.start_interval, DEFAULT_START_INTERVAL),
        retries: or(h.retries, DEFAULT_RETRIES),
        log: rec
            .state
            .health
            .as_ref()
            .map(|h| h.log.clone())
            .unwrap_or_default(),
    }))
}
