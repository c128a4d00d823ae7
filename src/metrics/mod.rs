//! The metrics endpoint (`metrics-addr`): Prometheus text over HTTP, with
//! dockerd's engine metrics where they exist (`engine_daemon_*`) and
//! berth's own (`berth_*`). The durations are recorded here, by the front
//! door's router ([`observe`]); the actors' counters come from
//! `berth_actors::metrics`; the rest is read from the read models at each
//! scrape (`render.rs`). The listener is the `metrics` actor (`server.rs`).

mod render;
mod server;

use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame};
use hyper::Method;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

pub use render::render;
pub use server::{MetricsServer, MetricsServerArgs, METRICS};

type Labels = Vec<(String, String)>;
type Timings = Family<Labels, Histogram, fn() -> Histogram>;

/// 5 ms to ~80 s.
fn buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// The durations, kept across scrapes.
pub(crate) struct Recorder {
    /// `berth_api_request_duration_seconds{method, route}`.
    pub requests: Timings,
    /// dockerd's `engine_daemon_container_actions_seconds{action}`.
    pub container_actions: Timings,
    /// dockerd's `engine_daemon_image_actions_seconds{action}`.
    pub image_actions: Timings,
    /// dockerd's `engine_daemon_network_actions_seconds{action}`.
    pub network_actions: Timings,
}

pub(crate) static RECORDER: LazyLock<Recorder> = LazyLock::new(|| Recorder {
    requests: Family::new_with_constructor(buckets),
    container_actions: Family::new_with_constructor(buckets),
    image_actions: Family::new_with_constructor(buckets),
    network_actions: Family::new_with_constructor(buckets),
});

/// Which of dockerd's action timers a route feeds, if any.
fn action(method: &Method, route: &str, query: &str) -> Option<(&'static Timings, &'static str)> {
    let r = &*RECORDER;
    let c = &r.container_actions;
    let i = &r.image_actions;
    let n = &r.network_actions;
    Some(match (method.as_str(), route) {
        ("POST", "/containers/create") => (c, "create"),
        ("POST", "/containers/{id}/start") => (c, "start"),
        ("DELETE", "/containers/{id*}") => (c, "delete"),
        ("POST", "/commit") => (c, "commit"),
        ("GET", "/containers/{id}/changes") => (c, "changes"),
        ("POST", "/images/create") if query.contains("fromImage=") => (i, "pull"),
        ("POST", "/images/create") => (i, "import"),
        ("POST", "/images/load") => (i, "load"),
        ("POST", "/images/{name*}/push") => (i, "push"),
        ("POST", "/images/{name*}/tag") => (i, "tag"),
        ("DELETE", "/images/{name*}") => (i, "delete"),
        ("POST", "/build") => (i, "build"),
        ("POST", "/networks/create") => (n, "create"),
        ("DELETE", "/networks/{id}") => (n, "delete"),
        ("POST", "/networks/{id}/connect") => (n, "connect"),
        ("POST", "/networks/{id}/disconnect") => (n, "disconnect"),
        _ => return None,
    })
}

/// Record one request's duration, from its arrival to the end of its
/// response body (a pull's or a build's stream included): the route's
/// latency, and dockerd's action timer the route stands for.
pub fn observe(method: &Method, route: &'static str, query: &str, took: Duration) {
    let secs = took.as_secs_f64();
    RECORDER
        .requests
        .get_or_create(&vec![
            ("method".to_string(), method.to_string()),
            ("route".to_string(), route.to_string()),
        ])
        .observe(secs);
    if let Some((timer, name)) = action(method, route, query) {
        timer
            .get_or_create(&vec![("action".to_string(), name.to_string())])
            .observe(secs);
    }
}

/// A response body that reports its request's duration when it ends
/// (or the client goes).
pub struct Timed<B> {
    inner: B,
    start: Instant,
    done: Option<Box<dyn FnOnce(Duration) + Send>>,
}

impl<B> Timed<B> {
    pub fn new(inner: B, start: Instant, done: impl FnOnce(Duration) + Send + 'static) -> Self {
        Timed {
            inner,
            start,
            done: Some(Box::new(done)),
        }
    }
}

impl<B> Drop for Timed<B> {
    fn drop(&mut self) {
        if let Some(f) = self.done.take() {
            f(self.start.elapsed());
        }
    }
}

impl<B: HttpBody<Data = Bytes> + Unpin> HttpBody for Timed<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
