//! `RUN`: the command as a real container made through the same path as
//! `docker run` (ContainerService create, the ContainerActor's attach and
//! start, its shim and the runtime), its output streamed to the client as
//! it comes (stderr in red, as dockerd's builder shows it), its exit code
//! read from the container's record once the actor saved it.

use berth_actors::container::stdio::Output;
use berth_actors::container::WaitCondition;
use berth_actors::container::{AttachStreams, AttachTicket, ContainerMsg, Containers};

use super::dockerfile::Command;
use serde_json::{json, Map, Value};

use super::progress::{short, Progress};
use super::session::{Session, Stage, BUILTIN_ARGS};
use super::BuildError;
use crate::containers::ContainerService;

/// The container of a `RUN` step: the stage's config with the command,
/// no entrypoint (dockerd resets it for `RUN`), the build args in its
/// environment and the request's host settings.
pub fn container_body(
    image: &str,
    config: &Value,
    cmd: &[String],
    env: &[String],
    host: &Map<String, Value>,
) -> Value {
    let mut c = config.as_object().cloned().unwrap_or_default();
    c.insert("Image".into(), json!(image));
    c.insert("Cmd".into(), json!(cmd));
    c.insert("Entrypoint".into(), json!([""]));
    c.insert("Env".into(), json!(env));
    c.insert("AttachStdout".into(), json!(true));
    c.insert("AttachStderr".into(), json!(true));
    c.remove("Healthcheck");
    c.remove("OnBuild");
    c.remove("Hostname");
    let mut hc = host.clone();
    hc.insert("AutoRemove".into(), json!(false));
    c.insert("HostConfig".into(), Value::Object(hc));
    Value::Object(c)
}

/// Run the created container `id` to its end, its output to `progress`;
/// its exit code. A client that goes away kills it.
pub async fn run(
    containers: &ContainerService,
    id: &str,
    progress: &mut Progress,
) -> Result<i64, BuildError> {
    let ticket = Containers::ask(id, |reply| ContainerMsg::Attach {
        streams: AttachStreams {
            stdin: false,
            stdout: true,
            stderr: true,
        },
        reply,
    })
    .await?;
    let later = match ticket {
        AttachTicket::AtStart(rx) => rx,
        AttachTicket::Now(_) => {
            return Err(BuildError::Invalid(format!(
                "the build's container {id} is already running"
            )))
        }
    };
    Containers::ask(id, ContainerMsg::Start).await?;
    let mut stdio = later
        .await
        .map_err(|_| BuildError::Invalid("the build's container did not start".into()))??;
    loop {
        let next = tokio::select! {
            n = stdio.output.next() => n,
            _ = progress.closed() => {
                kill(id).await;
                return Err(BuildError::Cancelled);
            }
        };
        let sent = match next {
            Some(Output::Stdout(b)) => progress.stream(String::from_utf8_lossy(&b)).await,
            Some(Output::Stderr(b)) => {
                progress
                    .stream(format!(
                        "\u{1b}[91m{}\u{1b}[0m",
                        String::from_utf8_lossy(&b)
                    ))
                    .await
            }
            Some(Output::Exit(_)) | None => break,
        };
        if let Err(e) = sent {
            kill(id).await;
            return Err(e);
        }
    }
    // The code the actor recorded (it also saw the exit).
    let out = containers
        .containers
        .wait(id, WaitCondition::NotRunning)
        .await;
    match out.error {
        Some(e) if out.status_code == 0 => Err(BuildError::Invalid(e)),
        _ => Ok(out.status_code),
    }
}

async fn kill(id: &str) {
    let _ = Containers::ask(id, |reply| ContainerMsg::Kill {
        signal: "KILL".into(),
        reply,
    })
    .await;
}

/// Remove a build's container (and its anonymous volumes).
pub async fn remove(id: &str) -> Result<(), BuildError> {
    Containers::ask(id, |reply| ContainerMsg::Remove {
        force: true,
        volumes: true,
        reply,
    })
    .await?;
    Ok(())
}

impl Session<'_> {
    pub(super) async fn run_step(&mut self, st: &mut Stage, c: &Command) -> Result<(), BuildError> {
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
        let body = container_body(
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
        let code = match run(&self.b.containers, &id, self.p).await {
            Ok(c) => c,
            Err(e) => {
                // Gone client or a start that failed: the container goes.
                let _ = remove(&id).await;
                return Err(e);
            }
        };
        if code != 0 {
            if self.opts.forcerm {
                let _ = remove(&id).await;
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
        self.step_done(st, Some(&id), img).await
    }
}
