//! Features berthd does not have, answered as dockerd answers a node
//! without them: clients (the CLI, SDKs, compose) read those statuses as
//! "feature off" and break on a 404.
//!
//! - Swarm: every swarm endpoint answers 503 "not a swarm manager" (and
//!   `/swarm/leave` "not part of a swarm"), as a dockerd that never joined
//!   one; joining or creating a swarm is refused with 501.
//! - Managed plugins: none are installed, so the list is empty and a named
//!   plugin is not found; installing one is refused with 501.
//! - The build cache: berthd has none yet, so pruning it frees nothing.
//! - `POST /build` and `POST /session` (the image builder): 501.

use hyper::Method;

use super::{r, Route};
use crate::api::errors::ApiError;
use crate::api::filters::Filters;
use crate::api::router::{ok_json, HandlerFuture, Req};
use berth_actors::ErrorKind;

const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

fn not_manager(_r: Req) -> HandlerFuture {
    Box::pin(async { Err(ApiError::new(ErrorKind::Unavailable, NOT_MANAGER)) })
}

fn not_in_swarm(_r: Req) -> HandlerFuture {
    Box::pin(async {
        Err(ApiError::new(
            ErrorKind::Unavailable,
            "This node is not part of a swarm",
        ))
    })
}

fn no_swarm_mode(_r: Req) -> HandlerFuture {
    Box::pin(async {
        Err(ApiError::new(
            ErrorKind::NotImplemented,
            "swarm mode is not supported by berthd: it cannot create or join a swarm",
        ))
    })
}

fn plugins_list(r: Req) -> HandlerFuture {
    Box::pin(async move {
        Filters::parse(r.query.get("filters"))?;
        ok_json(&serde_json::json!([]))
    })
}

fn plugin_not_found(r: Req) -> HandlerFuture {
    Box::pin(async move {
        Err(ApiError::not_found(format!(
            "plugin {:?} not found",
            r.param("name")
        )))
    })
}

fn plugins_unsupported(_r: Req) -> HandlerFuture {
    Box::pin(async {
        Err(ApiError::new(
            ErrorKind::NotImplemented,
            "managed plugins are not supported by berthd (docker plugin install/create/enable)",
        ))
    })
}

fn build_prune(r: Req) -> HandlerFuture {
    Box::pin(async move {
        Filters::parse(r.query.get("filters"))?;
        ok_json(&serde_json::json!({"CachesDeleted": null, "SpaceReclaimed": 0}))
    })
}

fn no_builder(_r: Req) -> HandlerFuture {
    Box::pin(async {
        Err(ApiError::new(
            ErrorKind::NotImplemented,
            "berthd has no image builder yet: POST /build (docker build) is not supported",
        ))
    })
}

fn no_session(_r: Req) -> HandlerFuture {
    Box::pin(async {
        Err(ApiError::new(
            ErrorKind::NotImplemented,
            "berthd does not support build sessions (POST /session, BuildKit)",
        ))
    })
}

/// The routes of this file.
pub fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        r(M::GET, "/swarm", not_manager),
        r(M::POST, "/swarm/init", no_swarm_mode),
        r(M::POST, "/swarm/join", no_swarm_mode),
        r(M::POST, "/swarm/leave", not_in_swarm),
        r(M::POST, "/swarm/update", not_manager),
        r(M::GET, "/swarm/unlockkey", not_manager),
        r(M::POST, "/swarm/unlock", not_manager),
        r(M::GET, "/plugins", plugins_list),
        r(M::GET, "/plugins/privileges", plugins_unsupported),
        r(M::POST, "/plugins/pull", plugins_unsupported),
        r(M::POST, "/plugins/create", plugins_unsupported),
        r(M::GET, "/plugins/{name*}/json", plugin_not_found),
        r(M::DELETE, "/plugins/{name*}", plugin_not_found),
        r(M::POST, "/plugins/{name*}/enable", plugin_not_found),
        r(M::POST, "/plugins/{name*}/disable", plugin_not_found),
        r(M::POST, "/plugins/{name*}/upgrade", plugin_not_found),
        r(M::POST, "/plugins/{name*}/push", plugin_not_found),
        r(M::POST, "/plugins/{name*}/set", plugin_not_found),
        r(M::POST, "/build", no_builder),
        r(M::POST, "/build/prune", build_prune),
        r(M::GET, "/build/cancel", no_builder),
        r(M::POST, "/session", no_session),
        // Nodes, services, tasks, secrets and configs: a manager's objects.
        r(M::GET, "/nodes", not_manager),
        r(M::GET, "/nodes/{id}", not_manager),
        r(M::DELETE, "/nodes/{id}", not_manager),
        r(M::POST, "/nodes/{id}/update", not_manager),
        r(M::GET, "/services", not_manager),
        r(M::POST, "/services/create", not_manager),
        r(M::GET, "/services/{id}", not_manager),
        r(M::DELETE, "/services/{id}", not_manager),
        r(M::POST, "/services/{id}/update", not_manager),
        r(M::GET, "/services/{id}/logs", not_manager),
        r(M::GET, "/tasks", not_manager),
        r(M::GET, "/tasks/{id}", not_manager),
        r(M::GET, "/tasks/{id}/logs", not_manager),
        r(M::GET, "/secrets", not_manager),
        r(M::POST, "/secrets/create", not_manager),
        r(M::GET, "/secrets/{id}", not_manager),
        r(M::DELETE, "/secrets/{id}", not_manager),
        r(M::POST, "/secrets/{id}/update", not_manager),
        r(M::GET, "/configs", not_manager),
        r(M::POST, "/configs/create", not_manager),
        r(M::GET, "/configs/{id}", not_manager),
        r(M::DELETE, "/configs/{id}", not_manager),
        r(M::POST, "/configs/{id}/update", not_manager),
    ]
}
