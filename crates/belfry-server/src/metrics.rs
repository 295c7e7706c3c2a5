//! The server's counters, and `/metrics` in Prometheus' text format.
//!
//! Counters are bumped by the threads that know (the HTTP handlers, the writer, the
//! sweeper); the outbox's figures come from the store, read by the sweeper between its
//! looks (no store call on the HTTP runtime), so `/metrics` only reads atomics.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use belfry_store::PingKind;

/// What the server has done since it started, and what the outbox held at the last look.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Pings recorded, by kind: start, success, fail, log, exit (a non-zero exit status).
    pings: [AtomicU64; 5],
    /// Ping requests refused (4xx) or failed (5xx).
    pub(crate) refused: AtomicU64,
    /// Notifications the rules made (pings and late checks).
    pub(crate) alerts: AtomicU64,
    /// Jobs marked late.
    pub(crate) late: AtomicU64,
    /// Jobs created by `?create=1`.
    pub(crate) created: AtomicU64,
    /// Outbox rows waiting or being sent, at the last look.
    pub(crate) outbox_pending: AtomicU64,
    /// Outbox rows delivered (kept ones), at the last look.
    pub(crate) outbox_delivered: AtomicU64,
    /// Outbox rows given up on, at the last look.
    pub(crate) outbox_dead: AtomicU64,
    /// Store writes that failed.
    pub(crate) store_errors: AtomicU64,
}

const KINDS: [&str; 5] = ["start", "success", "fail", "log", "exit"];

impl Metrics {
    /// Counts a recorded ping.
    pub(crate) fn ping(&self, kind: &PingKind) {
        let i = match kind {
            PingKind::Start => 0,
            PingKind::Success | PingKind::Exit(0) => 1,
            PingKind::Fail => 2,
            PingKind::Log => 3,
            PingKind::Exit(_) => 4,
        };
        self.pings[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The text `/metrics` answers with.
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, rows: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        let pings: Vec<(String, u64)> = KINDS
            .iter()
            .zip(&self.pings)
            .map(|(k, c)| (format!("{{kind=\"{k}\"}}"), get(c)))
            .collect();
        let pings: Vec<(&str, u64)> = pings.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        family(
            "belfry_pings_total",
            "counter",
            "Pings recorded, by kind (exit: a non-zero exit status).",
            &pings,
        );
        family(
            "belfry_ping_refusals_total",
            "counter",
            "Ping requests answered with an error (4xx or 5xx).",
            &[("", get(&self.refused))],
        );
        family(
            "belfry_checks_created_total",
            "counter",
            "Jobs created by a ping with ?create=1.",
            &[("", get(&self.created))],
        );
        family(
            "belfry_alerts_total",
            "counter",
            "Notifications the rules made for pings and late jobs.",
            &[("", get(&self.alerts))],
        );
        family(
            "belfry_late_checks_total",
            "counter",
            "Times a job was marked late.",
            &[("", get(&self.late))],
        );
        family(
            "belfry_outbox_depth",
            "gauge",
            "Outbox rows waiting for delivery or being sent.",
            &[("", get(&self.outbox_pending))],
        );
        family(
            "belfry_outbox_rows",
            "gauge",
            "Outbox rows the store keeps, by outcome.",
            &[
                ("{outcome=\"delivered\"}", get(&self.outbox_delivered)),
                ("{outcome=\"dead\"}", get(&self.outbox_dead)),
            ],
        );
        family(
            "belfry_store_errors_total",
            "counter",
            "Store writes that failed.",
            &[("", get(&self.store_errors))],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_are_counted_by_kind_in_prometheus_text() {
        let m = Metrics::default();
        m.ping(&PingKind::Exit(0));
        m.ping(&PingKind::Success);
        m.ping(&PingKind::Exit(3));
        let text = m.render();
        assert!(
            text.contains("belfry_pings_total{kind=\"success\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("belfry_pings_total{kind=\"exit\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE belfry_outbox_depth gauge\n"),
            "{text}"
        );
    }
}
