//! The services that the `tocsin` crate parses and plans for: Telegram, Discord, Slack,
//! Mattermost, Rocket.Chat, Microsoft Teams workflows, Google Chat, Zulip, ntfy, Gotify,
//! Pushover, Pushbullet, Prowl, PagerDuty, Signal, Home Assistant, IFTTT, Bark, DingTalk,
//! Feishu, Lark, WeCom group robots, ServerChan, and the XML and form webhooks.
//!
//! tocsin reads the Apprise URL (checked against Apprise field by field) and builds each
//! service's requests without I/O; belfry renders the message ([`belfry_core::render`]),
//! finishes the payload where the service can show more than text ([`finish`]), sends the
//! requests through its own [`Context`](crate::Context) (so the delivery engine's timeouts,
//! retries and pacing apply), and judges every answer itself ([`classify`]).

mod classify;
mod finish;
mod plain;
mod profile;

use std::sync::OnceLock;

use belfry_core::render::{Limit, Markup, TextStyle, Tone, render_text, truncate};
use belfry_core::{Decision, Details, Event, Notification, Reason, State, Timestamp};
use tocsin::{ParseError, TransportError};

use self::profile::{Feed, Profile};
use crate::outcome::shorten;
use crate::secrets::Secrets;
use crate::url_parse::{APPRISE_GLOBAL_OPTIONS, UrlError, decode, query_pairs, redact_url};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome, Pace};

/// One service behind an Apprise URL.
pub(crate) struct AppriseChannel {
    profile: &'static Profile,
    scheme: &'static str,
    /// tocsin's reading of the URL: made when the URL is read, or, for a URL in a plain form
    /// ([`plain`]), on its first use (`None` then if tocsin refuses it, which the plain forms'
    /// tests rule out).
    service: OnceLock<Option<tocsin::Service>>,
    markup: Markup,
    verify_tls: bool,
    /// What the URL says about finishing the payload (PagerDuty's `action=`, `dedup=`).
    url_finish: finish::UrlFinish,
    describe: String,
    /// Parts of the URL that may be secret, scrubbed from every failure reason in case a
    /// service quotes them back; collected on the first failure (most channels a process
    /// reads, at start, never fail).
    secrets: OnceLock<Secrets>,
    raw: String,
}

impl std::fmt::Debug for AppriseChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppriseChannel")
            .field("service", &self.profile.name)
            .field("url", &self.describe)
            .finish_non_exhaustive()
    }
}

/// The schemes of the services tocsin plans for, for error messages.
pub(crate) const SCHEMES: &[&str] = &[
    "tgram",
    "discord",
    "slack",
    "mmost",
    "mmosts",
    "rocket",
    "rockets",
    "workflows",
    "workflow",
    "gchat",
    "zulip",
    "ntfy",
    "ntfys",
    "gotify",
    "gotifys",
    "pover",
    "pbul",
    "prowl",
    "pagerduty",
    "signal",
    "signals",
    "hassio",
    "hassios",
    "ifttt",
    "bark",
    "barks",
    "dingtalk",
    "feishu",
    "lark",
    "wecombot",
    "schan",
    "xml",
    "xmls",
    "form",
    "forms",
];

/// Every service tocsin plans for.
pub(crate) fn profiles() -> &'static [Profile] {
    profile::PROFILES
}

/// The channel for `raw` if `scheme` (lowercase) is one of the services tocsin plans for.
pub(crate) fn parse(raw: &str, scheme: &str) -> Option<Result<Box<dyn Channel>, UrlError>> {
    let profile = profile::by_scheme(scheme)?;
    let scheme = profile
        .schemes
        .iter()
        .find(|s| **s == scheme)
        .copied()
        .unwrap_or(profile.schemes[0]);
    if let Err(e) = check_options(raw, profile, scheme) {
        return Some(Err(e));
    }
    let channel = if plain::is_plain(raw, profile.name) {
        AppriseChannel::new(raw, profile, scheme, None)
    } else {
        read(raw, profile, scheme)
    };
    Some(channel.map(|c| Box::new(c) as Box<dyn Channel>))
}

