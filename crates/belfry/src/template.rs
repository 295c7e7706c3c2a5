//! Per-channel title and body templates (minijinja, Jinja2's syntax).
//!
//! ```toml
//! [channels.ops]
//! url = "slack://TokenA/TokenB/TokenC"
//! title = "{{ job }} is {{ state }} on {{ host }}"
//! body = "{{ outcome }}{% if duration %} after {{ duration }}{% endif %}; {{ reason_text }}"
//! ```
//!
//! A template replaces the notification's `title` or `message` before the channel formats it,
//! so Slack still colours it and e-mail still adds the details. The variables are the
//! notification's fields ([`VARIABLES`]); a variable that does not exist, or a syntax error,
//! is an error when the configuration is loaded: each template is compiled, checked for
//! unknown names, and rendered against a sample notification with strict undefined values
//! then. A field that is `null` for a given notification (no exit code) prints as nothing;
//! test it with `{% if exit_code is not none %}`. Should a template still fail on a real
//! notification (a filter given a `null`), the channel gets belfry's own text with a note,
//! never nothing.
//!
//! ```
//! use belfry::template::Templates;
//!
//! let t = Templates::new(Some("[{{ host }}] {{ title }}"), None).unwrap();
//! let n = t.apply(&belfry::template::sample());
//! assert_eq!(n.title, "[db1] nightly-backup: Failed");
//!
//! let e = Templates::new(Some("{{ jobb }}"), None).unwrap_err();
//! assert!(e.to_string().contains("unknown variable jobb"));
//! ```

use std::sync::Arc;

use belfry_core::{
    Adhoc, Attachment, Details, Event, MessageType, Notification, Policy, State, Timestamp, decide,
    duration_from_secs_f64, format_duration,
};
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// The variables a template can use: every field of the notification (see `docs/webhook.md`)
/// and three conveniences: `duration` (the run time in words, `2.3s`), `outcome` (what ended
/// the run: `exit code 1`, `killed by signal 9`, `timed out`) and `attachments` (the names of
/// the attached files).
pub const VARIABLES: &[&str] = &[
    "version",
    "id",
    "kind",
    "job",
    "state",
    "previous_state",
    "reason",
    "reason_text",
    "title",
    "message",
    "type",
    "exit_code",
    "signal",
    "duration_seconds",
    "host",
    "run_id",
    "started_at",
    "time",
    "consecutive_problems",
    "error",
    "output_tail",
    "duration",
    "outcome",
    "attachments",
];

/// A template that does not compile, names a variable that does not exist, or fails on the
/// sample notification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{which} template{at}: {why}", at = self.line.map_or(String::new(), |l| format!(", its line {l}")))]
pub struct TemplateError {
    which: &'static str,
    line: Option<usize>,
    why: String,
}

impl TemplateError {
    /// `"title"` or `"body"`.
    pub fn which(&self) -> &'static str {
        self.which
    }
}

/// A channel's title and body templates, compiled and checked.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
    title: bool,
    body: bool,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("title", &self.title)
            .field("body", &self.body)
            .finish()
    }
}

const TITLE: &str = "title";
const BODY: &str = "body";

