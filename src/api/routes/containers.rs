//! `/containers/*`: create, list, inspect, lifecycle verbs, wait, logs,
//! attach, resize, rename, pause, update, top, prune.

use std::sync::Arc;
use std::time::Duration;

use berth_actors::container::{
    AttachTicket, ContainerError, ContainerMsg, ContainerRecord, Containers, Status, SupervisorMsg,
    WaitCondition, WaitOutcome,
};
use berth_actors::protocol::shim::{frames, Request};
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::filters::Filters;
use crate::api::hijack::{self, InputEnd};
use crate::api::router::{ok_json, HandlerFuture, Req};
use crate::api::routes::events::parse_timestamp;
use crate::containers::cp_root::{Bind, RootSpec};
use crate::containers::host;
use crate::containers::logs::LogOptions;

pub(crate) fn err(e: ContainerError) -> ApiError {
    ApiError::from_err(&e)
}

/// The record a path parameter names.
pub(crate) fn find(r: &Req) -> Result<Arc<ContainerRecord>, ApiError> {
    r.ctx
        .containers
        .containers
        .lookup(r.param("id"))
        .map_err(err)
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn or_zero(s: &str) -> &str {
    if s.is_empty() {
        ZERO_TIME
    } else {
        s
    }
}

pub(crate) fn unix_of(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp())
        .unwrap_or(0)
}

/// docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let m = s / 60;
    let h = m / 60;
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

fn since(t: &str) -> i64 {
    chrono::Utc::now().timestamp() - unix_of(t)
}

/// The `Status` column of `docker ps`.
pub fn status_text(rec: &ContainerRecord) -> String {
    let s = &rec.state;
    match s.status {
        Status::Running => format!("Up {}", human_duration(since(&s.started_at))),
        Status::Paused => format!("Up {} (Paused)", human_duration(since(&s.started_at))),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            human_duration(since(&s.finished_at))
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created => "Created".into(),
        Status::Exited => {
            if s.finished_at.is_empty() {
                "Created".into()
            } else {
                format!(
                    "Exited ({}) {} ago",
                    s.exit_code,
                    human_duration(since(&s.finished_at))
                )
            }
        }
    }
}

fn command_of(rec: &ContainerRecord) -> String {
    let mut parts = vec![rec.path.clone()];
    parts.extend(rec.args.iter().cloned());
    parts.join(" ")
}

pub fn inspect_json(r: &Req, rec: &ContainerRecord) -> Value {
    let s = &rec.state;
    let execs = r.ctx.containers.execs.of_container(&rec.id);
    let gd = r.ctx.images.driver.describe(&rec.layer);
    json!({
        "Id": rec.id,
        "Created": rec.created,
        "Path": rec.path,
        "Args": rec.args,
        "State": {
            "Status": s.status.as_str(),
            "Running": s.status.is_live() || s.status == Status::Restarting,
            "Paused": s.status == Status::Paused,
            "Restarting": s.status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": s.status == Status::Dead,
            "Pid": if s.status.is_live() { s.pid } else { 0 },
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": or_zero(&s.started_at),
            "FinishedAt": or_zero(&s.finished_at),
        },
        "Image": rec.image,
        "ResolvConfPath": rec.resolv_conf_path,
        "HostnamePath": rec.hostname_path,
        "HostsPath": rec.hosts_path,
        "LogPath": rec.log_path,
        "Name": rec.name,
        "RestartCount": rec.restart_count,
        "Driver": rec.driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": if execs.is_empty() { Value::Null } else { json!(execs) },
        "HostConfig": rec.host_config,
        "GraphDriver": {"Name": rec.driver, "Data": gd},
        "Mounts": super::volumes::mounts_json(r, rec),
        "Config": rec.config,
        "NetworkSettings": super::networks::settings(rec, true),
    })
}

pub(crate) fn summary(r: &Req, rec: &ContainerRecord, size: bool) -> Value {
    let image = if rec.image_name.is_empty() {
        rec.image.clone()
    } else {
        rec.image_name.clone()
    };
    let mut v = json!({
        "Id": rec.id,
        "Names": [rec.name],
        "Image": image,
        "ImageID": rec.image,
        "Command": command_of(rec),
        "Created": unix_of(&rec.created),
        "Ports": super::networks::summary_ports(rec),
        "Labels": rec.labels(),
        "State": rec.state.status.as_str(),
        "Status": status_text(rec),
        "HostConfig": {"NetworkMode": rec.host_config["NetworkMode"]},
        "NetworkSettings": super::networks::settings(rec, false),
        "Mounts": super::volumes::mounts_json(r, rec),
    });
    if size {
        let rw = crate::sys::fsfd::tree_size(&r.ctx.containers.host.driver_diff(&rec.layer));
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(rw + image_size(r, rec));
    }
    v
}

