//! The JSON forms of a run and an outbox row, as `belfry history --json`, `belfry outbox
//! --json` and `belfry serve`'s API show them: one form, whoever asks.

use std::time::Duration;

use belfry_store::{OutboxRow, RunRow};
use serde_json::{Value, json};

use crate::Config;

/// A duration in seconds, or `null`.
pub fn secs(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_secs_f64()))
}

/// A run.
pub fn run_json(r: &RunRow) -> Value {
    json!({
        "id": r.id,
        "job": r.job,
        "state": r.state.name(),
        "started": r.started,
        "ended": r.ended,
        "duration_seconds": secs(r.duration),
        "exit_code": r.exit_code,
        "signal": r.signal,
        "host": r.host,
        "error": r.error,
        "reason": r.reason,
        "reason_text": r.reason_text,
        "notified": r.notified,
        "output_bytes": r.output_bytes,
        "output": r.output,
    })
}

/// An outbox row, its destination and last failure with their secrets hidden.
pub fn outbox_json(config: &Config, r: &OutboxRow) -> Value {
    json!({
        "id": r.id,
        "job": r.job,
        "state": r.state.name(),
        "kind": r.kind,
        "reason": r.reason,
        "channel": r.channel,
        "destination": config.channel(&r.channel).map(|c| c.describe()),
        "status": r.status,
        "attempts": r.attempts,
        "created": r.created,
        "next_attempt": (r.status == "pending").then_some(r.next_attempt),
        "deadline": r.deadline,
        "lease_until": r.lease_until,
        "last_reason": r.last_reason.as_deref().map(|t| config.scrub(t)),
        "delivered": r.delivered,
        "folded_into": r.folded_into,
        "possible_duplicates": r.reclaims,
    })
}
