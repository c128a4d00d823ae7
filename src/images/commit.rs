//! `docker commit` and the builder's steps: the image config of a new
//! layer (or none) over an image, as dockerd's `NewChildImage` writes it,
//! the container config the commit's request and `--change` lines make
//! (`merge`), `docker commit` itself ([`ImageService::commit_container`]),
//! and the two operations both use: a container's writable layer as a new
//! layer in the store ([`ImageService::container_layer`]) and the child
//! image committed through the ImageStore ([`ImageService::commit_child`]).

use std::sync::Arc;

use berth_actors::container::fs::{FsView, FsWant};
use berth_actors::container::{ContainerMsg, ContainerRecord, Containers};
use berth_actors::image::{CommitResult, ImageInfo, NewLayer, Reference};
use serde_json::{json, Map, Value};

use super::{ImageOpError, ImageService};

/// The diff ID of an empty layer tar (two zero blocks): a commit with no
/// change adds no layer, only a history entry marked `empty_layer`.
pub const EMPTY_LAYER: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// dockerd's `merge(userConf, imageConf)`: what the request's config
/// leaves empty comes from the container's (`User`, `WorkingDir`,
/// `StopSignal`, `Healthcheck`, `Cmd` and `Entrypoint` together), the
/// ports, volumes and labels are joined, and `Env` is the container's with
/// the request's variables over it.
pub fn merge(user: &mut Value, container: &Value) {
    let Some(u) = user.as_object_mut() else {
        *user = container.clone();
        return;
    };
    let get = |k: &str| container.get(k).cloned().unwrap_or(Value::Null);
    for k in ["User", "WorkingDir", "StopSignal", "Healthcheck"] {
        if u.get(k).is_none_or(empty) && !empty(&get(k)) {
            u.insert(k.into(), get(k));
        }
    }
    for k in ["ExposedPorts", "Volumes", "Labels"] {
        let mut joined: Map<String, Value> = get(k).as_object().cloned().unwrap_or_default();
        if let Some(mine) = u.get(k).and_then(Value::as_object) {
            for (a, b) in mine {
                joined.insert(a.clone(), b.clone());
            }
        }
        if !joined.is_empty() {
            u.insert(k.into(), Value::Object(joined));
        }
    }
    let key = |e: &Value| {
        e.as_str()
            .map(|s| s.split_once('=').map_or(s, |(k, _)| k).to_string())
    };
    let mut env: Vec<Value> = u
        .get("Env")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for e in get("Env").as_array().into_iter().flatten() {
        if !env.iter().any(|x| key(x) == key(e)) {
            env.push(e.clone());
        }
    }
    if !env.is_empty() {
        u.insert("Env".into(), json!(env));
    }
    if u.get("Entrypoint").is_none_or(empty) && u.get("Cmd").is_none_or(empty) {
        u.insert("Cmd".into(), get("Cmd"));
        u.insert("Entrypoint".into(), get("Entrypoint"));
    }
}

/// What a commit records about itself.
pub struct Child<'a> {
    pub config: Value,
    /// The container's config as it ran.
    pub container_config: &'a Value,
    pub container_id: &'a str,
    pub author: &'a str,
    pub comment: &'a str,
    /// The new layer's diff ID (`None`: nothing changed).
    pub diff_id: Option<&'a str>,
    pub created: &'a str,
    /// The image's ID (`Parent` in inspect).
    pub parent_id: &'a str,
}