/// The size of the container's image (the `virtual` part of `ps -s`).
fn image_size(r: &Req, rec: &ContainerRecord) -> u64 {
    r.ctx
        .images
        .images
        .snapshot()
        .images
        .get(&rec.image)
        .map(|i| i.size)
        .unwrap_or(0)
}

const PS_FILTERS: &[&str] = &[
    "id",
    "name",
    "label",
    "status",
    "ancestor",
    "exited",
    "before",
    "since",
    "health",
    "network",
    "volume",
    "publish",
    "expose",
    "isolation",
    "is-task",
];

pub fn list(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let f = Filters::parse(r.query.get("filters"))?;
        f.validate(PS_FILTERS)?;
        for s in f.values("status") {
            if ![
                "created",
                "restarting",
                "running",
                "removing",
                "paused",
                "exited",
                "dead",
            ]
            .contains(&s.as_str())
            {
                return Err(ApiError::invalid(format!("invalid filter 'status={s}'")));
            }
        }
        let mut exited = Vec::new();
        for e in f.values("exited") {
            exited.push(
                e.parse::<i32>()
                    .map_err(|_| ApiError::invalid(format!("invalid filter 'exited={e}'")))?,
            );
        }
        let snap = r.ctx.containers.containers.snapshot();
        let created_of = |n: &String| -> Result<String, ApiError> {
            snap.lookup(n).map(|c| c.created.clone()).map_err(err)
        };
        let before = f.values("before").next().map(created_of).transpose()?;
        let since_f = f.values("since").next().map(created_of).transpose()?;
        let images = r.ctx.images.images.snapshot();
        let ancestors: Vec<String> = f
            .values("ancestor")
            .filter_map(|a| images.resolve(a).map(|i| i.record.id.clone()))
            .collect();
        let all = r.query.bool("all")
            || !f.values("status").collect::<Vec<_>>().is_empty()
            || !exited.is_empty();
        let limit: i64 = r
            .query
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(-1);
        let size = r.query.bool("size");
        let mut recs: Vec<&Arc<ContainerRecord>> = snap.by_id.values().collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        let mut out = Vec::new();
        for rec in recs {
            let st = rec.state.status;
            if !all && limit <= 0 && !(st.is_live() || st == Status::Restarting) {
                continue;
            }
            if f.contains("id") && !f.values("id").any(|v| rec.id.starts_with(v.as_str())) {
                continue;
            }
            if f.contains("name")
                && !f
                    .values("name")
                    .any(|v| rec.short_name().contains(v.trim_start_matches('/')))
            {
                continue;
            }
            if !f.labels("label", &rec.labels()) {
                continue;
            }
            if f.contains("status") && !f.values("status").any(|v| v == st.as_str()) {
                continue;
            }
            let exit_ok = exited.is_empty()
                || (st == Status::Exited && exited.contains(&rec.state.exit_code));
            if !exit_ok {
                continue;
            }
            if f.contains("ancestor") && !ancestors.contains(&rec.image) {
                continue;
            }
            if before.as_ref().is_some_and(|b| rec.created >= *b)
                || since_f.as_ref().is_some_and(|s| rec.created <= *s)
            {
                continue;
            }
            if f.contains("health") && !f.values("health").any(|h| h == "none") {
                continue;
            }
            if f.contains("network")
                && !f.values("network").any(|n| {
                    rec.host_config["NetworkMode"].as_str() == Some(n)
                        || rec
                            .networks
                            .iter()
                            .any(|(name, a)| name == n || a.network_id.starts_with(n.as_str()))
                })
            {
                continue;
            }
            // A volume's name, or a mount's source or destination.
            if f.contains("volume")
                && !f.values("volume").any(|v| {
                    rec.mounts
                        .iter()
                        .any(|m| m.name == *v || m.source == *v || m.destination == *v)
                })
            {
                continue;
            }
            out.push(summary(&r, rec, size));
            if limit > 0 && out.len() as i64 >= limit {
                break;
            }
        }
        ok_json(&out)
    })
}

