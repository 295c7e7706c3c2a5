//! Alerts made but not sent: a job or a tag silenced until a time (maintenance), and a problem
//! acknowledged (someone is on it: no more reminders until it recovers). The rules still
//! decide and the store still records each notification, so the history shows what would have
//! been sent and why it was not; [`hush`] says which notifications are held back.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// What a silence covers: one job, or every job with a tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The job of this name.
    Job(String),
    /// Every job with this tag, including jobs tagged after the silence began.
    Tag(String),
}

impl Scope {
    /// Whether it covers the job `job` with tags `tags`.
    pub fn covers(&self, job: &str, tags: &[String]) -> bool {
        match self {
            Scope::Job(j) => j == job,
            Scope::Tag(t) => tags.iter().any(|x| x == t),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Job(j) => write!(f, "job {j}"),
            Scope::Tag(t) => write!(f, "tag {t}"),
        }
    }
}

/// A silence: the alerts of the jobs it covers are recorded, not sent, from when it was made
/// until `until` (or until it is ended early).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Its number in the store.
    pub id: i64,
    /// What it covers.
    pub scope: Scope,
    /// When it ends.
    pub until: Timestamp,
    /// Why (said wherever the silence shows).
    pub reason: String,
    /// Who made it: a user's name, `api`, or `cli`.
    pub by: String,
    /// When it was made.
    pub created: Timestamp,
}

impl Silence {
    /// Whether it holds back an alert about `job` (tagged `tags`) made at `at`.
    pub fn holds(&self, job: &str, tags: &[String], at: Timestamp) -> bool {
        at < self.until && self.scope.covers(job, tags)
    }
}

/// Why a notification the rules decided on is not sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "hush", rename_all = "snake_case")]
pub enum Hush {
    /// A silence covers the job.
    Silenced {
        /// The silence's number.
        id: i64,
        /// When it ends.
        until: Timestamp,
        /// Its reason.
        reason: String,
    },
    /// The problem was acknowledged: a reminder is not sent until the job recovers.
    Acknowledged {
        /// When it was acknowledged.
        at: Timestamp,
        /// By whom.
        by: String,
    },
}

impl std::fmt::Display for Hush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hush::Silenced { id, until, reason } => {
                write!(f, "silenced until {until} (silence {id}")?;
                if !reason.is_empty() {
                    write!(f, ": {reason}")?;
                }
                f.write_str(")")
            }
            Hush::Acknowledged { at, by } => {
                write!(f, "acknowledged by {by} at {at}")
            }
        }
    }
}

/// Whether an alert about `job` (tagged `tags`) made at `at` is held back, and why: a silence
/// covering the job holds back every alert (the one ending latest is named); an
/// acknowledgement (`acked`: when and by whom, cleared when the job recovers) holds back
/// reminders only (`reminder`: the rules' [`Reason::Repeated`](crate::Reason::Repeated)),
/// so a change to another problem or a recovery is still sent.
pub fn hush(
    reminder: bool,
    job: &str,
    tags: &[String],
    at: Timestamp,
    silences: &[Silence],
    acked: Option<(Timestamp, &str)>,
) -> Option<Hush> {
    let silence = silences
        .iter()
        .filter(|s| s.holds(job, tags, at))
        .max_by_key(|s| (s.until, s.id));
    if let Some(s) = silence {
        return Some(Hush::Silenced {
            id: s.id,
            until: s.until,
            reason: s.reason.clone(),
        });
    }
    match acked {
        Some((at, by)) if reminder => Some(Hush::Acknowledged {
            at,
            by: by.to_owned(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + ms)
    }

    fn silence(id: i64, scope: Scope, until: i64) -> Silence {
        Silence {
            id,
            scope,
            until: t(until),
            reason: format!("s{id}"),
            by: "ann".into(),
            created: t(0),
        }
    }

    #[test]
    fn a_silence_holds_the_jobs_it_covers_until_it_ends() {
        let s = [
            silence(1, Scope::Job("backup".into()), 1000),
            silence(2, Scope::Tag("db".into()), 5000),
        ];
        let tags = vec!["web".to_owned(), "db".to_owned()];
        // The tag's silence ends later: it is the one named.
        let h = hush(false, "backup", &tags, t(500), &s, None);
        assert_eq!(
            h,
            Some(Hush::Silenced {
                id: 2,
                until: t(5000),
                reason: "s2".into()
            })
        );
        // Untagged: only the job's own silence, and only before it ends.
        let h = hush(false, "backup", &[], t(999), &s, None);
        assert!(matches!(h, Some(Hush::Silenced { id: 1, .. })));
        assert_eq!(hush(false, "backup", &[], t(1000), &s, None), None);
        assert_eq!(hush(false, "other", &[], t(0), &s, None), None);
        // A recovery is held back too: nothing is sent while silenced.
        let h = hush(false, "x", &tags, t(0), &s, None);
        assert!(matches!(h, Some(Hush::Silenced { id: 2, .. })));
    }

    #[test]
    fn an_acknowledgement_holds_back_reminders_only() {
        let acked = Some((t(10), "bob"));
        let h = hush(true, "j", &[], t(20), &[], acked);
        assert_eq!(
            h,
            Some(Hush::Acknowledged {
                at: t(10),
                by: "bob".into()
            })
        );
        assert_eq!(hush(true, "j", &[], t(20), &[], None), None);
        assert_eq!(hush(false, "j", &[], t(20), &[], acked), None);
    }

    #[test]
    fn a_hush_says_why_in_words() {
        let h = Hush::Silenced {
            id: 4,
            until: Timestamp::from_millis(0),
            reason: "disk swap".into(),
        };
        assert_eq!(
            h.to_string(),
            "silenced until 1970-01-01T00:00:00.000Z (silence 4: disk swap)"
        );
        let a = Hush::Acknowledged {
            at: Timestamp::from_millis(0),
            by: "ann".into(),
        };
        assert_eq!(
            a.to_string(),
            "acknowledged by ann at 1970-01-01T00:00:00.000Z"
        );
        let json = serde_json::to_string(&h).expect("serialises");
        assert_eq!(serde_json::from_str::<Hush>(&json).expect("parses"), h);
    }
}