/// The child image's config over `parent` (its raw config JSON).
pub fn child_image(parent: &Value, c: Child<'_>) -> Value {
    let cmd: Vec<&str> = c
        .container_config
        .get("Cmd")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut history = parent
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut h = json!({"created": c.created, "created_by": cmd.join(" ")});
    if !c.author.is_empty() {
        h["author"] = json!(c.author);
    }
    if !c.comment.is_empty() {
        h["comment"] = json!(c.comment);
    }
    if c.diff_id.is_none() {
        h["empty_layer"] = json!(true);
    }
    history.push(h);
    let mut diff_ids = parent["rootfs"]["diff_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(d) = c.diff_id {
        diff_ids.push(json!(d));
    }
    let mut out = json!({
        "architecture": parent.get("architecture").cloned().unwrap_or(json!("amd64")),
        "config": c.config,
        "container_config": c.container_config,
        "created": c.created,
        "docker_version": concat!("berth-", env!("CARGO_PKG_VERSION")),
        "history": history,
        "os": parent.get("os").cloned().unwrap_or(json!("linux")),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    // A step of a build made without a container, or on `scratch`, has
    // neither.
    if !c.container_id.is_empty() {
        out["container"] = json!(c.container_id);
    }
    if !c.parent_id.is_empty() {
        out["parent"] = json!(c.parent_id);
    }
    if let Some(v) = parent.get("variant").filter(|v| !empty(v)) {
        out["variant"] = v.clone();
    }
    if !c.author.is_empty() {
        out["author"] = json!(c.author);
    }
    if !c.comment.is_empty() {
        out["comment"] = json!(c.comment);
    }
    out
}

/// The config `FROM scratch` starts from.
pub fn scratch_config() -> Value {
    json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    })
}

/// The time an image is made at, as dockerd writes it.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn sys(m: impl std::fmt::Display) -> ImageOpError {
    ImageOpError::Io(std::io::Error::other(m.to_string()))
}

/// A `docker commit` of a container: its record, the image config to
/// write (`merge`d already), the container's config, whether to pause it,
/// the author and comment, and the references to set.
pub struct ContainerCommit<'a> {
    pub rec: &'a ContainerRecord,
    pub config: Value,
    pub container_config: &'a Value,
    pub pause: bool,
    pub author: &'a str,
    pub comment: &'a str,
    pub refs: Vec<Reference>,
}

impl ImageService {
    /// `docker commit`: the container (paused meanwhile when asked and
    /// running) becomes an image over its own. Nothing of the store is
    /// freed meanwhile; a failure frees the new layer.
    pub async fn commit_container(
        self: &Arc<Self>,
        c: ContainerCommit<'_>,
    ) -> Result<CommitResult, ImageOpError> {
        let working = self.gc.working().await;
        let r = self.commit_container_working(c).await;
        working.finish().await;
        r
    }

    async fn commit_container_working(
        self: &Arc<Self>,
        c: ContainerCommit<'_>,
    ) -> Result<CommitResult, ImageOpError> {
        let rec = c.rec;
        let paused_here = c.pause
            && rec.state.status.is_live()
            && rec.state.status != berth_actors::container::state::Status::Paused
            && Containers::ask(&rec.id, ContainerMsg::Pause).await.is_ok();
        let layer = self.container_layer(&rec.id, rec.image_layer.clone()).await;
        if paused_here {
            let _ = Containers::ask(&rec.id, ContainerMsg::Unpause).await;
        }
        let layer = layer?;
        let parent = self.images.snapshot().images.get(&rec.image).cloned();
        let Some(parent) = parent else {
            let s = self.clone();
            let _ = tokio::task::spawn_blocking(move || s.discard(&[layer])).await;
            return Err(sys(format!("the image {} is gone", rec.image)));
        };
        let created = now();
        self.commit_child(
            Some(&parent),
            Child {
                config: c.config,
                container_config: c.container_config,
                container_id: &rec.id,
                author: c.author,
                comment: c.comment,
                diff_id: None,
                created: &created,
                parent_id: &rec.image,
            },
            Some(layer),
            c.refs,
        )
        .await
    }

