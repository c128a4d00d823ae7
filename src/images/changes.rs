//! `docker import --change`: the Dockerfile instructions dockerd accepts
//! there, applied to an empty container config.

use serde_json::{json, Map, Value};

/// dockerd's empty `container.Config`, as `docker inspect` shows it.
pub fn empty_config() -> Value {
    json!({
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": null, "Cmd": null, "Image": "", "Volumes": null,
        "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null
    })
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')))
    {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

/// JSON form (`["a","b"]`) or shell form (`/bin/sh -c "..."`).
fn command(arg: &str) -> Value {
    if let Ok(v) = serde_json::from_str::<Vec<String>>(arg.trim()) {
        return json!(v);
    }
    json!(["/bin/sh", "-c", arg.trim()])
}

/// `k=v k2="v 2"` pairs (or the legacy `k v` form when `legacy`).
fn pairs(arg: &str, legacy: bool) -> Result<Vec<(String, String)>, String> {
    let arg = arg.trim();
    if legacy && !arg.split_whitespace().next().unwrap_or("").contains('=') {
        let (k, v) = arg
            .split_once(char::is_whitespace)
            .ok_or_else(|| "ENV needs a name and a value".to_string())?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    let mut rest = arg;
    while !rest.is_empty() {
        let (k, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("expected key=value in {arg:?}"))?;
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q
                .find('"')
                .ok_or_else(|| format!("unterminated quote in {arg:?}"))?;
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (unquote(&after[..end]), &after[end..])
        };
        out.push((k.trim().to_string(), v));
        rest = next.trim_start();
    }
    Ok(out)
}

/// Apply `--change` lines; errors are dockerd's wording where it has one.
pub fn apply_changes(changes: &[String]) -> Result<Value, String> {
    apply_changes_to(empty_config(), changes)
}

/// Apply `--change` lines over the container config `c` (`docker commit`).
pub fn apply_changes_to(mut c: Value, changes: &[String]) -> Result<Value, String> {
    for line in changes
        .iter()
        .flat_map(|l| l.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        let (instr, arg) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let obj = c.as_object_mut().ok_or("config is not an object")?;
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => {
                obj.insert("Cmd".into(), command(arg));
            }
            "ENTRYPOINT" => {
                obj.insert("Entrypoint".into(), command(arg));
            }
            "ENV" => {
                let mut env: Vec<Value> = obj
                    .get("Env")
                    .and_then(|v| v.as_array().cloned())
                    .unwrap_or_default();
                for (k, v) in pairs(arg, true)? {
                    env.retain(|e| {
                        e.as_str()
                            .and_then(|s| s.split_once('='))
                            .map(|(n, _)| n != k)
                            .unwrap_or(true)
                    });
                    env.push(json!(format!("{k}={v}")));
                }
                obj.insert("Env".into(), json!(env));
            }
            "LABEL" => {
                let mut labels: Map<String, Value> = obj
                    .get("Labels")
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                for (k, v) in pairs(arg, false)? {
                    labels.insert(unquote(&k), json!(v));
                }
                obj.insert("Labels".into(), Value::Object(labels));
            }
            "EXPOSE" => {
                let mut ports: Map<String, Value> = obj
                    .get("ExposedPorts")
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                for p in arg.split_whitespace() {
                    let p = if p.contains('/') {
                        p.to_string()
                    } else {
                        format!("{p}/tcp")
                    };
                    ports.insert(p, json!({}));
                }
                obj.insert("ExposedPorts".into(), Value::Object(ports));
            }
            "VOLUME" => {
                let mut vols: Map<String, Value> = obj
                    .get("Volumes")
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                let list: Vec<String> = serde_json::from_str(arg.trim())
                    .unwrap_or_else(|_| arg.split_whitespace().map(String::from).collect());
                for v in list {
                    vols.insert(v, json!({}));
                }
                obj.insert("Volumes".into(), Value::Object(vols));
            }
            "USER" => {
                obj.insert("User".into(), json!(arg.trim()));
            }
            "WORKDIR" => {
                obj.insert("WorkingDir".into(), json!(arg.trim()));
            }
            "STOPSIGNAL" => {
                obj.insert("StopSignal".into(), json!(arg.trim()));
            }
            "ONBUILD" => {
                let mut ob: Vec<Value> = obj
                    .get("OnBuild")
                    .and_then(|v| v.as_array().cloned())
                    .unwrap_or_default();
                ob.push(json!(arg.trim()));
                obj.insert("OnBuild".into(), json!(ob));
            }
            other => return Err(format!("{other} is not a valid change command")),
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes() {
        let c = apply_changes(&[
            r#"CMD ["sh"]"#.into(),
            "ENTRYPOINT /bin/app --x".into(),
            "ENV A=1 B=\"two words\"".into(),
            "ENV C 3".into(),
            "LABEL team=berth".into(),
            "EXPOSE 80 53/udp".into(),
            "WORKDIR /srv".into(),
        ])
        .unwrap();
        assert_eq!(c["Cmd"], json!(["sh"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/bin/app --x"]));
        assert_eq!(c["Env"], json!(["A=1", "B=two words", "C=3"]));
        assert_eq!(c["Labels"], json!({"team": "berth"}));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["WorkingDir"], "/srv");
        assert_eq!(
            apply_changes(&["RUN x".into()]).unwrap_err(),
            "RUN is not a valid change command"
        );
    }
}