pub fn inspect(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let mut v = inspect_json(&r, &rec);
        if r.query.bool("size") {
            let rw = crate::sys::fsfd::tree_size(&r.ctx.containers.host.driver_diff(&rec.layer));
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rw + image_size(&r, &rec));
        }
        ok_json(&v)
    })
}

pub fn create(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let body = r.json_of(&crate::api::schema::CONTAINER_CREATE)?;
        let name = r.query.get("name").unwrap_or("").to_string();
        if let Some(p) = r.query.get("platform").filter(|p| !p.is_empty()) {
            if !p.starts_with("linux") {
                return Err(ApiError::invalid(format!("unsupported platform: {p}")));
            }
        }
        let c = r.ctx.containers.create(&name, &body).await.map_err(err)?;
        Ok(body::json(
            StatusCode::CREATED,
            &json!({"Id": c.id, "Warnings": c.warnings}),
        ))
    })
}

fn opt_timeout(r: &Req) -> Result<Option<i64>, ApiError> {
    match r.query.get("t").or_else(|| r.query.get("timeout")) {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("invalid value for t: {t}"))),
    }
}

pub fn start(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        if rec.state.status.is_live() {
            return Err(err(ContainerError::NotModified("started")));
        }
        Containers::ask(&rec.id, ContainerMsg::Start)
            .await
            .map_err(err)?;
        Ok(body::no_content())
    })
}

/// stop and restart take the same parameters: `t` and `signal`.
fn stop_or_restart(r: Req, restart: bool) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let timeout = opt_timeout(&r)?;
        let signal = r
            .query
            .get("signal")
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Containers::ask(&rec.id, |reply| {
            if restart {
                ContainerMsg::Restart {
                    signal,
                    timeout,
                    reply,
                }
            } else {
                ContainerMsg::Stop {
                    signal,
                    timeout,
                    reply,
                }
            }
        })
        .await
        .map_err(err)?;
        Ok(body::no_content())
    })
}

pub fn stop(r: Req) -> HandlerFuture {
    stop_or_restart(r, false)
}

pub fn restart(r: Req) -> HandlerFuture {
    stop_or_restart(r, true)
}

pub fn kill(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let signal = r.query.get("signal").unwrap_or("").to_string();
        Containers::ask(&rec.id, |reply| ContainerMsg::Kill { signal, reply })
            .await
            .map_err(err)?;
        Ok(body::no_content())
    })
}

pub fn delete(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        if r.query.bool("link") {
            return Err(ApiError::invalid("links are not supported"));
        }
        let force = r.query.bool("force");
        let volumes = r.query.bool("v");
        Containers::ask(&rec.id, |reply| ContainerMsg::Remove {
            force,
            volumes,
            reply,
        })
        .await
        .map_err(err)?;
        r.ctx.containers.execs.forget_container(&rec.id);
        Ok(body::no_content())
    })
}

pub fn wait(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let cond = WaitCondition::parse(r.query.get("condition").unwrap_or(""))
            .map_err(ApiError::invalid)?;
        let actor = Containers::actor(&rec.id).map_err(err)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<WaitOutcome>();
        actor
            .cast(ContainerMsg::Wait {
                condition: cond,
                reply: tx.into(),
            })
            .map_err(|_| err(ContainerError::Unavailable))?;
        // Headers now (the CLI starts the container once it has them), the
        // status when the condition holds.
        let (btx, brx) = mpsc::channel::<Bytes>(1);
        let shutdown = r.ctx.shutdown.clone();
        tokio::spawn(async move {
            let v = tokio::select! {
                o = rx => match o {
                    Ok(o) => json!({"StatusCode": o.status_code, "Error": o.error.map(|m| json!({"Message": m}))}),
                    Err(_) => json!({"StatusCode": -1, "Error": {"Message": "the container's actor stopped while waiting"}}),
                },
                _ = shutdown.cancelled() => return,
            };
            let mut b = serde_json::to_vec(&v).unwrap_or_default();
            b.push(b'\n');
            let _ = btx.send(Bytes::from(b)).await;
        });
        let mut resp = Response::new(body::channel(brx));
        resp.headers_mut()
            .insert("Content-Type", HeaderValue::from_static("application/json"));
        Ok(resp)
    })
}

