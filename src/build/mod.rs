//! The image builder (`POST /build`, dockerd's "legacy builder" API that
//! the docker CLI without buildx, the SDKs and compose use).
//!
//! - `context.rs` receives the context tar and reads the Dockerfile and
//!   `.dockerignore` from it;
//! - `dockerfile.rs`, `expand.rs`, `ignore.rs` parse what it holds;
//! - `session.rs` runs the steps in order, stage by stage: `RUN` as a real
//!   container through the same path as `docker run` (`run.rs`), `COPY` and
//!   `ADD` into a layer of their own (`copy.rs`), the other instructions as
//!   image configs; each step is committed through the image service and
//!   probed in the build cache first (`cache.rs`);
//! - `progress.rs` writes the stream the clients render.

pub mod cache;
pub mod context;
pub mod copy;
mod copy_step;
pub mod dockerfile;
pub mod expand;
pub mod fetch;
pub mod ignore;
mod instructions;
pub mod progress;
pub mod run;
pub mod session;
mod squash;

use std::collections::BTreeMap;
use std::io::Read;

use bytes::Bytes;
use tokio::sync::mpsc;

use berth_actors::image::Reference;
use berth_actors::{ErrorKind, HasKind};
use serde_json::Value;

/// Why a build failed. Before the progress stream starts these are the
/// request's status; after, an `errorDetail` line.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Bad request or Dockerfile.
    #[error("{0}")]
    Invalid(String),
    /// An image or stage the build names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A `RUN` exited with a non-zero code.
    #[error("The command '{cmd}' returned a non-zero code: {code}")]
    Run { cmd: String, code: i64 },
    /// The client went away: the build stops.
    #[error("the build was cancelled: the client went away")]
    Cancelled,
    #[error("{0}")]
    Image(#[from] crate::images::ImageOpError),
    #[error("{0}")]
    Container(#[from] berth_actors::container::ContainerError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A pull the build needed failed.
    #[error("{1}")]
    Registry(ErrorKind, String),
    /// Refused by this daemon's configuration or platform.
    #[error("{0}")]
    NotImplemented(String),
}

impl HasKind for BuildError {
    fn kind(&self) -> ErrorKind {
        match self {
            BuildError::Invalid(_) => ErrorKind::InvalidParameter,
            BuildError::NotFound(_) => ErrorKind::NotFound,
            BuildError::Run { .. } | BuildError::Io(_) => ErrorKind::System,
            BuildError::Cancelled => ErrorKind::Unavailable,
            BuildError::Image(e) => e.kind(),
            BuildError::Container(e) => e.kind(),
            BuildError::NotImplemented(_) => ErrorKind::NotImplemented,
            BuildError::Registry(k, _) => *k,
        }
    }
}

impl From<dockerfile::ParseError> for BuildError {
    fn from(e: dockerfile::ParseError) -> Self {
        BuildError::Invalid(e.0)
    }
}

/// What the request asks of the build (its query, decoded).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub tags: Vec<Reference>,
    pub quiet: bool,
    pub nocache: bool,
    pub pull: bool,
    /// Remove intermediate containers after a successful step.
    pub rm: bool,
    /// Remove them whatever happens.
    pub forcerm: bool,
    /// `--build-arg`s: a name without a value takes it from nowhere (as
    /// dockerd: the CLI fills it from its environment before sending).
    pub build_args: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub target: Option<String>,
    /// `HostConfig` fields every `RUN` container gets: network mode,
    /// resources, extra hosts, shm size, ulimits.
    pub host_config: serde_json::Map<String, Value>,
    /// Squash the layers the build added over its last stage's base into
    /// one (`squash`, with `experimental`).
    pub squash: bool,
    /// Images whose layers the cache may reuse (`--cache-from`).
    pub cache_from: Vec<String>,
    /// `X-Registry-Config`: credentials per registry host, for pulls.
    pub registry_auth: BTreeMap<String, crate::images::auth::AuthConfig>,
}

/// Where the context comes from.
pub enum Source {
    /// The request's body (a tar, maybe compressed).
    Body(Box<dyn Read + Send>),
    /// `remote`: a git repository or an http(s) URL.
    Remote(String),
}

/// Receive the context and check the Dockerfile (the request fails with
/// these errors), then run the build in a task of its own; its progress
/// stream. The stream's receiver going away (the client) cancels it.
pub async fn start(
    builder: session::Builder,
    opts: BuildOptions,
    source: Source,
    dockerfile: Option<String>,
) -> Result<mpsc::Receiver<Bytes>, BuildError> {
    let ctx = context::acquire(&builder.tmp_root, source, dockerfile).await?;
    let plan = session::plan(&ctx.dockerfile, &opts)?;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut p = progress::Progress::new(tx, opts.quiet);
        let shutdown = builder.shutdown.clone();
        // Nothing of the image store is freed while the build runs (it
        // reuses layers of its base and cache images until it commits).
        let working = builder.images.gc.working().await;
        let res = tokio::select! {
            r = session::build(&builder, plan, &ctx, &opts, &mut p) => r,
            _ = shutdown.cancelled() => Err(BuildError::Cancelled),
        };
        working.finish().await;
        // The context goes once the build is done, before the last word
        // reaches the client: a client that exits on an error line finds
        // nothing of the build left behind.
        let _ = tokio::task::spawn_blocking(move || drop(ctx)).await;
        match res {
            Ok(id) => tracing::info!(%id, "image built"),
            Err(BuildError::Cancelled) => tracing::info!("build cancelled"),
            Err(e) => p.error(&e).await,
        }
    });
    Ok(rx)
}