/// The channel for `raw`, read by tocsin now.
fn read(
    raw: &str,
    profile: &'static Profile,
    scheme: &'static str,
) -> Result<AppriseChannel, UrlError> {
    tocsin::Service::parse(raw)
        .map_err(|e| explain(raw, e, Some(profile)))
        .and_then(|service| AppriseChannel::new(raw, profile, scheme, Some(service)))
}

/// [`read`] for a URL of a tocsin service, whatever its form (for the plain forms' tests).
#[cfg(test)]
fn read_now(raw: &str) -> Result<AppriseChannel, UrlError> {
    let scheme = raw.split("://").next().unwrap_or_default();
    let profile = profile::by_scheme(scheme).expect("a tocsin service's scheme");
    read(raw, profile, profile.schemes[0])
}

/// Options Apprise 2.3 reads for a service that tocsin does not act on yet: refused by name,
/// rather than accepted and ignored (found by planning each option with several values and
/// seeing no change; see docs/decisions.md, "One rule for unknown options").
const UNSUPPORTED: &[(&str, &[&str])] = &[(
    "bark",
    &[
        "action", "archive", "copy", "delete", "id", "subtitle", "ttl",
    ],
)];

/// Refuses a query option that is neither one every Apprise service takes nor one Apprise
/// reads for this service: Apprise ignores what it does not know, so a misspelt option would
/// silently do nothing (docs/decisions.md, "One rule for unknown options").
fn check_options(raw: &str, profile: &Profile, scheme: &str) -> Result<(), UrlError> {
    for (k, _) in query_pairs(raw) {
        let lk = k.to_ascii_lowercase();
        if UNSUPPORTED
            .iter()
            .any(|(name, keys)| *name == profile.name && keys.contains(&lk.as_str()))
        {
            return Err(UrlError::new(
                raw,
                format!(
                    "option {k:?} is Apprise's for {} but belfry does not support it yet; \
                     remove it (the message is sent without it otherwise)",
                    profile.label
                ),
            ));
        }
        if profile.options.contains(&lk.as_str())
            || APPRISE_GLOBAL_OPTIONS.contains(&lk.as_str())
            || k.chars()
                .next()
                .is_some_and(|c| profile.prefixes.contains(&c))
        {
            continue;
        }
        let known = if profile.options.is_empty() {
            "none of its own".to_owned()
        } else {
            profile.options.join(", ")
        };
        return Err(UrlError::new(
            raw,
            format!(
                "unknown option {k:?} for {} ({scheme}://); its options are {known}, besides \
                 the ones every service takes ({})",
                profile.label,
                APPRISE_GLOBAL_OPTIONS.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The channel for a service's own web address (`https://discord.com/api/webhooks/…`, a
/// Slack hook, a Teams workflow), or `None` for an address no service claims.
///
/// Only addresses on a service's host (or with a workflow's path) are handed to tocsin: a plain
/// webhook address then costs no regular expression at all.
pub(crate) fn parse_address(raw: &str) -> Option<Result<Box<dyn Channel>, UrlError>> {
    let hint = known_address(raw)?;
    let result = match tocsin::Service::parse(raw) {
        Ok(service) => match profile::by_name(service.name()) {
            Some(profile) => AppriseChannel::new(raw, profile, profile.schemes[0], Some(service)),
            None => return None,
        },
        Err(ParseError::UnsupportedService) => Err(UrlError::new(
            raw,
            format!(
                "this looks like a {} address, but not one of the forms belfry reads; \
                 expected {}",
                hint.label, hint.shape
            ),
        )),
        Err(e) => Err(explain(raw, e, Some(hint))),
    };
    Some(result.map(|c| Box::new(c) as Box<dyn Channel>))
}

/// The service whose host (and path) a web address has. tocsin reads the web addresses of
/// these services only.
fn known_address(raw: &str) -> Option<&'static Profile> {
    let url = url::Url::parse(raw).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let path = url.path().to_ascii_lowercase();
    let name = if (host == "discord.com" || host == "discordapp.com")
        && path.starts_with("/api/webhooks")
    {
        "discord"
    } else if host == "hooks.slack.com" || host == "hooks.slack-gov.com" {
        "slack"
    } else if host == "chat.googleapis.com" {
        "gchat"
    } else if host == "maker.ifttt.com" {
        "ifttt"
    } else if host == "open.larksuite.com" && path.starts_with("/open-apis/bot/") {
        "lark"
    } else if host == "qyapi.weixin.qq.com" && path.starts_with("/cgi-bin/webhook/") {
        "wecombot"
    } else if host == "open.feishu.cn" {
        // Apprise reads no Feishu web address: refused with the form to use.
        "feishu"
    } else if host == "oapi.dingtalk.com" {
        "dingtalk"
    } else if host == "sctapi.ftqq.com" {
        "serverchan"
    } else if host == "ntfy.sh" {
        "ntfy"
    } else if host.starts_with("mattermost.") && path.contains("/hooks/") {
        "mattermost"
    } else if path.contains("/workflows/") && path.contains("/triggers/") {
        "workflows"
    } else {
        return None;
    };
    profile::by_name(name)
}

/// What is wrong with a URL tocsin refused. tocsin's errors say only the kind of problem; for
/// an option, belfry finds which one by parsing again without each.
fn explain(raw: &str, e: ParseError, profile: Option<&'static Profile>) -> UrlError {
    let (label, shape) = profile.map_or(("this service", "its documented form"), |p| {
        (p.label, p.shape)
    });
    let why = match e {
        ParseError::InvalidToken => match profile.and_then(|p| p.token_hint) {
            Some(hint) => hint.to_owned(),
            None => {
                format!("a token or key is missing or not in its expected form; expected {shape}")
            }
        },
        ParseError::InvalidOption => match culprit_option(raw) {
            Some(key) => format!("the value of option {key:?} is not one {label} accepts"),
            None => {
                format!("a target or option is missing or not valid for {label}; expected {shape}")
            }
        },
        ParseError::UnsupportedService => format!("{label} is not supported by this build"),
        _ => format!("it is not a valid {label} URL; expected {shape}"),
    };
    UrlError::new(raw, why)
}

/// The query option whose removal makes the URL parse, if there is one.
fn culprit_option(raw: &str) -> Option<String> {
    let (base, query) = raw.split_once('?')?;
    let pairs: Vec<&str> = query.split(['&', ';']).filter(|p| !p.is_empty()).collect();
    (0..pairs.len()).find_map(|skip| {
        let rest: Vec<&str> = pairs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, p)| *p)
            .collect();
        let candidate = format!("{base}?{}", rest.join("&"));
        tocsin::Service::parse(&candidate).ok().map(|_| {
            let key = pairs[skip].split('=').next().unwrap_or("");
            decode(key)
        })
    })
}

/// The notification used to check, when a URL is read, that it leads somewhere.
fn sample() -> &'static Notification {
    static SAMPLE: OnceLock<Notification> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let ev = Event {
            job: "belfry".into(),
            state: State::Failed,
            at: Timestamp::from_millis(0),
            details: Details::default(),
        };
        Notification::new(
            "check".into(),
            &ev,
            None,
            &Decision {
                notify: true,
                reason: Reason::FirstRun,
            },
        )
    })
}

