//! exec: a new instance's record from the API body (its ExecActor keeps
//! it, see `berth_actors::exec`), and the OCI process of an exec derived
//! from its container's spec.

use berth_actors::container::{ContainerError, ContainerRecord, Status};
use oci_spec::runtime::Spec;
use serde_json::Value;

use super::spec::strings;
use crate::sys::runtime::{spec, user};

pub use berth_actors::exec::{ExecRecord, Execs};

/// A new exec instance of a running container, from the API body (the
/// ExecSupervisor registers it).
pub fn new_record(rec: &ContainerRecord, body: &Value) -> Result<ExecRecord, ContainerError> {
    match rec.state.status {
        Status::Running => {}
        Status::Paused => {
            return Err(ContainerError::Conflict(format!(
                "Container {} is paused, unpause the container before exec",
                rec.id
            )))
        }
        _ => {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                rec.id
            )))
        }
    }
    let cmd = strings(&body["Cmd"]);
    if cmd.is_empty() {
        return Err(ContainerError::Invalid("No exec command specified".into()));
    }
    let id = crate::ids::new_id();
    let s = |k: &str| body[k].as_str().unwrap_or("").to_string();
    let t = |k: &str| body[k].as_bool().unwrap_or(false);
    let e = ExecRecord {
        id,
        container_id: rec.id.clone(),
        cmd,
        tty: t("Tty"),
        attach_stdin: t("AttachStdin"),
        attach_stdout: t("AttachStdout"),
        attach_stderr: t("AttachStderr"),
        env: strings(&body["Env"]),
        user: s("User"),
        workdir: s("WorkingDir"),
        privileged: t("Privileged"),
        detach_keys: s("DetachKeys"),
        running: false,
        started: false,
        exit_code: None,
        pid: 0,
    };
    Ok(e)
}

/// The OCI process of an exec: the container's process with the exec's
/// command, env, user, working directory and terminal.
pub fn process(
    bundle: &Spec,
    e: &ExecRecord,
    container: &berth_actors::container::config::Config,
    group_add: &[String],
    links: &[String],
) -> Result<Value, String> {
    let container_user = container.user.as_str();
    let mut p = bundle
        .process()
        .clone()
        .ok_or("the container's spec has no process")?;
    p.set_args(Some(e.cmd.clone())).set_terminal(Some(e.tty));
    // As dockerd: the daemon's defaults for the exec's TTY, the
    // container's variables, then the exec's.
    p.set_env(Some(super::spec::process_env(
        &container.hostname,
        e.tty,
        links,
        container.env(),
        &e.env,
    )));
    if !e.workdir.is_empty() {
        let cwd =
            crate::sys::runtime::spec::check_workdir(&e.workdir).map_err(|e| e.to_string())?;
        p.set_cwd(cwd.into());
    }
    let u = if e.user.is_empty() {
        container_user
    } else {
        e.user.as_str()
    };
    if !e.user.is_empty() {
        let root = bundle
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .unwrap_or_else(|| "/".into());
        let mut r = user::resolve(&root, u).map_err(|e| e.to_string())?;
        // The container's `--group-add` applies to an exec's user too.
        for g in user::resolve_groups(&root, group_add).map_err(|e| e.to_string())? {
            if !r.additional_gids.contains(&g) {
                r.additional_gids.push(g);
            }
        }
        p.set_user(spec::user(&r));
    }
    if e.privileged {
        let all =
            spec::capability_set(&super::spec::host_capabilities()).map_err(|e| e.to_string())?;
        p.set_capabilities(Some(spec::capabilities(all)));
    }
    serde_json::to_value(&p).map_err(|e| e.to_string())
}
