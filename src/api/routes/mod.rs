//! The route table. One file per API area.

mod chaos;
pub(crate) mod events;
mod system;

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

/// Every route berthd serves; `chaos` adds the testing-only chaos control.
pub fn table(chaos: bool) -> Vec<Route> {
    let mut t = vec![
        r(Method::GET, "/_ping", system::ping),
        r(Method::HEAD, "/_ping", system::ping),
        r(Method::GET, "/version", system::version),
        r(Method::GET, "/info", system::info),
        r(Method::GET, "/system/df", system::df),
        r(Method::GET, "/events", events::events),
    ];
    if chaos {
        t.push(r(Method::POST, "/_berth/chaos/kill", chaos::kill));
    }
    t
}

pub use events::parse_timestamp;
