//! The instructions that change the stage's config (`ENV`, `LABEL`,
//! `ARG`, `CMD`, `ENTRYPOINT`, `SHELL`, `EXPOSE`, `VOLUME`, `USER`,
//! `STOPSIGNAL`, `MAINTAINER`, `ONBUILD`, `HEALTHCHECK`, `WORKDIR`) and
//! the dispatch of every instruction to its step.

use berth_actors::container::fs::{FsView, FsWant};
use berth_actors::container::{ContainerMsg, Containers};
use serde_json::{json, Value};

use super::dockerfile::{Command, Health, Instruction};
use super::session::{clean_abs, duration, go_list, Session, Stage};
use super::BuildError;

impl Session<'_> {
    /// `WORKDIR`'s directory made in container `id`'s root filesystem,
    /// then its changes committed.
    async fn workdir_in(
        &mut self,
        st: &Stage,
        id: &str,
        dir: &str,
        probe: &Value,
    ) -> Result<std::sync::Arc<berth_actors::image::ImageInfo>, BuildError> {
        let view = Containers::ask(id, |reply| ContainerMsg::Filesystem {
            want: FsWant::Rootfs,
            reply,
        })
        .await?;
        let FsView::Rootfs { rootfs, lease } = view else {
            return Err(BuildError::Invalid(
                "not the container's root filesystem".into(),
            ));
        };
        let d = dir.to_string();
        tokio::task::spawn_blocking(move || {
            let r = super::context::root_fd(&rootfs)
                .map_err(BuildError::from)
                .and_then(|fd| super::copy::ensure_dir(&fd, &d, (0, 0)));
            drop(lease);
            r
        })
        .await
        .map_err(|e| BuildError::Io(std::io::Error::other(e.to_string())))??;
        let image_layer = self
            .b
            .containers
            .containers
            .lookup(id)
            .ok()
            .and_then(|r| r.image_layer.clone());
        let layer = self.b.images.container_layer(id, image_layer).await?;
        self.commit(st, probe, id, Some(layer), None).await
    }

    pub(super) async fn dispatch(
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
                // As dockerd: the directory is made in the step's
                // container (a layer of its own over `scratch`).
                let cmd = Self::nop_one(st, &format!("WORKDIR {dir}"));
                let Some(id) = self.intermediate(st, &cmd).await? else {
                    let d = dir.clone();
                    let layer = self
                        .layer_step(st, move |root| {
                            let fd = super::context::root_fd(root)?;
                            super::copy::ensure_dir(&fd, &d, (0, 0))
                        })
                        .await?;
                    let img = self.commit(st, &probe, "", Some(layer), None).await;
                    return self.step_done(st, None, img).await;
                };
                let img = self.workdir_in(st, &id, &dir, &probe).await;
                self.step_done(st, Some(&id), img).await
            }
            Instruction::Run(c) => self.run_step(st, c).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_ports_and_owners() {
        assert_eq!(expose_ports("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(expose_ports("53-54/udp").unwrap(), vec!["53/udp", "54/udp"]);
        assert!(expose_ports("x").is_err());
        assert_eq!(go_list(&["a".into(), "b c".into()]), "[\"a\" \"b c\"]");
    }
}
