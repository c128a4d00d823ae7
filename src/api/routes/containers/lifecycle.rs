//! Lifecycle verbs: create, start, stop, restart, kill, remove, wait, rename,
//! pause, unpause, update, prune.

use berth_actors::container::config::{self, UpdateConfig};
use berth_actors::container::{
    ContainerMsg, Containers, HostConfig, Status, SupervisorMsg, WaitCondition,
};
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::filters::Filters;
use crate::api::router::{ok_json, HandlerFuture, Req};
use crate::api::version::ApiVersion;

use crate::api::render::*;
use crate::api::shared::*;

/// dockerd's per-version handling of `HostConfig.Mounts` options: fields
/// older clients could not know are ignored, options of another mount
/// type dropped (before 1.42) or refused (from 1.42), fields newer than
/// the client refused. Read-only mounts are recursive from 1.44.
fn versioned_mounts(v: ApiVersion, body: &mut serde_json::Value) -> Result<bool, ApiError> {
    let mut none = Vec::new();
    let mounts = body["HostConfig"]["Mounts"].as_array_mut();
    for m in mounts.unwrap_or(&mut none) {
        let kind = m["Type"].as_str().unwrap_or("").to_string();
        if v < ApiVersion(1, 40) {
            if let Some(b) = m["BindOptions"].as_object_mut() {
                b.remove("NonRecursive");
            }
        }
        for (field, owner) in [
            ("VolumeOptions", "volume"),
            ("BindOptions", "bind"),
            ("TmpfsOptions", "tmpfs"),
        ] {
            let set = m.get(field).is_some_and(|o| !o.is_null());
            if !set || kind == owner {
                continue;
            }
            if v < ApiVersion(1, 42) {
                if field != "BindOptions" {
                    m[field] = serde_json::Value::Null;
                }
            } else {
                return Err(ApiError::invalid(format!(
                    "{field} must not be specified on mount type {kind:?}"
                )));
            }
        }
        if v < ApiVersion(1, 42) {
            if let Some(b) = m["BindOptions"].as_object_mut() {
                b.remove("CreateMountpoint");
            }
        }
        if v < ApiVersion(1, 44)
            && kind == "bind"
            && m["BindOptions"]["ReadOnlyForceRecursive"].as_bool() == Some(true)
        {
            return Err(ApiError::invalid(
                "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer",
            ));
        }
        let sub = m["VolumeOptions"]["Subpath"].as_str().unwrap_or("");
        if v < ApiVersion(1, 45) && !sub.is_empty() {
            return Err(ApiError::invalid(
                "VolumeOptions.Subpath needs API v1.45 or newer",
            ));
        }
    }
    Ok(v >= ApiVersion(1, 44))
}

