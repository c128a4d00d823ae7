//! `/containers/{id}/exec` and `/exec/*`: processes run in a container
//! through its shim.

use berth_actors::container::{ContainerError, Status};
use berth_actors::protocol::shim::{frames, Request};
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::hijack::{self, InputEnd};
use crate::api::router::{ok_json, HandlerFuture, Req};
use crate::api::shared::*;
use crate::containers::exec;
use crate::containers::host;

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
        let (w, h) = dims(&r)?;
        let sock = r.ctx.containers.host.socket(&e.container_id);
        host::connect(
            &sock,
            &Request::Resize {
                exec_id: Some(id),
                width: w,
                height: h,
            },
        )
        .await
        .map_err(|e| ApiError::system(e.to_string()))?;
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
        // The exec's actor grants the start once.
        let e = r
            .ctx
            .containers
            .execs
            .start(&id)
            .await
            .map_err(|e| ApiError::from_err(&e))?;
        let rec = r
            .ctx
            .containers
            .containers
            .lookup(&e.container_id)
            .map_err(err)?;
        if rec.state.status != Status::Running {
            return Err(err(ContainerError::Conflict(format!(
                "Container {} is not running",
                rec.id
            ))));
        }
        let bundle = r
            .ctx
            .containers
            .host
            .bundle_config(&rec.id)
            .ok_or_else(|| ApiError::system("the container's spec is missing"))?;
        let process = exec::process(&bundle, &e, rec.config["User"].as_str().unwrap_or(""))
            .map_err(ApiError::invalid)?;
        let upgrade = if detach {
            None
        } else {
            Some(hijack::on_upgrade(&mut r.incoming)?)
        };
        let sock = r.ctx.containers.host.socket(&rec.id);
        let want_in = e.attach_stdin && !detach;
        let req = Request::Exec {
            exec_id: id.clone(),
            process,
            tty: e.tty,
            stdin: want_in,
        };
        let (resp, shim) = match host::connect(&sock, &req).await {
            Ok(x) => x,
            Err(er) => {
                let msg = format!("OCI runtime exec failed: {er}: unknown");
                let _ = r
                    .ctx
                    .containers
                    .execs
                    .exited(&id, exit_code_for(&msg))
                    .await;
                let kind = if exit_code_for(&msg) == 127 {
                    berth_actors::ErrorKind::InvalidParameter
                } else {
                    berth_actors::ErrorKind::System
                };
                return Err(ApiError::new(kind, msg));
            }
        };
        let pid = resp.pid.unwrap_or(0);
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
            let (shim_r, shim_w) = host::split(shim);
            let mut shim_r = tokio::io::BufReader::new(shim_r);
            // Record the exit before the client sees the stream end: the
            // CLI inspects the exec for its code right after.
            let finish = |exit: Option<berth_actors::protocol::shim::ExitStatus>| async move {
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
                    let mut sink = tokio::io::sink();
                    finish(hijack::pump_output(&mut shim_r, &mut sink, true).await).await;
                }
                Some(u) => {
                    let Some(client) = hijack::upgraded(u).await else {
                        return;
                    };
                    let (client_r, mut client_w) = tokio::io::split(client);
                    let input = async move {
                        if !want_in {
                            std::future::pending::<()>().await;
                        }
                        let (end, mut w) = hijack::pump_stdin(client_r, shim_w, keys).await;
                        if matches!(end, InputEnd::Eof) {
                            let _ = hijack::write_frame(&mut w, frames::CLOSE_STDIN, &[]).await;
                            std::future::pending::<()>().await;
                        }
                    };
                    let output = hijack::pump_output(&mut shim_r, &mut client_w, tty);
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
                            finish(
                                hijack::pump_output(&mut shim_r, &mut tokio::io::sink(), true)
                                    .await,
                            )
                            .await;
                        }
                    }
                }
            }
        });
        if detach {
            return Ok(hyper::Response::new(body::empty()));
        }
        Ok(hijack::switching(if tty {
            hijack::RAW_STREAM
        } else {
            hijack::MULTIPLEXED_STREAM
        }))
    })
}