impl AppriseChannel {
    /// The channel for `raw`, with tocsin's reading of it, or without for a URL in a plain
    /// form (read on first use).
    fn new(
        raw: &str,
        profile: &'static Profile,
        scheme: &'static str,
        service: Option<tocsin::Service>,
    ) -> Result<Self, UrlError> {
        let query = query_pairs(raw);
        let markdown = query
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("format") && v.eq_ignore_ascii_case("markdown"));
        let url_finish =
            finish::UrlFinish::read(&query, profile.finish).map_err(|e| UrlError::new(raw, e))?;
        let describe = redact_url(raw);
        let channel = AppriseChannel {
            profile,
            scheme,
            markup: if profile.markdown_opt_in && markdown {
                Markup::Markdown
            } else {
                profile.markup
            },
            // A plain form has no query: certificates are checked, tocsin's default.
            verify_tls: service.as_ref().is_none_or(|s| s.options().verify_tls()),
            url_finish,
            service: OnceLock::new(),
            secrets: OnceLock::new(),
            raw: raw.to_owned(),
            describe,
        };
        // A URL that parses but leads nowhere (no topic, no event, no usable target) is an
        // error now, when the configuration is read, rather than a dead alert later. The list
        // form first: a plan may compile patterns (Slack's e-mail addresses) that cost
        // milliseconds, and this runs at every start. A plain form leads somewhere by
        // construction (`plain`'s tests).
        let Some(service) = service else {
            return Ok(channel);
        };
        let sample = channel.feed(sample());
        let nowhere =
            service.prepare(&sample).is_empty() && service.plan(&sample).next_request().is_none();
        channel.service.get_or_init(|| Some(service));
        if nowhere {
            // Bark's and Pushover's end-to-end encryption: tocsin plans nothing rather than
            // send in the clear what the URL asked to encrypt.
            let encrypted = query
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("key") && !v.is_empty());
            if encrypted && matches!(profile.name, "bark" | "pushover") {
                return Err(UrlError::new(
                    raw,
                    format!(
                        "{}'s end-to-end encryption (key=, e2ee=) is not supported by belfry; \
                         without it the message still goes over HTTPS",
                        profile.label
                    ),
                ));
            }
            return Err(UrlError::new(
                raw,
                format!(
                    "it gives {} nowhere to send to (no usable chat, channel, topic, device or \
                     event); expected {}",
                    profile.label, profile.shape
                ),
            ));
        }
        Ok(channel)
    }

    /// tocsin's reading of the URL, made now if the URL was read in a plain form.
    fn service(&self) -> Option<&tocsin::Service> {
        self.service
            .get_or_init(|| tocsin::Service::parse(&self.raw).ok())
            .as_ref()
    }

    /// What a send says if tocsin refuses, on first use, a URL read in a plain form.
    fn unread(&self) -> String {
        format!(
            "{}: tocsin refused this URL when it was first used, though belfry had accepted \
             its form; this is a bug in belfry (please report it with the URL's shape)",
            self.profile.label
        )
    }

    /// The notification as tocsin takes it: belfry's rendered title and body.
    fn feed(&self, n: &Notification) -> tocsin::Notification {
        let p = self.profile;
        let style = |title: bool, limit: Limit| TextStyle {
            markup: self.markup,
            title,
            details: true,
            tail_lines: p.tail_lines,
            limit,
        };
        let (title, body) = match p.feed {
            Feed::Apart(max) => (
                truncate(&n.headline(), Limit::chars(max)),
                render_text(n, &style(false, p.limit)),
            ),
            Feed::Merged => {
                let title = truncate(&n.headline(), Limit::chars(250));
                // tocsin joins them with "\r\n".
                let room = p.limit.max.saturating_sub(p.limit.measure(&title) + 2);
                (title, render_text(n, &style(false, p.limit.with_max(room))))
            }
            Feed::InBody => (String::new(), render_text(n, &style(true, p.limit))),
            Feed::Topic(max) => (
                truncate(&n.job, Limit::chars(max)),
                render_text(n, &style(true, p.limit)),
            ),
        };
        let kind = match n.tone() {
            Tone::Critical => tocsin::Kind::Failure,
            Tone::Warning => tocsin::Kind::Warning,
            Tone::Good => tocsin::Kind::Success,
            Tone::Info => tocsin::Kind::Info,
        };
        let format = if self.markup == Markup::Markdown && p.markdown_opt_in {
            tocsin::Format::Markdown
        } else {
            p.format
        };
        let mut out = tocsin::Notification::new(body)
            .title(title)
            .kind(kind)
            .format(format);
        // Files go to the services that take them (tocsin knows which, and how).
        for a in &n.attachments {
            out = out.attach(
                tocsin::Attachment::new(a.name.clone(), a.data.clone()).mime(a.mime_type.clone()),
            );
        }
        out
    }

    /// A planned request as belfry sends it, with belfry's payload changes.
    fn convert(
        &self,
        req: &tocsin::PreparedRequest,
        n: &Notification,
    ) -> Result<HttpRequest, String> {
        let method = match req.method {
            tocsin::Method::Get => Method::Get,
            tocsin::Method::Post => Method::Post,
            tocsin::Method::Put => Method::Put,
            tocsin::Method::Patch => Method::Patch,
            tocsin::Method::Delete => Method::Delete,
            tocsin::Method::Head => Method::Head,
            tocsin::Method::Options => Method::Options,
            tocsin::Method::Update => Method::Update,
            other => return Err(format!("the HTTP method {other} cannot be sent")),
        };
        let mut out = HttpRequest {
            method,
            url: req.url.expose().to_owned(),
            headers: req
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_owned()))
                .collect(),
            body: req.body.expose().to_vec(),
        };
        finish::apply(self.profile.finish, &self.url_finish, &mut out, n);
        Ok(out)
    }

    fn scrub(&self, reason: &str) -> String {
        self.secrets
            .get_or_init(|| Secrets::of_url(&self.raw))
            .scrub(reason)
            .into_owned()
    }

    /// Sends the plan's requests one by one, each answer judged by the service's rules and
    /// handed back to the plan (some services build the next request from it).
    ///
    /// A retryable failure stops the plan at once (a rate-limited service is not sent the rest):
    /// the whole message is sent again later (delivery is at least once). A permanent failure
    /// of one request does not keep the others (other chats or channels) from going out; the
    /// outcome is then that failure.
    async fn deliver(&self, msg: &Message<'_>, cx: &Context) -> Outcome {
        let n = msg.notification;
        let Some(service) = self.service() else {
            return Outcome::permanent(self.unread());
        };
        let mut plan = service.plan(&self.feed(n));
        let mut permanent: Option<Outcome> = None;
        let mut last_answer = String::new();
        while let Some(prepared) = plan.next_request() {
            let req = match self.convert(&prepared, n) {
                Ok(r) => r,
                Err(why) => {
                    plan.report(Err(TransportError::InvalidRequest));
                    permanent.get_or_insert(Outcome::permanent(why));
                    continue;
                }
            };
            let answer = match cx.exchange(&req, &self.describe, self.verify_tls).await {
                Ok(a) => a,
                Err(reason) => return Outcome::retry(self.scrub(&reason)),
            };
            let verdict = {
                let text = answer.text();
                let head = match text.char_indices().nth(4096) {
                    Some((i, _)) => &text[..i],
                    None => &text,
                };
                let verdict =
                    (self.profile.classify)(answer.status, answer.retry_after.as_deref(), head);
                if verdict.is_delivered() {
                    last_answer = shorten(head.trim(), 200);
                }
                verdict
            };
            match verdict {
                Outcome::Delivered => {
                    plan.report(Ok(tocsin::Response::with_body(answer.status, answer.body)))
                }
                Outcome::Retry { after, reason } => {
                    return Outcome::Retry {
                        after,
                        reason: self.scrub(&reason),
                    };
                }
                Outcome::Permanent { reason } => {
                    plan.report(Err(if answer.status >= 400 {
                        TransportError::HttpStatus(answer.status)
                    } else {
                        TransportError::Rejected
                    }));
                    permanent.get_or_insert(Outcome::permanent(self.scrub(&reason)));
                }
            }
        }
        // tocsin knows which requests deliver and which only prepare or tidy up (a logout):
        // its outcomes decide whether the message got through, belfry's verdicts say why not.
        let outcomes = plan.finish();
        let label = self.profile.label;
        let failure = outcomes.iter().find_map(|o| match o {
            tocsin::Outcome::Failed(e) => Some(*e),
            _ => None,
        });
        let delivered = outcomes
            .iter()
            .any(|o| matches!(o, tocsin::Outcome::Delivered(_)));
        match (failure, permanent) {
            (None, _) if delivered => Outcome::Delivered,
            (_, Some(p)) => p,
            (None, None) => Outcome::permanent(format!(
                "{label}: nothing was sent (no usable chat, channel, topic or device)"
            )),
            (Some(TransportError::Rejected), None) => Outcome::permanent(self.scrub(&format!(
                "{label} did not confirm the message (it answered: {last_answer:?})"
            ))),
            (Some(TransportError::InvalidResponse), None) => Outcome::permanent(format!(
                "{label} answered in a way the next request could not be built from (a \
                 lookup or login that found nothing)"
            )),
            (Some(TransportError::InvalidRequest), None) => {
                Outcome::permanent(format!("{label}: a target of this URL cannot be used"))
            }
            (Some(other), None) => Outcome::permanent(format!("{label}: {other}")),
        }
    }
}

