//! What people do to a job besides watching it — silence it or a tag, end a silence,
//! acknowledge its problem, send a test message to a channel — done the same way from the
//! dashboard, the management API and the command line (`belfry silence`, `belfry ack`). Each
//! takes the store and says what went wrong in words a person can act on.

use std::time::Duration;

use belfry::config::Config;
use belfry_core::{Adhoc, MessageType, Notification, Scope, Silence, Timestamp, parse_duration};
use belfry_store::{Acked, JobRef, NewSilence, Store};

/// The longest silence taken: a year.
pub const LONGEST_SILENCE: Duration = Duration::from_secs(366 * 86_400);

/// Why an action was not done.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// What was asked cannot be done as asked (a 4xx: the message says what to change).
    #[error("{0}")]
    Refused(String),
    /// No such job, silence, row or channel.
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error("the store: {0}")]
    Store(#[from] belfry_store::Error),
}

/// When a silence asked for ends: `for_` (belfry's durations: `90m`, `2h`, `1d`) from `now`,
/// or `until` (RFC 3339; a time without a zone, as a browser's date-and-time field sends it,
/// is UTC). Exactly one is given; the end is after `now` and within [`LONGEST_SILENCE`].
pub fn silence_end(
    for_: Option<&str>,
    until: Option<&str>,
    now: Timestamp,
) -> Result<Timestamp, ActionError> {
    let refuse = |m: String| Err(ActionError::Refused(m));
    let end = match (
        for_.map(str::trim).filter(|s| !s.is_empty()),
        until.map(str::trim).filter(|s| !s.is_empty()),
    ) {
        (Some(_), Some(_)) => return refuse("give either for or until, not both".into()),
        (None, None) => {
            return refuse("say how long: for (such as 2h or 1d) or until (a time)".into());
        }
        (Some(f), None) => match parse_duration(f) {
            Ok(d) if d.is_zero() => return refuse(format!("for: {f:?} is no time at all")),
            Ok(d) if d > LONGEST_SILENCE => {
                return refuse(format!("for: {f:?} is longer than a year"));
            }
            Ok(d) => now + d,
            Err(e) => return refuse(format!("for: {e}")),
        },
        (None, Some(u)) => match parse_until(u) {
            Some(t) => t,
            None => {
                return refuse(format!(
                    "until: {u:?} is not a time such as 2026-12-24T18:00Z or 2026-12-24T18:00 (UTC)"
                ));
            }
        },
    };
    if end <= now {
        return refuse(format!("until: {end} is not in the future"));
    }
    if end.since(now) > LONGEST_SILENCE {
        return refuse(format!("until: {end} is more than a year away"));
    }
    Ok(end)
}

fn parse_until(u: &str) -> Option<Timestamp> {
    if let Some(t) = Timestamp::parse_rfc3339(u) {
        return Some(t);
    }
    // `2026-12-24T18:00` or with seconds: a browser's local time field, read as UTC.
    let with_zone = match u.len() {
        16 => format!("{u}:00Z"),
        19 => format!("{u}Z"),
        _ => return None,
    };
    Timestamp::parse_rfc3339(&with_zone)
}

/// Reads a silence's scope: a job (which must exist) or a tag (any: jobs tagged later are
/// covered too).
pub fn scope(store: &Store, job: Option<&str>, tag: Option<&str>) -> Result<Scope, ActionError> {
    match (
        job.map(str::trim).filter(|s| !s.is_empty()),
        tag.map(str::trim).filter(|s| !s.is_empty()),
    ) {
        (Some(_), Some(_)) => Err(ActionError::Refused(
            "silence either a job or a tag, not both".into(),
        )),
        (None, None) => Err(ActionError::Refused(
            "say what to silence: a job or a tag".into(),
        )),
        (Some(j), None) => match store.check(JobRef::Name(j))? {
            Some(_) => Ok(Scope::Job(j.to_owned())),
            None => Err(ActionError::NotFound(format!("no job is named {j:?}"))),
        },
        (None, Some(t)) if !belfry::config::is_tag(t) => Err(ActionError::Refused(format!(
            "tag: {t:?} is not a tag (no spaces, 100 characters at most)"
        ))),
        (None, Some(t)) => Ok(Scope::Tag(t.to_owned())),
    }
}

