//! One build: the Dockerfile's steps run in order, stage by stage, as
//! dockerd's legacy builder runs them (`builder/dockerfile/dispatchers.go`).
//!
//! The state of a stage is its current image and the container config the
//! next image gets (`Env`, `Cmd`, `WorkingDir`...). Every instruction but
//! `FROM` makes an image: the configuration instructions an image without
//! a new layer (no container is made for them: dockerd makes and removes
//! one that never runs), `RUN` the layer its container wrote, `COPY`/`ADD`
//! and `WORKDIR` the layer written over the parent. Each step is looked up
//! in the build cache first, by the parent image and the step's container
//! config (`cache.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_actors::image::{ImageInfo, NewLayer, Reference};
use berth_actors::HasKind;
use serde_json::{json, Map, Value};

use super::context::Context;
use super::dockerfile::{self, Command, Instruction, Step};
use super::expand::expand;
use super::progress::{short, Progress};
use super::{cache, BuildError, BuildOptions};
use crate::containers::ContainerService;
use crate::images::commit::{now, Child};
use crate::images::ImageService;

/// Build arguments every Dockerfile may use without declaring them (left
/// out of the cache key and of the "not consumed" warning, as dockerd).
pub(super) const BUILTIN_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// What the builder works with.
pub struct Builder {
    pub images: Arc<ImageService>,
    pub containers: Arc<ContainerService>,
    /// Where contexts are received (`<data-root>/tmp`).
    pub tmp_root: PathBuf,
    /// berthd's shutdown: builds stop with it.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// A parsed Dockerfile, cut at the target, ready to run.
pub struct Plan {
    escape: char,
    /// `ARG`s before the first `FROM`.
    meta: Vec<Step>,
    /// Each stage: its `FROM` and its instructions.
    stages: Vec<(Step, Vec<Step>)>,
    total: usize,
}

/// Parse and check the Dockerfile before anything runs (errors here are
/// the request's 400, as dockerd's).
pub fn plan(text: &str, opts: &BuildOptions) -> Result<Plan, BuildError> {
    let df = dockerfile::parse(text)?;
    let mut meta = Vec::new();
    let mut stages: Vec<(Step, Vec<Step>)> = Vec::new();
    for s in df.steps {
        match (&s.instruction, stages.last_mut()) {
            (Instruction::From { .. }, _) => stages.push((s, Vec::new())),
            (_, Some((_, steps))) => steps.push(s),
            (Instruction::Arg(_), None) => meta.push(s),
            (_, None) => {
                return Err(BuildError::Invalid(format!(
                    "dockerfile parse error on line {}: no build stage in current context",
                    s.line
                )))
            }
        }
    }
    if stages.is_empty() {
        return Err(BuildError::Invalid(
            "dockerfile parse error: no build stage in current context".into(),
        ));
    }
    if let Some(t) = opts.target.as_deref().filter(|t| !t.is_empty()) {
        let ix = stages
            .iter()
            .position(|(f, _)| {
                matches!(&f.instruction, Instruction::From { alias: Some(a), .. } if a.eq_ignore_ascii_case(t))
            })
            .ok_or_else(|| {
                BuildError::Invalid(format!("failed to reach build target {t} in Dockerfile"))
            })?;
        stages.truncate(ix + 1);
    }
    if !opts.labels.is_empty() {
        let pairs: Vec<(String, String)> = opts
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let text = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        if let Some((_, steps)) = stages.last_mut() {
            steps.push(Step {
                line: 0,
                original: format!("LABEL {text}"),
                instruction: Instruction::Label(pairs),
            });
        }
    }
    let total = meta.len() + stages.iter().map(|(_, s)| 1 + s.len()).sum::<usize>();
    Ok(Plan {
        escape: df.escape,
        meta,
        stages,
        total,
    })
}

/// The state of the stage being built.
pub(super) struct Stage {
    pub(super) name: Option<String>,
    /// The image `FROM` named (none: scratch).
    pub(super) base: Option<Arc<ImageInfo>>,
    pub(super) image: Option<Arc<ImageInfo>>,
    /// The container config the next image gets.
    pub(super) config: Map<String, Value>,
    /// The stage's declared `ARG`s and their values.
    pub(super) args: BTreeMap<String, Option<String>>,
    pub(super) maintainer: String,
    /// A `CMD` was given in this stage (a later `ENTRYPOINT` keeps it).
    pub(super) cmd_set: bool,
}

impl Stage {
    pub(super) fn parent_id(&self) -> String {
        self.image
            .as_ref()
            .map(|i| i.record.id.clone())
            .unwrap_or_default()
    }

