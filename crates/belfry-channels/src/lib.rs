//! belfry's channels: where notifications go, configured by one URL each in Apprise's syntax.
//!
//! [`parse`] turns a URL into a [`Channel`]. A channel renders a [`Notification`] the way its
//! readers expect, sends it, and classifies what happened as an [`Outcome`]: delivered, retry
//! (maybe after a time the service named), or permanent. The delivery engine obeys that verdict.
//! Channels know nothing of the alert rules.
//!
//! HTTP channels plan their requests ([`Channel::plan`]) without I/O, and one shared
//! [`Context`] sends them.
//!
//! Supported:
//!
//! - `console://` (standard error) and the JSON webhook (`json://`, `jsons://`, and plain
//!   `http://` / `https://` addresses), which posts belfry's documented notification JSON
//!   (`docs/webhook.md`);
//! - through the `tocsin` crate, which parses Apprise URLs and plans each service's requests:
//!   Telegram (`tgram://`), Discord (`discord://`), Slack (`slack://`, webhooks and bots),
//!   Mattermost (`mmost://`), Rocket.Chat (`rocket://`), Microsoft Teams workflows
//!   (`workflows://`), Google Chat (`gchat://`), Zulip (`zulip://`), ntfy (`ntfy://`), Gotify
//!   (`gotify://`), Pushover (`pover://`), Pushbullet (`pbul://`), Prowl (`prowl://`), PagerDuty
//!   (`pagerduty://`), Signal (`signal://`), Home Assistant (`hassio://`), IFTTT (`ifttt://`),
//!   Bark (`bark://`), and the XML and form webhooks (`xml://`, `form://`); the secure variants
//!   (`mmosts://`, `ntfys://`, …) too; and the web addresses services show (Slack and Discord
//!   webhooks, Teams workflows, Google Chat spaces, IFTTT, ntfy.sh topics). belfry renders each
//!   message for its service ([`belfry_core::render`]), sends the planned requests through
//!   [`Context`], and judges each answer by the service's rules (Telegram's and Slack's
//!   refusals inside a `200`, `Retry-After`, Telegram's `retry_after`);
//! - belfry's own channels, each rendered with [`belfry_core::sms`] and
//!   [`belfry_core::email`]: e-mail over SMTP
//!   ([`Smtp`]: `mailto://`, `mailtos://`), [`SendGrid`] (`sendgrid://`), [`Twilio`] SMS
//!   (`twilio://`), [`Opsgenie`] (`opsgenie://`, opened on a problem and closed on recovery),
//!   a [`Command`] run per notification without a shell (`cmd://`), a [`File`] of JSON lines
//!   (`file://`), and desktop notifications (`desktop://`, with the `desktop` cargo feature).
//!
//! ```
//! let ch = belfry_channels::parse("json://user:hunter2@127.0.0.1:8080/hooks/belfry").unwrap();
//! assert_eq!(ch.scheme(), "json");
//! // Descriptions are safe to print: no password, no path.
//! assert_eq!(ch.describe(), "json://user:***@127.0.0.1:8080/…");
//!
//! let ch = belfry_channels::parse("tgram://123456789:AAH-secret/-100123").unwrap();
//! assert_eq!(ch.describe(), "tgram://***/…");
//!
//! let err = belfry_channels::parse("slack://only-one-token").unwrap_err();
//! assert!(err.to_string().contains("a Slack webhook needs three tokens"));
//!
//! // E-mail: Apprise's defaults, and what a dry run would show.
//! let mail = belfry_channels::parse("mailtos://ops:hunter2@gmail.com/oncall@example.org").unwrap();
//! assert_eq!(
//!     mail.describe(),
//!     "mailtos://ops@gmail.com:***@smtp.gmail.com:587 (STARTTLS) to oncall@example.org"
//! );
//!
//! // A command: each argument is a template, and no shell ever sees it.
//! let cmd = belfry_channels::parse("cmd://notify-send?arg={title}&arg={body}").unwrap();
//! assert_eq!(cmd.describe(), "cmd://notify-send {title} {body}");
//! ```