fn ts(r: &Req, k: &str) -> Result<Option<i64>, ApiError> {
    match r.query.get(k) {
        None | Some("") | Some("0") => Ok(None),
        Some(v) => parse_timestamp(v)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(format!("invalid value for {k}: {v}"))),
    }
}

pub fn logs(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let (stdout, stderr) = (r.query.bool("stdout"), r.query.bool("stderr"));
        if !stdout && !stderr {
            return Err(ApiError::invalid(
                "Bad parameters: you must choose at least one stream",
            ));
        }
        let lc = rec.host_config["LogConfig"]["Type"]
            .as_str()
            .unwrap_or("json-file");
        if lc == "none" {
            return Err(ApiError::invalid(
                "configured logging driver does not support reading",
            ));
        }
        let tail = match r.query.get("tail") {
            None | Some("") | Some("all") => None,
            Some(t) => Some(
                t.parse::<usize>()
                    .map_err(|_| ApiError::invalid(format!("invalid value for tail: {t}")))?,
            ),
        };
        let o = LogOptions {
            stdout,
            stderr,
            since: ts(&r, "since")?,
            until: ts(&r, "until")?,
            timestamps: r.query.bool("timestamps"),
            tail,
            follow: r.query.bool("follow"),
            raw: rec.tty(),
        };
        let rx = berth_actors::logs::open_stream(&rec.id, &rec.log_path, o)
            .await
            .map_err(|e| ApiError::new(berth_actors::ErrorKind::Unavailable, e))?;
        let mut resp = Response::new(body::channel(rx));
        let ct = if rec.tty() {
            hijack::RAW_STREAM
        } else {
            hijack::MULTIPLEXED_STREAM
        };
        resp.headers_mut()
            .insert("Content-Type", HeaderValue::from_static(ct));
        Ok(resp)
    })
}

pub fn attach(mut r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let upgrade = hijack::on_upgrade(&mut r.incoming)?;
        let keys = hijack::parse_detach_keys(r.query.get("detachKeys").unwrap_or(""))?;
        let (want_in, want_out, want_err) = (
            r.query.bool("stdin"),
            r.query.bool("stdout"),
            r.query.bool("stderr"),
        );
        let stream = r.query.bool("stream");
        let logs_too = r.query.bool("logs");
        let ticket = Containers::ask(&rec.id, ContainerMsg::Attach)
            .await
            .map_err(err)?;
        let sock = r.ctx.containers.host.socket(&rec.id);
        let tty = rec.tty();
        let stdin_once = rec.config["StdinOnce"].as_bool().unwrap_or(false) && !rec.tty();
        let events = r.ctx.events.clone();
        let attrs = rec.event_attrs();
        let id = rec.id.clone();
        let log_path = rec.log_path.clone();
        let shutdown = r.ctx.shutdown.clone();
        tokio::spawn(async move {
            let Some(mut client) = hijack::upgraded(upgrade).await else {
                return;
            };
            events.publish("container", "attach", &id, attrs);
            if logs_too {
                let o = LogOptions {
                    stdout: want_out,
                    stderr: want_err,
                    raw: tty,
                    ..Default::default()
                };
                let Ok(mut rx) = berth_actors::logs::open_stream(&id, &log_path, o).await else {
                    let _ = client.shutdown().await;
                    return;
                };
                while let Some(b) = rx.recv().await {
                    if client.write_all(&b).await.is_err() {
                        return;
                    }
                }
            }
            if !stream {
                let _ = client.shutdown().await;
                return;
            }
            let go = match ticket {
                AttachTicket::Now => None,
                AttachTicket::AtStart(rx) => match rx.await {
                    Ok(go) => Some(go),
                    Err(_) => {
                        let _ = client.shutdown().await;
                        return;
                    }
                },
            };
            let req = Request::Attach {
                stdin: want_in,
                stdout: want_out,
                stderr: want_err,
            };
            let conn = host::connect(&sock, &req).await;
            if let Some(go) = go {
                let _ = go.send(());
            }
            let Ok((_, shim)) = conn else {
                let _ = client.shutdown().await;
                return;
            };
            let (shim_r, shim_w) = host::split(shim);
            let (client_r, mut client_w) = tokio::io::split(client);
            let input = async move {
                if !want_in {
                    std::future::pending::<()>().await;
                }
                let (end, mut w) = hijack::pump_stdin(client_r, shim_w, keys).await;
                match end {
                    InputEnd::Eof if stdin_once => {
                        let _ = hijack::write_frame(&mut w, frames::CLOSE_STDIN, &[]).await;
                        std::future::pending::<()>().await;
                    }
                    InputEnd::Eof => std::future::pending::<()>().await,
                    _ => {}
                }
            };
            let output = hijack::pump_output(tokio::io::BufReader::new(shim_r), &mut client_w, tty);
            tokio::select! {
                _ = output => {}
                _ = input => {}
                _ = shutdown.cancelled() => {}
            }
            let _ = client_w.shutdown().await;
        });
        Ok(hijack::switching(if tty {
            hijack::RAW_STREAM
        } else {
            hijack::MULTIPLEXED_STREAM
        }))
    })
}