    pub(super) fn env(&self) -> Vec<String> {
        self.config
            .get("Env")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn env_get(&self, k: &str) -> Option<String> {
        self.env().into_iter().find_map(|e| {
            let (a, b) = e.split_once('=').unwrap_or((&e, ""));
            (a == k).then(|| b.to_string())
        })
    }

    pub(super) fn env_set(&mut self, k: &str, v: &str) {
        let mut env = self.env();
        let kv = format!("{k}={v}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(a, _)| a) == k)
        {
            Some(e) => *e = kv,
            None => env.push(kv),
        }
        self.config.insert("Env".into(), json!(env));
    }

    pub(super) fn shell(&self) -> Vec<String> {
        self.config
            .get("Shell")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// The build args a `RUN` sees: declared, with a value, not shadowed
    /// by an `ENV` (sorted, as dockerd puts them before the command).
    pub(super) fn run_args(&self) -> Vec<String> {
        self.args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .filter(|(k, _)| self.env_get(k).is_none())
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// An object field of the config (`Labels`, `ExposedPorts`,
    /// `Volumes`), empty when unset.
    pub(super) fn object(&self, key: &str) -> Map<String, Value> {
        self.config
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    pub(super) fn workdir(&self) -> String {
        self.config
            .get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }
}

/// Go's `%q` of a string list (`["a" "b"]`), as dockerd writes commands
/// into its step comments.
pub(super) fn go_list(v: &[String]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", items.join(" "))
}

/// A Go duration (`30s`, `1m30s`, `500ms`) in nanoseconds.
pub(crate) fn duration(s: &str) -> Result<i64, BuildError> {
    let bad = || BuildError::Invalid(format!("time: invalid duration \"{s}\""));
    if s == "0" {
        return Ok(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let num: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += num * mult;
        rest = &rest[u..];
    }
    Ok(total as i64)
}

pub(super) fn clean_abs(p: &str) -> String {
    let c = super::ignore::clean(p);
    if c.starts_with('/') {
        c
    } else {
        format!("/{}", c.trim_start_matches("./"))
    }
}

/// The image a commit just made, from the store's snapshot.
pub(super) fn committed(b: &Builder, id: &str) -> Result<Arc<ImageInfo>, BuildError> {
    b.images
        .images
        .snapshot()
        .images
        .get(id)
        .cloned()
        .ok_or_else(|| BuildError::NotFound(format!("the image {id} is gone")))
}

/// The top layer (storage driver ID) of an image.
pub(crate) fn top_layer(
    images: &ImageService,
    img: Option<&ImageInfo>,
) -> Result<Option<String>, BuildError> {
    let Some(chain) = img.and_then(|i| i.record.layers.last()) else {
        return Ok(None);
    };
    let snap = images.images.snapshot();
    snap.layers
        .get(chain)
        .map(|l| Some(l.cache_id.clone()))
        .ok_or_else(|| BuildError::NotFound(format!("layer {chain} is missing")))
}

pub struct Session<'a> {
    pub(super) b: &'a Builder,
    pub(super) opts: &'a BuildOptions,
    pub(super) ctx: &'a Context,
    pub(super) p: &'a mut Progress,
    pub(super) escape: char,
    pub(super) meta: BTreeMap<String, Option<String>>,
    pub(super) used_args: BTreeSet<String>,
    /// Finished stages: name and image.
    pub(super) done: Vec<(Option<String>, Option<Arc<ImageInfo>>)>,
    pub(super) cache_from: Vec<Arc<ImageInfo>>,
    pub(super) step: usize,
    pub(super) total: usize,
}

/// Run the plan; the built image's ID (tagged with the request's tags).
pub async fn build(
    b: &Builder,
    plan: Plan,
    ctx: &Context,
    opts: &BuildOptions,
    p: &mut Progress,
) -> Result<String, BuildError> {
    let snap = b.images.images.snapshot();
    let cache_from = opts
        .cache_from
        .iter()
        .filter_map(|n| snap.resolve(n).cloned())
        .collect();
    let mut s = Session {
        b,
        opts,
        ctx,
        p,
        escape: plan.escape,
        meta: BTreeMap::new(),
        used_args: BTreeSet::new(),
        done: Vec::new(),
        cache_from,
        step: 0,
        total: plan.total,
    };
    for m in &plan.meta {
        s.announce(m).await?;
        if let Instruction::Arg(args) = &m.instruction {
            for (k, default) in args {
                let v = match opts.build_args.get(k) {
                    Some(Some(v)) => Some(v.clone()),
                    _ => match default {
                        Some(d) => Some(s.expand_meta(d)?),
                        None => None,
                    },
                };
                if opts.build_args.contains_key(k) {
                    s.used_args.insert(k.clone());
                }
                s.meta.insert(k.clone(), v);
            }
        }
    }
    let mut last = None;
    let mut last_base = None;
    for (from, steps) in plan.stages {
        let mut st = s.from(&from).await?;
        for step in &steps {
            if s.p.gone() {
                return Err(BuildError::Cancelled);
            }
            s.announce(step).await?;
            s.dispatch(&mut st, &step.instruction, &step.original)
                .await?;
        }
        last = st.image.clone();
        last_base = st.base.clone();
        s.done.push((st.name.clone(), st.image.clone()));
    }
    let img = last.ok_or_else(|| {
        BuildError::Invalid("No image was generated. Is your Dockerfile empty?".into())
    })?;
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| !s.used_args.contains(*k) && !BUILTIN_ARGS.contains(&k.as_str()))
        .collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|k| k.as_str()).collect();
        s.p.stream(format!(
            "[Warning] One or more build-args [{}] were not consumed\n",
            names.join(" ")
        ))
        .await?;
    }
    let img = match (&last_base, opts.squash) {
        (base, true) if base.as_ref().map(|b| &b.record.id) != Some(&img.record.id) => {
            super::squash::squash(b, base.as_deref(), &img).await?
        }
        _ => img,
    };
    let id = img.record.id.clone();
    s.p.built(&id).await?;
    for t in &opts.tags {
        b.images
            .images
            .tag(id.clone(), t.clone())
            .await
            .map_err(|e| BuildError::Image(e.into()))?;
        s.p.stream(format!("Successfully tagged {}\n", t.familiar()))
            .await?;
    }
    Ok(id)
}

impl Session<'_> {
    pub(super) async fn announce(&mut self, step: &Step) -> Result<(), BuildError> {
        self.step += 1;
        self.p
            .stream(format!(
                "Step {}/{} : {}",
                self.step, self.total, step.original
            ))
            .await?;
        self.p.stream("\n").await
    }

    pub(super) fn expand_meta(&self, w: &str) -> Result<String, BuildError> {
        let meta = &self.meta;
        Ok(expand(w, &|k| meta.get(k).cloned().flatten(), self.escape)?)
    }

    pub(super) fn expand(&self, st: &Stage, w: &str) -> Result<String, BuildError> {
        Ok(expand(
            w,
            &|k| st.env_get(k).or_else(|| st.args.get(k).cloned().flatten()),
            self.escape,
        )?)
    }

    /// An image the build names, pulled when missing (or always with
    /// `pull=1`).
    pub(super) async fn image(
        &mut self,
        name: &str,
        pull: bool,
    ) -> Result<Arc<ImageInfo>, BuildError> {
        if !pull {
            if let Some(i) = self.b.images.images.snapshot().resolve(name) {
                return Ok(i.clone());
            }
        }
        let reference = Reference::parse(name)
            .map_err(|e| BuildError::Invalid(e.to_string()))?
            .with_default_tag();
        let host = reference.domain().to_string();
        let creds = self
            .opts
            .registry_auth
            .iter()
            .find(|(k, _)| crate::images::auth::registry_host(k) == host)
            .map(|(_, a)| a.credentials())
            .unwrap_or(berth_actors::registry::Credentials::Anonymous);
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        berth_actors::registry::pull(&host, reference.to_string(), creds, tx)
            .await
            .map_err(|e| BuildError::Registry(e.kind(), e.to_string()))?;
        while let Some(b) = rx.recv().await {
            let Ok(v) = serde_json::from_slice::<Value>(&b) else {
                continue;
            };
            if let Some(e) = v.get("error").and_then(Value::as_str) {
                return Err(BuildError::NotFound(e.to_string()));
            }
            self.p.message(v).await?;
        }
        self.b
            .images
            .images
            .snapshot()
            .resolve(&reference.to_string())
            .cloned()
            .ok_or_else(|| BuildError::NotFound(format!("No such image: {name}")))
    }

    pub(super) async fn from(&mut self, from: &Step) -> Result<Stage, BuildError> {
        let Instruction::From {
            image,
            alias,
            platform,
        } = &from.instruction
        else {
            return Err(BuildError::Invalid("a stage starts with FROM".into()));
        };
        self.announce(from).await?;
        if let Some(p) = platform {
            let p = self.expand_meta(p)?;
            check_platform(&p)?;
        }
        let name = self.expand_meta(image)?;
        if name.is_empty() {
            return Err(BuildError::Invalid(format!(
                "base name ({image}) should not be blank"
            )));
        }
        let lower = name.to_ascii_lowercase();
        let earlier = self
            .done
            .iter()
            .rev()
            .find(|(n, _)| n.as_deref() == Some(lower.as_str()))
            .map(|(_, i)| i.clone());
        let img = match earlier {
            Some(i) => i,
            None if lower == "scratch" => None,
            None => Some(self.image(&name, self.opts.pull).await?),
        };
        let mut config = img
            .as_ref()
            .and_then(|i| i.config.config.clone())
            .and_then(|c| c.as_object().cloned())
            .unwrap_or_default();
        let triggers: Vec<String> = config
            .remove("OnBuild")
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        if let Some(i) = &img {
            self.p
                .stream(format!(" ---> {}\n", short(&i.record.id)))
                .await?;
        }
        let mut st = Stage {
            name: alias.clone(),
            base: img.clone(),
            image: img,
            config,
            args: BTreeMap::new(),
            maintainer: String::new(),
            cmd_set: false,
        };
        if !triggers.is_empty() {
            self.p
                .stream(format!(
                    "# Executing {} build trigger{}\n",
                    triggers.len(),
                    if triggers.len() > 1 { "s" } else { "" }
                ))
                .await?;
            for t in &triggers {
                let df = dockerfile::parse(t).map_err(|e| {
                    BuildError::Invalid(format!("invalid ONBUILD trigger {t:?}: {e}"))
                })?;
                for s in df.steps {
                    Box::pin(self.dispatch(&mut st, &s.instruction, &s.original)).await?;
                }
            }
        }
        Ok(st)
    }

    /// The container config a configuration step records (its `Cmd` is
    /// the step's comment, as dockerd's `#(nop)`).
    pub(super) fn probe_config(st: &Stage, cmd: Vec<String>) -> Value {
        let mut c = st.config.clone();
        c.insert("Cmd".into(), json!(cmd));
        c.insert("Image".into(), json!(st.parent_id()));
        Value::Object(c)
    }

    pub(super) fn nop(st: &Stage, comment: &str) -> Vec<String> {
        let mut c = st.shell();
        c.push("#(nop) ".into());
        c.push(comment.into());
        c
    }

    pub(super) fn nop_one(st: &Stage, comment: &str) -> Vec<String> {
        let mut c = st.shell();
        c.push(format!("#(nop) {comment}"));
        c
    }

    /// A step found in the cache: its image becomes the stage's.
    pub(super) async fn cached(
        &mut self,
        st: &mut Stage,
        probe: &Value,
        adds_layer: bool,
    ) -> Result<bool, BuildError> {
        if self.opts.nocache {
            return Ok(false);
        }
        let snap = self.b.images.images.snapshot();
        let mut hit = cache::probe(&snap, &st.parent_id(), probe);
        if hit.is_none() && !self.cache_from.is_empty() {
            let created_by = probe
                .get("Cmd")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            if let Some((src, n)) = cache::probe_from(
                &self.cache_from,
                st.image.as_deref(),
                &created_by,
                adds_layer,
            ) {
                hit = Some(self.restore(st, &src, n, probe).await?);
            }
        }
        let Some(img) = hit else {
            return Ok(false);
        };
        self.p.stream(" ---> Using cache\n").await?;
        self.p
            .stream(format!(" ---> {}\n", short(&img.record.id)))
            .await?;
        st.image = Some(img);
        Ok(true)
    }

    /// The image of a step found in a `--cache-from` image: the step's
    /// config over the parent, with that image's `n`th layer.
    pub(super) async fn restore(
        &mut self,
        st: &Stage,
        src: &ImageInfo,
        n: usize,
        probe: &Value,
    ) -> Result<Arc<ImageInfo>, BuildError> {
        let snap = self.b.images.images.snapshot();
        let layer = if n > st.image.as_ref().map_or(0, |i| i.record.layers.len()) {
            let chain = &src.record.layers[n - 1];
            let l = snap
                .layers
                .get(chain)
                .ok_or_else(|| BuildError::NotFound(format!("layer {chain} is missing")))?;
            Some(NewLayer {
                diff_id: l.diff_id.clone(),
                cache_id: l.cache_id.clone(),
                size: l.size,
                tar_size: l.tar_size,
                blob: l.blob.clone(),
            })
        } else {
            None
        };
        let created = src
            .config
            .history
            .get(st.image.as_ref().map_or(0, |i| i.config.history.len()))
            .and_then(|h| h.created.clone())
            .unwrap_or_else(now);
        self.commit(st, probe, "", layer, Some(created)).await
    }

    /// Commit the stage's config (and `layer`) as the step's image.
    pub(super) async fn commit(
        &mut self,
        st: &Stage,
        probe: &Value,
        container: &str,
        layer: Option<NewLayer>,
        created: Option<String>,
    ) -> Result<Arc<ImageInfo>, BuildError> {
        let parent = st.parent_id();
        let mut config = st.config.clone();
        config.insert("Image".into(), json!(parent));
        let created = created.unwrap_or_else(now);
        let res = self
            .b
            .images
            .commit_child(
                st.image.as_deref(),
                Child {
                    config: Value::Object(config),
                    container_config: probe,
                    container_id: container,
                    author: &st.maintainer,
                    comment: "",
                    diff_id: None,
                    created: &created,
                    parent_id: &parent,
                },
                layer,
                vec![],
            )
            .await?;
        berth_actors::failpoint::hit("build:step");
        committed(self.b, &res.id)
    }

    /// A configuration step: cached, or committed without a layer.
    pub(super) async fn meta(
        &mut self,
        st: &mut Stage,
        cmd: Vec<String>,
    ) -> Result<(), BuildError> {
        let probe = Self::probe_config(st, cmd.clone());
        if self.cached(st, &probe, false).await? {
            return Ok(());
        }
        // As dockerd: the step's container (never started) is what the
        // image is committed from.
        let container = self.intermediate(st, &cmd).await?;
        let img = self
            .commit(st, &probe, container.as_deref().unwrap_or(""), None, None)
            .await;
        self.step_done(st, container.as_deref(), img).await
    }

    /// The container of a step that does not run (a configuration step,
    /// `WORKDIR`), made from the parent image as dockerd makes it: ` --->
    /// Running in X`. None over `scratch` (no image to make it from).
    pub(super) async fn intermediate(
        &mut self,
        st: &Stage,
        cmd: &[String],
    ) -> Result<Option<String>, BuildError> {
        let Some(parent) = st.image.clone() else {
            return Ok(None);
        };
        let body = super::run::container_body(
            &parent.record.id,
            &Value::Object(st.config.clone()),
            cmd,
            &st.env(),
            &self.opts.host_config,
        );
        let created = self.b.containers.create("", &body, true).await?;
        self.p
            .stream(format!(" ---> Running in {}\n", short(&created.id)))
            .await?;
        Ok(Some(created.id))
    }

    /// The end of a step: its container removed (`rm`, `forcerm`, or the
    /// commit failed), then the new image named and made the stage's.
    pub(super) async fn step_done(
        &mut self,
        st: &mut Stage,
        container: Option<&str>,
        img: Result<Arc<ImageInfo>, BuildError>,
    ) -> Result<(), BuildError> {
        if let Some(id) = container {
            if self.opts.rm || self.opts.forcerm || img.is_err() {
                super::run::remove(id).await?;
                self.p
                    .stream(format!("Removing intermediate container {}\n", short(id)))
                    .await?;
            }
        }
        let img = img?;
        self.p
            .stream(format!(" ---> {}\n", short(&img.record.id)))
            .await?;
        st.image = Some(img);
        Ok(())
    }

    pub(super) fn command(&self, st: &Stage, c: &Command) -> Vec<String> {
        match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = st.shell();
                v.push(s.clone());
                v
            }
        }
    }

