//! EventBus: bounded fan-out of engine events to `/events` subscribers, with
//! a short history for `since`.
//!
//! Publishing never blocks: each subscriber has a bounded queue, and a
//! subscriber whose queue is full is dropped (its stream ends) with a notice
//! in the daemon log. The history lives in the actor and is lost if the
//! EventBus restarts (subscribers' streams end then too).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

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

pub enum EventBusMsg {
    Publish(Event),
    /// Subscribe; `since` in nanoseconds selects the history replayed.
    Subscribe {
        since: Option<i64>,
        reply: RpcReplyPort<Subscription>,
    },
    /// End every live subscription (daemon shutdown).
    CloseAll,
}

pub struct EventBus;

pub struct EventBusState {
    history: VecDeque<Event>,
    subscribers: Vec<mpsc::Sender<Event>>,
}

impl Actor for EventBus {
    type Msg = EventBusMsg;
    type State = EventBusState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(EventBusState {
            history: VecDeque::with_capacity(HISTORY),
            subscribers: Vec::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EventBusMsg::Publish(ev) => {
                crate::metrics::add(&crate::metrics::EVENTS, 1);
                debug!(kind = %ev.kind, action = %ev.action, id = %ev.actor.id, "event");
                if state.history.len() == HISTORY {
                    state.history.pop_front();
                }
                state.history.push_back(ev.clone());
                state.subscribers.retain(|s| match s.try_send(ev.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        warn!("events subscriber is not reading; dropping it");
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                });
            }
            EventBusMsg::Subscribe { since, reply } => {
                let past = match since {
                    Some(since) => state
                        .history
                        .iter()
                        .filter(|e| e.time_nano >= since)
                        .cloned()
                        .collect(),
                    None => Vec::new(),
                };
                let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
                state.subscribers.push(tx);
                let _ = reply.send(Subscription { past, live: rx });
            }
            EventBusMsg::CloseAll => state.subscribers.clear(),
        }
        Ok(())
    }
}

/// A handle that publishes to whichever EventBus incarnation is current.
#[derive(Clone)]
pub struct Events {
    clock: Arc<dyn Clock>,
}

impl Events {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Events { clock }
    }

    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    fn bus() -> Option<ActorRef<EventBusMsg>> {
        ActorRef::<EventBusMsg>::where_is(EVENT_BUS)
    }

    /// Publish an event; never blocks. Lost (with a warning) only while the
    /// EventBus is restarting.
    pub fn publish(&self, kind: &str, action: &str, id: &str, attrs: BTreeMap<String, String>) {
        let ev = Event::new(&*self.clock, kind, action, id, attrs);
        match Self::bus() {
            Some(bus) if bus.send_message(EventBusMsg::Publish(ev)).is_ok() => {}
            _ => warn!(%kind, %action, "event bus unavailable; event lost"),
        }
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
        if let Some(bus) = Self::bus() {
            let _ = bus.send_message(EventBusMsg::CloseAll);
        }
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

    async fn bus() -> ActorRef<EventBusMsg> {
        Actor::spawn(None, EventBus, ()).await.unwrap().0
    }

    fn ev(clock: &FakeClock, action: &str) -> Event {
        Event::new(clock, "daemon", action, "id", BTreeMap::new())
    }

    #[tokio::test]
    async fn history_since_and_live_fanout() {
        let clock = FakeClock(AtomicI64::new(1_000_000_000));
        let b = bus().await;
        b.send_message(EventBusMsg::Publish(ev(&clock, "a")))
            .unwrap(); // t=1s
        b.send_message(EventBusMsg::Publish(ev(&clock, "b")))
            .unwrap(); // t=2s
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
        b.send_message(EventBusMsg::Publish(ev(&clock, "c")))
            .unwrap();
        assert_eq!(sub.live.recv().await.unwrap().action, "c");
        assert_eq!(sub2.live.recv().await.unwrap().action, "c");
        b.stop(None);
    }

    #[tokio::test]
    async fn slow_subscriber_is_dropped_without_blocking_publishers() {
        let clock = FakeClock(AtomicI64::new(0));
        let b = bus().await;
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
            b.send_message(EventBusMsg::Publish(ev(&clock, &format!("e{i}"))))
                .unwrap();
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
        let b = bus().await;
        for i in 0..HISTORY + 5 {
            b.send_message(EventBusMsg::Publish(ev(&clock, &format!("e{i}"))))
                .unwrap();
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
}
