//! The route table. One file per API area.

mod absent;
mod build;
mod chaos;
pub(crate) mod containers;
pub(crate) mod events;
mod exec;
pub(crate) mod images;
mod networks;
mod plugins;
mod system;
pub(crate) mod volumes;

use hyper::Method;

use super::router::{BodyMode, Route};

fn r(method: Method, path: &'static str, handler: super::router::Handler) -> Route {
    Route {
        method,
        path,
        body: BodyMode::Capped,
        handler,
    }
}

/// A route whose body is streamed to the handler (uploads).
fn stream(method: Method, path: &'static str, handler: super::router::Handler) -> Route {
    Route {
        method,
        path,
        body: BodyMode::Stream,
        handler,
    }
}

/// A route that takes over its connection (attach, exec start): its small
/// JSON body is read whole first, the request kept for the upgrade.
fn hijack(method: Method, path: &'static str, handler: super::router::Handler) -> Route {
    Route {
        method,
        path,
        body: BodyMode::Hijack,
        handler,
    }
}

/// Every route berthd serves; `chaos` adds the testing-only chaos control.
pub fn table(chaos: bool) -> Vec<Route> {
    let mut t = vec![
        r(Method::GET, "/_ping", system::ping),
        r(Method::HEAD, "/_ping", system::ping),
        r(Method::GET, "/version", system::version),
        r(Method::GET, "/info", system::info),
        r(Method::GET, "/system/df", system::df),
        r(Method::GET, "/events", events::events),
        r(Method::GET, "/images/json", images::list),
        stream(Method::POST, "/images/create", images::create),
        stream(Method::POST, "/images/load", images::load),
        r(Method::POST, "/images/prune", images::prune),
        r(Method::GET, "/images/get", images::save),
        r(Method::GET, "/images/{name*}/json", images::inspect),
        r(Method::GET, "/images/{name*}/history", images::history),
        r(Method::GET, "/images/{name*}/get", images::save),
        r(Method::POST, "/images/{name*}/tag", images::tag),
        r(Method::POST, "/images/{name*}/push", images::push),
        r(Method::POST, "/auth", images::auth),
        r(
            Method::GET,
            "/distribution/{name*}/json",
            images::distribution,
        ),
        r(Method::DELETE, "/images/{name*}", images::delete),
        r(Method::POST, "/containers/create", containers::create),
        r(Method::POST, "/commit", containers::commit),
        r(Method::GET, "/containers/json", containers::list),
        r(Method::POST, "/containers/prune", containers::prune),
        r(Method::GET, "/containers/{id}/json", containers::inspect),
        r(Method::POST, "/containers/{id}/start", containers::start),
        r(Method::POST, "/containers/{id}/stop", containers::stop),
        r(
            Method::POST,
            "/containers/{id}/restart",
            containers::restart,
        ),
        r(Method::POST, "/containers/{id}/kill", containers::kill),
        r(Method::POST, "/containers/{id}/wait", containers::wait),
        r(Method::GET, "/containers/{id}/logs", containers::logs),
        hijack(Method::POST, "/containers/{id}/attach", containers::attach),
        r(Method::POST, "/containers/{id}/resize", containers::resize),
        r(Method::POST, "/containers/{id}/rename", containers::rename),
        r(Method::POST, "/containers/{id}/pause", containers::pause),
        r(
            Method::POST,
            "/containers/{id}/unpause",
            containers::unpause,
        ),
        r(Method::POST, "/containers/{id}/update", containers::update),
        r(Method::GET, "/containers/{id}/top", containers::top),
        r(Method::GET, "/containers/{id}/stats", containers::stats),
        r(Method::GET, "/containers/{id}/changes", containers::changes),
        r(Method::GET, "/containers/{id}/export", containers::export),
        r(
            Method::GET,
            "/containers/{id}/archive",
            containers::archive_get,
        ),
        r(
            Method::HEAD,
            "/containers/{id}/archive",
            containers::archive_get,
        ),
        stream(
            Method::PUT,
            "/containers/{id}/archive",
            containers::archive_put,
        ),
        r(Method::DELETE, "/containers/{id*}", containers::delete),
        r(Method::POST, "/containers/{id}/exec", exec::create),
        r(Method::GET, "/volumes", volumes::list),
        r(Method::POST, "/volumes/create", volumes::create),
        r(Method::POST, "/volumes/prune", volumes::prune),
        r(Method::GET, "/volumes/{name}", volumes::inspect),
        r(Method::DELETE, "/volumes/{name}", volumes::delete),
        r(Method::GET, "/networks", networks::list),
        r(Method::POST, "/networks/create", networks::create),
        r(Method::POST, "/networks/prune", networks::prune),
        r(Method::GET, "/networks/{id}", networks::inspect),
        r(Method::DELETE, "/networks/{id}", networks::delete),
        r(Method::POST, "/networks/{id}/connect", networks::connect),
        r(
            Method::POST,
            "/networks/{id}/disconnect",
            networks::disconnect,
        ),
        hijack(Method::POST, "/exec/{id}/start", exec::start),
        r(Method::POST, "/exec/{id}/resize", exec::resize),
        r(Method::GET, "/exec/{id}/json", exec::inspect),
        // Features berthd lacks, answered as a dockerd without them.
        r(Method::GET, "/swarm", absent::not_manager),
        r(Method::POST, "/swarm/init", absent::no_swarm_mode),
        r(Method::POST, "/swarm/join", absent::no_swarm_mode),
        r(Method::POST, "/swarm/leave", absent::not_in_swarm),
        r(Method::POST, "/swarm/update", absent::not_manager),
        r(Method::GET, "/swarm/unlockkey", absent::not_manager),
        r(Method::POST, "/swarm/unlock", absent::not_manager),
        r(Method::GET, "/plugins", plugins::list),
        r(
            Method::GET,
            "/plugins/privileges",
            absent::plugins_unsupported,
        ),
        r(Method::POST, "/plugins/pull", absent::plugins_unsupported),
        r(Method::POST, "/plugins/create", absent::plugins_unsupported),
        r(
            Method::GET,
            "/plugins/{name*}/json",
            absent::plugin_not_found,
        ),
        r(Method::DELETE, "/plugins/{name*}", absent::plugin_not_found),
        r(
            Method::POST,
            "/plugins/{name*}/enable",
            absent::plugin_not_found,
        ),
        r(
            Method::POST,
            "/plugins/{name*}/disable",
            absent::plugin_not_found,
        ),
        r(
            Method::POST,
            "/plugins/{name*}/upgrade",
            absent::plugin_not_found,
        ),
        r(
            Method::POST,
            "/plugins/{name*}/push",
            absent::plugin_not_found,
        ),
        r(
            Method::POST,
            "/plugins/{name*}/set",
            absent::plugin_not_found,
        ),
        stream(Method::POST, "/build", build::build),
        r(Method::POST, "/build/prune", build::prune),
        r(Method::GET, "/build/cancel", absent::no_builder),
        r(Method::POST, "/session", absent::no_session),
        r(Method::GET, "/nodes", absent::not_manager),
        r(Method::GET, "/nodes/{id}", absent::not_manager),
        r(Method::DELETE, "/nodes/{id}", absent::not_manager),
        r(Method::POST, "/nodes/{id}/update", absent::not_manager),
        r(Method::GET, "/services", absent::not_manager),
        r(Method::POST, "/services/create", absent::not_manager),
        r(Method::GET, "/services/{id}", absent::not_manager),
        r(Method::DELETE, "/services/{id}", absent::not_manager),
        r(Method::POST, "/services/{id}/update", absent::not_manager),
        r(Method::GET, "/services/{id}/logs", absent::not_manager),
        r(Method::GET, "/tasks", absent::not_manager),
        r(Method::GET, "/tasks/{id}", absent::not_manager),
        r(Method::GET, "/tasks/{id}/logs", absent::not_manager),
        r(Method::GET, "/secrets", absent::not_manager),
        r(Method::POST, "/secrets/create", absent::not_manager),
        r(Method::GET, "/secrets/{id}", absent::not_manager),
        r(Method::DELETE, "/secrets/{id}", absent::not_manager),
        r(Method::POST, "/secrets/{id}/update", absent::not_manager),
        r(Method::GET, "/configs", absent::not_manager),
        r(Method::POST, "/configs/create", absent::not_manager),
        r(Method::GET, "/configs/{id}", absent::not_manager),
        r(Method::DELETE, "/configs/{id}", absent::not_manager),
        r(Method::POST, "/configs/{id}/update", absent::not_manager),
    ];
    if chaos {
        t.push(r(Method::POST, "/_berth/chaos/kill", chaos::kill));
    }
    t
}

pub use crate::api::shared::parse_timestamp;