/// `w` and `h` of a resize.
pub(crate) fn dims(r: &Req) -> Result<(u16, u16), ApiError> {
    let p = |k: &str| -> Result<u16, ApiError> {
        r.query
            .get(k)
            .unwrap_or("0")
            .parse()
            .map_err(|_| ApiError::invalid(format!("invalid value for {k}")))
    };
    Ok((p("w")?, p("h")?))
}

pub fn resize(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let (w, h) = dims(&r)?;
        if !rec.state.status.is_live() {
            return Err(ApiError::new(
                berth_actors::ErrorKind::Conflict,
                format!("Container {} is not running", rec.id),
            ));
        }
        let sock = r.ctx.containers.host.socket(&rec.id);
        host::connect(
            &sock,
            &Request::Resize {
                exec_id: None,
                width: w,
                height: h,
            },
        )
        .await
        .map_err(|e| ApiError::system(e.to_string()))?;
        Ok(Response::new(body::empty()))
    })
}

pub fn rename(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let name = r
            .query
            .get("name")
            .unwrap_or("")
            .trim_start_matches('/')
            .to_string();
        if name.is_empty() {
            return Err(ApiError::invalid("Neither old nor new names may be empty"));
        }
        let id = rec.id.clone();
        Containers::ask_supervisor(|reply| SupervisorMsg::Rename { id, name, reply })
            .await
            .map_err(err)?;
        Ok(body::no_content())
    })
}

pub fn pause(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        Containers::ask(&rec.id, ContainerMsg::Pause)
            .await
            .map_err(err)?;
        Ok(body::no_content())
    })
}

pub fn unpause(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        Containers::ask(&rec.id, ContainerMsg::Unpause)
            .await
            .map_err(err)?;
        Ok(body::no_content())
    })
}

pub fn update(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let body = r.json_of(&crate::api::schema::CONTAINER_UPDATE)?;
        let mut probe = rec.host_config.clone();
        if let Some(o) = body.as_object() {
            for (k, v) in o {
                probe[k] = v.clone();
            }
        }
        crate::containers::create::check_update(&probe, r.ctx.host.ncpu.max(1)).map_err(err)?;
        let warnings = Containers::ask(&rec.id, |reply| ContainerMsg::Update(body.clone(), reply))
            .await
            .map_err(err)?;
        if rec.state.status.is_live() {
            r.ctx
                .containers
                .apply_resources(&rec.id)
                .await
                .map_err(err)?;
        }
        ok_json(&json!({"Warnings": warnings}))
    })
}

pub fn top(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        if !rec.state.status.is_live() {
            return Err(ApiError::new(
                berth_actors::ErrorKind::Conflict,
                format!("Container {} is not running", rec.id),
            ));
        }
        let args = r.query.get("ps_args").unwrap_or("-ef").to_string();
        let pids = crate::containers::top::container_pids(&r.ctx.containers.host, &rec)
            .map_err(ApiError::system)?;
        let out = crate::containers::top::ps(&args, &pids)
            .await
            .map_err(ApiError::system)?;
        ok_json(&out)
    })
}

