//! EventBus: bounded fan-out of engine events to `/events` subscribers, with
//! a short history for `since`.
//!
//! Publishing never blocks: each subscriber has a bounded queue, and a
//! subscriber whose queue is full is dropped (its stream ends) with a notice
//! in the daemon log. The history and the subscriber queues live in a
//! [`Journal`] the daemon makes once and hands to every incarnation of the
//! EventBus (as other actors find their records on disk): publishers append
//! to it directly, so a killed or restarting EventBus loses no event, no
//! history and no open stream. The actor serves subscriptions and shutdown.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::directory::EVENT_BUS;
use crate::ports::Clock;
use crate::supervisor::ask::RESTART_WAIT;

/// How many past events are kept for `since` (dockerd keeps 256).
pub const HISTORY: usize = 1024;
/// Per-subscriber queue length before it counts as slow.
pub const SUBSCRIBER_QUEUE: usize = 1024;

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EventActor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One engine event, in the Engine API's `EventMessage` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: EventActor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl Event {
    /// A local-scope event stamped with `clock`.
    pub fn new(
        clock: &dyn Clock,
        kind: &str,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) -> Self {
        let nanos = clock.now_nanos();
        Event {
            kind: kind.to_string(),
            action: action.to_string(),
            actor: EventActor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".to_string(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        }
    }
}

/// Past events from `since` on, and the queue of live ones.
pub struct Subscription {
    pub past: Vec<Event>,
    pub live: mpsc::Receiver<Event>,
}

#[derive(Default)]
struct JournalInner {
    history: VecDeque<Event>,
    subscribers: Vec<mpsc::Sender<Event>>,
}

/// The history and the subscribers' queues, shared by every EventBus
/// incarnation and every publisher; one lock orders the events.
#[derive(Clone, Default)]
pub struct Journal(Arc<Mutex<JournalInner>>);

