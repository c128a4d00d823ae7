//! The bookkeeping every per-area supervisor (containers, networks,
//! volumes) shares: one child actor per key (a container ID, a network ID,
//! a volume name), started in parallel at restore, rebuilt from its record
//! when it dies, never rebuilt once forgotten, given up on when it keeps
//! failing.
//!
//! A spawn can fail for a moment: when a supervisor is killed its children
//! stop asynchronously, so the next incarnation may find a child's name
//! still registered. Such keys come back from [`KeyedChildren::restore`]
//! and [`KeyedChildren::start`] as failures for the caller to retry (with
//! a `Rebuild` message after [`RETRY_AFTER`]); a key is never left without
//! an actor because of one failed spawn.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorId, SupervisionEvent};
use tracing::{error, info, warn};

use crate::ports::BoxFuture;
use crate::supervisor::strategy::{counts, KILLED, SETTLE};

/// Rebuilds of one key's actor allowed per window before giving up.
pub const MAX_REBUILDS: usize = 10;
pub const REBUILD_WINDOW: Duration = Duration::from_secs(10);
/// Delay before a child that died is rebuilt.
pub const REBUILD_AFTER: Duration = Duration::from_millis(20);
/// Delay before a spawn that failed is tried again.
pub const RETRY_AFTER: Duration = Duration::from_millis(200);

/// A spawn of one child actor: its actor ID or why it failed.
pub type SpawnFuture = BoxFuture<Result<ActorId, String>>;

/// Spawns `actor` registered as `name`, linked to the supervisor `parent`.
pub fn spawn_child<A: Actor>(
    name: String,
    actor: A,
    args: A::Arguments,
    parent: ActorCell,
) -> SpawnFuture {
    Box::pin(async move {
        let (a, _) = Actor::spawn_linked(Some(name.clone()), actor, args, parent)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(a.get_id())
    })
}

/// How long a restarted supervisor waits for its predecessor's children
/// to be gone before it reads the read model.
pub const PREDECESSORS_GONE: Duration = Duration::from_secs(10);

/// The records a keyed supervisor of `kind` starts its children from:
/// those read from disk at berthd's start (its first incarnation: `true`),
/// else those of the read model (`records`) once its killed predecessor's
/// actors (`names`) are gone.
pub async fn records_to_restore<R>(
    kind: &str,
    initial: &std::sync::Mutex<Option<Vec<R>>>,
    names: impl FnOnce() -> Vec<String>,
    records: impl FnOnce() -> Vec<R>,
) -> (Vec<R>, bool) {
    let first = initial.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(r) = first {
        return (r, true);
    }
    after_predecessors(kind, names()).await;
    (records(), false)
}

/// A restarted supervisor of `kind` waits (up to [`PREDECESSORS_GONE`])
/// for the actors registered as `names` by its killed predecessor to be
/// gone, warning about any still running.
pub async fn after_predecessors(kind: &str, names: Vec<String>) {
    let left = wait_unregistered(names, PREDECESSORS_GONE).await;
    if !left.is_empty() {
        warn!(
            kind,
            ?left,
            "actors of the last incarnation are still running"
        );
    }
}