pub fn prune(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let f = Filters::parse(r.query.get("filters"))?;
        f.validate(&["label", "label!", "until"])?;
        let until = match f.values("until").next() {
            Some(u) => Some(
                parse_timestamp(u)
                    .map(|n| n / 1_000_000_000)
                    .ok_or_else(|| ApiError::invalid(format!("invalid filter 'until={u}'")))?,
            ),
            None => None,
        };
        let snap = r.ctx.containers.containers.snapshot();
        let mut deleted = Vec::new();
        let mut space = 0u64;
        for rec in snap.by_id.values() {
            if !matches!(
                rec.state.status,
                Status::Exited | Status::Created | Status::Dead
            ) {
                continue;
            }
            if !f.labels("label", &rec.labels())
                || until.is_some_and(|u| unix_of(&rec.created) >= u)
            {
                continue;
            }
            let size = crate::sys::fsfd::tree_size(&r.ctx.containers.host.driver_diff(&rec.layer));
            if Containers::ask(&rec.id, |reply| ContainerMsg::Remove {
                force: false,
                volumes: false,
                reply,
            })
            .await
            .is_ok()
            {
                deleted.push(rec.id.clone());
                space += size;
            }
        }
        r.ctx.events.publish(
            "container",
            "prune",
            "",
            [("reclaimed".to_string(), space.to_string())]
                .into_iter()
                .collect(),
        );
        ok_json(
            &json!({"ContainersDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": space}),
        )
    })
}

pub fn changes(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let driver = r.ctx.images.driver.clone();
        let upper = r.ctx.containers.host.driver_diff(&rec.layer);
        if upper.as_os_str().is_empty() {
            return Err(ApiError::new(
                berth_actors::ErrorKind::NotImplemented,
                format!(
                    "changes are not available with the {} storage driver",
                    driver.name()
                ),
            ));
        }
        // The image's layers, compared by descriptor (never a mounted view).
        let lowers: Vec<std::path::PathBuf> = driver
            .describe(&rec.layer)
            .and_then(|m| m.get("LowerDir").cloned())
            .map(|l| {
                l.split(':')
                    .filter(|s| !s.is_empty())
                    .map(std::path::PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        let v = tokio::task::spawn_blocking(move || {
            crate::containers::changes::changes(&upper, &lowers)
        })
        .await
        .map_err(|e| ApiError::system(e.to_string()))?
        .map_err(|e| ApiError::system(format!("reading the container's changes: {e}")))?;
        ok_json(&if v.is_empty() { Value::Null } else { json!(v) })
    })
}

pub fn export(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let driver = r.ctx.images.driver.clone();
        let root = driver
            .borrow_rw(&rec.layer)
            .map_err(|e| ApiError::system(format!("mounting the container's filesystem: {e}")))?;
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
        let layer = rec.layer.clone();
        tokio::task::spawn_blocking(move || {
            let w = crate::images::io::ChannelWriter::new(tx.clone());
            if let Err(e) = crate::containers::changes::export(&root, w) {
                let _ = tx.blocking_send(Err(e));
            }
            let _ = driver.give_back_rw(&layer);
        });
        let mut resp = Response::new(body::channel_result(rx));
        resp.headers_mut().insert(
            "Content-Type",
            HeaderValue::from_static("application/x-tar"),
        );
        Ok(resp)
    })
}

