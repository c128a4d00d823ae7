//! `docker commit`: the image config of a container's writable layer over
//! its image, as dockerd's `NewChildImage` writes it, and the container
//! config the commit's request and `--change` lines make (`merge`).

use serde_json::{json, Map, Value};

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
        "container": c.container_id,
        "container_config": c.container_config,
        "created": c.created,
        "docker_version": concat!("berth-", env!("CARGO_PKG_VERSION")),
        "history": history,
        "os": parent.get("os").cloned().unwrap_or(json!("linux")),
        "parent": c.parent_id,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
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
