//! `GET /events`: past events from the EventBus history, then live ones,
//! filtered, as JSON lines; ends at `until` or when berthd shuts down.

use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_actors::events::Event;
use berth_actors::ErrorKind;
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::Response;
use tokio::sync::mpsc;

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::filters::Filters;
use crate::api::router::{HandlerFuture, Req};
use crate::api::shared::parse_timestamp;

const EVENT_FILTERS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// moby's event filter semantics: every filtered key must match.
pub fn matches(f: &Filters, e: &Event) -> bool {
    let name = e
        .actor
        .attributes
        .get("name")
        .map(String::as_str)
        .unwrap_or("");
    let by_name = |key: &str| !f.contains(key) || f.fuzzy(key, &e.actor.id) || f.fuzzy(key, name);
    let action = e.action.split(':').next().unwrap_or(&e.action);
    f.exact("event", action)
        && f.exact("type", &e.kind)
        && f.exact("scope", &e.scope)
        && f.labels("label", &e.actor.attributes)
        && (!f.contains("daemon") || (e.kind == "daemon" && by_name("daemon")))
        && by_name("container")
        && (!f.contains("image")
            || by_name("image")
            || f.fuzzy(
                "image",
                e.actor
                    .attributes
                    .get("image")
                    .map(String::as_str)
                    .unwrap_or(""),
            ))
        && by_name("network")
        && by_name("volume")
        && by_name("plugin")
        && by_name("node")
        && by_name("service")
        && by_name("secret")
        && by_name("config")
}

/// One JSON line. Before API 1.52 container and image events also carry
/// the deprecated `status`, `id` and (containers) `from`, as dockerd sends
/// them to older clients.
fn line(e: &Event, legacy: bool) -> Bytes {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if legacy && (e.kind == "container" || e.kind == "image") {
        if let Some(o) = v.as_object_mut() {
            o.insert("status".into(), e.action.clone().into());
            o.insert("id".into(), e.actor.id.clone().into());
            if e.kind == "container" {
                if let Some(from) = e.actor.attributes.get("image") {
                    o.insert("from".into(), from.clone().into());
                }
            }
        }
    }
    let mut b = serde_json::to_vec(&v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

pub fn events(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let filters = Filters::parse(r.query.get("filters"))?;
        let legacy = r.version < crate::api::version::ApiVersion(1, 52);
        filters.validate(EVENT_FILTERS)?;
        let ts = |key: &str| -> Result<Option<i64>, ApiError> {
            match r.query.get(key).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => parse_timestamp(v).map(Some).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "invalid {key} value {v:?}: expected seconds[.nanoseconds]"
                    ))
                }),
            }
        };
        let since = ts("since")?;
        let until = ts("until")?;
        let ctx = r.ctx.clone();
        let now = ctx.events.clock().now_nanos();
        let mut sub = ctx.events.subscribe(since).await.ok_or_else(|| {
            ApiError::new(ErrorKind::Unavailable, "the event bus is restarting; retry")
        })?;
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let shutdown = ctx.shutdown.clone();
        tokio::spawn(async move {
            ctx.event_listeners.fetch_add(1, Ordering::Relaxed);
            let in_range = |e: &Event| until.is_none_or(|u| e.time_nano <= u);
            'stream: {
                for e in sub
                    .past
                    .iter()
                    .filter(|e| in_range(e) && matches(&filters, e))
                {
                    if tx.send(line(e, legacy)).await.is_err() {
                        break 'stream;
                    }
                }
                if until.is_some_and(|u| u <= now) {
                    break 'stream;
                }
                let deadline = until
                    .map(|u| tokio::time::Instant::now() + Duration::from_nanos((u - now) as u64));
                loop {
                    let sleep = async {
                        match deadline {
                            Some(d) => tokio::time::sleep_until(d).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        ev = sub.live.recv() => match ev {
                            Some(e) if !in_range(&e) => break,
                            Some(e) if matches(&filters, &e) => {
                                if tx.send(line(&e, legacy)).await.is_err() { break; }
                            }
                            Some(_) => {}
                            None => break,
                        },
                        _ = tx.closed() => break,
                        _ = sleep => break,
                        _ = shutdown.cancelled() => break,
                    }
                }
            }
            ctx.event_listeners.fetch_sub(1, Ordering::Relaxed);
        });
        let mut resp = Response::new(body::channel(rx));
        resp.headers_mut()
            .insert("Content-Type", HeaderValue::from_static("application/json"));
        Ok(resp)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("10"), Some(10_000_000_000));
        assert_eq!(parse_timestamp("10.5"), Some(10_500_000_000));
        assert_eq!(
            parse_timestamp("1764294000.000000001"),
            Some(1_764_294_000_000_000_001)
        );
        assert_eq!(parse_timestamp("x"), None);
        assert_eq!(parse_timestamp("1.1234567890"), None);
    }

    #[test]
    fn filter_semantics() {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), "host1".to_string());
        let e = Event {
            kind: "daemon".into(),
            action: "reload".into(),
            actor: berth_actors::events::EventActor {
                id: "abc123".into(),
                attributes: attrs,
            },
            scope: "local".into(),
            time: 1,
            time_nano: 1,
        };
        let f = |s: &str| Filters::parse(Some(s)).unwrap();
        assert!(matches(&f("{}"), &e));
        assert!(matches(&f(r#"{"type":["daemon"]}"#), &e));
        assert!(!matches(&f(r#"{"type":["container"]}"#), &e));
        assert!(matches(&f(r#"{"event":["reload","start"]}"#), &e));
        assert!(matches(&f(r#"{"daemon":["host1"]}"#), &e));
        assert!(matches(&f(r#"{"daemon":["abc"]}"#), &e));
        assert!(!matches(&f(r#"{"daemon":["zzz"]}"#), &e));
        assert!(!matches(&f(r#"{"container":["abc1234"]}"#), &e));
        assert!(matches(&f(r#"{"label":["name=host1"]}"#), &e));
    }
}
