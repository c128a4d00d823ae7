//! LogStream actors: one per `docker logs` request (follow or not) and per
//! attach with `logs=1`, under the LogSupervisor (registered
//! `log-streams`).
//!
//! A stream's facts live in its [`LogSession`], which outlives the actor:
//! what the client asked for, the sending side of the channel the HTTP
//! body reads (owned by the connection), and the position in the log
//! files of the last entry handed to that channel. The actor reads the
//! shim's log files through the [`LogFiles`] port one chunk at a time; a
//! chunk is handed to the channel and its end position recorded in one
//! step with no await between them, so a killed LogStream is restarted
//! by its supervisor at exactly the position it delivered: the client
//! sees every entry once, in order, with no gap, also across rotation.
//! A restarted LogSupervisor restarts every session still open (they are
//! kept in the shared [`LogSessions`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::container::ContainerIndex;
use crate::supervisor::keyed::{
    spawn_child, KeyedChildren, SpawnFuture, REBUILD_AFTER, REBUILD_WINDOW, RETRY_AFTER,
};

#[cfg(test)]
mod tests;

/// What the client asked for (`GET /containers/{id}/logs` parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    /// Nanoseconds since the epoch; entries before are skipped.
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub timestamps: bool,
    /// The last N entries only (before the first delivery).
    pub tail: Option<usize>,
    pub follow: bool,
    /// Raw output (TTY containers): no stdcopy headers.
    pub raw: bool,
}

/// A position in a container's log files: the file (by inode, which a
/// rotation keeps) and the byte after the last entry delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogPos {
    pub inode: u64,
    pub offset: u64,
}

/// One chunk read from the log: the bytes for the client (stdcopy frames,
/// or raw), the position after them, and whether the reader is at the end
/// of the newest file.
#[derive(Debug, Default)]
pub struct Chunk {
    pub bytes: Bytes,
    pub pos: Option<LogPos>,
    pub at_end: bool,
}

/// A reader of one container's log files from a position.
pub trait LogCursor: Send {
    /// Whole entries past the position (at most a few hundred KiB).
    fn next_chunk(&mut self) -> std::io::Result<Chunk>;
}

/// The host side: the shim's log files.
pub trait LogFiles: Send + Sync + 'static {
    /// A cursor over the log at `path`: at `pos` when a delivery happened
    /// already, else from the start with `opts.tail` applied.
    fn open(
        &self,
        path: &str,
        opts: &LogOptions,
        pos: Option<LogPos>,
    ) -> std::io::Result<Box<dyn LogCursor>>;
}

/// One open log stream.
pub struct LogSession {
    pub id: u64,
    pub container: String,
    pub path: String,
    pub opts: LogOptions,
    /// The channel's sending side while the stream is open: dropped when
    /// it ends, so the body ends.
    tx: Mutex<Option<mpsc::Sender<Bytes>>>,
    /// Last delivered position (None: nothing delivered yet).
    delivered: Mutex<Option<LogPos>>,
    done: AtomicBool,
    /// Incarnations of the session's actor (1 = never restarted).
    pub starts: AtomicU64,
}

impl LogSession {
    pub fn delivered(&self) -> Option<LogPos> {
        *self.delivered.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }

