//! Request helpers shared by the route files: finding a container and
//! mapping its errors, terminal sizes, request bodies.

use std::sync::Arc;

use berth_actors::container::{ContainerError, ContainerRecord};

use tokio::sync::mpsc;

use crate::api::errors::ApiError;
use crate::api::router::Req;
use crate::images::{pump_body, ChannelReader};

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

/// The `repo` and `tag` query of an import or a commit as the reference
/// to tag (none without `repo`); a bad one is dockerd's 400.
pub(crate) fn repo_tag(r: &Req) -> Result<Vec<berth_actors::image::Reference>, ApiError> {
    use berth_actors::image::Reference;
    let Some(repo) = r.query.get("repo").filter(|s| !s.is_empty()) else {
        return Ok(vec![]);
    };
    let mut reference = Reference::parse(repo).map_err(|e| ApiError::from_err(&e))?;
    if let Some(t) = r.query.get("tag").filter(|t| !t.is_empty()) {
        reference = Reference::parse(&format!("{}:{t}", reference.repo))
            .map_err(|e| ApiError::from_err(&e))?;
    }
    Ok(vec![reference.with_default_tag()])
}

/// The `changes` query (`--change` lines) of an import or a commit.
pub(crate) fn change_lines(r: &Req) -> Vec<String> {
    r.query
        .all("changes")
        .into_iter()
        .map(String::from)
        .collect()
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

/// Stream a request body to a blocking reader.
pub(crate) fn body_reader(r: &mut Req) -> Result<ChannelReader, ApiError> {
    let incoming = r
        .incoming
        .take()
        .ok_or_else(|| ApiError::system("request body already taken"))?;
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(pump_body(incoming.into_body(), tx));
    Ok(ChannelReader::new(rx))
}

/// Parse docker's `seconds[.nanoseconds]` timestamps into nanoseconds.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    if frac.len() > 9 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// The images containers use (never build cache).
pub(crate) fn used_images(r: &Req) -> std::collections::BTreeSet<String> {
    r.ctx
        .containers
        .containers
        .snapshot()
        .by_id
        .values()
        .map(|c| c.image.clone())
        .collect()
}
