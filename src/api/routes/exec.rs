//! `/containers/{id}/exec` and `/exec/*`: processes run in a container
//! through its shim.

use std::sync::Arc;

use berth_actors::container::stdio::{ExitStatus, Stdio};
use berth_actors::container::{ContainerError, ContainerMsg, Containers};
use berth_actors::exec::ExecRecord;
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::hijack::{self, InputEnd};
use crate::api::router::{ok_json, HandlerFuture, Req};
use crate::api::shared::*;
use crate::api::ApiContext;
use crate::containers::exec;

fn no_such_exec(id: &str) -> ApiError {
    ApiError::not_found(format!("No such exec instance: {id}"))
}

pub fn create(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let body = r.json_of(&crate::api::schema::EXEC_CREATE)?;
        let record = exec::new_record(&rec, &body).map_err(err)?;
        let id = r
            .ctx
            .containers
            .execs
            .create(record)
            .await
            .map_err(|e| ApiError::from_err(&e))?;
        let cmd = body["Cmd"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let mut attrs = rec.event_attrs();
        attrs.insert("execID".into(), id.clone());
        r.ctx
            .events
            .publish("container", &format!("exec_create: {cmd}"), &rec.id, attrs);
        Ok(body::json(StatusCode::CREATED, &json!({"Id": id})))
    })
}

pub fn inspect(r: Req) -> HandlerFuture {
    Box::pin(async move {
        // Answered by the exec's actor.
        let e = r
            .ctx
            .containers
            .execs
            .inspect(r.param("id"))
            .await
            .map_err(|e| ApiError::from_err(&e))?;
        ok_json(&e.inspect())
    })
}

pub fn resize(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let id = r.param("id").to_string();
        let e = r
            .ctx
            .containers
            .execs
            .table
            .get(&id)
            .ok_or_else(|| no_such_exec(&id))?;
        let (width, height) = dims(&r)?;
        Containers::ask(&e.container_id, |reply| ContainerMsg::Resize {
            exec_id: Some(id),
            width,
            height,
            reply,
        })
        .await
        .map_err(err)?;
        Ok(hyper::Response::new(body::empty()))
    })
}

fn exit_code_for(msg: &str) -> i32 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else {
        126
    }
}

/// Grant the exec's start (its actor) and start its process (the
/// container's actor): its record and stdio. A process the runtime or the
/// exec's settings refused has ended: its exit code is recorded.
async fn launch(
    ctx: &Arc<ApiContext>,
    id: &str,
    detach: bool,
) -> Result<(ExecRecord, Stdio), ApiError> {
    let e = ctx
        .containers
        .execs
        .start(id)
        .await
        .map_err(|e| ApiError::from_err(&e))?;
    let want_in = e.attach_stdin && !detach;
    // The container's actor decides (it runs?) and hands out the stdio.
    // Made again if the actor dies with it: its handler has no await
    // before the start's own task takes the answer, so a lost request was
    // never acted on.
    let stdio = Containers::ask_again(&e.container_id, |reply| ContainerMsg::ExecStart {
        exec: Box::new(e.clone()),
        stdin: want_in,
        reply,
    })
    .await;
    match stdio {
        Ok(s) => Ok((e, s)),
        Err(er) => {
            let code = match &er {
                ContainerError::Runtime(m) | ContainerError::System(m)
                    if m.starts_with("OCI runtime exec failed") =>
                {
                    Some(exit_code_for(m))
                }
                // The exec's settings (user, working directory) refused.
                ContainerError::Invalid(_) => Some(126),
                // Not started as far as berthd knows (the container's actor
                // stopped with the request): the exec failed, as one the
                // runtime refused.
                ContainerError::Unavailable | ContainerError::Timeout(_) => Some(126),
                _ => None,
            };
            if let Some(code) = code {
                let _ = ctx.containers.execs.exited(id, code).await;
            }
            Err(err(er))
        }
    }
}

/// A started exec: recorded as running, `exec_start` published; `finish`
/// records its exit and publishes `exec_die`.
struct Started {
    ctx: Arc<ApiContext>,
    id: String,
    container: String,
    attrs: std::collections::BTreeMap<String, String>,
}