/// `GET /containers/{id}/stats`: every second while `stream` (default), or
/// one object (`stream=false`: two samples a second apart, so the client
/// can compute CPU use; `one-shot`: at once).
pub fn stats(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let stream = r.query.get("stream").is_none() || r.query.bool("stream");
        let one_shot = r.query.bool("one-shot");
        let cfg = r.ctx.config();
        let cgroup = crate::containers::spec::cgroups_path(&rec, &cfg);
        let ncpu = r.ctx.host.ncpu.max(1);
        let mem_total = r.ctx.host.mem_total;
        let pid = if rec.state.status.is_live() {
            rec.state.pid
        } else {
            0
        };
        let (id, name) = (rec.id.clone(), rec.name.clone());
        let live = move |ix: &berth_actors::container::Containers| {
            ix.snapshot()
                .by_id
                .get(&id)
                .is_some_and(|c| c.state.status.is_live())
        };
        let index = r.ctx.containers.containers.clone();
        let id = rec.id.clone();
        const ZERO: &str = "0001-01-01T00:00:00Z";
        if !stream {
            let first = crate::containers::stats::sample(&cgroup, ncpu, mem_total, pid);
            let first_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            if one_shot || !live(&index) {
                return ok_json(&crate::containers::stats::object(
                    &id, &name, &first, None, ZERO,
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let second = crate::containers::stats::sample(&cgroup, ncpu, mem_total, pid);
            return ok_json(&crate::containers::stats::object(
                &id,
                &name,
                &second,
                Some(&first),
                &first_at,
            ));
        }
        let (tx, rx) = mpsc::channel::<Bytes>(2);
        let shutdown = r.ctx.shutdown.clone();
        tokio::spawn(async move {
            let mut pre: Option<(Value, String)> = None;
            loop {
                let cur = crate::containers::stats::sample(&cgroup, ncpu, mem_total, pid);
                let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                let obj = match &pre {
                    Some((p, t)) => crate::containers::stats::object(&id, &name, &cur, Some(p), t),
                    None => crate::containers::stats::object(&id, &name, &cur, None, ZERO),
                };
                let mut line = serde_json::to_vec(&obj).unwrap_or_default();
                line.push(b'\n');
                if tx.send(Bytes::from(line)).await.is_err() || !live(&index) {
                    return;
                }
                pre = Some((cur, at));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        });
        let mut resp = Response::new(body::channel(rx));
        resp.headers_mut()
            .insert("Content-Type", HeaderValue::from_static("application/json"));
        Ok(resp)
    })
}

/// The container's root for `docker cp`: `/proc/<pid>/root` while it runs
/// (its mounts as it sees them), else its mounted root filesystem with its
/// volumes and bind mounts laid over it; and whether to unmount the root
/// filesystem afterwards.
fn archive_root(r: &Req, rec: &ContainerRecord) -> Result<(RootSpec, bool), ApiError> {
    if rec.state.status.is_live() && rec.state.pid > 0 {
        return Ok((
            RootSpec::Live(format!("/proc/{}/root", rec.state.pid).into()),
            false,
        ));
    }
    let mut binds = Vec::new();
    for m in &rec.mounts {
        let source = match m.kind.as_str() {
            "bind" => m.source.clone(),
            "volume" => {
                use berth_actors::ports::VolumeHost;
                let vol = r
                    .ctx
                    .volumes
                    .volumes
                    .lookup(&m.name)
                    .map_err(|e| ApiError::from_err(&e))?;
                r.ctx
                    .volumes
                    .host
                    .mount(&vol)
                    .map_err(|e| ApiError::system(format!("mounting volume {}: {e}", m.name)))?
            }
            // A stopped container's tmpfs holds nothing.
            _ => continue,
        };
        binds.push(Bind {
            source: source.into(),
            destination: m.destination.clone(),
            rw: m.rw,
        });
    }
    let rootfs = r
        .ctx
        .images
        .driver
        .borrow_rw(&rec.layer)
        .map_err(|e| ApiError::system(format!("mounting the container's filesystem: {e}")))?;
    Ok((RootSpec::Stopped { rootfs, binds }, true))
}

/// Once the copy's thread is done, give the stopped container's root
/// filesystem back (unmounted from the host's mount namespace unless its
/// container mounted it meanwhile).
fn unmount_after(
    finished: std::io::Result<tokio::sync::oneshot::Receiver<()>>,
    root: Option<(Arc<dyn crate::sys::storage::StorageDriver>, String)>,
) -> Result<(), ApiError> {
    let undo = move || {
        if let Some((driver, layer)) = root {
            let _ = driver.give_back_rw(&layer);
        }
    };
    match finished {
        Ok(finished) => {
            tokio::spawn(async move {
                let _ = finished.await;
                let _ = tokio::task::spawn_blocking(undo).await;
            });
            Ok(())
        }
        Err(e) => {
            undo();
            Err(ApiError::system(e.to_string()))
        }
    }
}

fn archive_err(rec: &ContainerRecord, path: &str, e: std::io::Error) -> ApiError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ApiError::not_found(format!(
            "Could not find the file {path} in container {}",
            rec.short_name()
        ))
    } else {
        ApiError::system(e.to_string())
    }
}

