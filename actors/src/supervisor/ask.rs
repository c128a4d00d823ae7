//! Requests with a bounded wait. Every request/reply between the front
//! door and an actor goes through [`ask_within`]: an actor that does not
//! answer in time makes the request fail (503, naming the actor and the
//! request) instead of hanging the client, and is reported to its
//! supervisor through `report`. [`ask_named`] finds the actor by its
//! registered name and, while it is being restarted (no actor under the
//! name, or one that stopped before taking the message), waits for its
//! next incarnation up to [`RESTART_WAIT`] instead of failing.

use std::time::Duration;

use ractor::{ActorRef, Message, MessagingErr, RpcReplyPort};
use tokio::sync::oneshot;

/// What a message asks, for the timeout and its message.
pub trait Request {
    /// A short name (`stop`, `connect`, ...).
    fn name(&self) -> &'static str;
    /// How long an answer may take; `None`: unbounded (the client asked
    /// to wait forever, e.g. `stop -t -1`).
    fn within(&self) -> Option<Duration> {
        Some(DEFAULT)
    }
}

/// The wait of most requests: every one of them is a few records and host
/// calls; a minute means the actor is stuck.
pub const DEFAULT: Duration = Duration::from_secs(60);

/// How long a request waits for an actor being restarted to come back.
pub const RESTART_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AskError {
    /// No such actor, or it stopped before answering.
    Gone,
    /// No answer in time: `request` took longer than `after`.
    TimedOut {
        request: &'static str,
        after: Duration,
    },
}

impl AskError {
    /// The text of a 503 for the actor `who`.
    pub fn message(&self, who: &str) -> String {
        match self {
            AskError::Gone => format!("{who} is restarting; retry"),
            AskError::TimedOut { request, after } => format!(
                "{who} did not answer {request} within {}s; it was reported to its supervisor",
                after.as_secs()
            ),
        }
    }
}

/// Send the message `build` makes to `actor` and wait for its answer at
/// most as long as the message allows; on a timeout `report` is called
/// with the request's name (the actor's supervisor is told).
pub async fn ask_within<M, T>(
    actor: &ActorRef<M>,
    build: impl FnOnce(RpcReplyPort<T>) -> M,
    report: impl FnOnce(&'static str),
) -> Result<T, AskError>
where
    M: Message + Request,
    T: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let msg = build(tx.into());
    let (request, within) = (msg.name(), msg.within());
    let _counted = crate::metrics::in_flight(actor.get_name());
    actor.send_message(msg).map_err(|_| AskError::Gone)?;
    wait_answer(rx, request, within, report).await
}

