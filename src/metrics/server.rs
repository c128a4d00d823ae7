//! The `metrics` actor: serves `GET /metrics` on `metrics-addr`, and binds
//! again when a reload changes the address (none: nothing listens). Killed,
//! it is restarted by the root supervisor and binds again; nothing it
//! serves is its own state.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use berth_actors::directory::METRICS;

use crate::api::ApiContext;
use crate::task::AbortOnDrop;
use berth_actors::protocol::shim::LogCounts;

pub struct MetricsServer;

#[derive(Clone)]
pub struct MetricsServerArgs {
    pub ctx: Arc<ApiContext>,
}

pub struct MetricsState {
    _serve: AbortOnDrop,
}

impl Actor for MetricsServer {
    type Msg = ();
    type State = MetricsState;
    type Arguments = MetricsServerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<()>,
        args: MetricsServerArgs,
    ) -> Result<MetricsState, ActorProcessingErr> {
        Ok(MetricsState {
            _serve: AbortOnDrop(tokio::spawn(follow(args.ctx))),
        })
    }
}

/// Serve on the configured address; bind again when it changes.
async fn follow(ctx: Arc<ApiContext>) {
    let mut cfg = ctx.config.clone();
    loop {
        let addr = cfg.borrow_and_update().metrics_addr.clone();
        let serving = (!addr.is_empty()).then(|| tokio::spawn(serve(ctx.clone(), addr.clone())));
        let _guard = serving.map(AbortOnDrop);
        // Until the address changes (a reload) or berthd stops.
        loop {
            if cfg.changed().await.is_err() {
                return;
            }
            if cfg.borrow().metrics_addr != addr {
                info!(from = %addr, to = %cfg.borrow().metrics_addr, "metrics-addr changed");
                break;
            }
        }
    }
}

async fn serve(ctx: Arc<ApiContext>, addr: String) {
    // The previous incarnation's listener may still be closing (an abort
    // takes effect when its task is next polled): try again until it is.
    let mut warned = false;
    let listener = loop {
        match bind(&addr).await {
            Ok(l) => break l,
            Err(e) => {
                if !warned {
                    warn!(%addr, "metrics: cannot listen yet: {e}; retrying");
                    warned = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    };
    info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or(addr), "metrics listen");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let ctx = ctx.clone();
                async move {
                    let live = live_log_counts(&ctx).await;
                    Ok::<_, std::convert::Infallible>(answer(&ctx, &req, &live))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    match addr.parse::<SocketAddr>() {
        Ok(a) => TcpListener::bind(a).await,
        Err(_) => TcpListener::bind(addr).await,
    }
}

/// The log counters of the running containers, asked of their shims (at
/// most 1 s each, all at once).
async fn live_log_counts(ctx: &ApiContext) -> HashMap<String, LogCounts> {
    use berth_actors::ports::ContainerHost;
    let running: Vec<String> = ctx
        .containers
        .containers
        .snapshot()
        .by_id
        .values()
        .filter(|c| c.state.status.is_live())
        .map(|c| c.id.clone())
        .collect();
    let asks = running.into_iter().map(|id| {
        let host = ctx.containers.host.clone();
        async move {
            let r = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                host.call(&id, berth_actors::protocol::shim::Request::State),
            )
            .await;
            match r {
                Ok(Ok(r)) => r.log.map(|l| (id, l)),
                _ => None,
            }
        }
    });
    futures_util::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

fn answer<B>(
    ctx: &ApiContext,
    req: &Request<B>,
    live: &HashMap<String, LogCounts>,
) -> Response<Full<Bytes>> {
    let text = |code: StatusCode, ct: &'static str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = code;
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(ct),
        );
        r
    };
    match (req.method().as_str(), req.uri().path()) {
        ("GET" | "HEAD", "/metrics") => text(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            super::render(ctx, live),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "404 page not found\n".into(),
        ),
    }
}