    /// A root filesystem over the stage's image for `f` to write in; its
    /// changes come back as a new layer (the scratch space goes).
    pub(super) async fn layer_step<F>(&self, st: &Stage, f: F) -> Result<NewLayer, BuildError>
    where
        F: FnOnce(&Path) -> Result<(), BuildError> + Send + 'static,
    {
        let top = top_layer(&self.b.images, st.image.as_deref())?;
        let driver = self.b.images.driver.clone();
        let tmp = crate::sys::blobs::random_hex(32);
        let (t, p) = (tmp.clone(), top.clone());
        let d = driver.clone();
        let upper = tokio::task::spawn_blocking(move || -> Result<PathBuf, BuildError> {
            let diff = d.create(&t, p.as_deref())?;
            if p.is_none() {
                // Over nothing (`FROM scratch`): the new layer's own
                // directory is the whole root, and its changes.
                let r = f(&diff);
                if r.is_err() {
                    let _ = d.remove(&t);
                }
                return r.map(|()| diff);
            }
            let r = (|| {
                let root = d.mount_rw(&t)?;
                let r = f(&root);
                d.unmount(&t)?;
                r?;
                d.describe(&t)
                    .and_then(|m| m.get("UpperDir").cloned())
                    .map(PathBuf::from)
                    .ok_or_else(|| {
                        BuildError::NotImplemented(format!(
                            "building images needs the overlay2 storage driver (this daemon uses {})",
                            d.name()
                        ))
                    })
            })();
            if r.is_err() {
                let _ = d.remove(&t);
            }
            r
        })
        .await
        .map_err(|e| BuildError::Io(std::io::Error::other(e.to_string())))??;
        let layer = self.b.images.layer_of_dir(upper, top).await;
        let _ = tokio::task::spawn_blocking(move || driver.remove(&tmp)).await;
        Ok(layer?)
    }
}

