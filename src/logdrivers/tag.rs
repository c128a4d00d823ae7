//! The `tag` option: dockerd's Go template over the container's facts
//! (`{{.ID}}`, `{{.FullID}}`, `{{.Name}}`, `{{.ImageID}}`,
//! `{{.ImageFullID}}`, `{{.ImageName}}`, `{{.DaemonName}}`,
//! `{{.Command}}`, `{{.Hostname}}`), with the pipe functions dockerd's
//! templates offer for strings (`lower`, `upper`, `title`). Berth expands
//! it in berthd at start and hands the shim the result.

/// The facts a tag can name.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub image_name: String,
    pub command: String,
    pub hostname: String,
}

/// dockerd's default template: the short ID.
pub const DEFAULT: &str = "{{.ID}}";

fn field(f: &Facts, name: &str) -> Option<String> {
    let image = f.image_id.trim_start_matches("sha256:");
    Some(match name {
        "ID" => f.id.chars().take(12).collect(),
        "FullID" => f.id.clone(),
        "Name" => f.name.trim_start_matches('/').to_string(),
        "ImageID" => image.chars().take(12).collect(),
        "ImageFullID" => f.image_id.clone(),
        "ImageName" => f.image_name.clone(),
        "DaemonName" => "docker".to_string(),
        "Command" => f.command.clone(),
        "Hostname" => f.hostname.clone(),
        _ => return None,
    })
}

fn action(f: &Facts, inner: &str) -> Result<String, String> {
    let mut parts = inner.split('|').map(str::trim);
    let head = parts.next().unwrap_or("");
    let name = head
        .strip_prefix('.')
        .ok_or_else(|| format!("template: log-tag:1: function {head:?} not defined"))?;
    let mut v = field(f, name).ok_or_else(|| {
        format!(
            "template: log-tag:1:2: executing \"log-tag\" at <.{name}>: can't evaluate field {name} in type *logger.Info"
        )
    })?;
    for func in parts {
        v = match func {
            "lower" => v.to_lowercase(),
            "upper" => v.to_uppercase(),
            "title" => {
                let mut c = v.chars();
                c.next()
                    .map(|h| h.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            }
            other => {
                return Err(format!(
                    "template: log-tag:1: function {other:?} not defined"
                ))
            }
        };
    }
    Ok(v)
}

/// Expand `template` over `f`.
pub fn expand(template: &str, f: &Facts) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let j = after
            .find("}}")
            .ok_or_else(|| "template: log-tag:1: unclosed action".to_string())?;
        out.push_str(&action(f, after[..j].trim())?);
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Check a template without facts (at create).
pub fn check(template: &str) -> Result<(), String> {
    expand(template, &Facts::default()).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_errors() {
        let f = Facts {
            id: "0123456789abcdef0123".into(),
            name: "/web".into(),
            image_id: "sha256:aabbccddeeff00112233".into(),
            image_name: "busybox".into(),
            command: "sh -c x".into(),
            hostname: "vm".into(),
        };
        assert_eq!(expand(DEFAULT, &f).unwrap(), "0123456789ab");
        assert_eq!(
            expand(
                "{{.Name}}/{{.ImageName}}/{{ .ImageID }}@{{.DaemonName}}",
                &f
            )
            .unwrap(),
            "web/busybox/aabbccddeeff@docker"
        );
        assert_eq!(expand("{{.Name | upper}}", &f).unwrap(), "WEB");
        assert!(expand("{{.Foo}}", &f)
            .unwrap_err()
            .contains("can't evaluate field Foo"));
        assert!(expand("{{.Name", &f).is_err());
        assert_eq!(expand("plain", &f).unwrap(), "plain");
    }
}
