//! Sending a message written by hand straight to channels, without the store: what
//! `belfry send` and `belfry test` do, and what a program can do to say something at once.
//!
//! Unlike an alert, such a message is not written to the outbox first: the caller is there to
//! see the outcome (an exit status, a `Vec<Sent>`), and a URL given on a command line is known
//! to no later process that could retry it. A retryable failure can be retried in place for
//! a while ([`SendSettings::retry_for`]).
//!
//! ```no_run
//! use belfry::core::{Adhoc, MessageType, Notification, Timestamp};
//! use belfry::send::{SendSettings, Target, send};
//!
//! let config = belfry::Config::default();
//! let targets = vec![Target::from_url("url 1", "json://127.0.0.1:8080/hook", None).unwrap()];
//! let n = Notification::adhoc(
//!     belfry::store::new_id(),
//!     Adhoc {
//!         job: "send".into(),
//!         title: "Backup".into(),
//!         body: "done".into(),
//!         message_type: MessageType::Success,
//!         host: None,
//!         reason: "sent",
//!         reason_text: "sent by hand".into(),
//!         attachments: Vec::new(),
//!     },
//!     Timestamp::now(),
//! );
//! for sent in send(&targets, &n, &SendSettings::from(&config)) {
//!     assert!(sent.outcome.is_delivered(), "{}: {:?}", sent.label, sent.outcome.reason());
//! }
//! ```

use std::borrow::Cow;
use std::path::Path;
use std::time::{Duration, Instant};

use belfry_channels::{Channel, Context, Message, Method, Outcome};
use belfry_core::{Notification, format_duration};

use crate::config::{ChannelConfig, Config};
use crate::deliver::{MIN_RETRY, jittered_backoff};
use crate::secret::{Lookup, Secrets, resolve};
use crate::template::Templates;

/// A channel to send to: a configured one, or a URL given by hand.
#[derive(Debug)]
pub struct Target {
    /// The configured channel's name, or a label such as `url 1` for a URL given by hand.
    pub label: String,
    channel: Box<dyn Channel>,
    templates: Option<Templates>,
    secrets: Secrets,
}

/// A URL given by hand that cannot be used. The message names the URL redacted (or the
/// reference that failed) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadUrl(String);

impl Target {
    /// A configured channel, with its templates. Fails only if its URL does not parse (it
    /// was checked when the configuration was loaded).
    pub fn configured(c: &ChannelConfig) -> Result<Target, BadUrl> {
        let channel = belfry_channels::parse(c.url())
            .map_err(|e| BadUrl(c.secrets().scrub(&e.to_string()).into_owned()))?;
        Ok(Target {
            label: c.name.clone(),
            channel,
            templates: c.templates().cloned(),
            secrets: c.secrets().clone(),
        })
    }

    /// A URL given by hand. `${env:…}` and `${file:…}` references in it are resolved (from
    /// this process's environment; relative files from `base_dir` or the working directory),
    /// which keeps a secret out of a command line that `ps` shows.
    pub fn from_url(label: &str, written: &str, base_dir: Option<&Path>) -> Result<Target, BadUrl> {
        let mut secrets = Secrets::default();
        let url = resolve(written, &Lookup::process(base_dir), &mut secrets).map_err(|e| {
            BadUrl(format!(
                "in the URL {}: {e}",
                belfry_channels::redact_url(written)
            ))
        })?;
        let channel = belfry_channels::parse(&url)
            .map_err(|e| BadUrl(secrets.scrub(&e.to_string()).into_owned()))?;
        secrets.add_url(&url);
        Ok(Target {
            label: label.to_owned(),
            channel,
            templates: None,
            secrets,
        })
    }

    /// This target, hiding `more` too in what it reports (every channel's secrets, since
    /// this channel's receiver may echo another's).
    pub fn also_hiding(mut self, more: &Secrets) -> Target {
        self.secrets.extend(more);
        self
    }

    /// Where it sends, safe to print (the URL redacted, secret values hidden).
    pub fn describe(&self) -> String {
        self.secrets.scrub(&self.channel.describe()).into_owned()
    }