/// `HEAD` and `GET /containers/{id}/archive?path=`: the stat header, and for
/// GET the tar of the path.
pub fn archive_get(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let path = r.query.get("path").unwrap_or("").to_string();
        if path.is_empty() {
            return Err(ApiError::invalid("path is required"));
        }
        let (spec, unmount) = archive_root(&r, &rec)?;
        let head = r.method == hyper::Method::HEAD;
        let driver = r.ctx.images.driver.clone();
        let layer = rec.layer.clone();
        // The copy runs on a thread of its own (a stopped container's
        // mounts exist only there): first the stat, then the tar.
        let (stat_tx, stat_rx) = tokio::sync::oneshot::channel::<Result<String, ApiError>>();
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
        let p2 = path.clone();
        let rec2 = rec.clone();
        let finished = crate::containers::cp_root::spawn(spec, move |root| {
            let root = match root {
                Ok(root) => root,
                Err(e) => {
                    let _ = stat_tx.send(Err(ApiError::system(format!(
                        "preparing the container's filesystem: {e}"
                    ))));
                    return;
                }
            };
            let stat = crate::containers::archive::stat_header(&root, &p2)
                .map_err(|e| archive_err(&rec2, &p2, e));
            let ok = stat.is_ok();
            let _ = stat_tx.send(stat);
            if ok && !head {
                let w = crate::images::io::ChannelWriter::new(tx.clone());
                if let Err(e) = crate::containers::archive::read_archive(&root, &p2, w) {
                    let _ = tx.blocking_send(Err(e));
                }
            }
        });
        unmount_after(finished, unmount.then_some((driver, layer)))?;
        let stat = stat_rx
            .await
            .map_err(|_| ApiError::system("the copy stopped"))??;
        let mut resp = if head {
            Response::new(body::empty())
        } else {
            Response::new(body::channel_result(rx))
        };
        resp.headers_mut().insert(
            "Content-Type",
            HeaderValue::from_static("application/x-tar"),
        );
        if let Ok(v) = HeaderValue::from_str(&stat) {
            resp.headers_mut().insert("X-Docker-Container-Path-Stat", v);
        }
        Ok(resp)
    })
}

/// `PUT /containers/{id}/archive?path=`: extract the body's tar there.
pub fn archive_put(mut r: Req) -> HandlerFuture {
    Box::pin(async move {
        let res = archive_put_to(&mut r).await;
        // Refused before the tar was read: drain it so the client, still
        // sending, reads the refusal.
        let refused = res.is_err();
        if let (true, Some(incoming)) = (refused, r.incoming.take()) {
            crate::images::io::drain_body(incoming.into_body(), 64 << 20).await;
        }
        res
    })
}

async fn archive_put_to(r: &mut Req) -> Result<Response<body::Body>, ApiError> {
    {
        let rec = find(r)?;
        let path = r.query.get("path").unwrap_or("").to_string();
        if path.is_empty() {
            return Err(ApiError::invalid("path is required"));
        }
        let opts = crate::containers::archive::ExtractOptions {
            no_overwrite_dir_non_dir: r.query.bool("noOverwriteDirNonDir"),
            copy_uid_gid: r.query.bool("copyUIDGID"),
        };
        let ro_rootfs = rec.host_config["ReadonlyRootfs"].as_bool() == Some(true);
        if let Some(m) =
            crate::containers::archive::read_only_refusal(&rec.mounts, ro_rootfs, &path)
        {
            // dockerd answers these as a system error (500).
            return Err(ApiError::system(m));
        }
        let reader = super::images::body_reader(r)?;
        let (spec, unmount) = archive_root(r, &rec)?;
        let driver = r.ctx.images.driver.clone();
        let layer = rec.layer.clone();
        let p2 = path.clone();
        let (res_tx, res_rx) = tokio::sync::oneshot::channel();
        let finished = crate::containers::cp_root::spawn(spec, move |root| {
            let r = root
                .map_err(crate::containers::archive::ExtractError::Io)
                .and_then(|root| crate::containers::archive::extract(&root, &p2, reader, &opts));
            let _ = res_tx.send(r);
        });
        unmount_after(finished, unmount.then_some((driver, layer)))?;
        let res = res_rx
            .await
            .map_err(|_| ApiError::system("the copy stopped"))?;
        use crate::containers::archive::ExtractError as X;
        match res {
            Ok(()) => Ok(Response::new(body::empty())),
            Err(X::NotFound(p)) => Err(ApiError::not_found(format!(
                "Could not find the file {p} in container {}",
                rec.short_name()
            ))),
            Err(X::NotADirectory) => Err(ApiError::invalid("extraction point is not a directory")),
            Err(X::Invalid(m)) => Err(ApiError::invalid(m)),
            Err(X::Io(e)) => Err(ApiError::system(e.to_string())),
        }
    }
}
