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
//!   Bark (`bark://`), DingTalk (`dingtalk://`), Feishu (`feishu://`), Lark (`lark://`), WeCom
//!   group robots (`wecombot://`), ServerChan (`schan://`), and the XML and form webhooks
//!   (`xml://`, `form://`); the secure variants (`mmosts://`, `ntfys://`, …) too; and the web
//!   addresses services show (Slack and Discord webhooks, Teams workflows, Google Chat spaces,
//!   IFTTT, ntfy.sh topics, Lark and WeCom robots). belfry renders each
//!   message for its service ([`belfry_core::render`]), sends the planned requests through
//!   [`Context`], and judges each answer by the service's rules (Telegram's and Slack's
//!   refusals inside a `200`, `Retry-After`, Telegram's `retry_after`);
//! - belfry's own channels, each rendered with [`belfry_core::sms`] and
//!   [`belfry_core::email`]: e-mail over SMTP ([`Smtp`]: `mailto://`, `mailtos://`),
//!   [`SendGrid`] (`sendgrid://`), [`Microsoft365`] mail through Graph (`azure://`,
//!   `o365://`), [`Twilio`] SMS (`twilio://`), SMS through Vonage,
//!   MessageBird, Plivo, ClickSend, Sinch and Telnyx ([`SmsApi`]), the incident services [`Opsgenie`]
//!   (`opsgenie://`) and [`Splunk`] On-Call (`splunk://`, `victorops://`), [`Squadcast`]
//!   (`squadcast://`), [`IncidentIo`] (`incidentio://`), [`Signl4`] (`signl4://`),
//!   [`PagerTree`] (`pagertree://`) and [`GoAlert`] (`goalert://`, `goalerts://`), [`Ilert`]
//!   (`ilert://`), [`XMatters`] (`xmatters://`), [`BetterStack`] (`betterstack://`), where a
//!   problem opens the job's incident and a
//!   recovery closes it, [`Matrix`] (`matrix://`, `matrixs://`: the client-server API, or a
//!   webhook bridge), [`Webex`] (`wxteams://`, `webex://`), [`NextcloudTalk`] (`nctalk://`,
//!   `nctalks://`), [`Line`] (`line://`), Amazon [`Sns`] (`sns://`) and [`Ses`] (`ses://`,
//!   e-mail), signed with AWS Signature Version 4, [`WhatsApp`] (`whatsapp://`, Meta's Cloud
//!   API), [`Pushsafer`] (`psafer://`, `psafers://`), [`Join`] (`join://`), [`Mastodon`]
//!   (`mastodon://`, `mastodons://`, `toot://`, `toots://`), [`Bluesky`] (`bsky://`,
//!   `bluesky://`), a [`RemoteSyslog`] server (`rsyslog://`, over UDP),
//!   the [`LocalSyslog`] (`syslog://`),
//!   an [`Mqtt`] broker (`mqtt://`, `mqtts://`), [`Irc`] channels and users (`irc://`,
//!   `ircs://`), [`Xmpp`] accounts and group chats (`xmpp://`, `xmpps://`), an [`AppriseApi`] server as a relay
//!   (`apprise://`, `apprises://`), a
//!   healthchecks-style pinger ([`HcPing`]: `hcping://`, `hcpings://`, what
//!   `belfry run` uses for `BELFRY_PING_URL`),
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

// The layout: shared parts at the top of `src` (no file among them names a family), one folder
// per family of channels, and `registry.rs` on top, the one place where a URL's scheme picks
// its family. A new channel is a folder (or a file in a family's folder) and a line in
// `registry.rs`. See docs/architecture.md.

// Shared parts, below every family.
mod channel;
mod http;
mod outcome;
mod secrets;
mod tls;
mod url_parse;
mod url_parts;

// The families, each with its parsing, request building, sending and outcome side by side.
mod apprise;
mod aws;
mod chat;
mod email;
mod foreign;
mod hcping;
mod incident;
mod irc;
mod local;
mod mqtt;
mod push;
mod relay;
mod sms;
mod social;
mod syslog;
mod webhook;
mod xmpp;

// From a URL's scheme to its family.
mod registry;

pub use aws::{Ses, Sns};
pub use belfry_core::Notification;
pub use channel::{BoxFuture, Channel, Message, Pace};
pub use chat::{Line, Matrix, NextcloudTalk, Webex, WhatsApp};
pub use email::{MailApi, Microsoft365, Security, SendGrid, Smtp};
pub use hcping::{DEFAULT_BODY_LIMIT as PING_BODY_LIMIT, HcPing};
pub use http::{Answer, Context, HttpRequest, Method, USER_AGENT, default_classify};
pub use incident::{
    BetterStack, GoAlert, Ilert, IncidentIo, Opsgenie, PagerTree, Signl4, Splunk, Squadcast,
    XMatters,
};
pub use irc::Irc;
#[cfg(feature = "desktop")]
pub use local::Desktop;
pub use local::{Command, Console, File};
pub use mqtt::Mqtt;
pub use outcome::{Outcome, classify_http, parse_retry_after, rate_limit_hint, shorten};
pub use push::{Join, Pushsafer};
pub use registry::{SchemeInfo, parse, parse_with_api_base, schemes};
pub use relay::AppriseApi;
pub use secrets::{MIN_SCRUBBED_LEN, Secrets};
pub use sms::{SmsApi, Twilio};
pub use social::{Bluesky, Mastodon};
pub use syslog::{LocalSyslog, RemoteSyslog};
pub use url_parse::{UrlError, redact_url};
pub use xmpp::Xmpp;