    /// The writable layer of container `id` (whose image's top layer is
    /// `parent`) as a new layer in the store: the tar is written on one
    /// thread and read into the storage driver on another. Its actor lends
    /// the layer directories (as for `docker diff`).
    pub async fn container_layer(
        self: &Arc<Self>,
        id: &str,
        parent: Option<String>,
    ) -> Result<NewLayer, ImageOpError> {
        let view = Containers::ask(id, |reply| ContainerMsg::Filesystem {
            want: FsWant::Layers,
            reply,
        })
        .await
        .map_err(ImageOpError::Container)?;
        let FsView::Layers { upper, .. } = view else {
            return Err(sys("not the container's layers"));
        };
        self.layer_of_dir(upper, parent).await
    }

    /// The changes in an overlay upper directory as a new layer above
    /// `parent` (an empty diff gives [`EMPTY_LAYER`]'s layer).
    pub async fn layer_of_dir(
        self: &Arc<Self>,
        upper: std::path::PathBuf,
        parent: Option<String>,
    ) -> Result<NewLayer, ImageOpError> {
        let (reader, writer) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| sys(e.to_string()))?;
        let (reader, writer) = (std::fs::File::from(reader), std::fs::File::from(writer));
        let writing = std::thread::Builder::new()
            .name("berth-commit".into())
            .spawn(move || crate::containers::changes::layer_diff(&upper, writer).map(drop))?;
        let svc = self.clone();
        let built = tokio::task::spawn_blocking(move || svc.build_layer(parent.as_deref(), reader))
            .await
            .map_err(sys)?;
        let written = writing
            .join()
            .map_err(|_| sys("the layer's writer failed"))?;
        match (built, written) {
            (Ok(l), Ok(())) => {
                berth_actors::failpoint::hit("commit:layer");
                Ok(l)
            }
            (Ok(l), Err(e)) => {
                let s = self.clone();
                let _ = tokio::task::spawn_blocking(move || s.discard(&[l])).await;
                Err(sys(format!("reading the container's changes: {e}")))
            }
            (Err(e), _) => Err(sys(format!("storing the container's changes: {e}"))),
        }
    }

    /// The layers of `image` (none for scratch), as a commit lists them.
    pub fn layers_of(&self, image: Option<&ImageInfo>) -> Result<Vec<NewLayer>, ImageOpError> {
        let snap = self.images.snapshot();
        let mut layers: Vec<NewLayer> = Vec::new();
        for chain in image.map(|p| p.record.layers.as_slice()).unwrap_or(&[]) {
            let l = snap
                .layers
                .get(chain)
                .ok_or_else(|| sys(format!("layer {chain} is missing")))?;
            layers.push(NewLayer {
                diff_id: l.diff_id.clone(),
                cache_id: l.cache_id.clone(),
                size: l.size,
                tar_size: l.tar_size,
                blob: l.blob.clone(),
            });
        }
        Ok(layers)
    }

    /// Commit the image `child` describes over `parent` (`None`: scratch),
    /// with `layer` on top unless it is empty; `refs` point at it. On
    /// failure the new layer is freed.
    pub async fn commit_child(
        self: &Arc<Self>,
        parent: Option<&ImageInfo>,
        mut child: Child<'_>,
        layer: Option<NewLayer>,
        refs: Vec<Reference>,
    ) -> Result<CommitResult, ImageOpError> {
        let layers = self.layers_of(parent)?;
        let parent_config: Value = match parent {
            Some(p) => serde_json::from_slice(&p.raw_config)
                .map_err(|e| sys(format!("the image's config: {e}")))?,
            None => scratch_config(),
        };
        let layer = self.drop_if_empty(layer).await;
        child.diff_id = layer.as_ref().map(|l| l.diff_id.as_str());
        let image = child_image(&parent_config, child);
        let raw = serde_json::to_vec(&image).map_err(sys)?;
        self.commit_raw(raw, layers, layer, refs).await
    }

    /// `layer`, unless it holds no change (then it is freed).
    pub async fn drop_if_empty(self: &Arc<Self>, layer: Option<NewLayer>) -> Option<NewLayer> {
        match layer {
            Some(l) if l.diff_id == EMPTY_LAYER => {
                let s = self.clone();
                let _ = tokio::task::spawn_blocking(move || s.discard(&[l])).await;
                None
            }
            other => other,
        }
    }

    /// Commit the config `raw` with `layers` and the new `layer` on top;
    /// what the store no longer needs is freed, and the new layer if the
    /// commit fails.
    pub async fn commit_raw(
        self: &Arc<Self>,
        raw: Vec<u8>,
        mut layers: Vec<NewLayer>,
        layer: Option<NewLayer>,
        refs: Vec<Reference>,
    ) -> Result<CommitResult, ImageOpError> {
        let new: Vec<NewLayer> = layer.iter().cloned().collect();
        layers.extend(layer);
        match self.images.commit(raw, layers, refs).await {
            Ok(res) => {
                let (s, released) = (self.clone(), res.released.clone());
                let _ = tokio::task::spawn_blocking(move || s.release(&released)).await;
                Ok(res)
            }
            Err(e) => {
                let s = self.clone();
                let _ = tokio::task::spawn_blocking(move || s.discard(&new)).await;
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_fills_what_the_request_leaves_empty() {
        let container = json!({
            "User": "app", "Env": ["PATH=/bin", "A=1"], "Cmd": ["sleep", "1"],
            "Entrypoint": null, "ExposedPorts": {"80/tcp": {}}, "Labels": {"x": "1"},
            "WorkingDir": "/srv",
        });
        let mut user =
            json!({"Env": ["A=2", "B=3"], "ExposedPorts": {"81/tcp": {}}, "Labels": {"y": "2"}});
        merge(&mut user, &container);
        assert_eq!(user["User"], "app");
        assert_eq!(user["WorkingDir"], "/srv");
        assert_eq!(user["Env"], json!(["A=2", "B=3", "PATH=/bin"]));
        assert_eq!(user["Cmd"], json!(["sleep", "1"]));
        assert_eq!(user["ExposedPorts"], json!({"80/tcp": {}, "81/tcp": {}}));
        assert_eq!(user["Labels"], json!({"x": "1", "y": "2"}));
        // A command given keeps the request's (and no entrypoint comes back).
        let mut user = json!({"Cmd": ["echo"]});
        merge(&mut user, &json!({"Entrypoint": ["/init"], "Cmd": ["x"]}));
        assert_eq!(
            (user["Cmd"].clone(), user.get("Entrypoint").cloned()),
            (json!(["echo"]), None)
        );
    }

    #[test]
    fn child_image_adds_the_layer_and_the_history() {
        let parent = json!({
            "architecture": "amd64", "os": "linux",
            "history": [{"created": "t0", "created_by": "base"}],
            "rootfs": {"type": "layers", "diff_ids": ["sha256:a"]},
        });
        let cc = json!({"Cmd": ["sh", "-c", "echo hi > /f"]});
        let c = child_image(
            &parent,
            Child {
                config: json!({"Cmd": ["sh"]}),
                container_config: &cc,
                container_id: "abc",
                author: "me",
                comment: "msg",
                diff_id: Some("sha256:b"),
                created: "t1",
                parent_id: "sha256:p",
            },
        );
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:a", "sha256:b"]));
        assert_eq!(c["parent"], "sha256:p");
        assert_eq!(c["history"][1]["created_by"], "sh -c echo hi > /f");
        assert_eq!(c["history"][1]["author"], "me");
        assert_eq!(
            (
                c["author"].clone(),
                c["comment"].clone(),
                c["container"].clone()
            ),
            (json!("me"), json!("msg"), json!("abc"))
        );
        let e = child_image(
            &parent,
            Child {
                config: json!({}),
                container_config: &cc,
                container_id: "abc",
                author: "",
                comment: "",
                diff_id: None,
                created: "t1",
                parent_id: "sha256:p",
            },
        );
        assert_eq!(e["rootfs"]["diff_ids"], json!(["sha256:a"]));
        assert_eq!(e["history"][1]["empty_layer"], true);
    }
}