impl Channel for AppriseChannel {
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    /// The requests that can be built without an answer. A service that must ask first
    /// (Telegram without a chat id, a Rocket.Chat login, a Slack user looked up by e-mail)
    /// shows that first request when nothing else can be built.
    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let n = msg.notification;
        let service = self.service()?;
        let tn = self.feed(n);
        let mut reqs: Vec<HttpRequest> = service
            .prepare(&tn)
            .iter()
            .filter_map(|r| self.convert(r, n).ok())
            .collect();
        if reqs.is_empty()
            && let Some(first) = service.plan(&tn).next_request()
        {
            reqs.extend(self.convert(&first, n).ok());
        }
        Some(reqs)
    }

    /// The service's published rate limit, one request at a time; no limit for self-hosted
    /// servers.
    fn pace(&self) -> Pace {
        match self.profile.pace {
            Some((per_second, burst)) => Pace::limited(per_second, burst),
            None => Pace::default(),
        }
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(self.deliver(msg, cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_scheme_is_listed() {
        for p in profiles() {
            for s in p.schemes {
                assert!(SCHEMES.contains(s), "{s}");
            }
        }
    }

    fn channel(raw: &str) -> AppriseChannel {
        let scheme = raw.split("://").next().unwrap();
        let profile = profile::by_scheme(scheme).unwrap();
        let service = tocsin::Service::parse(raw).unwrap();
        AppriseChannel::new(raw, profile, profile.schemes[0], Some(service)).unwrap()
    }

    #[test]
    fn verify_no_is_honoured_and_the_default_checks_certificates() {
        assert!(channel("gotifys://gotify.example.com/AbCdEf").verify_tls);
        assert!(!channel("gotifys://gotify.example.com/AbCdEf?verify=no").verify_tls);
    }

    #[test]
    fn markdown_is_an_opt_in_where_it_changes_the_clients_rendering() {
        assert_eq!(channel("ntfy://topic").markup, Markup::Plain);
        assert_eq!(
            channel("ntfy://topic?format=markdown").markup,
            Markup::Markdown
        );
        // Telegram's text is belfry's HTML whatever the URL says.
        assert_eq!(
            channel("tgram://1:a/2?format=markdown").markup,
            Markup::Html
        );
    }

    #[test]
    fn the_option_at_fault_is_named() {
        assert_eq!(
            culprit_option("pagerduty://ikey@akey?region=mars&severity=info").as_deref(),
            Some("region")
        );
        assert_eq!(culprit_option("pagerduty://ikey@akey"), None);
    }
}