impl Templates {
    /// Compiles and checks the templates given.
    pub fn new(title: Option<&str>, body: Option<&str>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_formatter(|out, state, value| {
            if value.is_none() {
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        for (which, src) in [(TITLE, title), (BODY, body)] {
            if let Some(src) = src {
                env.add_template_owned(which, src.to_owned())
                    .map_err(|e| error(which, &e, src))?;
            }
        }
        let globals: Vec<String> = env.globals().map(|(k, _)| k.to_owned()).collect();
        let sample = context(&sample());
        for (which, src) in [(TITLE, title), (BODY, body)] {
            let Some(src) = src else {
                continue;
            };
            let t = env.get_template(which).map_err(|e| error(which, &e, src))?;
            let mut unknown: Vec<String> = t
                .undeclared_variables(false)
                .into_iter()
                .filter(|v| !VARIABLES.contains(&v.as_str()) && !globals.contains(v))
                .collect();
            unknown.sort();
            if let Some(v) = unknown.first() {
                return Err(TemplateError {
                    which,
                    line: None,
                    why: format!(
                        "unknown variable {v} (the variables are: {})",
                        VARIABLES.join(", ")
                    ),
                });
            }
            t.render(&sample).map_err(|e| error(which, &e, src))?;
        }
        Ok(Templates {
            env: Arc::new(env),
            title: title.is_some(),
            body: body.is_some(),
        })
    }

    /// Whether a title template is set.
    pub fn has_title(&self) -> bool {
        self.title
    }

    /// Whether a body template is set.
    pub fn has_body(&self) -> bool {
        self.body
    }

    /// `n` with its title and message replaced by the templates' renderings. A template that
    /// fails on this notification leaves belfry's own text, and the message says why.
    pub fn apply(&self, n: &Notification) -> Notification {
        let ctx = context(n);
        let mut out = n.clone();
        let mut notes = Vec::new();
        for (which, given) in [(TITLE, self.title), (BODY, self.body)] {
            if !given {
                continue;
            }
            let rendered = match self.env.get_template(which) {
                Ok(t) => t.render(&ctx).map_err(|e| error(which, &e, t.source())),
                Err(e) => Err(error(which, &e, "")),
            };
            match rendered {
                Ok(text) if which == TITLE => out.title = text,
                Ok(text) => out.message = text,
                Err(e) => notes.push(e.to_string()),
            }
        }
        for note in notes {
            out.message.push_str(&format!(" [belfry: the {note}]"));
        }
        out
    }
}

/// Our error for minijinja's; the template's own line is named only when it has several.
fn error(which: &'static str, e: &minijinja::Error, src: &str) -> TemplateError {
    let why = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    TemplateError {
        which,
        line: e.line().filter(|&l| l > 0 && src.trim_end().contains('\n')),
        why,
    }
}

/// What a template sees for `n`.
///
/// Serialised straight from the struct, not through `serde_json::Value`: with serde_json's
/// `arbitrary_precision` (which the tocsin crate turns on for the whole build) a
/// `serde_json::Number` serialises as a private map, and a template would see `{…}` for every
/// number.
fn context(n: &Notification) -> Value {
    let base = Value::from(Serde(n));
    let mut map: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
    if let Ok(keys) = base.try_iter() {
        for key in keys {
            if let Some(name) = key.as_str() {
                map.insert(name.to_owned(), base.get_attr(name).unwrap_or_default());
            }
        }
    }
    let names: Vec<&str> = n.attachments.iter().map(|a| a.name.as_str()).collect();
    map.insert("attachments".into(), Value::from(Serde(&names)));
    let duration = n
        .duration_seconds
        .map(|s| format_duration(duration_from_secs_f64(s)));
    map.insert("duration".into(), Value::from(Serde(&duration)));
    map.insert("outcome".into(), Value::from(n.outcome_phrase()));
    Value::from_pairs(map)
}

/// A notification with every field set, for checking templates: a second failure of a job
/// that was OK.
pub fn sample() -> Notification {
    let at = Timestamp::from_millis(1_800_000_000_000);
    let event = Event {
        job: "nightly-backup".into(),
        state: State::Failed,
        at,
        details: Details {
            run_id: Some("01a2006e-4b7a-7c55-8b4e-5e1f8a0c2d33".into()),
            started_at: Some(Timestamp::from_millis(1_800_000_000_000 - 41_200)),
            exit_code: Some(3),
            signal: Some(15),
            duration: Some(std::time::Duration::from_millis(41_200)),
            host: Some("db1".into()),
            error: Some("pg_dump: connection refused".into()),
            output_tail: Some("dumping…\npg_dump: error: connection refused\n".into()),
            ..Details::default()
        },
    };
    let policy = Policy::default();
    let before = Timestamp::from_millis(1_800_000_000_000 - 86_400_000);
    let ok = decide(None, &State::Ok, before, &policy);
    let previous = belfry_core::advance(None, &State::Ok, before, &ok);
    let decision = decide(previous.as_ref(), &event.state, at, &policy);
    let mut n = Notification::new(
        "01a2006e-5c1b-7d3f-9a8e-2f6b0c9d4e11".into(),
        &event,
        previous.as_ref(),
        &decision,
    );
    n.attachments = vec![Attachment::new("df.txt", b"/ 91%\n".to_vec())];
    n
}

/// A hand-written message as `belfry test` sends it, for `belfry send`-like callers.
pub fn test_message(channel: &str, host: Option<String>) -> Adhoc {
    Adhoc {
        job: "belfry-test".into(),
        title: "belfry test".into(),
        body: format!(
            "A test message from belfry{} to the channel {channel}.",
            host.as_deref()
                .map_or(String::new(), |h| format!(" on {h}"))
        ),
        message_type: MessageType::Info,
        host,
        reason: "test",
        reason_text: "sent with belfry test".into(),
        attachments: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_variable_exists_and_nothing_else() {
        let Ok(serde_json::Value::Object(_)) = serde_json::to_value(sample()) else {
            panic!("a notification is an object");
        };
        let all = VARIABLES
            .iter()
            .map(|v| format!("{{{{ {v} }}}}"))
            .collect::<Vec<_>>()
            .join("|");
        let t = Templates::new(None, Some(&all)).unwrap();
        let body = t.apply(&sample()).message;
        assert!(body.starts_with("1|01a2006e-5c1b-"), "{body}");
        assert!(
            body.contains("|problem|nightly-backup|failed|ok|"),
            "{body}"
        );
        assert!(
            body.ends_with("|41.2s|killed by signal 15: pg_dump: connection refused|['df.txt']"),
            "{body}"
        );
        // The sample has every field set (none prints as nothing, which would hide a gap).
        assert!(!body.contains("||"), "{body}");
    }

    #[test]
    fn unknown_variables_and_syntax_errors_are_caught_before_any_send() {
        let e = Templates::new(Some("{{ job }}"), Some("ok\n{{ job.name.first }}")).unwrap_err();
        assert_eq!(e.which(), "body");
        let e = Templates::new(Some("{{ job }} {{ stat }}"), None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("title template: unknown variable stat"),
            "{e}"
        );
        let e = Templates::new(None, Some("line one\n{% if job %}\nno end")).unwrap_err();
        assert!(e.to_string().contains("syntax error"), "{e}");
        let e = Templates::new(None, Some("a\nb {{ job | no_such_filter }}")).unwrap_err();
        assert!(
            e.to_string().contains("its line 2") && e.to_string().contains("filter"),
            "{e}"
        );
        // Names a template declares itself are fine, and so are the built-in functions.
        Templates::new(
            None,
            Some("{% set s = job | upper %}{{ s }}{% for i in range(2) %}{{ i }}{% endfor %}"),
        )
        .unwrap();
    }

    #[test]
    fn null_fields_print_as_nothing_and_a_failing_render_keeps_belfrys_text() {
        let mut n = sample();
        n.exit_code = None;
        n.error = None;
        let t = Templates::new(Some("[{{ exit_code }}]"), Some("{{ exit_code + 1 }}")).unwrap();
        let out = t.apply(&n);
        assert_eq!(out.title, "[]");
        assert!(out.message.starts_with(&n.message), "{}", out.message);
        assert!(
            out.message.contains("[belfry: the body template"),
            "{}",
            out.message
        );
    }
}
