//! `RUN`: the command as a real container made through the same path as
//! `docker run` (ContainerService create, the ContainerActor's attach and
//! start, its shim and the runtime), its output streamed to the client as
//! it comes (stderr in red, as dockerd's builder shows it), its exit code
//! read from the container's record once the actor saved it.

use berth_actors::container::stdio::Output;
use berth_actors::container::WaitCondition;
use berth_actors::container::{AttachStreams, AttachTicket, ContainerMsg, Containers};
use serde_json::{json, Map, Value};

use super::progress::Progress;
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