/// [`ask_within`] to the actor registered as `name`. The message is made
/// once; while no actor takes it (none registered, or the one found
/// stopped before its mailbox took it) it waits for the next incarnation,
/// up to [`RESTART_WAIT`], then answers [`AskError::Gone`]. A message an
/// actor took and then died with is not sent again (it may have been
/// acted on): that answers `Gone` at once.
pub async fn ask_named<M, T>(
    name: &str,
    build: impl FnOnce(RpcReplyPort<T>) -> M,
    report: impl FnOnce(&'static str),
) -> Result<T, AskError>
where
    M: Message + Request,
    T: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let mut msg = build(tx.into());
    let (request, within) = (msg.name(), msg.within());
    let _counted = crate::metrics::in_flight(Some(name.to_string()));
    let deadline = tokio::time::Instant::now() + RESTART_WAIT;
    loop {
        if let Some(actor) = ActorRef::<M>::where_is(name) {
            match actor.send_message(msg) {
                Ok(()) => break,
                Err(MessagingErr::SendErr(m)) => msg = m,
                Err(_) => return Err(AskError::Gone),
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(AskError::Gone);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_answer(rx, request, within, report).await
}

/// [`ask_named`] for a request that is safe to make twice (a read, or one
/// whose second making answers as the first did, e.g. a start answered
/// "already started"): a message the actor took and then died with is made
/// again for its next incarnation, within [`RESTART_WAIT`].
pub async fn ask_named_again<M, T>(
    name: &str,
    build: impl Fn(RpcReplyPort<T>) -> M,
    report: impl Fn(&'static str),
) -> Result<T, AskError>
where
    M: Message + Request,
    T: Send + 'static,
{
    let deadline = tokio::time::Instant::now() + RESTART_WAIT;
    loop {
        match ask_named(name, &build, &report).await {
            Err(AskError::Gone) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            r => return r,
        }
    }
}

async fn wait_answer<T>(
    rx: oneshot::Receiver<T>,
    request: &'static str,
    within: Option<Duration>,
    report: impl FnOnce(&'static str),
) -> Result<T, AskError> {
    let answer = match within {
        Some(after) => match tokio::time::timeout(after, rx).await {
            Ok(r) => r,
            Err(_) => {
                report(request);
                return Err(AskError::TimedOut { request, after });
            }
        },
        None => rx.await,
    };
    answer.map_err(|_| AskError::Gone)
}

#[cfg(test)]
mod tests {
    use ractor::{Actor, ActorProcessingErr};

    use super::*;

    struct Slow;
    enum SlowMsg {
        /// Answers after this long.
        Echo(u64, Duration, RpcReplyPort<u64>),
        /// Drops the reply port.
        Drop(RpcReplyPort<u64>),
    }

    impl Request for SlowMsg {
        fn name(&self) -> &'static str {
            "echo"
        }
        fn within(&self) -> Option<Duration> {
            Some(Duration::from_millis(100))
        }
    }

    impl Actor for Slow {
        type Msg = SlowMsg;
        type State = ();
        type Arguments = ();
        async fn pre_start(&self, _: ActorRef<SlowMsg>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
        async fn handle(
            &self,
            _: ActorRef<SlowMsg>,
            msg: SlowMsg,
            _: &mut (),
        ) -> Result<(), ActorProcessingErr> {
            match msg {
                SlowMsg::Echo(v, d, r) => {
                    tokio::time::sleep(d).await;
                    let _ = r.send(v);
                }
                SlowMsg::Drop(r) => drop(r),
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn answers_timeouts_and_gone_actors() {
        let (a, _) = Actor::spawn(None, Slow, ()).await.unwrap();
        let mut reported = None;
        let r = ask_within(&a, |r| SlowMsg::Echo(7, Duration::ZERO, r), |_| {}).await;
        assert_eq!(r, Ok(7));
        let started = std::time::Instant::now();
        let r = ask_within(
            &a,
            |r| SlowMsg::Echo(8, Duration::from_secs(5), r),
            |req| reported = Some(req),
        )
        .await;
        assert_eq!(
            r,
            Err(AskError::TimedOut {
                request: "echo",
                after: Duration::from_millis(100)
            })
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(reported, Some("echo"));
        assert!(r
            .unwrap_err()
            .message("container abc")
            .contains("did not answer echo within 0s"));
        a.kill();
        let (b, _) = Actor::spawn(None, Slow, ()).await.unwrap();
        assert_eq!(
            ask_within(&b, SlowMsg::Drop, |_| {}).await,
            Err(AskError::Gone)
        );
        b.stop(None);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            ask_within(&b, SlowMsg::Drop, |_| {}).await,
            Err(AskError::Gone)
        );
    }

    #[tokio::test]
    async fn a_named_ask_waits_for_the_actor_to_come_back() {
        let name = "ask-named-test";
        // No actor yet: the ask waits; the actor registers 200 ms later.
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Actor::spawn(Some(name.to_string()), Slow, ())
                .await
                .unwrap()
                .0
        });
        let r = ask_named(name, |r| SlowMsg::Echo(9, Duration::ZERO, r), |_| {}).await;
        assert_eq!(r, Ok(9));
        let a = late.await.unwrap();
        // A request its actor drops is made again by `ask_named_again`
        // (the next making is answered), and fails at once with `ask_named`.
        let made = std::sync::atomic::AtomicU32::new(0);
        let r = ask_named_again(
            name,
            |r| {
                if made.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    SlowMsg::Drop(r)
                } else {
                    SlowMsg::Echo(10, Duration::ZERO, r)
                }
            },
            |_| {},
        )
        .await;
        assert_eq!(r, Ok(10));
        assert_eq!(
            ask_named(name, SlowMsg::Drop, |_| {}).await,
            Err(AskError::Gone)
        );
        a.stop(None);
    }
}
