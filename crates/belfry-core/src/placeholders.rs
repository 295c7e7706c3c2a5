//! The named values of a notification that argument templates (the command channel's
//! `{job}`, `{title}`, …) can use.

use crate::Notification;
use crate::duration::duration_from_secs_f64;
use crate::duration::format_duration;
use crate::message::Kind;

/// The names a template may use, each the value of [`value`].
pub const NAMES: &[&str] = &[
    "id",
    "kind",
    "type",
    "job",
    "state",
    "state_label",
    "previous_state",
    "reason",
    "reason_text",
    "title",
    "message",
    "body",
    "exit_code",
    "signal",
    "duration",
    "duration_seconds",
    "host",
    "run_id",
    "started_at",
    "time",
    "consecutive_problems",
    "error",
    "output_tail",
    "sms",
    "text",
];

/// The value of the named variable for `n`, as text; `Some("")` for a value this notification
/// does not have (no exit code after a signal), `None` for a name that is not in
/// [`NAMES`].
///
/// `body` is the one-line `message` (Apprise's body), `sms` the one-segment SMS text, and
/// `text` the whole plain-text e-mail body.
pub fn value(n: &Notification, name: &str) -> Option<String> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    Some(match name {
        "id" => n.id.clone(),
        "kind" => kind_name(n.kind).to_owned(),
        "type" => n.apprise_type.clone(),
        "job" => n.job.clone(),
        "state" => n.state.name().to_owned(),
        "state_label" => n.state.label().to_owned(),
        "previous_state" => opt(n.previous_state.map(|s| s.name().to_owned())),
        "reason" => n.reason.clone(),
        "reason_text" => n.reason_text.clone(),
        "title" => n.title.clone(),
        "message" | "body" => n.message.clone(),
        "exit_code" => opt(n.exit_code.map(|c| c.to_string())),
        "signal" => opt(n.signal.map(|s| s.to_string())),
        "duration" => opt(n
            .duration_seconds
            .map(|d| format_duration(duration_from_secs_f64(d)))),
        "duration_seconds" => opt(n.duration_seconds.map(|d| format!("{d:.3}"))),
        "host" => opt(n.host.clone()),
        "run_id" => opt(n.run_id.clone()),
        "started_at" => opt(n.started_at.map(|t| t.to_rfc3339())),
        "time" => n.time.to_rfc3339(),
        "consecutive_problems" => n.consecutive_problems.to_string(),
        "error" => opt(n.error.clone()),
        "output_tail" => opt(n.output_tail.clone()),
        "sms" => crate::sms::render(n),
        "text" => crate::email::render(n).text,
        _ => return None,
    })
}

const fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Problem => "problem",
        Kind::Recovered => "recovered",
        Kind::Ok => "ok",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::failed;

    #[test]
    fn variables_cover_the_documented_names_and_nothing_else() {
        let n = failed();
        for name in NAMES {
            assert!(value(&n, name).is_some(), "{name}");
        }
        assert_eq!(value(&n, "job").as_deref(), Some("nightly-backup"));
        assert_eq!(value(&n, "exit_code").as_deref(), Some("3"));
        assert_eq!(value(&n, "signal").as_deref(), Some(""));
        assert_eq!(value(&n, "state").as_deref(), Some("failed"));
        assert_eq!(value(&n, "kind").as_deref(), Some("problem"));
        assert_eq!(value(&n, "nope"), None);
    }
}
