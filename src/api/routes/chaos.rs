//! Testing-only chaos control (exists only with `--testing-chaos-control`):
//! `POST /_berth/chaos/kill?actor=NAME` kills a registered actor of the tree
//! so supervision can be observed from outside.

use std::time::Duration;

use berth_actors::directory::{
    CONTAINERS, EVENT_BUS, FRONT_DOOR, IMAGE_STORE, NETWORKS, REGISTRY_SESSIONS, VOLUMES,
};

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::router::{HandlerFuture, Req};

pub fn kill(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let name = r.query.get("actor").unwrap_or_default().to_string();
        // `registry-session` kills every running pull/push session.
        if name == "registry-session" {
            let sup = ractor::registry::where_is(REGISTRY_SESSIONS)
                .ok_or_else(|| ApiError::not_found("the session supervisor is not running"))?;
            let sessions = sup.get_children();
            if sessions.is_empty() {
                return Err(ApiError::not_found("no registry session is running"));
            }
            for s in sessions {
                tracing::warn!(actor = ?s.get_id(), "chaos control: killing a registry session");
                s.kill();
            }
            return Ok(body::no_content());
        }
        // `container:<id>` kills one container's actor (never the container).
        if let Some(id) = name.strip_prefix("container:") {
            let rec = r
                .ctx
                .containers
                .containers
                .lookup(id)
                .map_err(super::containers::err)?;
            let cell = ractor::registry::where_is(berth_actors::container::actor_name(&rec.id))
                .ok_or_else(|| ApiError::not_found(format!("the actor of {id} is not running")))?;
            tracing::warn!(id = %rec.id, "chaos control: killing a container's actor");
            cell.kill();
            return Ok(body::no_content());
        }
        // `network:<name or id>` kills one network's actor (the host side stays).
        if let Some(n) = name.strip_prefix("network:") {
            let rec = r
                .ctx
                .networks
                .networks
                .lookup(n)
                .map_err(|e| ApiError::from_err(&e))?;
            let cell = ractor::registry::where_is(berth_actors::network::actor_name(&rec.id))
                .ok_or_else(|| ApiError::not_found(format!("the actor of {n} is not running")))?;
            tracing::warn!(id = %rec.id, "chaos control: killing a network's actor");
            cell.kill();
            return Ok(body::no_content());
        }
        // `volume:<name>` kills one volume's actor (its data stays).
        if let Some(n) = name.strip_prefix("volume:") {
            let rec = r
                .ctx
                .volumes
                .volumes
                .lookup(n)
                .map_err(|e| ApiError::from_err(&e))?;
            let cell = ractor::registry::where_is(berth_actors::volume::actor_name(&rec.name))
                .ok_or_else(|| ApiError::not_found(format!("the actor of {n} is not running")))?;
            tracing::warn!(volume = %rec.name, "chaos control: killing a volume's actor");
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
        ]
        .contains(&name.as_str())
        {
            return Err(ApiError::not_found(format!(
                "no such actor: {name:?} (one of {FRONT_DOOR}, {EVENT_BUS}, {IMAGE_STORE}, {REGISTRY_SESSIONS}, {NETWORKS}, {VOLUMES}, {CONTAINERS}, registry-session, container:<id>, network:<name>, volume:<name>)"
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