/// Makes a silence; `reason` is kept (at most 500 characters).
pub fn silence(
    store: &mut Store,
    scope: &Scope,
    until: Timestamp,
    reason: &str,
    by: &str,
    now: Timestamp,
) -> Result<Silence, ActionError> {
    let reason = reason.trim();
    if reason.chars().count() > 500 {
        return Err(ActionError::Refused(
            "reason: at most 500 characters".into(),
        ));
    }
    Ok(store.add_silence(
        &NewSilence {
            scope,
            until,
            reason,
            by,
        },
        now,
    )?)
}

/// Ends silence `id` now.
pub fn end_silence(store: &mut Store, id: i64, now: Timestamp) -> Result<(), ActionError> {
    if store.end_silence(id, now)? {
        Ok(())
    } else {
        Err(ActionError::NotFound(format!(
            "no silence numbered {id} is in force"
        )))
    }
}

/// Acknowledges `job`'s problem for `by`.
pub fn acknowledge(
    store: &mut Store,
    job: &str,
    by: &str,
    now: Timestamp,
) -> Result<(), ActionError> {
    match store.acknowledge(job, by, now)? {
        Acked::Done => Ok(()),
        Acked::NoProblem => Err(ActionError::Refused(format!(
            "job {job:?} has no problem to acknowledge"
        ))),
        Acked::NotFound => Err(ActionError::NotFound(format!("no job is named {job:?}"))),
    }
}

/// Queues a test message to channel `name`: it goes through the outbox like any alert, so
/// the job page of `belfry-test` and the outbox show how it went.
pub fn test_message(
    store: &mut Store,
    config: &Config,
    name: &str,
    by: &str,
    now: Timestamp,
) -> Result<i64, ActionError> {
    if config.channel(name).is_none() {
        return Err(ActionError::NotFound(format!(
            "no channel is named {name:?}"
        )));
    }
    let n = Notification::adhoc(
        belfry_store::new_id(),
        Adhoc {
            job: "belfry-test".into(),
            title: format!("belfry test message for {name}"),
            body: format!(
                "{by} sent this from belfry serve to check that channel {name} reaches you."
            ),
            message_type: MessageType::Info,
            host: None,
            reason: "test",
            reason_text: format!("a test message sent by {by}"),
            attachments: Vec::new(),
        },
        now,
    );
    let ids = store.record_notification(&n, vec![name.to_owned()], false, &config.limits())?;
    ids.first()
        .copied()
        .ok_or_else(|| ActionError::Refused(format!("channel {name:?} took no message")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silence_ends_after_a_while_or_at_a_time_in_the_future() {
        let now = Timestamp::parse_rfc3339("2030-06-01T12:00:00Z").unwrap();
        let end = silence_end(Some("2h"), None, now).unwrap();
        assert_eq!(end, now + Duration::from_secs(7200));
        let end = silence_end(None, Some("2030-06-01T18:30"), now).unwrap();
        assert_eq!(end.to_rfc3339(), "2030-06-01T18:30:00.000Z");
        for (f, u, says) in [
            (Some("2h"), Some("2030-06-02T00:00Z"), "not both"),
            (None, None, "say how long"),
            (Some("soon"), None, "for:"),
            (Some("0s"), None, "no time"),
            (Some("400d"), None, "longer than a year"),
            (None, Some("yesterday"), "until:"),
            (None, Some("2030-06-01T11:00"), "not in the future"),
            (None, Some("2032-06-01T11:00"), "more than a year"),
        ] {
            let e = silence_end(f, u, now).unwrap_err().to_string();
            assert!(e.contains(says), "{f:?} {u:?}: {e}");
        }
    }
}
