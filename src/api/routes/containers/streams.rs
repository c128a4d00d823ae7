//! Streams: logs (through LogStream actors), attach, resize.

use berth_actors::container::{AttachStreams, AttachTicket, ContainerMsg, Containers};
use hyper::header::HeaderValue;
use hyper::Response;
use tokio::io::AsyncWriteExt;

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::hijack::{self, InputEnd};
use crate::api::router::{HandlerFuture, Req};
use crate::containers::logs::LogOptions;

use crate::api::shared::*;

fn ts(r: &Req, k: &str) -> Result<Option<i64>, ApiError> {
    match r.query.get(k) {
        None | Some("") | Some("0") => Ok(None),
        Some(v) => parse_timestamp(v)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(format!("invalid value for {k}: {v}"))),
    }
}

pub fn logs(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let (stdout, stderr) = (r.query.bool("stdout"), r.query.bool("stderr"));
        if !stdout && !stderr {
            return Err(ApiError::invalid(
                "Bad parameters: you must choose at least one stream",
            ));
        }
        // dockerd: 501 for a driver that keeps nothing to read (`none`, a
        // remote driver with `cache-disabled`).
        let Some(path) = rec.log_read_path() else {
            return Err(ApiError::new(
                berth_actors::ErrorKind::NotImplemented,
                "configured logging driver does not support reading",
            ));
        };
        let tail = match r.query.get("tail") {
            None | Some("") | Some("all") => None,
            Some(t) => Some(
                t.parse::<usize>()
                    .map_err(|_| ApiError::invalid(format!("invalid value for tail: {t}")))?,
            ),
        };
        let o = LogOptions {
            stdout,
            stderr,
            since: ts(&r, "since")?,
            until: ts(&r, "until")?,
            timestamps: r.query.bool("timestamps"),
            tail,
            follow: r.query.bool("follow"),
            raw: rec.tty(),
        };
        let rx = berth_actors::logs::open_stream(&rec.id, &path, o)
            .await
            .map_err(|e| ApiError::new(berth_actors::ErrorKind::Unavailable, e))?;
        let mut resp = Response::new(body::channel(rx));
        // As dockerd: the multiplexed type from API 1.42 on.
        let ct = if rec.tty() || r.version < crate::api::version::ApiVersion(1, 42) {
            hijack::RAW_STREAM
        } else {
            hijack::MULTIPLEXED_STREAM
        };
        resp.headers_mut()
            .insert("Content-Type", HeaderValue::from_static(ct));
        Ok(resp)
    })
}

pub fn attach(mut r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let hijack = hijack::on_upgrade(&mut r.incoming)?;
        let content_type = hijack.content_type(rec.tty(), r.version);
        let plain = hijack.plain;
        let upgrade = hijack.upgrade;
        let keys = hijack::parse_detach_keys(r.query.get("detachKeys").unwrap_or(""))?;
        // Detach keys apply to a TTY only, as dockerd: other input is copied
        // as is (binary stdin may hold ctrl-p ctrl-q).
        let keys = if rec.tty() { keys } else { Vec::new() };
        let (want_in, want_out, want_err) = (
            r.query.bool("stdin"),
            r.query.bool("stdout"),
            r.query.bool("stderr"),
        );
        let stream = r.query.bool("stream");
        let logs_too = r.query.bool("logs");
        // The actor decides (and connects the stdio now, or at the start).
        let streams = AttachStreams {
            stdin: want_in,
            stdout: want_out,
            stderr: want_err,
        };
        let ticket =
            Containers::ask_again(&rec.id, |reply| ContainerMsg::Attach { streams, reply })
                .await
                .map_err(err)?;
        let tty = rec.tty();
        let stdin_once = rec.config.stdin_once && !rec.tty();
        let events = r.ctx.events.clone();
        let attrs = rec.event_attrs();
        let id = rec.id.clone();
        let log_path = rec.log_read_path();
        let shutdown = r.ctx.shutdown.clone();
        tokio::spawn(async move {
            let Some(mut client) = hijack::upgraded(upgrade).await else {
                return;
            };
            events.publish("container", "attach", &id, attrs);
            if let (true, Some(log_path)) = (logs_too, log_path.as_deref()) {
                let o = LogOptions {
                    stdout: want_out,
                    stderr: want_err,
                    raw: tty,
                    ..Default::default()
                };
                let Ok(mut rx) = berth_actors::logs::open_stream(&id, log_path, o).await else {
                    let _ = client.shutdown().await;
                    return;
                };
                while let Some(b) = rx.recv().await {
                    if client.write_all(&b).await.is_err() {
                        return;
                    }
                }
            }
            if !stream {
                let _ = client.shutdown().await;
                return;
            }
            let stdio = match ticket {
                AttachTicket::Now(s) => Ok(s),
                AttachTicket::AtStart(rx) => rx
                    .await
                    .unwrap_or(Err(berth_actors::container::ContainerError::Unavailable)),
            };
            let Ok(mut stdio) = stdio else {
                let _ = client.shutdown().await;
                return;
            };
            let (client_r, mut client_w) = tokio::io::split(client);
            let mut stdin = stdio.input;
            let input = async move {
                if !want_in {
                    std::future::pending::<()>().await;
                }
                match hijack::pump_stdin(client_r, &mut stdin, keys).await {
                    InputEnd::Eof if stdin_once => {
                        let _ = stdin.close().await;
                        std::future::pending::<()>().await;
                    }
                    InputEnd::Eof => std::future::pending::<()>().await,
                    _ => {}
                }
            };
            let output = hijack::pump_output(&mut stdio.output, &mut client_w, tty);
            tokio::select! {
                _ = output => {}
                _ = input => {}
                _ = shutdown.cancelled() => {}
            }
            let _ = client_w.shutdown().await;
        });
        Ok(hijack::switching(content_type, plain))
    })
}

pub fn resize(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let rec = find(&r)?;
        let (width, height) = dims(&r)?;
        Containers::ask_again(&rec.id, |reply| ContainerMsg::Resize {
            exec_id: None,
            width,
            height,
            reply,
        })
        .await
        .map_err(err)?;
        Ok(Response::new(body::empty()))
    })
}