pub fn create(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let mut body = r.json_of(&crate::api::schema::CONTAINER_CREATE)?;
        let recursive_ro = versioned_mounts(r.version, &mut body)?;
        // `Healthcheck.StartInterval` is API 1.44's: older clients' is
        // ignored, as dockerd ignores it.
        if r.version < ApiVersion(1, 44) {
            if let Some(h) = body["Healthcheck"].as_object_mut() {
                h.remove("StartInterval");
            }
        }
        let name = r.query.get("name").unwrap_or("").to_string();
        if let Some(p) = r.query.get("platform").filter(|p| !p.is_empty()) {
            if !p.starts_with("linux") {
                return Err(ApiError::invalid(format!("unsupported platform: {p}")));
            }
        }
        let c = r
            .ctx
            .containers
            .create(&name, &body, recursive_ro)
            .await
            .map_err(err)?;
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
        // The actor decides (a running container answers 304).
        let seen = rec.state.started_at.clone();
        let started = Containers::ask_again(&rec.id, |reply| ContainerMsg::StartOnce {
            seen: seen.clone(),
            reply,
        })
        .await;
        match started {
            // The actor died with the request and the container is gone:
            // a `--rm` one that its next incarnation started, saw exit and
            // removed.
            Err(berth_actors::container::ContainerError::Unavailable)
                if rec.auto_remove() && r.ctx.containers.containers.lookup(&rec.id).is_err() => {}
            res => res.map_err(err)?,
        }
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
        Containers::ask_again(&rec.id, |reply| {
            let signal = signal.clone();
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

/// `DELETE /containers/{parent}/{alias}?link=true` (`docker rm --link`):
/// the parent forgets that legacy link; both containers stay.
async fn unlink(r: &Req) -> Result<Response<body::Body>, ApiError> {
    let name = r.param("id").trim_start_matches('/');
    let Some((parent, alias)) = name.rsplit_once('/') else {
        return Err(ApiError::system(
            "Conflict, cannot remove the default link name of the container",
        ));
    };
    let no_such = || ApiError::not_found(format!("No such container: {name}"));
    let p = r
        .ctx
        .containers
        .containers
        .lookup(parent)
        .map_err(|_| no_such())?;
    let linked = p
        .host_config
        .links
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|l| berth_actors::container::parse_link(l).is_ok_and(|(_, a)| a == alias));
    if !linked || p.name.trim_start_matches('/') != parent.trim_start_matches('/') {
        return Err(no_such());
    }
    let alias = alias.to_string();
    Containers::ask(&p.id, |reply| ContainerMsg::Unlink(alias, reply))
        .await
        .map_err(err)?;
    Ok(body::no_content())
}

pub fn delete(r: Req) -> HandlerFuture {
    Box::pin(async move {
        if r.query.bool("link") {
            return unlink(&r).await;
        }
        let rec = find(&r)?;
        let force = r.query.bool("force");
        let volumes = r.query.bool("v");
        let removed = Containers::ask(&rec.id, |reply| ContainerMsg::Remove {
            force,
            volumes,
            reply,
        })
        .await;
        match removed {
            // The container's actor died with the request: gone means done.
            Err(berth_actors::container::ContainerError::Unavailable)
                if r.ctx.containers.containers.lookup(&rec.id).is_err() => {}
            res => res.map_err(err)?,
        }
        r.ctx.containers.execs.forget_container(&rec.id);
        Ok(body::no_content())
    })
}

pub fn wait(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let cond = WaitCondition::parse(r.query.get("condition").unwrap_or(""))
            .map_err(ApiError::invalid)?;
        // Headers now (the CLI starts the container once it has them), the
        // status when the condition holds (asked of the ContainerActor, and
        // of its next incarnation if it dies meanwhile).
        let (btx, brx) = mpsc::channel::<Bytes>(1);
        let shutdown = r.ctx.shutdown.clone();
        let containers = r.ctx.containers.containers.clone();
        tokio::spawn(async move {
            let v = tokio::select! {
                o = containers.wait(&rec.id, cond) => {
                    json!({"StatusCode": o.status_code, "Error": o.error.map(|m| json!({"Message": m}))})
                }
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
        // The checks see the record with every field the body names.
        let mut probe = serde_json::to_value(&rec.host_config).unwrap_or_default();
        if let (Some(p), Some(o)) = (probe.as_object_mut(), body.as_object()) {
            p.extend(o.clone());
        }
        let probe: HostConfig = config::from_value_lenient("update", probe);
        let patch: UpdateConfig = config::from_value_lenient("update", body);
        crate::containers::create::check_update(&probe, r.ctx.host.ncpu.max(1)).map_err(err)?;
        // The actor updates the runtime and the record together.
        let patch = Box::new(patch);
        let warnings =
            Containers::ask_again(&rec.id, |reply| ContainerMsg::Update(patch.clone(), reply))
                .await
                .map_err(err)?;
        ok_json(&json!({"Warnings": warnings}))
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
        // The snapshot picks candidates by the filters; each actor decides
        // (a remove without force refuses a container that runs by now).
        for rec in snap.by_id.values() {
            if !matches!(
                rec.state.status,
                Status::Exited | Status::Created | Status::Dead
            ) {
                continue;
            }
            let labels = rec.labels();
            if !f.labels("label", &labels)
                || (f.contains("label!") && f.labels("label!", &labels))
                || until.is_some_and(|u| unix_of(&rec.created) >= u)
            {
                continue;
            }
            let size = r.ctx.containers.rw_size(rec);
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
