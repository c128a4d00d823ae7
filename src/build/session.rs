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
use super::copy::{apply, pack, Packed, Sources};
use super::dockerfile::{self, Command, Health, Instruction, Step};
use super::expand::expand;
use super::progress::{short, Progress};
use super::{cache, run, BuildError, BuildOptions};
use crate::containers::ContainerService;
use crate::images::commit::{now, Child};
use crate::images::ImageService;

/// Build arguments every Dockerfile may use without declaring them (left
/// out of the cache key and of the "not consumed" warning, as dockerd).
const BUILTIN_ARGS: &[&str] = &[
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
struct Stage {
    name: Option<String>,
    image: Option<Arc<ImageInfo>>,
    /// The container config the next image gets.
    config: Map<String, Value>,
    /// The stage's declared `ARG`s and their values.
    args: BTreeMap<String, Option<String>>,
    maintainer: String,
    /// A `CMD` was given in this stage (a later `ENTRYPOINT` keeps it).
    cmd_set: bool,
}

impl Stage {
    fn parent_id(&self) -> String {
        self.image
            .as_ref()
            .map(|i| i.record.id.clone())
            .unwrap_or_default()
    }

    fn env(&self) -> Vec<String> {
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

    fn env_get(&self, k: &str) -> Option<String> {
        self.env().into_iter().find_map(|e| {
            let (a, b) = e.split_once('=').unwrap_or((&e, ""));
            (a == k).then(|| b.to_string())
        })
    }

    fn env_set(&mut self, k: &str, v: &str) {
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

    fn shell(&self) -> Vec<String> {
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
    fn run_args(&self) -> Vec<String> {
        self.args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .filter(|(k, _)| self.env_get(k).is_none())
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// An object field of the config (`Labels`, `ExposedPorts`,
    /// `Volumes`), empty when unset.
    fn object(&self, key: &str) -> Map<String, Value> {
        self.config
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    fn workdir(&self) -> String {
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
fn go_list(v: &[String]) -> String {
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

fn clean_abs(p: &str) -> String {
    let c = super::ignore::clean(p);
    if c.starts_with('/') {
        c
    } else {
        format!("/{}", c.trim_start_matches("./"))
    }
}

/// The top layer (storage driver ID) of an image.
fn top_layer(images: &ImageService, img: Option<&ImageInfo>) -> Result<Option<String>, BuildError> {
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
    b: &'a Builder,
    opts: &'a BuildOptions,
    ctx: &'a Context,
    p: &'a mut Progress,
    escape: char,
    meta: BTreeMap<String, Option<String>>,
    used_args: BTreeSet<String>,
    /// Finished stages: name and image.
    done: Vec<(Option<String>, Option<Arc<ImageInfo>>)>,
    cache_from: Vec<Arc<ImageInfo>>,
    step: usize,
    total: usize,
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
    async fn announce(&mut self, step: &Step) -> Result<(), BuildError> {
        self.step += 1;
        self.p
            .stream(format!(
                "Step {}/{} : {}",
                self.step, self.total, step.original
            ))
            .await?;
        self.p.stream("\n").await
    }

    fn expand_meta(&self, w: &str) -> Result<String, BuildError> {
        let meta = &self.meta;
        Ok(expand(w, &|k| meta.get(k).cloned().flatten(), self.escape)?)
    }

    fn expand(&self, st: &Stage, w: &str) -> Result<String, BuildError> {
        Ok(expand(
            w,
            &|k| st.env_get(k).or_else(|| st.args.get(k).cloned().flatten()),
            self.escape,
        )?)
    }

    /// An image the build names, pulled when missing (or always with
    /// `pull=1`).
    async fn image(&mut self, name: &str, pull: bool) -> Result<Arc<ImageInfo>, BuildError> {
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

    async fn from(&mut self, from: &Step) -> Result<Stage, BuildError> {
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
    fn probe_config(st: &Stage, cmd: Vec<String>) -> Value {
        let mut c = st.config.clone();
        c.insert("Cmd".into(), json!(cmd));
        c.insert("Image".into(), json!(st.parent_id()));
        Value::Object(c)
    }

    fn nop(st: &Stage, comment: &str) -> Vec<String> {
        let mut c = st.shell();
        c.push("#(nop) ".into());
        c.push(comment.into());
        c
    }

    fn nop_one(st: &Stage, comment: &str) -> Vec<String> {
        let mut c = st.shell();
        c.push(format!("#(nop) {comment}"));
        c
    }

    /// A step found in the cache: its image becomes the stage's.
    async fn cached(
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
    async fn restore(
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
    async fn commit(
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
        self.b
            .images
            .images
            .snapshot()
            .images
            .get(&res.id)
            .cloned()
            .ok_or_else(|| BuildError::NotFound(format!("the image {} is gone", res.id)))
    }

    /// A configuration step: cached, or committed without a layer.
    async fn meta(&mut self, st: &mut Stage, cmd: Vec<String>) -> Result<(), BuildError> {
        let probe = Self::probe_config(st, cmd);
        if self.cached(st, &probe, false).await? {
            return Ok(());
        }
        let img = self.commit(st, &probe, "", None, None).await?;
        self.p
            .stream(format!(" ---> {}\n", short(&img.record.id)))
            .await?;
        st.image = Some(img);
        Ok(())
    }

    async fn dispatch(
        &mut self,
        st: &mut Stage,
        ins: &Instruction,
        original: &str,
    ) -> Result<(), BuildError> {
        match ins {
            Instruction::From { .. } => Err(BuildError::Invalid("FROM inside a stage".into())),
            Instruction::Env(pairs) => {
                let mut comment = String::from("ENV");
                for (k, v) in pairs {
                    let k = self.expand(st, k)?;
                    let v = self.expand(st, v)?;
                    comment.push_str(&format!(" {k}={v}"));
                    st.env_set(&k, &v);
                }
                let cmd = Self::nop(st, &comment);
                self.meta(st, cmd).await
            }
            Instruction::Label(pairs) => {
                let mut labels = st.object("Labels");
                let mut comment = String::from("LABEL");
                for (k, v) in pairs {
                    let k = self.expand(st, k)?;
                    let v = self.expand(st, v)?;
                    comment.push_str(&format!(" {k}={v}"));
                    labels.insert(k, json!(v));
                }
                st.config.insert("Labels".into(), Value::Object(labels));
                let cmd = Self::nop(st, &comment);
                self.meta(st, cmd).await
            }
            Instruction::Arg(args) => {
                let mut comment = String::from("ARG");
                for (k, default) in args {
                    let d = match default {
                        Some(d) => Some(self.expand(st, d)?),
                        None => None,
                    };
                    comment.push(' ');
                    comment.push_str(k);
                    if let Some(d) = &d {
                        comment.push_str(&format!("={d}"));
                    }
                    let v = match self.opts.build_args.get(k) {
                        Some(Some(v)) => Some(v.clone()),
                        _ => d.or_else(|| self.meta.get(k).cloned().flatten()),
                    };
                    if self.opts.build_args.contains_key(k) {
                        self.used_args.insert(k.clone());
                    }
                    st.args.insert(k.clone(), v);
                }
                let cmd = Self::nop(st, &comment);
                self.meta(st, cmd).await
            }
            Instruction::Cmd(c) => {
                let cmd = self.command(st, c);
                st.config.insert("Cmd".into(), json!(cmd));
                st.cmd_set = true;
                let n = Self::nop(st, &format!("CMD {}", go_list(&cmd)));
                self.meta(st, n).await
            }
            Instruction::Entrypoint(c) => {
                let ep = self.command(st, c);
                st.config.insert("Entrypoint".into(), json!(ep));
                if !st.cmd_set {
                    st.config.insert("Cmd".into(), Value::Null);
                }
                let n = Self::nop(st, &format!("ENTRYPOINT {}", go_list(&ep)));
                self.meta(st, n).await
            }
            Instruction::Shell(sh) => {
                st.config.insert("Shell".into(), json!(sh));
                let n = Self::nop(st, &format!("SHELL [{}]", sh.join(" ")));
                self.meta(st, n).await
            }
            Instruction::Expose(ports) => {
                let mut exposed = st.object("ExposedPorts");
                let mut shown = Vec::new();
                for p in ports {
                    let p = self.expand(st, p)?;
                    for one in expose_ports(&p)? {
                        exposed.insert(one, json!({}));
                    }
                    shown.push(p);
                }
                st.config
                    .insert("ExposedPorts".into(), Value::Object(exposed));
                let n = Self::nop(st, &format!("EXPOSE {}", shown.join(" ")));
                self.meta(st, n).await
            }
            Instruction::Volume(vols) => {
                let mut all = st.object("Volumes");
                let mut shown = Vec::new();
                for v in vols {
                    let v = self.expand(st, v)?;
                    if v.trim().is_empty() {
                        return Err(BuildError::Invalid(
                            "VOLUME specified can not be an empty string".into(),
                        ));
                    }
                    all.insert(v.clone(), json!({}));
                    shown.push(v);
                }
                st.config.insert("Volumes".into(), Value::Object(all));
                let n = Self::nop(st, &format!("VOLUME [{}]", shown.join(" ")));
                self.meta(st, n).await
            }
            Instruction::User(u) => {
                let u = self.expand(st, u)?;
                st.config.insert("User".into(), json!(u));
                let n = Self::nop(st, &format!("USER {u}"));
                self.meta(st, n).await
            }
            Instruction::Stopsignal(s) => {
                let s = self.expand(st, s)?;
                berth_actors::container::parse_signal(&s)
                    .map_err(|_| BuildError::Invalid(format!("Invalid signal: {s}")))?;
                st.config.insert("StopSignal".into(), json!(s));
                let n = Self::nop(st, &format!("STOPSIGNAL {s}"));
                self.meta(st, n).await
            }
            Instruction::Maintainer(m) => {
                st.maintainer = m.clone();
                let n = Self::nop(st, &format!("MAINTAINER {m}"));
                self.meta(st, n).await
            }
            Instruction::Onbuild(_, text) => {
                let mut list: Vec<Value> = st
                    .config
                    .get("OnBuild")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                list.push(json!(text));
                st.config.insert("OnBuild".into(), json!(list));
                let n = Self::nop(st, &format!("ONBUILD {text}"));
                self.meta(st, n).await
            }
            Instruction::Healthcheck(h) => {
                let hc = self.healthcheck(st, h)?;
                let shown = hc.to_string();
                st.config.insert("Healthcheck".into(), hc);
                let n = Self::nop(st, &format!("HEALTHCHECK {shown}"));
                self.meta(st, n).await
            }
            Instruction::Workdir(w) => {
                let w = self.expand(st, w)?;
                let dir = if w.starts_with('/') {
                    clean_abs(&w)
                } else {
                    clean_abs(&format!("{}/{w}", st.workdir()))
                };
                st.config.insert("WorkingDir".into(), json!(dir));
                let probe = Self::probe_config(st, Self::nop_one(st, &format!("WORKDIR {dir}")));
                if self.cached(st, &probe, false).await? {
                    return Ok(());
                }
                let d = dir.clone();
                let layer = self
                    .layer_step(st, move |root| {
                        let fd = super::context::root_fd(root)?;
                        super::copy::ensure_dir(&fd, &d, (0, 0))
                    })
                    .await?;
                let img = self.commit(st, &probe, "", Some(layer), None).await?;
                self.p
                    .stream(format!(" ---> {}\n", short(&img.record.id)))
                    .await?;
                st.image = Some(img);
                Ok(())
            }
            Instruction::Run(c) => self.run(st, c).await,
            Instruction::Copy {
                add,
                sources,
                dest,
                from,
                chown,
                chmod,
            } => {
                let _ = original;
                self.copy(
                    st,
                    *add,
                    sources,
                    dest,
                    from.as_deref(),
                    chown.as_deref(),
                    chmod.as_deref(),
                )
                .await
            }
        }
    }

    fn command(&self, st: &Stage, c: &Command) -> Vec<String> {
        match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = st.shell();
                v.push(s.clone());
                v
            }
        }
    }

    fn healthcheck(&self, st: &Stage, h: &Health) -> Result<Value, BuildError> {
        match h {
            Health::None => Ok(json!({"Test": ["NONE"]})),
            Health::Check { flags, cmd } => {
                let test: Vec<String> = match cmd {
                    Command::Exec(v) => std::iter::once("CMD".to_string())
                        .chain(v.iter().cloned())
                        .collect(),
                    Command::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
                };
                let mut hc = json!({"Test": test});
                for (flag, key) in [
                    ("interval", "Interval"),
                    ("timeout", "Timeout"),
                    ("start-period", "StartPeriod"),
                    ("start-interval", "StartInterval"),
                ] {
                    if let Some(v) = flags.get(flag) {
                        let v = self.expand(st, v)?;
                        let ns = duration(&v)?;
                        if ns != 0 && ns < 1_000_000 {
                            return Err(BuildError::Invalid(format!(
                                "{key} \"{flag}\" cannot be less than 1ms"
                            )));
                        }
                        hc[key] = json!(ns);
                    }
                }
                if let Some(r) = flags.get("retries") {
                    let n: i64 = r.parse().map_err(|_| {
                        BuildError::Invalid(format!(
                            "strconv.ParseInt: parsing {r:?}: invalid syntax"
                        ))
                    })?;
                    if n < 0 {
                        return Err(BuildError::Invalid("--retries cannot be negative".into()));
                    }
                    hc["Retries"] = json!(n);
                }
                Ok(hc)
            }
        }
    }

    /// A root filesystem over the stage's image for `f` to write in; its
    /// changes come back as a new layer (the scratch space goes).
    async fn layer_step<F>(&self, st: &Stage, f: F) -> Result<NewLayer, BuildError>
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

    async fn run(&mut self, st: &mut Stage, c: &Command) -> Result<(), BuildError> {
        let Some(parent) = st.image.clone() else {
            return Err(BuildError::Invalid(
                "Please provide a source image with `from` prior to run".into(),
            ));
        };
        let cmd = self.command(st, c);
        let args = st.run_args();
        for k in st.args.keys() {
            if self.opts.build_args.contains_key(k) {
                self.used_args.insert(k.clone());
            }
        }
        let mut save = Vec::new();
        if !args.is_empty() {
            save.push(format!("|{}", args.len()));
            save.extend(args.iter().cloned());
        }
        save.extend(cmd.iter().cloned());
        let mut probe = st.config.clone();
        probe.insert("Cmd".into(), json!(save));
        probe.remove("Entrypoint");
        probe.insert("Image".into(), json!(parent.record.id));
        let probe = Value::Object(probe);
        if self.cached(st, &probe, true).await? {
            return Ok(());
        }
        let mut env = st.env();
        env.extend(args);
        for k in BUILTIN_ARGS {
            if let Some(Some(v)) = self.opts.build_args.get(*k) {
                env.push(format!("{k}={v}"));
            }
        }
        let body = run::container_body(
            &parent.record.id,
            &Value::Object(st.config.clone()),
            &cmd,
            &env,
            &self.opts.host_config,
        );
        let created = self.b.containers.create("", &body, true).await?;
        let id = created.id;
        self.p
            .stream(format!(" ---> Running in {}\n", short(&id)))
            .await?;
        let code = match run::run(&self.b.containers, &id, self.p).await {
            Ok(c) => c,
            Err(e) => {
                // Gone client or a start that failed: the container goes.
                let _ = run::remove(&id).await;
                return Err(e);
            }
        };
        if code != 0 {
            if self.opts.forcerm {
                let _ = run::remove(&id).await;
            }
            return Err(BuildError::Run {
                cmd: cmd.join(" "),
                code,
            });
        }
        let image_layer = self
            .b
            .containers
            .containers
            .lookup(&id)
            .ok()
            .and_then(|r| r.image_layer.clone());
        let layer = self.b.images.container_layer(&id, image_layer).await;
        let img = match layer {
            Ok(l) => self.commit(st, &probe, &id, Some(l), None).await,
            Err(e) => Err(e.into()),
        };
        if self.opts.rm || self.opts.forcerm || img.is_err() {
            run::remove(&id).await?;
            self.p
                .stream(format!("Removing intermediate container {}\n", short(&id)))
                .await?;
        }
        let img = img?;
        self.p
            .stream(format!(" ---> {}\n", short(&img.record.id)))
            .await?;
        st.image = Some(img);
        Ok(())
    }

    /// The root filesystem `COPY --from` reads: a stage's image or any
    /// image (pulled when missing).
    async fn source_image(&mut self, from: &str) -> Result<Option<Arc<ImageInfo>>, BuildError> {
        let lower = from.to_ascii_lowercase();
        if let Some((_, img)) = self
            .done
            .iter()
            .rev()
            .find(|(n, _)| n.as_deref() == Some(lower.as_str()))
        {
            return Ok(img.clone());
        }
        if let Ok(ix) = from.parse::<usize>() {
            return match self.done.get(ix) {
                Some((_, img)) => Ok(img.clone()),
                None => Err(BuildError::Invalid(format!(
                    "invalid from flag value {from}: refers to current build stage"
                ))),
            };
        }
        if lower == "scratch" {
            return Ok(None);
        }
        Ok(Some(self.image(from, false).await?))
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy(
        &mut self,
        st: &mut Stage,
        add: bool,
        sources: &[String],
        dest: &str,
        from: Option<&str>,
        chown: Option<&str>,
        chmod: Option<&str>,
    ) -> Result<(), BuildError> {
        let what = if add { "ADD" } else { "COPY" };
        let mut srcs = Vec::new();
        for s in sources {
            srcs.push(self.expand(st, s)?);
        }
        let dest_raw = self.expand(st, dest)?;
        let chown = match chown {
            Some(c) => Some(self.expand(st, c)?),
            None => None,
        };
        let chmod = match chmod {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| BuildError::Invalid(format!("invalid chmod parameter: {m}")))?,
            ),
            None => None,
        };
        let urls = srcs
            .iter()
            .filter(|s| s.starts_with("http://") || s.starts_with("https://"))
            .count();
        if urls > 0 && !add {
            return Err(BuildError::Invalid(format!(
                "{what} failed: source can't be a URL for COPY"
            )));
        }
        if urls > 0 && urls != srcs.len() {
            return Err(BuildError::Invalid(format!(
                "{what} failed: berthd does not mix URLs and local files in one ADD; split it"
            )));
        }
        if urls > 0 && from.is_some() {
            return Err(BuildError::Invalid(format!(
                "{what} failed: --from cannot be used with a URL"
            )));
        }
        let dest_dir = dest_raw.ends_with('/') || dest_raw.ends_with("/.") || dest_raw == ".";
        let dest_abs = if dest_raw.starts_with('/') {
            clean_abs(&dest_raw)
        } else {
            clean_abs(&format!("{}/{dest_raw}", st.workdir()))
        };
        // Numeric owners go into the tar; names are resolved in the
        // image's own /etc/passwd when the layer is written.
        let numeric = chown.as_deref().and_then(numeric_owner);
        let named = chown.clone().filter(|_| numeric.is_none());
        let owner = numeric.unwrap_or((0, 0));
        let work = self.ctx.work.clone();
        let out = work.join(format!("pack-{}.tar", crate::sys::blobs::random_hex(8)));
        let _cleanup = RemoveOnDrop(out.clone());
        // Where the sources are: the context, an image, or downloads.
        let mut lease: Option<(String, Arc<dyn crate::sys::storage::StorageDriver>)> = None;
        let (root, ignore, keep_owners, names) = if urls > 0 {
            let dir = work.join(format!("urls-{}", crate::sys::blobs::random_hex(8)));
            std::fs::create_dir_all(&dir)?;
            let mut names = Vec::new();
            for u in &srcs {
                names.push(download(u, &dir).await?);
            }
            (dir, None, false, names)
        } else if let Some(f) = from {
            let f = self.expand(st, f)?;
            let img = self.source_image(&f).await?;
            let top = top_layer(&self.b.images, img.as_deref())?;
            let driver = self.b.images.driver.clone();
            let tmp = crate::sys::blobs::random_hex(32);
            let (d, t) = (driver.clone(), tmp.clone());
            let root = tokio::task::spawn_blocking(move || -> std::io::Result<PathBuf> {
                let diff = d.create(&t, top.as_deref())?;
                if top.is_none() {
                    return Ok(diff);
                }
                d.mount_rw(&t).inspect_err(|_| {
                    let _ = d.remove(&t);
                })
            })
            .await
            .map_err(|e| BuildError::Io(std::io::Error::other(e.to_string())))??;
            lease = Some((tmp, driver));
            (root, None, chown.is_none(), srcs.clone())
        } else {
            (
                self.ctx.dir.clone(),
                Some(self.ctx.ignore.clone()),
                false,
                srcs.clone(),
            )
        };
        let (w, o, r2) = (what.to_string(), out.clone(), root.clone());
        let extra = format!("{}|{:?}", named.clone().unwrap_or_default(), chmod);
        let packed = tokio::task::spawn_blocking(move || {
            pack(
                Sources {
                    root: &r2,
                    ignore: ignore.as_ref(),
                    what: &w,
                    keep_owners,
                    owner,
                    chmod,
                    extract_archives: add && urls == 0,
                    extra: &extra,
                },
                &names,
                &o,
            )
        })
        .await
        .map_err(|e| BuildError::Io(std::io::Error::other(e.to_string())));
        if let Some((tmp, driver)) = lease.take() {
            let _ = tokio::task::spawn_blocking(move || {
                let _ = driver.unmount(&tmp);
                driver.remove(&tmp)
            })
            .await;
        }
        let packed: Packed = packed??;
        if packed.multi && !dest_dir {
            return Err(BuildError::Invalid(format!(
                "When using {what} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let comment = format!("{what} {} in {dest_raw} ", packed.checksum);
        let probe = Self::probe_config(st, Self::nop_one(st, &comment));
        if self.cached(st, &probe, true).await? {
            return Ok(());
        }
        let w = what.to_string();
        let layer = self
            .layer_step(st, move |rootfs| {
                let owner = match &named {
                    Some(spec) => {
                        let fd = super::context::root_fd(rootfs)?;
                        let u = crate::sys::runtime::user::resolve_in(&fd, spec)
                            .map_err(|e| BuildError::Invalid(format!("{w} failed: unable to convert uid/gid chown string to host mapping: {e}")))?;
                        Some((u.uid, u.gid))
                    }
                    None => None,
                };
                apply(
                    rootfs,
                    &packed,
                    &dest_abs,
                    dest_dir,
                    owner.unwrap_or((0, 0)),
                    named.as_deref(),
                    &w,
                    &work,
                )
            })
            .await?;
        let img = self.commit(st, &probe, "", Some(layer), None).await?;
        self.p
            .stream(format!(" ---> {}\n", short(&img.record.id)))
            .await?;
        st.image = Some(img);
        Ok(())
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `1000` or `1000:1000`.
fn numeric_owner(s: &str) -> Option<(u32, u32)> {
    match s.split_once(':') {
        Some((u, g)) => Some((u.parse().ok()?, g.parse().ok()?)),
        None => {
            let u = s.parse().ok()?;
            Some((u, u))
        }
    }
}

/// `EXPOSE` words as port keys (`80` → `80/tcp`, ranges expanded).
fn expose_ports(p: &str) -> Result<Vec<String>, BuildError> {
    let (ports, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(BuildError::Invalid(format!("invalid proto: {proto}")));
    }
    let bad = || BuildError::Invalid(format!("invalid containerPort: {ports}"));
    let (a, b) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let a = ports.parse::<u16>().map_err(|_| bad())?;
            (a, a)
        }
    };
    if b < a {
        return Err(bad());
    }
    Ok((a..=b).map(|n| format!("{n}/{proto}")).collect())
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

/// Download `url` into `dir` for `ADD`: the file is named by the URL's
/// last path element, mode 0600, its time the `Last-Modified` header's.
async fn download(url: &str, dir: &Path) -> Result<String, BuildError> {
    let fail = |m: String| BuildError::Invalid(format!("ADD failed: {m}"));
    let parsed = reqwest::Url::parse(url).map_err(|e| fail(format!("invalid URL {url}: {e}")))?;
    let name = parsed
        .path_segments()
        .and_then(|mut s| s.next_back().map(String::from))
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .unwrap_or_else(|| "__unnamed__".into());
    let path = dir.join(&name);
    let mtime = super::fetch::to_file(url, &path, std::time::Duration::from_secs(600))
        .await
        .map_err(|e| match e {
            super::fetch::FetchError::Status(s) => {
                fail(format!("failed to GET {url} with status {s}"))
            }
            e => fail(format!("failed to GET {url}: {e}")),
        })?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    if let Some(t) = mtime {
        let f = std::fs::File::options().write(true).open(&path)?;
        f.set_modified(t)?;
    }
    Ok(name)
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

    #[test]
    fn exposed_ports_and_owners() {
        assert_eq!(expose_ports("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(expose_ports("53-54/udp").unwrap(), vec!["53/udp", "54/udp"]);
        assert!(expose_ports("x").is_err());
        assert_eq!(numeric_owner("1000"), Some((1000, 1000)));
        assert_eq!(numeric_owner("1:2"), Some((1, 2)));
        assert_eq!(numeric_owner("app"), None);
        assert_eq!(go_list(&["a".into(), "b c".into()]), "[\"a\" \"b c\"]");
    }
}
