//! The heart of belfry, free of I/O: what happened to a job ([`Event`], [`State`]), what belfry
//! remembers about it ([`JobSnapshot`]), the alert rules that decide whether to tell anyone
//! ([`decide`]; [`step`], all that a store applies: the new snapshot, the decision, and what the
//! message counts of the runs held back), where a notification goes ([`Route`]), what it says
//! ([`Notification`]) and how it reads on each kind of channel ([`render`] for chat and push
//! services: colours, emoji, markup and length limits; [`sms`], [`email`], and the
//! [`placeholders`] of argument templates).
//!
//! Everything here is a pure function of its arguments, including the clock: callers pass `now`.
//! That keeps the rules testable and lets the store apply them inside one transaction.
//!
//! ```
//! use belfry_core::{decide, advance, Policy, State, Timestamp};
//!
//! let policy = Policy::default();
//! let t0 = Timestamp::from_millis(1_700_000_000_000);
//! // The first run of a job is always worth a message.
//! let first = decide(None, &State::Failed, t0, &policy);
//! assert!(first.notify);
//! let snap = advance(None, &State::Failed, t0, &first).expect("a failure is remembered");
//!
//! // The same failure 200 ms later is inside `repeat_failures_after` (1 s): stay quiet.
//! let again = decide(Some(&snap), &State::Failed, t0.add_millis(200), &policy);
//! assert!(!again.notify);
//!
//! // Recovery is always announced once.
//! let ok = decide(Some(&snap), &State::Ok, t0.add_millis(300), &policy);
//! assert!(ok.notify);
//! assert_eq!(ok.reason.code(), "recovered");
//! ```

mod counts;
mod duration;
pub mod email;
#[cfg(test)]
mod fixtures;
mod hush;
mod message;
mod name;
pub mod placeholders;
mod policy;
pub mod render;
mod routing;
mod rules;
mod schedule;
pub mod sms;
mod state;
mod time;

pub use counts::{DigestCount, Held, Tally};
pub use duration::{
    DurationError, MAX_DURATION, duration_from_secs_f64, format_duration, instant_after,
    parse_duration, push_duration,
};
pub use hush::{Hush, Scope, Silence, hush};
pub use message::{
    Adhoc, Attachment, Details, Digest, Event, Kind, MessageType, Notification, SCHEMA_VERSION,
};
pub use name::{NameError, derive_job_name, stable_hash, validate_job_name};
pub use policy::{Decision, JobSnapshot, Policy, Reason, advance, begins_spell, decide};
pub use routing::{Refusal, Route, StateFilter, TAG_ALL, TAG_ALWAYS, glob_match};
pub use rules::{Step, step};
pub use schedule::{Cron, Expect, MIN_PERIOD, Schedule, ScheduleError, time_zone};
pub use state::{Class, State, UnknownState};
pub use time::{Rfc3339, Timestamp};
