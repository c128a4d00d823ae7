//! exec: the instances berthd knows (in memory, like dockerd's), and the
//! OCI process of an exec derived from its container's spec.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_actors::container::{ContainerError, ContainerRecord, Status};
use serde_json::{json, Value};

use super::spec::strings;
use crate::sys::runtime::user;

#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub cmd: Vec<String>,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    pub privileged: bool,
    pub detach_keys: String,
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
}

impl ExecRecord {
    pub fn inspect(&self) -> Value {
        json!({
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": self.tty,
                "entrypoint": self.cmd.first(),
                "arguments": self.cmd.get(1..).unwrap_or_default(),
                "privileged": self.privileged,
                "user": self.user,
            },
            "OpenStdin": self.attach_stdin,
            "OpenStderr": self.attach_stderr,
            "OpenStdout": self.attach_stdout,
            "CanRemove": false,
            "ContainerID": self.container_id,
            "DetachKeys": self.detach_keys,
            "Pid": self.pid,
        })
    }
}

#[derive(Default)]
pub struct Execs {
    map: Mutex<HashMap<String, ExecRecord>>,
}

impl Execs {
    pub fn get(&self, id: &str) -> Option<ExecRecord> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub fn update(&self, id: &str, f: impl FnOnce(&mut ExecRecord)) {
        if let Some(e) = self
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(id)
        {
            f(e);
        }
    }

    pub fn of_container(&self, cid: &str) -> Vec<String> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|e| e.container_id == cid)
            .map(|e| e.id.clone())
            .collect()
    }

    /// Drop the execs of a container that is gone.
    pub fn forget_container(&self, cid: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, e| e.container_id != cid);
    }

    pub fn create(&self, rec: &ContainerRecord, body: &Value) -> Result<String, ContainerError> {
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
            id: id.clone(),
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
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.insert(id.clone(), e);
        Ok(id)
    }
}

/// The OCI process of an exec: the container's process with the exec's
/// command, env, user, working directory and terminal.
pub fn process(
    bundle_config: &Value,
    e: &ExecRecord,
    container_user: &str,
) -> Result<Value, String> {
    let mut p = bundle_config["process"].clone();
    if !p.is_object() {
        return Err("the container's spec has no process".into());
    }
    p["args"] = json!(e.cmd);
    p["terminal"] = json!(e.tty);
    let mut env = strings(&p["env"]);
    if !e.tty {
        env.retain(|v| !v.starts_with("TERM="));
    } else if !env.iter().any(|v| v.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    for v in &e.env {
        let k = v.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(k));
        env.push(v.clone());
    }
    p["env"] = json!(env);
    if !e.workdir.is_empty() {
        p["cwd"] =
            json!(crate::sys::runtime::spec::check_workdir(&e.workdir).map_err(|e| e.to_string())?);
    }
    let u = if e.user.is_empty() {
        container_user
    } else {
        e.user.as_str()
    };
    if !e.user.is_empty() {
        let root = bundle_config["root"]["path"].as_str().unwrap_or("/");
        let r = user::resolve(std::path::Path::new(root), u).map_err(|e| e.to_string())?;
        p["user"] = json!({"uid": r.uid, "gid": r.gid, "additionalGids": r.additional_gids});
    }
    if e.privileged {
        let all = json!(super::spec::host_capabilities());
        p["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
    }
    Ok(p)
}

pub type SharedExecs = Arc<Execs>;