    fn finish(&self) {
        self.done.store(true, Ordering::SeqCst);
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    fn sender(&self) -> Option<mpsc::Sender<Bytes>> {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The open sessions, shared by the LogSupervisor's incarnations.
#[derive(Clone, Default)]
pub struct LogSessions {
    inner: Arc<Mutex<BTreeMap<u64, Arc<LogSession>>>>,
    next: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
}

impl LogSessions {
    /// berthd is shutting down: every stream ends now (its body ends
    /// after what was delivered), and no new one opens.
    pub fn close_all(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for s in self.all() {
            s.finish();
        }
    }

    fn insert(&self, s: Arc<LogSession>) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(s.id, s);
    }

    fn remove(&self, id: u64) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub fn get(&self, id: u64) -> Option<Arc<LogSession>> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<LogSession>> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// The registered name of a session's actor.
pub fn actor_name(container: &str, session: u64) -> String {
    format!("logs:{container}:{session}")
}

pub struct LogSupervisorArgs {
    pub files: Arc<dyn LogFiles>,
    pub index: watch::Receiver<Arc<ContainerIndex>>,
    pub sessions: LogSessions,
}

impl Clone for LogSupervisorArgs {
    fn clone(&self) -> Self {
        LogSupervisorArgs {
            files: self.files.clone(),
            index: self.index.clone(),
            sessions: self.sessions.clone(),
        }
    }
}

pub enum LogSupervisorMsg {
    /// Open a stream; the reply is the receiving side for the HTTP body.
    Open {
        container: String,
        path: String,
        opts: LogOptions,
        reply: ractor::RpcReplyPort<Result<(u64, mpsc::Receiver<Bytes>), String>>,
    },
    /// Start (again) the actor of a session.
    Respawn(u64),
}

pub struct LogSupervisor;

pub struct LogSupervisorState {
    args: LogSupervisorArgs,
    /// One actor per open session (keyed by the session's number).
    children: KeyedChildren,
}

/// Starts of one session before it is ended instead of restarted.
const MAX_STARTS: u64 = 1000;

fn spawn_stream(
    st: &LogSupervisorState,
    myself: &ActorRef<LogSupervisorMsg>,
    s: Arc<LogSession>,
) -> SpawnFuture {
    s.starts.fetch_add(1, Ordering::SeqCst);
    spawn_child(
        actor_name(&s.container, s.id),
        LogStream,
        LogStreamArgs {
            session: s.clone(),
            files: st.args.files.clone(),
            index: st.args.index.clone(),
        },
        myself.get_cell(),
    )
}

impl Actor for LogSupervisor {
    type Msg = LogSupervisorMsg;
    type State = LogSupervisorState;
    type Arguments = LogSupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: LogSupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let st = LogSupervisorState {
            args,
            children: KeyedChildren::with_limit("log stream", MAX_STARTS as usize, REBUILD_WINDOW),
        };
        // A restart of this supervisor: its children died with it; every
        // session still open gets its actor back, at its position.
        for s in st.args.sessions.all() {
            if s.is_done() {
                st.args.sessions.remove(s.id);
                continue;
            }
            // The old incarnation's name may still be registered for a
            // moment: retried through the mailbox.
            myself.send_after(REBUILD_AFTER, move || LogSupervisorMsg::Respawn(s.id));
        }
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            LogSupervisorMsg::Open {
                container,
                path,
                opts,
                reply,
            } => {
                if st.args.sessions.closed.load(Ordering::SeqCst) {
                    let _ = reply.send(Err("berthd is shutting down".into()));
                    return Ok(());
                }
                // Four chunks (of up to 256 KiB) ahead of the client: a
                // client that stops reading holds about a MiB.
                let (tx, rx) = mpsc::channel(4);
                let id = st.args.sessions.next.fetch_add(1, Ordering::SeqCst) + 1;
                let s = Arc::new(LogSession {
                    id,
                    container,
                    path,
                    opts,
                    tx: Mutex::new(Some(tx)),
                    delivered: Mutex::new(None),
                    done: AtomicBool::new(false),
                    starts: AtomicU64::new(0),
                });
                st.args.sessions.insert(s.clone());
                let spawn = spawn_stream(st, &myself, s);
                match st.children.start(&id.to_string(), spawn).await {
                    Ok(()) => {
                        let _ = reply.send(Ok((id, rx)));
                    }
                    Err(e) => {
                        st.args.sessions.remove(id);
                        let _ = reply.send(Err(e));
                    }
                }
            }
            LogSupervisorMsg::Respawn(id) => {
                let live = st.args.sessions.get(id).filter(|s| !s.is_done());
                if live.is_none() {
                    st.args.sessions.remove(id);
                }
                let spawn = live.map(|s| spawn_stream(st, &myself, s));
                let me = myself.clone();
                st.children
                    .rebuild(id.to_string(), spawn, move |_| {
                        me.send_after(RETRY_AFTER, move || LogSupervisorMsg::Respawn(id));
                    })
                    .await;
            }
        }
        Ok(())
    }

    /// A graceful stop (berthd's shutdown) ends every stream; a kill does
    /// not come here, and the next incarnation resumes them.
    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        for s in st.args.sessions.all() {
            s.finish();
            st.args.sessions.remove(s.id);
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let session = |k: &str| {
            k.parse::<u64>()
                .ok()
                .and_then(|id| st.args.sessions.get(id))
        };
        let key = match &evt {
            SupervisionEvent::ActorTerminated(c, ..) | SupervisionEvent::ActorFailed(c, _) => {
                st.children.key_of(&c.get_id())
            }
            _ => None,
        };
        let Some(s) = key.as_deref().and_then(session) else {
            let _ = st.children.exited(&evt, |_| false);
            return Ok(());
        };
        // Killed or failed before the stream ended: back at its position.
        let wanted = !s.is_done() && s.starts.load(Ordering::SeqCst) <= MAX_STARTS;
        match st.children.exited(&evt, |_| wanted) {
            Some(_) => {
                // At once: the facts it serves from are outside it.
                myself.send_message(LogSupervisorMsg::Respawn(s.id))?;
            }
            None if s.is_done() => {
                debug!(session = s.id, "log stream ended");
                st.args.sessions.remove(s.id);
            }
            None => {
                warn!(session = s.id, container = %s.container, "log stream restarted too often; ending it");
                s.finish();
                st.args.sessions.remove(s.id);
            }
        }
        Ok(())
    }
}

/// Open a log stream through the LogSupervisor: the receiving side for
/// the HTTP body.
pub async fn open_stream(
    container: &str,
    path: &str,
    opts: LogOptions,
) -> Result<mpsc::Receiver<Bytes>, String> {
    // A supervisor being restarted is waited for; an Open it lost is made
    // again (a session whose receiver is gone ends by itself).
    let deadline = tokio::time::Instant::now() + crate::supervisor::ask::RESTART_WAIT;
    loop {
        if let Some(sup) = ActorRef::<LogSupervisorMsg>::where_is(crate::directory::LOG_STREAMS) {
            let r = sup
                .call(
                    |reply| LogSupervisorMsg::Open {
                        container: container.to_string(),
                        path: path.to_string(),
                        opts: opts.clone(),
                        reply,
                    },
                    Some(Duration::from_secs(30)),
                )
                .await;
            match r {
                Ok(ractor::rpc::CallResult::Success(r)) => return r.map(|(_, rx)| rx),
                Ok(ractor::rpc::CallResult::Timeout) => {
                    return Err("the log stream supervisor did not answer".into())
                }
                _ => {}
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err("the log stream supervisor is restarting".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Kill every LogStream actor of a container (chaos control); their
/// sessions restart at their positions. How many were killed.
pub fn kill_streams_of(sessions: &LogSessions, container: &str) -> usize {
    let mut n = 0;
    for s in sessions.all() {
        if s.container == container {
            if let Some(cell) = ractor::registry::where_is(actor_name(&s.container, s.id)) {
                cell.kill();
                n += 1;
            }
        }
    }
    n
}

pub struct LogStream;

pub struct LogStreamArgs {
    session: Arc<LogSession>,
    files: Arc<dyn LogFiles>,
    index: watch::Receiver<Arc<ContainerIndex>>,
}

pub struct LogStreamState {
    session: Arc<LogSession>,
    files: Arc<dyn LogFiles>,
    index: watch::Receiver<Arc<ContainerIndex>>,
    cursor: Option<Box<dyn LogCursor>>,
}

pub enum LogStreamMsg {
    /// Read and deliver the next chunk.
    Pump,
}

/// How long a following stream waits before looking for new entries.
const IDLE: Duration = Duration::from_millis(30);

impl LogStreamState {
    fn container_live(&self) -> bool {
        self.index
            .borrow()
            .by_id
            .get(&self.session.container)
            .is_some_and(|c| {
                c.state.status.is_live() || c.state.status == crate::container::Status::Restarting
            })
    }
}

impl Actor for LogStream {
    type Msg = LogStreamMsg;
    type State = LogStreamState;
    type Arguments = LogStreamArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: LogStreamArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_message(LogStreamMsg::Pump)?;
        Ok(LogStreamState {
            session: args.session,
            files: args.files,
            index: args.index,
            cursor: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        _msg: Self::Msg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let s = st.session.clone();
        let Some(tx) = s.sender() else {
            myself.stop(None);
            return Ok(());
        };
        if tx.is_closed() {
            // The client went away.
            s.finish();
            myself.stop(None);
            return Ok(());
        }
        // Read off the runtime's workers; the cursor comes back with the
        // chunk (a kill meanwhile drops both: the restart reopens at the
        // delivered position).
        let live_before = st.container_live();
        let cursor = match st.cursor.take() {
            Some(c) => c,
            None => st
                .files
                .open(&s.path, &s.opts, s.delivered())
                .map_err(|e| format!("opening the log of {}: {e}", s.container))?,
        };
        let (cursor, chunk) = tokio::task::spawn_blocking(move || {
            let mut c = cursor;
            let r = c.next_chunk();
            (c, r)
        })
        .await?;
        let chunk = chunk.map_err(|e| format!("reading the log of {}: {e}", s.container))?;
        st.cursor = Some(cursor);
        if !chunk.bytes.is_empty() || chunk.pos.is_some() {
            let Ok(permit) = tx.reserve().await else {
                s.finish();
                myself.stop(None);
                return Ok(());
            };
            // Handed over and recorded in one step: no await between.
            if !chunk.bytes.is_empty() {
                permit.send(chunk.bytes);
            }
            if let Some(p) = chunk.pos {
                *s.delivered.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
            }
        }
        drop(tx);
        if !chunk.at_end {
            myself.send_message(LogStreamMsg::Pump)?;
        } else if s.opts.follow && live_before {
            myself.send_after(IDLE, || LogStreamMsg::Pump);
        } else {
            // Not following, or the container had stopped before this
            // read reached the end: everything is delivered.
            s.finish();
            myself.stop(None);
        }
        Ok(())
    }
}
