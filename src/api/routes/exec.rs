//! `/containers/{id}/exec` and `/exec/*`: processes run in a container
//! through its shim.

use berth_actors::container::{ContainerError, ContainerMsg, Containers};
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::hijack::{self, InputEnd};
use crate::api::router::{ok_json, HandlerFuture, Req};
use crate::api::shared::*;
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
    r: &Req,
    id: &str,
    detach: bool,
) -> Result<
    (
        berth_actors::exec::ExecRecord,
        berth_actors::container::stdio::Stdio,
    ),
    ApiError,
> {
    let e = r
        .ctx
        .containers
        .execs
        .start(id)
        .await
        .map_err(|e| ApiError::from_err(&e))?;
    let want_in = e.attach_stdin && !detach;
    // The container's actor decides (it runs?) and hands out the stdio.
    let stdio = Containers::ask(&e.container_id, |reply| ContainerMsg::ExecStart {
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
                _ => None,
            };
            if let Some(code) = code {
                let _ = r.ctx.containers.execs.exited(id, code).await;
            }
            Err(err(er))
        }
    }
}

pub fn start(mut r: Req) -> HandlerFuture {
    Box::pin(async move {
        let id = r.param("id").to_string();
        if r.ctx.containers.execs.table.get(&id).is_none() {
            return Err(no_such_exec(&id));
        }
        let body: Value = {
            let b = read_body(&mut r).await?;
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
        let tty = r.ctx.containers.execs.table.get(&id).is_some_and(|e| e.tty);
        // As dockerd: the connection is taken over first; a failure to
        // start the process is then written into the stream (the CLI prints
        // it and reads the exec's exit code: 126, 127 when not found).
        let hijack = if detach {
            None
        } else {
            Some(hijack::on_upgrade(&mut r.incoming)?)
        };
        let content_type = hijack
            .as_ref()
            .map(|h| h.content_type(tty, r.version))
            .unwrap_or(hijack::RAW_STREAM);
        let plain = hijack.as_ref().is_some_and(|h| h.plain);
        let upgrade = hijack.map(|h| h.upgrade);
        let (e, mut stdio) = match launch(&r, &id, detach).await {
            Ok(l) => l,
            Err(er) => {
                let Some(u) = upgrade else {
                    return Err(er);
                };
                tokio::spawn(async move {
                    let Some(mut client) = hijack::upgraded(u).await else {
                        return;
                    };
                    let text = format!("{}\r\n", er.message);
                    let _ = client
                        .write_all(&hijack::frame(1, text.as_bytes(), tty))
                        .await;
                    let _ = client.shutdown().await;
                });
                return Ok(hijack::switching(content_type, plain));
            }
        };
        let rec = r
            .ctx
            .containers
            .containers
            .lookup(&e.container_id)
            .map_err(err)?;
        let want_in = e.attach_stdin && !detach;
        let pid = stdio.pid.unwrap_or(0);
        let _ = r.ctx.containers.execs.running(&id, pid).await;
        let mut attrs = rec.event_attrs();
        attrs.insert("execID".into(), id.clone());
        let cmd = e.cmd.join(" ");
        r.ctx.events.publish(
            "container",
            &format!("exec_start: {cmd}"),
            &rec.id,
            attrs.clone(),
        );
        // Detach keys apply to a TTY only (dockerd copies other input as is:
        // binary stdin may hold ctrl-p ctrl-q).
        let keys = hijack::parse_detach_keys(&e.detach_keys)?;
        let keys = if e.tty { keys } else { Vec::new() };
        let ctx = r.ctx.clone();
        let cid = rec.id.clone();
        let tty = e.tty;
        tokio::spawn(async move {
            // Record the exit before the client sees the stream end: the
            // CLI inspects the exec for its code right after.
            let finish = |exit: Option<berth_actors::container::stdio::ExitStatus>| async move {
                let code = exit.map(|x| x.code).unwrap_or(-1);
                // Retried while the exec's actor is being restarted.
                if let Err(e) = ctx.containers.execs.exited(&id, code).await {
                    tracing::warn!(exec = %id, "recording the exit: {e}");
                }
                attrs.insert("exitCode".into(), code.to_string());
                ctx.events.publish("container", "exec_die", &cid, attrs);
            };
            match upgrade {
                None => {
                    // Detached: follow the output to its end for the exit code.
                    finish(stdio.output.exit().await).await;
                }
                Some(u) => {
                    let Some(client) = hijack::upgraded(u).await else {
                        return;
                    };
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
                            finish(Some(x)).await;
                            let _ = client_w.shutdown().await;
                        }
                        None => {
                            // The client left: the exec still runs; follow it.
                            let _ = client_w.shutdown().await;
                            finish(stdio.output.exit().await).await;
                        }
                    }
                }
            }
        });
        if detach {
            return Ok(hyper::Response::new(body::empty()));
        }
        Ok(hijack::switching(content_type, plain))
    })
}