    /// `n` as this target says it: its templates applied, if it has any.
    pub fn render<'a>(&self, n: &'a Notification) -> Cow<'a, Notification> {
        match &self.templates {
            Some(t) => Cow::Owned(t.apply(n)),
            None => Cow::Borrowed(n),
        }
    }

    /// What sending `n` would do, without doing it: the HTTP requests (method and address,
    /// redacted) for HTTP channels, and the title and body after the templates.
    pub fn preview(&self, n: &Notification) -> Preview {
        let rendered = self.render(n);
        let key = idempotency_key(n, &self.label);
        let msg = Message {
            notification: &rendered,
            idempotency_key: &key,
        };
        let requests = self.channel.plan(&msg).map(|reqs| {
            reqs.iter()
                .map(|r| PlannedRequest {
                    method: r.method,
                    address: self
                        .secrets
                        .scrub(&belfry_channels::redact_url(&r.url))
                        .into_owned(),
                    body_bytes: r.body.len(),
                })
                .collect()
        });
        Preview {
            label: self.label.clone(),
            destination: self.describe(),
            scheme: self.channel.scheme(),
            requests,
            title: self.secrets.scrub(&rendered.title).into_owned(),
            body: self.secrets.scrub(&rendered.message).into_owned(),
        }
    }
}

/// What a dry run shows for one target.
#[derive(Clone, Debug)]
pub struct Preview {
    /// The target's label.
    pub label: String,
    /// Its description, redacted.
    pub destination: String,
    /// Its URL scheme.
    pub scheme: &'static str,
    /// The HTTP requests it would send, if it is an HTTP channel.
    pub requests: Option<Vec<PlannedRequest>>,
    /// The title it would send (after its template).
    pub title: String,
    /// The body it would send (after its template).
    pub body: String,
}

/// One HTTP request a dry run would send.
#[derive(Clone, Debug)]
pub struct PlannedRequest {
    /// Its method.
    pub method: Method,
    /// Its address, redacted like a channel URL (`https://hooks.slack.com/…`).
    pub address: String,
    /// The size of its body.
    pub body_bytes: usize,
}

/// How [`send`] sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendSettings {
    /// One request's time limit.
    pub request_timeout: Duration,
    /// One attempt's time limit (a channel may send several requests).
    pub attempt_timeout: Duration,
    /// Keep retrying a retryable failure (with the delivery engine's backoff, or as the
    /// service's `Retry-After` says) while the next attempt would start within this long.
    /// Zero: one attempt.
    pub retry_for: Duration,
}

impl From<&Config> for SendSettings {
    /// `[delivery] request_timeout` and `wait`; no retries.
    fn from(c: &Config) -> Self {
        SendSettings {
            request_timeout: c.delivery.request_timeout,
            attempt_timeout: c.delivery.wait,
            retry_for: Duration::ZERO,
        }
    }
}

/// What became of one target.
#[derive(Clone, Debug)]
pub struct Sent {
    /// The target's label.
    pub label: String,
    /// Its description, redacted.
    pub destination: String,
    /// The last attempt's outcome; its reason has every secret value hidden.
    pub outcome: Outcome,
    /// How many attempts were made.
    pub attempts: u32,
}

fn idempotency_key(n: &Notification, label: &str) -> String {
    format!("{}:{label}", n.id)
}

/// Sends `n` to every target at once and waits for all of them. Each target's templates
/// are applied first.
pub fn send(targets: &[Target], n: &Notification, settings: &SendSettings) -> Vec<Sent> {
    if targets.is_empty() {
        return Vec::new();
    }
    let cx = Context::new(settings.request_timeout);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    rt.block_on(async {
        let sent =
            futures_util::future::join_all(targets.iter().map(|t| send_one(t, n, &cx, settings)))
                .await;
        cx.close().await;
        sent
    })
}

async fn send_one(t: &Target, n: &Notification, cx: &Context, s: &SendSettings) -> Sent {
    let started = Instant::now();
    let rendered = t.render(n);
    let key = idempotency_key(n, &t.label);
    let msg = Message {
        notification: &rendered,
        idempotency_key: &key,
    };
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        let outcome = match tokio::time::timeout(s.attempt_timeout, t.channel.send(&msg, cx)).await
        {
            Ok(o) => o,
            Err(_) => Outcome::retry(format!(
                "not delivered within {}",
                format_duration(s.attempt_timeout)
            )),
        };
        let Outcome::Retry { after, .. } = &outcome else {
            break outcome;
        };
        let wait = after
            .unwrap_or_else(|| jittered_backoff(attempts, crate::deliver::random_unit()))
            .max(MIN_RETRY);
        if started.elapsed().saturating_add(wait) > s.retry_for {
            break outcome;
        }
        tokio::time::sleep(wait).await;
    };
    let outcome = match outcome {
        Outcome::Retry { after, reason } => Outcome::Retry {
            after,
            reason: t.secrets.scrub(&reason).into_owned(),
        },
        Outcome::Permanent { reason } => Outcome::Permanent {
            reason: t.secrets.scrub(&reason).into_owned(),
        },
        delivered => delivered,
    };
    Sent {
        label: t.label.clone(),
        destination: t.describe(),
        outcome,
        attempts,
    }
}
