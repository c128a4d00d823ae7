//! Volumes: create, list, inspect, remove, prune; a container's `Mounts`.

use std::collections::BTreeMap;

use berth_actors::volume::{
    VolumeError, VolumeMsg, VolumeRecord, VolumeSupervisorMsg, Volumes, VOLUME_RECORD_VERSION,
};
use hyper::StatusCode;
use serde_json::{json, Value};

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::filters::Filters;
use crate::api::render::*;
use crate::api::router::{ok_json, HandlerFuture, Req};

fn err(e: VolumeError) -> ApiError {
    ApiError::from_err(&e)
}

fn strings(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn create(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let b = r.json_of(&crate::api::schema::VOLUME_CREATE)?;
        let driver = b["Driver"]
            .as_str()
            .filter(|d| !d.is_empty())
            .unwrap_or("local");
        let plugin = berth_actors::volume::driver::is_plugin(driver);
        if plugin {
            // dockerd's 404 when the plugin cannot be found.
            berth_actors::volume::driver::plugin(driver)
                .await
                .map_err(err)?;
        }
        let given = b["Name"].as_str().unwrap_or("").to_string();
        if !given.is_empty() && !crate::volumes::valid_name(&given) {
            return Err(ApiError::invalid(format!(
                "create {given}: \"{given}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )));
        }
        let options = strings(&b["DriverOpts"]);
        // A plugin's options are its own.
        for k in options.keys().filter(|_| !plugin) {
            if !["type", "device", "o", "size"].contains(&k.as_str()) {
                return Err(ApiError::invalid(format!(
                    "create {given}: invalid option key: \"{k}\""
                )));
            }
        }
        let name = if given.is_empty() {
            crate::ids::new_id()
        } else {
            given
        };
        let root = &r.ctx.volumes.host.root;
        let rec = VolumeRecord {
            version: VOLUME_RECORD_VERSION,
            name: name.clone(),
            driver: driver.to_string(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels: strings(&b["Labels"]),
            options,
            anonymous: false,
            mountpoint: if plugin {
                String::new()
            } else {
                root.join(&name).join("_data").display().to_string()
            },
            scope: "local".into(),
            users: Default::default(),
            active: Default::default(),
        };
        let v = Volumes::ask_supervisor(|reply| VolumeSupervisorMsg::Create {
            record: Box::new(rec),
            reply,
        })
        .await
        .map_err(err)?;
        let mut resp = ok_json(&volume_json(&v))?;
        *resp.status_mut() = StatusCode::CREATED;
        Ok(resp)
    })
}

fn dangling(v: &VolumeRecord) -> bool {
    v.users.is_empty()
}

pub fn list(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let f = Filters::parse(r.query.get("filters"))?;
        f.validate(&["dangling", "driver", "label", "name"])?;
        let snap = r.ctx.volumes.volumes.snapshot();
        // The volumes of the active volume plugins that berthd has no
        // record of (made through another daemon), as dockerd lists them.
        let foreign: Vec<(String, String, Value)> =
            Volumes::ask_supervisor(VolumeSupervisorMsg::Foreign)
                .await
                .map_err(err)?
                .into_iter()
                .filter_map(|(p, v)| Some((p, v["Name"].as_str()?.to_string(), v)))
                .collect();
        let foreign = foreign
            .into_iter()
            .filter(|(p, name, _)| {
                f.values("name").all(|n| name.contains(n.as_str()))
                    && f.values("driver").all(|d| d == p)
                    && !f.contains("label")
                    && f.values("dangling").all(|d| d == "true" || d == "1")
            })
            .map(|(p, name, v)| {
                json!({
                    "CreatedAt": v["CreatedAt"].as_str().unwrap_or(""),
                    "Driver": p,
                    "Labels": Value::Null,
                    "Mountpoint": v["Mountpoint"].as_str().unwrap_or(""),
                    "Name": name,
                    "Options": Value::Null,
                    "Scope": "local",
                })
            });
        let out: Vec<Value> = snap
            .by_name
            .values()
            .filter(|v| {
                f.values("dangling")
                    .all(|d| (d == "true" || d == "1") == dangling(v))
                    && f.values("name").all(|n| v.name.contains(n.as_str()))
                    && f.values("driver").all(|d| *d == v.driver)
                    && f.labels("label", &v.labels)
            })
            .map(|v| volume_json(v))
            .chain(foreign)
            .collect();
        ok_json(&json!({"Volumes": out, "Warnings": []}))
    })
}

pub fn inspect(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let v = r.ctx.volumes.volumes.lookup(r.param("name")).map_err(err)?;
        let mut out = volume_json(&v);
        // The plugin's `Status` (and its mountpoint before any mount); a
        // plugin that is gone leaves the record's view.
        let view = if berth_actors::volume::driver::is_plugin(&v.driver) {
            Volumes::ask(&v.name, |reply| VolumeMsg::PluginView { reply }).await
        } else {
            Ok(None)
        };
        match view {
            Ok(Some(g)) => {
                if let Some(s) = g.get("Status").filter(|s| s.is_object()) {
                    out["Status"] = s.clone();
                }
                if v.mountpoint.is_empty() {
                    if let Some(m) = g["Mountpoint"].as_str() {
                        out["Mountpoint"] = json!(m);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(volume = %v.name, "the plugin's view: {e}"),
        }
        ok_json(&out)
    })
}

pub fn delete(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let name = r.param("name").to_string();
        let force = r.query.bool("force");
        match r.ctx.volumes.volumes.lookup(&name) {
            Ok(_) => {}
            Err(_) if force => return Ok(body::no_content()),
            Err(e) => return Err(err(e)),
        }
        match Volumes::ask_again(&name, |reply| VolumeMsg::Remove { force, reply }).await {
            // The volume's actor died with the request and did not come
            // back: gone means done.
            Err(VolumeError::Unavailable) if r.ctx.volumes.volumes.lookup(&name).is_err() => {}
            res => res.map_err(err)?,
        }
        Ok(body::no_content())
    })
}

pub fn prune(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let f = Filters::parse(r.query.get("filters"))?;
        f.validate(&["label", "label!", "all"])?;
        // API 1.42+: anonymous volumes only, unless all=true.
        let all = f.values("all").any(|v| v == "true" || v == "1")
            || (r.version.0, r.version.1) < (1, 42);
        let snap = r.ctx.volumes.volumes.snapshot();
        let mut deleted = Vec::new();
        let mut space = 0u64;
        for v in snap.by_name.values() {
            // `label!`: kept when every one of them matches (moby's rule).
            if !v.users.is_empty()
                || (!all && !v.anonymous)
                || !f.labels("label", &v.labels)
                || (f.contains("label!") && f.labels("label!", &v.labels))
            {
                continue;
            }
            let size = r.ctx.volumes.size(v);
            let name = v.name.clone();
            if Volumes::ask(&name, |reply| VolumeMsg::Remove {
                force: false,
                reply,
            })
            .await
            .is_ok()
            {
                deleted.push(name);
                space += size;
            }
        }
        ok_json(&json!({"VolumesDeleted": deleted, "SpaceReclaimed": space}))
    })
}
