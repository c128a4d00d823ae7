//! Testing-only chaos control (exists only with `--testing-chaos-control`):
//! `POST /_berth/chaos/kill?actor=NAME` kills a registered actor of the tree
//! so supervision can be observed from outside.

use std::time::Duration;

use berth_actors::directory::{
    CLUSTER, CONTAINERS, EVENT_BUS, EXECS, FRONT_DOOR, IMAGE_STORE, LOG_STREAMS, METRICS, NETWORKS,
    PLUGINS, REGISTRY_SESSIONS, VOLUMES,
};

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::router::{HandlerFuture, Req};

pub fn kill(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let name = r.query.get("actor").unwrap_or_default().to_string();
        // `registry-session` kills the session of every registry host.
        if name == "registry-session" {
            let sup = ractor::registry::where_is(REGISTRY_SESSIONS)
                .ok_or_else(|| ApiError::not_found("the session supervisor is not running"))?;
            let sessions = sup.get_children();
            if sessions.is_empty() {
                return Err(ApiError::not_found("no registry session is running"));
            }
            for s in &sessions {
                tracing::warn!(actor = ?s.get_name(), "chaos control: killing a registry session");
                s.kill();
            }
            return Ok(body::no_content());
        }
        // `logs:<container>`: every LogStream actor of that container
        // (their streams resume at the position they delivered).
        if let Some(c) = name.strip_prefix("logs:") {
            let rec = r
                .ctx
                .containers
                .containers
                .lookup(c)
                .map_err(crate::api::shared::err)?;
            let n = berth_actors::logs::kill_streams_of(&r.ctx.containers.logs, &rec.id);
            if n == 0 {
                return Err(ApiError::not_found(format!(
                    "no log stream of {c} is running"
                )));
            }
            tracing::warn!(container = %rec.id, streams = n, "chaos control: killing log streams");
            return Ok(body::no_content());
        }
        // `container:<id>`, `network:<name or id>`, `volume:<name>`: one
        // actor of that kind (the container, the host side, the data stay).
        let keyed = if let Some(id) = name.strip_prefix("container:") {
            let rec = r.ctx.containers.containers.lookup(id);
            Some((
                id,
                rec.map(|c| berth_actors::container::actor_name(&c.id))
                    .map_err(crate::api::shared::err),
            ))
        } else if let Some(n) = name.strip_prefix("network:") {
            let rec = r.ctx.networks.networks.lookup(n);
            Some((
                n,
                rec.map(|c| berth_actors::network::actor_name(&c.id))
                    .map_err(|e| ApiError::from_err(&e)),
            ))
        } else if let Some(x) = name.strip_prefix("exec:") {
            let known = r.ctx.containers.execs.table.get(x).is_some();
            Some((
                x,
                if known {
                    Ok(berth_actors::exec::actor_name(x))
                } else {
                    Err(ApiError::not_found(format!("No such exec instance: {x}")))
                },
            ))
        } else if let Some(h) = name.strip_prefix("registry-session:") {
            // One registry host's session (its operations in flight end
            // with an error line; it is started again).
            Some((h, Ok(berth_actors::registry::actor_name(h))))
        } else if let Some(n) = name.strip_prefix("plugin:") {
            // One legacy plugin's actor (it activates the plugin again on
            // its next use).
            Some((n, Ok(berth_actors::plugin::actor_name(n))))
        } else if let Some(n) = name.strip_prefix("volume:") {
            let rec = r.ctx.volumes.volumes.lookup(n);
            Some((
                n,
                rec.map(|v| berth_actors::volume::actor_name(&v.name))
                    .map_err(|e| ApiError::from_err(&e)),
            ))
        } else {
            None
        };
        if let Some((what, actor)) = keyed {
            let actor = actor?;
            let cell = ractor::registry::where_is(actor.clone()).ok_or_else(|| {
                ApiError::not_found(format!("the actor of {what} is not running"))
            })?;
            tracing::warn!(%actor, "chaos control: killing an actor");
            cell.kill();
            return Ok(body::no_content());
        }
        if ![
            FRONT_DOOR,
            EVENT_BUS,
            IMAGE_STORE,
            REGISTRY_SESSIONS,
            NETWORKS,
            VOLUMES,
            CONTAINERS,
            LOG_STREAMS,
            EXECS,
            METRICS,
            PLUGINS,
            CLUSTER,
        ]
        .contains(&name.as_str())
        {
            return Err(ApiError::not_found(format!(
                "no such actor: {name:?} (one of {FRONT_DOOR}, {EVENT_BUS}, {IMAGE_STORE}, {REGISTRY_SESSIONS}, {NETWORKS}, {VOLUMES}, {CONTAINERS}, {LOG_STREAMS}, {EXECS}, {METRICS}, {PLUGINS}, {CLUSTER}, plugin:<name>, registry-session, registry-session:<host>, container:<id>, network:<name>, volume:<name>, logs:<container>, exec:<id>)"
            )));
        }
        let cell = ractor::registry::where_is(name.clone())
            .ok_or_else(|| ApiError::not_found(format!("actor {name} is not running")))?;
        tracing::warn!(actor = %name, "chaos control: killing actor");
        // Kill after the reply is on its way: the front door may be the victim.
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            cell.kill();
        });
        Ok(body::no_content())
    })
}
