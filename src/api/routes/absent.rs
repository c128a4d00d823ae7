//! Features berthd does not have, answered as dockerd answers a node
//! without them: clients (the CLI, SDKs, compose) read those statuses as
//! "feature off" and break on a 404.
//!
//! - Swarm: every swarm endpoint answers 503 "not a swarm manager" (and
//!   `/swarm/leave` "not part of a swarm"), as a dockerd that never joined
//!   one; joining or creating a swarm is refused with 501.
//! - Managed plugins: none are installed, so a named plugin is not found;
//!   installing one is refused with 501 (`GET /plugins` lists the legacy
//!   plugins, `plugins.rs`).
//! - BuildKit: `POST /session` and `/build/cancel` (a BuildKit build's
//!   cancellation by ID): 501. The builder of API version 1 is
//!   `routes/build.rs`.

use crate::api::errors::ApiError;
use crate::api::router::{HandlerFuture, Req};
use berth_actors::ErrorKind;

const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

pub fn not_manager(_r: Req) -> HandlerFuture {
    Box::pin(async { Err(ApiError::new(ErrorKind::Unavailable, NOT_MANAGER)) })
}

pub fn not_in_swarm(_r: Req) -> HandlerFuture {
    Box::pin(async {
        Err(ApiError::new(
            ErrorKind::Unavailable,
            "This node is not part of a swarm",
        ))
    })
}

pub fn no_swarm_mode(_r: Req) -> HandlerFuture {
    Box::pin(async {
        Err(ApiError::new(
            ErrorKind::NotImplemented,
            "swarm mode is not supported by berthd: it cannot create or join a swarm",
        ))
    })
}

pub fn plugin_not_found(r: Req) -> HandlerFuture {
    Box::pin(async move {
        Err(ApiError::not_found(format!(
            "plugin {:?} not found",
            r.param("name")
        )))
    })
}

pub fn plugins_unsupported(_r: Req) -> HandlerFuture {
    Box::pin(async {
        Err(ApiError::new(
            ErrorKind::NotImplemented,
            "managed plugins are not supported by berthd (docker plugin install/create/enable)",
        ))
    })
}

pub fn no_builder(_r: Req) -> HandlerFuture {
    Box::pin(async {
        Err(ApiError::new(
            ErrorKind::NotImplemented,
            "berthd builds with the builder of API version 1 only: BuildKit's build cancellation is not supported",
        ))
    })
}

pub fn no_session(_r: Req) -> HandlerFuture {
    Box::pin(async {
        Err(ApiError::new(
            ErrorKind::NotImplemented,
            "berthd does not support build sessions (POST /session, BuildKit)",
        ))
    })
}