impl Started {
    async fn begin(ctx: &Arc<ApiContext>, id: &str, e: &ExecRecord, pid: i32) -> Self {
        let _ = ctx.containers.execs.running(id, pid).await;
        let mut attrs = ctx
            .containers
            .containers
            .lookup(&e.container_id)
            .map(|rec| rec.event_attrs())
            .unwrap_or_default();
        attrs.insert("execID".into(), id.to_string());
        let cmd = e.cmd.join(" ");
        ctx.events.publish(
            "container",
            &format!("exec_start: {cmd}"),
            &e.container_id,
            attrs.clone(),
        );
        Started {
            ctx: ctx.clone(),
            id: id.to_string(),
            container: e.container_id.clone(),
            attrs,
        }
    }

    /// Record the exit (before the client sees the stream end: the CLI
    /// inspects the exec for its code right after).
    async fn finish(mut self, exit: Option<ExitStatus>) {
        let code = exit.map(|x| x.code).unwrap_or(-1);
        // Retried while the exec's actor is being restarted.
        if let Err(e) = self.ctx.containers.execs.exited(&self.id, code).await {
            tracing::warn!(exec = %self.id, "recording the exit: {e}");
        }
        self.attrs.insert("exitCode".into(), code.to_string());
        self.ctx
            .events
            .publish("container", "exec_die", &self.container, self.attrs);
    }
}

pub fn start(mut r: Req) -> HandlerFuture {
    Box::pin(async move {
        let id = r.param("id").to_string();
        let Some(rec) = r.ctx.containers.execs.table.get(&id) else {
            return Err(no_such_exec(&id));
        };
        let body: Value = {
            let b = r.body.clone();
            if b.is_empty() {
                json!({})
            } else {
                let mut v = serde_json::from_slice(&b)
                    .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
                crate::api::schema::check(&mut v, &crate::api::schema::EXEC_START)
                    .map_err(ApiError::invalid)?;
                v
            }
        };
        let detach = body["Detach"].as_bool().unwrap_or(false);
        let tty = rec.tty;
        // Detach keys apply to a TTY only (dockerd copies other input as is:
        // binary stdin may hold ctrl-p ctrl-q).
        let keys = hijack::parse_detach_keys(&rec.detach_keys)?;
        let keys = if tty { keys } else { Vec::new() };
        let ctx = r.ctx.clone();
        if detach {
            let (e, mut stdio) = launch(&ctx, &id, true).await?;
            let started = Started::begin(&ctx, &id, &e, stdio.pid.unwrap_or(0)).await;
            // Follow the output to its end for the exit code.
            tokio::spawn(async move { started.finish(stdio.output.exit().await).await });
            return Ok(hyper::Response::new(body::empty()));
        }
        let hijack = hijack::on_upgrade(&mut r.incoming)?;
        let content_type = hijack.content_type(tty, r.version);
        let plain = hijack.plain;
        let upgrade = hijack.upgrade;
        tokio::spawn(async move {
            // As dockerd: the connection is taken over first and the
            // process started after the answer's head is out, so no output
            // shares a read with the head (the Python SDK reads the head
            // through a buffer and then takes the raw socket: bytes in that
            // buffer would be lost). A process that cannot start is written
            // into the stream (the CLI prints it and reads the exit code).
            let Some(mut client) = hijack::upgraded(upgrade).await else {
                return;
            };
            let (e, mut stdio) = match launch(&ctx, &id, false).await {
                Ok(l) => l,
                Err(er) => {
                    let text = format!("{}\r\n", er.message);
                    let _ = client
                        .write_all(&hijack::frame(1, text.as_bytes(), tty))
                        .await;
                    let _ = client.shutdown().await;
                    return;
                }
            };
            let started = Started::begin(&ctx, &id, &e, stdio.pid.unwrap_or(0)).await;
            let want_in = e.attach_stdin;
            let (client_r, mut client_w) = tokio::io::split(client);
            let mut stdin = stdio.input;
            let input = async move {
                if !want_in {
                    std::future::pending::<()>().await;
                }
                if matches!(
                    hijack::pump_stdin(client_r, &mut stdin, keys).await,
                    InputEnd::Eof
                ) {
                    let _ = stdin.close().await;
                    std::future::pending::<()>().await;
                }
            };
            let output = hijack::pump_output(&mut stdio.output, &mut client_w, tty);
            let exit = tokio::select! {
                x = output => x,
                _ = input => None,
            };
            match exit {
                Some(x) => {
                    started.finish(Some(x)).await;
                    let _ = client_w.shutdown().await;
                }
                None => {
                    // The client left: the exec still runs; follow it.
                    let _ = client_w.shutdown().await;
                    started.finish(stdio.output.exit().await).await;
                }
            }
        });
        Ok(hijack::switching(content_type, plain))
    })
}
