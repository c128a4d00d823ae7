//! The FrontDoor actor: serves every bound listener with hyper (HTTP/1.1
//! with upgrades). Its accept loops belong to its state, so a killed
//! FrontDoor stops accepting and its restart accepts again on the same
//! sockets. Connections are tracked outside the actor (in the context) so
//! shutdown can drain them.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, warn};

use super::conns::Slot;
use super::{router, ApiContext};
use crate::sys::listeners::{Bound, BoundListener};
use crate::task::AbortOnDrop;

pub struct FrontDoor;

pub struct FrontDoorArgs {
    pub ctx: Arc<ApiContext>,
    pub listeners: Arc<Vec<BoundListener>>,
}

pub enum FrontDoorMsg {
    /// Stop accepting new connections (shutdown); answers when done.
    StopAccepting(RpcReplyPort<()>),
}

pub struct FrontDoorState {
    accept_loops: Vec<AbortOnDrop>,
}

impl Actor for FrontDoor {
    type Msg = FrontDoorMsg;
    type State = FrontDoorState;
    type Arguments = FrontDoorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: FrontDoorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut accept_loops = Vec::new();
        for l in args.listeners.iter() {
            let ctx = args.ctx.clone();
            let handle = match &l.socket {
                Bound::Unix { listener, .. } => {
                    let std = listener.try_clone()?;
                    std.set_nonblocking(true)?;
                    let tl = tokio::net::UnixListener::from_std(std)?;
                    tokio::spawn(async move {
                        loop {
                            match tl.accept().await {
                                Ok((s, _)) => spawn_conn(&ctx, s),
                                Err(e) => accept_error(e).await,
                            }
                        }
                    })
                }
                Bound::Tcp { listener, tls } => {
                    let std = listener.try_clone()?;
                    std.set_nonblocking(true)?;
                    let tl = tokio::net::TcpListener::from_std(std)?;
                    let acceptor = tls.clone().map(tokio_rustls::TlsAcceptor::from);
                    tokio::spawn(async move {
                        loop {
                            match tl.accept().await {
                                Ok((s, peer)) => {
                                    let _ = s.set_nodelay(true);
                                    match &acceptor {
                                        None => spawn_conn(&ctx, s),
                                        Some(acc) => {
                                            let Some(slot) = ctx.conns.admit() else {
                                                continue;
                                            };
                                            let acc = acc.clone();
                                            let ctx2 = ctx.clone();
                                            ctx.connections.spawn(async move {
                                                match tokio::time::timeout(
                                                    Duration::from_secs(10),
                                                    acc.accept(s),
                                                )
                                                .await
                                                {
                                                    Ok(Ok(tls)) => {
                                                        let peer =
                                                            super::authz::Peer::from_certificates(
                                                                tls.get_ref().1.peer_certificates(),
                                                            );
                                                        serve(tls, ctx2, peer, slot).await
                                                    }
                                                    Ok(Err(e)) => {
                                                        debug!(%peer, "TLS handshake refused: {e}")
                                                    }
                                                    Err(_) => {
                                                        debug!(%peer, "TLS handshake timed out")
                                                    }
                                                }
                                            });
                                        }
                                    }
                                }
                                Err(e) => accept_error(e).await,
                            }
                        }
                    })
                }
            };
            accept_loops.push(AbortOnDrop(handle));
        }
        Ok(FrontDoorState { accept_loops })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            FrontDoorMsg::StopAccepting(reply) => {
                state.accept_loops.clear();
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

async fn accept_error(e: std::io::Error) {
    // EMFILE and friends: back off instead of spinning.
    warn!("accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

fn spawn_conn<IO>(ctx: &Arc<ApiContext>, io: IO)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Past the cap the connection is closed at once (dropped).
    let Some(slot) = ctx.conns.admit() else {
        return;
    };
    let ctx2 = ctx.clone();
    ctx.connections
        .spawn(serve(io, ctx2, super::authz::Peer::default(), slot));
}

/// Serve one connection until it closes, its slot is taken back (an idle
/// connection closed at the cap) or berthd shuts down (then finish the
/// request in flight and close).
async fn serve<IO>(io: IO, ctx: Arc<ApiContext>, peer: super::authz::Peer, slot: Slot)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = ctx.shutdown.clone();
    let evicted = slot.conn.close.clone();
    let stall = ctx.conns.stall();
    let peer = Arc::new(peer);
    let conn_state = slot.conn.clone();
    let svc = service_fn(move |req| {
        let ctx = ctx.clone();
        let peer = peer.clone();
        // Busy until the response body is sent (or dropped).
        let busy = conn_state.busy();
        async move {
            let resp = router::handle(ctx, req, peer).await;
            Ok::<_, Infallible>(resp.map(|b| {
                b.map_frame(move |f| {
                    let _ = &busy;
                    f
                })
                .boxed_unsync()
            }))
        }
    });
    // Header names as Go's net/http writes them (`Api-Version`, `Ostype`,
    // `X-Docker-Container-Path-Stat`): scripts match them by case.
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .title_case_headers(true)
        .serve_connection(
            TokioIo::new(super::target::Lenient::new(super::conns::Stalling::new(
                io, stall,
            ))),
            svc,
        )
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                debug!("connection ended: {e}");
            }
        }
        _ = evicted.cancelled() => {
            debug!("closing an idle connection: too many client connections");
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
    drop(slot);
}
