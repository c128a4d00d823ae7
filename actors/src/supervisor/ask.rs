//! Requests with a bounded wait. Every request/reply between the front
//! door and an actor goes through [`ask_within`]: an actor that does not
//! answer in time makes the request fail (503, naming the actor and the
//! request) instead of hanging the client, and is reported to its
//! supervisor through `report`.

use std::time::Duration;

use ractor::{ActorRef, Message, RpcReplyPort};
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
}