mod apprise;
mod command;
mod console;
mod desktop;
mod file;
mod http;
mod mail;
mod opsgenie;
mod outcome;
mod own;
mod secrets;
mod sendgrid;
mod smtp;
mod twilio;
mod url_parse;
mod url_parts;
mod webhook;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

pub use belfry_core::Notification;
pub use command::Command;
pub use console::Console;
#[cfg(feature = "desktop")]
pub use desktop::Desktop;
pub use file::File;
pub use http::{Answer, Context, HttpRequest, Method, USER_AGENT, default_classify};
pub use opsgenie::Opsgenie;
pub use outcome::{Outcome, classify_http, parse_retry_after, rate_limit_hint, shorten};
pub use own::parse_with_api_base;
pub use secrets::{MIN_SCRUBBED_LEN, Secrets};
pub use sendgrid::SendGrid;
pub use smtp::{Security, Smtp};
pub use twilio::Twilio;
pub use url_parse::{UrlError, parse, redact_url};

/// A boxed future, as channels return them (the trait must stay object-safe: belfry holds its
/// channels as `Box<dyn Channel>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One notification to deliver through one channel.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    /// What to say.
    pub notification: &'a Notification,
    /// Unique to this (notification, channel); passed to services that deduplicate.
    pub idempotency_key: &'a str,
}

/// A destination for notifications.
///
/// Implementations render the message for their service, send it, and judge the outcome
/// themselves ([`Outcome`]); they must never panic on a bad answer, and never put a secret in
/// a reason or a description.
pub trait Channel: Send + Sync + fmt::Debug {
    /// The URL scheme that made this channel (`"json"`, `"slack"`, `"console"`).
    fn scheme(&self) -> &'static str;

    /// The destination, safe to print: secrets replaced by `***`, paths by `…`.
    fn describe(&self) -> String;

    /// The HTTP requests this channel would send for `msg`, if it is an HTTP channel.
    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let _ = msg;
        None
    }

    /// How fast this destination may be sent to. The default suits a service that states no
    /// limit: no rate limit, 8 requests at a time.
    fn pace(&self) -> Pace {
        Pace::default()
    }

    /// Sends `msg` and classifies the outcome.
    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome>;
}

/// How fast one destination may be sent to: a token bucket (`per_second` tokens a second, at
/// most `burst` saved up) and a limit on requests in flight. The delivery engine keeps one per
/// destination, so a slow or rate-limited channel never holds up the others.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pace {
    /// Sustained sends per second; `None`: no limit.
    pub per_second: Option<f64>,
    /// Sends allowed at once after a quiet spell.
    pub burst: u32,
    /// Requests in flight at once.
    pub concurrency: usize,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            per_second: None,
            burst: 1,
            concurrency: 8,
        }
    }
}

impl Pace {
    /// At most `per_second` sends a second, `burst` at once, one request at a time.
    pub const fn limited(per_second: f64, burst: u32) -> Self {
        Pace {
            per_second: Some(per_second),
            burst,
            concurrency: 1,
        }
    }
}

/// Sends every planned request of an HTTP channel in order, stopping at the first failure;
/// the outcome is the first failure's, or delivered.
pub(crate) async fn send_planned(
    requests: Vec<HttpRequest>,
    describe: &str,
    cx: &Context,
    classify: impl Fn(u16, Option<&str>, &str) -> Outcome,
) -> Outcome {
    send_planned_checking(requests, describe, cx, true, classify).await
}

/// Like [`send_planned`]; `verify_tls: false` accepts any certificate.
pub(crate) async fn send_planned_checking(
    requests: Vec<HttpRequest>,
    describe: &str,
    cx: &Context,
    verify_tls: bool,
    classify: impl Fn(u16, Option<&str>, &str) -> Outcome,
) -> Outcome {
    for req in &requests {
        let o = cx.send_checking(req, describe, verify_tls, &classify).await;
        if !o.is_delivered() {
            return o;
        }
    }
    Outcome::Delivered
}
