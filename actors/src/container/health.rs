//! health: follow the shim's healthcheck. The shim runs the probes on its
//! own schedule (they go on while berthd is down); the actor long-polls its
//! report, keeps `State.Health` in the record and emits dockerd's events:
//! `exec_create`/`exec_start`/`exec_die` per probe, `health_status: X` when
//! the status changes. A restarted actor (or berthd) takes the report as
//! it is now: no probe is run twice or skipped, whoever follows.

use std::time::Duration;

use ractor::ActorRef;
use tracing::warn;

use super::actor::ContainerState;
use super::ContainerMsg;
use crate::ports::ShimCallError;
use crate::protocol::shim::{Health, HealthReport, Request};

impl ContainerState {
    /// The container was started now: its health starts over (the last
    /// run's log is kept, as dockerd keeps it).
    pub(super) fn reset_health(&mut self) {
        self.health_seen = None;
        self.rec.state.health = self.rec.config.health_probe().map(|_| Health {
            status: "starting".into(),
            failing_streak: 0,
            log: self
                .rec
                .state
                .health
                .take()
                .map(|h| h.log)
                .unwrap_or_default(),
        });
    }

    /// Long-poll the shim's healthcheck report for incarnation `gen`.
    pub(super) fn watch_health(&mut self, myself: &ActorRef<ContainerMsg>) {
        if let Some(t) = self.health_task.take() {
            t.abort();
        }
        if self.rec.config.health_probe().is_none() {
            return;
        }
        self.health_seen = None;
        let (host, id, gen, me) = (
            self.host.clone(),
            self.rec.id.clone(),
            self.gen,
            myself.clone(),
        );
        self.health_task = Some(tokio::spawn(async move {
            let mut after = 0;
            loop {
                match host.call(&id, Request::Health { after }).await {
                    Ok(r) => {
                        let Some(report) = r.health else { return };
                        after = report.version;
                        if me.cast(ContainerMsg::Health { gen, report }).is_err() {
                            return;
                        }
                        if r.exit.is_some() {
                            return;
                        }
                    }
                    Err(ShimCallError::Gone(_)) => return,
                    Err(ShimCallError::Failed(e)) => {
                        // A shim without a healthcheck, or one older than
                        // the request: nothing to follow.
                        warn!(%id, "following the healthcheck: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        if e.contains("no healthcheck") || e.starts_with("bad request") {
                            return;
                        }
                    }
                }
            }
        }));
    }

    /// The probes that ended since the last report seen, and the failed
    /// ones among them (from the log's newest entries) for the metrics.
    fn count_probes(&self, report: &HealthReport) {
        use crate::metrics::{add, HEALTH_CHECKS, HEALTH_CHECKS_FAILED};
        let Some(prev) = &self.health_seen else {
            return;
        };
        let ended = report.probes.saturating_sub(prev.probes);
        if ended == 0 {
            return;
        }
        add(&HEALTH_CHECKS, ended);
        let failed = report
            .health
            .log
            .iter()
            .rev()
            .take(ended as usize)
            .filter(|r| r.exit_code != 0)
            .count();
        add(&HEALTH_CHECKS_FAILED, failed as u64);
    }

    /// A report of the shim: the record follows, events for what changed
    /// since the last report this actor saw (none for a first one).
    pub(super) fn on_health(&mut self, report: HealthReport) {
        if !self.status().is_live() {
            return;
        }
        self.count_probes(&report);
        if let Some(prev) = self.health_seen.take() {
            let cmd = format!(": {}", report.probe_cmd);
            let exec = [("execID", report.probe_id.clone())];
            let new_probe = report.probe_id != prev.probe_id && !report.probe_id.is_empty();
            if new_probe {
                self.event(&format!("exec_create{cmd}"), &exec);
                self.event(&format!("exec_start{cmd}"), &exec);
            }
            if report.probes > prev.probes && (new_probe || prev.probing) {
                let code = report.health.log.last().map_or(-1, |r| r.exit_code);
                self.event(
                    "exec_die",
                    &[
                        ("execID", report.probe_id.clone()),
                        ("exitCode", code.to_string()),
                    ],
                );
            }
        }
        let before = self.rec.state.health.as_ref().map(|h| h.status.clone());
        let now = report.health.status.clone();
        self.rec.state.health = Some(report.health.clone());
        self.health_seen = Some(report);
        if before.as_deref() != Some(now.as_str()) {
            self.save();
            self.event(&format!("health_status: {now}"), &[]);
        } else {
            self.publish();
        }
    }
}