impl Journal {
    fn lock(&self) -> std::sync::MutexGuard<'_, JournalInner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep `ev` in the history and hand it to every subscriber.
    pub fn publish(&self, ev: Event) {
        crate::metrics::add(&crate::metrics::EVENTS, 1);
        debug!(kind = %ev.kind, action = %ev.action, id = %ev.actor.id, "event");
        let mut j = self.lock();
        if j.history.len() == HISTORY {
            j.history.pop_front();
        }
        j.history.push_back(ev.clone());
        j.subscribers.retain(|s| match s.try_send(ev.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!("events subscriber is not reading; dropping it");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    fn subscribe(&self, since: Option<i64>) -> Subscription {
        let mut j = self.lock();
        let past = match since {
            Some(since) => j
                .history
                .iter()
                .filter(|e| e.time_nano >= since)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        j.subscribers.push(tx);
        Subscription { past, live: rx }
    }

    fn close_all(&self) {
        self.lock().subscribers.clear();
    }
}

pub enum EventBusMsg {
    /// Subscribe; `since` in nanoseconds selects the history replayed.
    Subscribe {
        since: Option<i64>,
        reply: RpcReplyPort<Subscription>,
    },
}

pub struct EventBus;

impl Actor for EventBus {
    type Msg = EventBusMsg;
    type State = Journal;
    type Arguments = Journal;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        journal: Journal,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(journal)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        journal: &mut Journal,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EventBusMsg::Subscribe { since, reply } => {
                let _ = reply.send(journal.subscribe(since));
            }
        }
        Ok(())
    }
}

/// A handle that publishes into the journal and subscribes through
/// whichever EventBus incarnation is current.
#[derive(Clone)]
pub struct Events {
    clock: Arc<dyn Clock>,
    journal: Journal,
}

impl Events {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Events {
            clock,
            journal: Journal::default(),
        }
    }

    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// The journal every EventBus incarnation is started with.
    pub fn journal(&self) -> Journal {
        self.journal.clone()
    }

    fn bus() -> Option<ActorRef<EventBusMsg>> {
        ActorRef::<EventBusMsg>::where_is(EVENT_BUS)
    }

    /// Publish an event; never blocks, never lost (the EventBus need not
    /// be up).
    pub fn publish(&self, kind: &str, action: &str, id: &str, attrs: BTreeMap<String, String>) {
        self.journal
            .publish(Event::new(&*self.clock, kind, action, id, attrs));
    }

    /// Subscribe to the current EventBus; one being restarted is waited
    /// for (up to [`RESTART_WAIT`]).
    pub async fn subscribe(&self, since: Option<i64>) -> Option<Subscription> {
        let deadline = tokio::time::Instant::now() + RESTART_WAIT;
        loop {
            if let Some(bus) = Self::bus() {
                let r = ractor::call_t!(bus, |reply| EventBusMsg::Subscribe { since, reply }, 5000);
                if let Ok(s) = r {
                    return Some(s);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// End all live subscriptions (at shutdown).
    pub fn close_all(&self) {
        self.journal.close_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    struct FakeClock(AtomicI64);
    impl Clock for FakeClock {
        fn now_nanos(&self) -> i64 {
            self.0.fetch_add(1_000_000_000, Ordering::SeqCst)
        }
    }

    async fn bus(j: &Journal) -> ActorRef<EventBusMsg> {
        Actor::spawn(None, EventBus, j.clone()).await.unwrap().0
    }

    fn ev(clock: &FakeClock, action: &str) -> Event {
        Event::new(clock, "daemon", action, "id", BTreeMap::new())
    }

    #[tokio::test]
    async fn history_since_and_live_fanout() {
        let clock = FakeClock(AtomicI64::new(1_000_000_000));
        let j = Journal::default();
        let b = bus(&j).await;
        j.publish(ev(&clock, "a")); // t=1s
        j.publish(ev(&clock, "b")); // t=2s
        let mut sub = ractor::call!(b, |reply| EventBusMsg::Subscribe {
            since: Some(2_000_000_000),
            reply
        })
        .unwrap();
        assert_eq!(sub.past.len(), 1);
        assert_eq!(sub.past[0].action, "b");
        let mut sub2 =
            ractor::call!(b, |reply| EventBusMsg::Subscribe { since: None, reply }).unwrap();
        assert!(sub2.past.is_empty());
        j.publish(ev(&clock, "c"));
        assert_eq!(sub.live.recv().await.unwrap().action, "c");
        assert_eq!(sub2.live.recv().await.unwrap().action, "c");
        b.stop(None);
    }

    #[tokio::test]
    async fn slow_subscriber_is_dropped_without_blocking_publishers() {
        let clock = FakeClock(AtomicI64::new(0));
        let j = Journal::default();
        let b = bus(&j).await;
        let mut slow =
            ractor::call!(b, |reply| EventBusMsg::Subscribe { since: None, reply }).unwrap();
        let mut fast =
            ractor::call!(b, |reply| EventBusMsg::Subscribe { since: None, reply }).unwrap();
        let reader = tokio::spawn(async move {
            let mut n = 0;
            while fast.live.recv().await.is_some() {
                n += 1;
                if n == SUBSCRIBER_QUEUE + 10 {
                    return n;
                }
            }
            n
        });
        for i in 0..SUBSCRIBER_QUEUE + 10 {
            j.publish(ev(&clock, &format!("e{i}")));
            // The reader runs on this (current-thread) runtime.
            tokio::task::yield_now().await;
        }
        assert_eq!(reader.await.unwrap(), SUBSCRIBER_QUEUE + 10);
        // The slow one got exactly what fit, then its stream ended.
        let mut got = 0;
        while slow.live.recv().await.is_some() {
            got += 1;
        }
        assert_eq!(got, SUBSCRIBER_QUEUE);
        b.stop(None);
    }

    #[tokio::test]
    async fn history_is_bounded() {
        let clock = FakeClock(AtomicI64::new(0));
        let j = Journal::default();
        let b = bus(&j).await;
        for i in 0..HISTORY + 5 {
            j.publish(ev(&clock, &format!("e{i}")));
        }
        let sub = ractor::call!(b, |reply| EventBusMsg::Subscribe {
            since: Some(0),
            reply
        })
        .unwrap();
        assert_eq!(sub.past.len(), HISTORY);
        assert_eq!(sub.past[0].action, "e5");
        b.stop(None);
    }

    /// A killed EventBus loses nothing: events published while it is down
    /// are kept, the next incarnation replays the whole history, and a
    /// stream opened before the kill goes on.
    #[tokio::test]
    async fn a_killed_bus_loses_no_event_history_or_stream() {
        let clock = FakeClock(AtomicI64::new(1_000_000_000));
        let j = Journal::default();
        let b = bus(&j).await;
        j.publish(ev(&clock, "before"));
        let mut open =
            ractor::call!(b, |reply| EventBusMsg::Subscribe { since: None, reply }).unwrap();
        b.kill_and_wait(None).await.unwrap();
        j.publish(ev(&clock, "while-down"));
        let b2 = bus(&j).await;
        j.publish(ev(&clock, "after"));
        let sub = ractor::call!(b2, |reply| EventBusMsg::Subscribe {
            since: Some(0),
            reply
        })
        .unwrap();
        let past: Vec<_> = sub.past.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(past, ["before", "while-down", "after"]);
        assert_eq!(open.live.recv().await.unwrap().action, "while-down");
        assert_eq!(open.live.recv().await.unwrap().action, "after");
        b2.stop(None);
    }
}
