//! Notifications for the rendering tests.

use std::time::Duration;

use crate::{Decision, Details, Event, Notification, Reason, State, Timestamp};

pub(crate) fn notification(state: State, reason: Reason, details: Details) -> Notification {
    let ev = Event {
        job: "nightly-backup".into(),
        state,
        at: Timestamp::from_millis(1_800_000_000_000),
        details,
    };
    Notification::new(
        "n-1".into(),
        &ev,
        None,
        &Decision {
            notify: true,
            reason,
        },
    )
}

/// A first failure with every detail.
pub(crate) fn failed() -> Notification {
    notification(
        State::Failed,
        Reason::FirstRun,
        Details {
            run_id: Some("r-9".into()),
            exit_code: Some(3),
            duration: Some(Duration::from_millis(41_200)),
            host: Some("db1".into()),
            error: Some("pg_dump: connection refused\n  at dump()\n  at main()".into()),
            output_tail: Some("dumping…\n<b>oops</b> & more\n".into()),
            ..Details::default()
        },
    )
}