/// Waits (bounded) until no actor is registered under any of `names`.
///
/// A supervisor that was killed leaves its children stopping on their own
/// tasks: one may still be finishing a handler (a record saved, then
/// published). Its successor reads the read model only after they are
/// gone, or it would start their actors from records older than what they
/// saved (an endpoint back on a network after its container left it, a
/// removed container back in the list). Answers the names still
/// registered at the deadline.
async fn wait_unregistered(names: Vec<String>, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut left = names;
    loop {
        left.retain(|n| ractor::registry::where_is(n.clone()).is_some());
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub struct KeyedChildren {
    /// What the keys are, for the logs ("container", "network", "volume").
    kind: &'static str,
    /// Each current actor's key and start.
    actors: HashMap<ActorId, (String, Instant)>,
    forgotten: HashSet<String>,
    rebuilds: HashMap<String, Vec<Instant>>,
    /// Rebuilds of one key allowed per window.
    max_rebuilds: usize,
    window: Duration,
}

impl KeyedChildren {
    pub fn new(kind: &'static str) -> Self {
        Self::with_limit(kind, MAX_REBUILDS, REBUILD_WINDOW)
    }

    /// Children whose actors are cheap to restart over facts kept outside
    /// them (exec records, log sessions, registry sessions) may be rebuilt
    /// more often than records' actors.
    pub fn with_limit(kind: &'static str, max_rebuilds: usize, window: Duration) -> Self {
        KeyedChildren {
            kind,
            actors: HashMap::new(),
            forgotten: HashSet::new(),
            rebuilds: HashMap::new(),
            max_rebuilds,
            window,
        }
    }

    /// Whether `id` is the current actor of one of the keys.
    pub fn has(&self, id: &ActorId) -> bool {
        self.actors.contains_key(id)
    }

    /// The key whose current actor is `id`.
    pub fn key_of(&self, id: &ActorId) -> Option<String> {
        self.actors.get(id).map(|(k, _)| k.clone())
    }

    /// Spawns all children in parallel; answers the keys whose spawn
    /// failed (to be retried).
    pub async fn restore(&mut self, spawns: Vec<(String, SpawnFuture)>) -> Vec<String> {
        let tasks: Vec<_> = spawns
            .into_iter()
            .map(|(key, fut)| (key, tokio::spawn(fut)))
            .collect();
        let mut failed = Vec::new();
        for (key, task) in tasks {
            let r = match task.await {
                Ok(r) => r,
                Err(e) => Err(e.to_string()),
            };
            match r {
                Ok(aid) => {
                    self.actors.insert(aid, (key, Instant::now()));
                }
                Err(e) => {
                    warn!(kind = self.kind, %key, "restoring the actor failed ({e}); retrying");
                    failed.push(key);
                }
            }
        }
        failed
    }

    /// Spawns one child.
    pub async fn start(&mut self, key: &str, spawn: SpawnFuture) -> Result<(), String> {
        let aid = spawn.await?;
        self.actors.insert(aid, (key.to_string(), Instant::now()));
        Ok(())
    }

    /// A `Rebuild(key)` message: spawns the key's actor again if it is
    /// still wanted and has a record (`spawn` is None without one); a
    /// spawn that fails is handed to `retry` (send `Rebuild` again after
    /// [`RETRY_AFTER`]).
    pub async fn rebuild(
        &mut self,
        key: String,
        spawn: Option<SpawnFuture>,
        retry: impl FnOnce(String),
    ) {
        let Some(spawn) = spawn.filter(|_| self.wanted(&key)) else {
            return;
        };
        match self.start(&key, spawn).await {
            Ok(()) => info!(%key, "{} actor rebuilt", self.kind),
            Err(e) => {
                error!(kind = self.kind, %key, "rebuilding: {e}");
                retry(key);
            }
        }
    }

    /// The key was removed for good: its actor is not rebuilt.
    pub fn forget(&mut self, key: &str) {
        self.forgotten.insert(key.to_string());
        self.rebuilds.remove(key);
    }

    /// Whether a (re)build of `key` is still wanted.
    pub fn wanted(&self, key: &str) -> bool {
        !self.forgotten.contains(key)
    }

    /// Keys whose actor currently runs.
    pub fn keys(&self) -> Vec<String> {
        self.actors.values().map(|(k, _)| k.clone()).collect()
    }

    /// A child stopped or failed: answers its key when it should be
    /// rebuilt (`exists`: whether its record is still in the read model;
    /// a removed key's record goes before its actor stops, and its Forget
    /// may still be queued behind this event).
    pub fn exited(
        &mut self,
        ev: &SupervisionEvent,
        exists: impl FnOnce(&str) -> bool,
    ) -> Option<String> {
        let (cell, why, killed) = match ev {
            SupervisionEvent::ActorTerminated(c, _, r) => (
                c,
                r.clone().unwrap_or_else(|| "stopped".into()),
                r.as_deref() == Some(KILLED),
            ),
            SupervisionEvent::ActorFailed(c, e) => (c, e.to_string(), false),
            _ => return None,
        };
        let (key, started) = self.actors.remove(&cell.get_id())?;
        if self.forgotten.remove(&key) || !exists(&key) {
            return None;
        }
        if counts(killed, started.elapsed(), SETTLE) {
            let now = Instant::now();
            let times = self.rebuilds.entry(key.clone()).or_default();
            let window = self.window;
            times.retain(|t| now.duration_since(*t) < window);
            if times.len() >= self.max_rebuilds {
                error!(kind = self.kind, %key, "the actor keeps failing right after its start ({why}); it is no longer rebuilt");
                return None;
            }
            times.push(now);
        }
        crate::metrics::restarted(self.kind);
        warn!(kind = self.kind, %key, "actor stopped ({why}); rebuilding it from its record");
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use ractor::{Actor, ActorProcessingErr, ActorRef};

    use super::*;

    struct Idle;

    impl Actor for Idle {
        type Msg = ();
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_successor_waits_for_its_predecessors_children_to_be_gone() {
        let (a, _) = Actor::spawn(Some("keyed-old-child".into()), Idle, ())
            .await
            .expect("spawn");
        let names = || vec!["keyed-old-child".to_string(), "never-there".to_string()];
        // Still registered at the deadline: named.
        let left = wait_unregistered(names(), Duration::from_millis(50)).await;
        assert_eq!(left, vec!["keyed-old-child".to_string()]);
        // Gone 150 ms later: the wait ends then, not before.
        let t0 = Instant::now();
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            a.stop(None);
        });
        let left = wait_unregistered(names(), Duration::from_secs(5)).await;
        assert!(left.is_empty(), "{left:?}");
        assert!(t0.elapsed() >= Duration::from_millis(150));
        stopper.await.unwrap();
    }

    fn spawn_named(name: &'static str) -> SpawnFuture {
        Box::pin(async move {
            Actor::spawn(Some(name.to_string()), Idle, ())
                .await
                .map(|(a, _)| a.get_id())
                .map_err(|e| e.to_string())
        })
    }

    #[tokio::test]
    async fn a_failed_spawn_is_answered_for_a_retry_and_succeeds_later() {
        // The previous incarnation's child still holds its name.
        let (held, h) = Actor::spawn(Some("keyed-held".into()), Idle, ())
            .await
            .expect("spawn");
        let mut c = KeyedChildren::new("test");
        let failed = c
            .restore(vec![
                ("a".into(), spawn_named("keyed-held")),
                ("b".into(), spawn_named("keyed-free")),
            ])
            .await;
        assert_eq!(failed, vec!["a".to_string()]);
        assert_eq!(c.keys(), vec!["b".to_string()]);
        held.stop(None);
        h.await.expect("stopped");
        c.start("a", spawn_named("keyed-held"))
            .await
            .expect("retry");
        let mut keys = c.keys();
        keys.sort();
        assert_eq!(keys, vec!["a".to_string(), "b".to_string()]);
        for n in ["keyed-held", "keyed-free"] {
            if let Some(a) = ractor::ActorRef::<()>::where_is(n) {
                a.stop(None);
            }
        }
    }

    #[tokio::test]
    async fn exits_are_rebuilt_unless_forgotten_removed_or_failing() {
        let mut c = KeyedChildren::new("test");
        let mut cells = Vec::new();
        for _ in 0..MAX_REBUILDS + 3 {
            let (a, _) = Actor::spawn(None, Idle, ()).await.expect("spawn");
            cells.push(a.get_cell());
        }
        let ev = |i: usize| SupervisionEvent::ActorTerminated(cells[i].clone(), None, None);
        // An unknown child is ignored.
        assert_eq!(c.exited(&ev(0), |_| true), None);
        let aid = cells[0].get_id();
        c.start("k", Box::pin(async move { Ok(aid) }))
            .await
            .expect("start");
        // A removed record: not rebuilt.
        assert_eq!(c.exited(&ev(0), |_| false), None);
        // Forgotten: not rebuilt, once.
        let aid = cells[1].get_id();
        c.start("k", Box::pin(async move { Ok(aid) }))
            .await
            .expect("start");
        c.forget("k");
        assert!(!c.wanted("k"));
        assert_eq!(c.exited(&ev(1), |_| true), None);
        assert!(c.wanted("k"));
        // Rebuilt up to MAX_REBUILDS times in the window, then given up.
        for (i, cell) in cells.iter().enumerate().skip(2) {
            let aid = cell.get_id();
            c.start("k", Box::pin(async move { Ok(aid) }))
                .await
                .expect("start");
            let want = if i - 2 < MAX_REBUILDS {
                Some("k".to_string())
            } else {
                None
            };
            assert_eq!(c.exited(&ev(i), |_| true), want, "exit {i}");
        }
        // Kills never exhaust the limit.
        let mut c = KeyedChildren::new("test");
        for _ in 0..MAX_REBUILDS * 3 {
            let (a, _) = Actor::spawn(None, Idle, ()).await.expect("spawn");
            let aid = a.get_id();
            c.start("k", Box::pin(async move { Ok(aid) }))
                .await
                .expect("start");
            let ev = SupervisionEvent::ActorTerminated(a.get_cell(), None, Some(KILLED.into()));
            assert_eq!(c.exited(&ev, |_| true), Some("k".to_string()));
            a.stop(None);
        }
        for cell in cells {
            cell.stop(None);
        }
    }
}