fn check_platform(p: &str) -> Result<(), BuildError> {
    let norm = p.to_ascii_lowercase();
    let ok = matches!(
        norm.as_str(),
        "" | "linux" | "linux/amd64" | "linux/x86_64" | "linux/amd64/v1" | "linux/amd64/v2"
    );
    if ok {
        Ok(())
    } else {
        Err(BuildError::Invalid(format!(
            "\"{p}\": berthd builds linux/amd64 images only (no emulation for other platforms)"
        )))
    }
}

/// `platform` of the request.
pub fn check_request_platform(p: &str) -> Result<(), BuildError> {
    check_platform(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_parses_them() {
        assert_eq!(duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration("500ms").unwrap(), 500_000_000);
        assert!(duration("5x").is_err() && duration("").is_err());
    }

    #[test]
    fn the_plan_cuts_at_the_target_and_counts_steps() {
        let text = "ARG V=1\nFROM busybox AS a\nRUN true\nFROM a AS b\nENV X=1\nFROM b\nCMD x\n";
        let mut o = BuildOptions::default();
        assert_eq!(plan(text, &o).unwrap().total, 7);
        o.target = Some("b".into());
        let p = plan(text, &o).unwrap();
        assert_eq!((p.total, p.stages.len()), (5, 2));
        o.labels.insert("k".into(), "v".into());
        let p = plan(text, &o).unwrap();
        assert_eq!(p.total, 6);
        assert_eq!(p.stages[1].1.last().unwrap().original, "LABEL k=v");
        o.target = Some("nope".into());
        assert_eq!(
            plan(text, &o).err().unwrap().to_string(),
            "failed to reach build target nope in Dockerfile"
        );
        assert!(plan("ENV A=1\nFROM x\n", &BuildOptions::default()).is_err());
    }
}
