//! belfry's changes to the payloads tocsin plans, where a service can show more than a title and
//! a text: Slack's coloured attachment, Discord's embed, a Teams card, PagerDuty's
//! trigger/resolve. tocsin keeps everything it read from the URL (channels, threads, user names,
//! priorities, routing keys); belfry replaces only the message.

use belfry_core::render::{Limit, Markup, TextStyle, Tone, keep_end, render_text, truncate};
use belfry_core::{Kind, Notification};
use serde_json::{Map, Value, json};

use super::profile::Finish;
use crate::HttpRequest;

/// What PagerDuty's `action=` asks of every notification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum IncidentAction {
    /// Trigger on a problem, resolve otherwise (Apprise's `map`, belfry's default).
    #[default]
    Map,
    /// Always trigger (or update) the incident.
    Trigger,
    /// Always resolve it.
    Resolve,
}

/// What a URL says about finishing that tocsin's payload does not carry in a form belfry can
/// tell apart from tocsin's defaults: PagerDuty's `action=` and `dedup=`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct UrlFinish {
    pub action: IncidentAction,
    pub dedup: Option<String>,
}

impl UrlFinish {
    /// Reads the URL's query for `finish`; the error names the value.
    pub(crate) fn read(query: &[(String, String)], finish: Finish) -> Result<Self, String> {
        let mut out = UrlFinish::default();
        if finish != Finish::PagerDuty {
            return Ok(out);
        }
        for (k, v) in query {
            let v = v.trim();
            if k.eq_ignore_ascii_case("action") && !v.is_empty() {
                // Apprise takes the start of a name (`r` is `resolve`).
                let l = v.to_ascii_lowercase();
                out.action = [
                    ("trigger", IncidentAction::Trigger),
                    ("map", IncidentAction::Map),
                    ("resolve", IncidentAction::Resolve),
                ]
                .into_iter()
                .find(|(name, _)| name.starts_with(&l))
                .map(|(_, a)| a)
                .ok_or_else(|| format!("action={v:?} is not trigger, map or resolve"))?;
            } else if k.eq_ignore_ascii_case("dedup") && !v.is_empty() {
                out.dedup = Some(truncate(v, Limit::chars(255)));
            }
        }
        Ok(out)
    }
}

/// Applies `finish` to one planned request. Requests that are not the message (a lookup, a
/// login, a file) are left alone: only a body of the expected shape is changed.
pub(crate) fn apply(finish: Finish, url: &UrlFinish, req: &mut HttpRequest, n: &Notification) {
    match finish {
        Finish::None => {}
        Finish::Prowl => prowl(req),
        _ => {
            let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&req.body) else {
                return;
            };
            let changed = match finish {
                Finish::Telegram => telegram(&mut body),
                Finish::Slack => slack(&mut body, n),
                Finish::Discord => discord(&mut body, n),
                Finish::Teams => teams(&mut body, n),
                Finish::PagerDuty => pagerduty(&mut body, url, n),
                Finish::Ntfy => ntfy(&mut body, n, req),
                Finish::Mattermost => mattermost(&mut body),
                Finish::None | Finish::Prowl => false,
            };
            if changed {
                req.body = serde_json::to_vec(&Value::Object(body)).expect("JSON serialises");
            }
        }
    }
}

/// The headline and the summary on one line: `🔴 job: Failed — exit code 1 …`.
fn one_line(n: &Notification) -> String {
    let headline = n.headline();
    let message = n.message.lines().next().unwrap_or("");
    match (headline.is_empty(), message.is_empty()) {
        (true, _) => message.to_owned(),
        (false, true) => headline,
        (false, false) => format!("{headline} — {message}"),
    }
}

/// The footer line: `belfry · run ID`.
fn footer(n: &Notification) -> String {
    match &n.run_id {
        Some(r) => format!("belfry · run {r}"),
        None => "belfry".to_owned(),
    }
}

/// belfry renders Telegram's text as HTML, whatever `format=` the URL names.
fn telegram(body: &mut Map<String, Value>) -> bool {
    if !body.contains_key("text") || !body.contains_key("chat_id") {
        return false;
    }
    body.insert("parse_mode".into(), json!("HTML"));
    true
}

/// Slack's incoming webhooks and `chat.postMessage` (tocsin's `attachments` payloads); a
/// workflow's `{"text": …}` is left as tocsin made it.
fn slack(body: &mut Map<String, Value>, n: &Notification) -> bool {
    if !body.contains_key("attachments") {
        return false;
    }
    let esc = |s: &str| Markup::SlackMrkdwn.escape(s);
    let text = render_text(
        n,
        &TextStyle {
            markup: Markup::SlackMrkdwn,
            title: false,
            details: false,
            tail_lines: 15,
            limit: Limit::chars(3000),
        },
    );
    let fields: Vec<Value> = if n.kind == Kind::Recovered {
        Vec::new()
    } else {
        n.facts()
            .into_iter()
            .filter(|f| f.label != "Run")
            .map(|f| {
                json!({
                    "title": f.label,
                    "value": esc(&truncate(&f.value, Limit::chars(300))),
                    "short": true,
                })
            })
            .collect()
    };
    let headline = esc(&truncate(&n.headline(), Limit::chars(256)));
    let attachment = json!({
        "fallback": truncate(&one_line(n), Limit::chars(300)),
        "color": n.tone().hex(),
        "title": headline,
        "text": text,
        "fields": fields,
        "footer": footer(n),
        "ts": n.time.as_millis() / 1000,
        "mrkdwn_in": ["text"],
    });
    body.insert(
        "text".into(),
        json!(if headline.is_empty() {
            esc(&truncate(&n.message, Limit::chars(256)))
        } else {
            headline
        }),
    );
    body.insert("attachments".into(), json!([attachment]));
    body.insert("mrkdwn".into(), json!(true));
    true
}

/// A Discord embed in the state's colour. tocsin's `content` (or its plain embed, with
/// `format=markdown`) is replaced; the user name, avatar, `tts` and link stay.
fn discord(body: &mut Map<String, Value>, n: &Notification) -> bool {
    if !body.contains_key("content") && !body.contains_key("embeds") {
        return false;
    }
    let link = body
        .get("embeds")
        .and_then(|e| e.get(0))
        .and_then(|e| e.get("url"))
        .cloned();
    body.remove("content");
    let description = render_text(
        n,
        &TextStyle {
            markup: Markup::Markdown,
            title: false,
            details: false,
            tail_lines: 20,
            limit: Limit::chars(3500),
        },
    );
    // Discord allows 25 fields of 1024 characters, and 6000 characters for the whole embed;
    // belfry's facts are few and short.
    let fields: Vec<Value> = n
        .facts()
        .into_iter()
        .filter(|f| f.label != "Run")
        .map(|f| {
            json!({
                "name": f.label,
                "value": truncate(&f.value, Limit::chars(256)),
                "inline": true,
            })
        })
        .collect();
    let mut embed = json!({
        "description": description,
        "color": n.tone().rgb(),
        "fields": fields,
        "footer": {"text": truncate(&footer(n), Limit::chars(256))},
        "timestamp": n.time.to_rfc3339(),
    });
    let headline = n.headline();
    if !headline.is_empty() {
        embed["title"] = json!(truncate(&headline, Limit::chars(256)));
    }
    if let Some(url) = link {
        embed["url"] = url;
    }
    body.insert("embeds".into(), json!([embed]));
    true
}

/// The Adaptive Card of a Teams workflow: a title in the state's colour, the summary, the
/// details as facts, and the end of the output one monospace line per block (Teams' text
/// blocks do not keep single line breaks).
fn teams(body: &mut Map<String, Value>, n: &Notification) -> bool {
    let Some(content) = body
        .get_mut("attachments")
        .and_then(|a| a.get_mut(0))
        .and_then(|a| a.get_mut("content"))
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("AdaptiveCard"))
    else {
        return false;
    };
    let colour = match n.tone() {
        Tone::Critical => "attention",
        Tone::Warning => "warning",
        Tone::Good => "good",
        Tone::Info => "accent",
    };
    let mut blocks = Vec::new();
    let headline = n.headline();
    if !headline.is_empty() {
        blocks.push(json!({
            "type": "TextBlock",
            "text": truncate(&headline, Limit::chars(256)),
            "weight": "Bolder",
            "size": "Large",
            "color": colour,
            "wrap": true,
            "style": "heading",
        }));
    }
    blocks.extend([
        json!({
            "type": "TextBlock",
            "text": truncate(&n.message, Limit::chars(2000)),
            "wrap": true,
        }),
        json!({
            "type": "FactSet",
            "facts": n.facts().into_iter().map(|f| json!({
                "title": f.label,
                "value": truncate(&f.value, Limit::chars(300)),
            })).collect::<Vec<_>>(),
        }),
    ]);
    if n.kind == Kind::Problem
        && let Some(tail) = n.tail_lines(20)
    {
        let tail = keep_end(&tail, Limit::chars(2000));
        blocks.push(json!({
            "type": "TextBlock",
            "text": "Output (end):",
            "weight": "Bolder",
            "wrap": true,
        }));
        for line in tail.lines() {
            blocks.push(json!({
                "type": "TextBlock",
                "text": if line.trim().is_empty() { "\u{a0}" } else { line },
                "fontType": "Monospace",
                "size": "Small",
                "spacing": "None",
                "wrap": true,
            }));
        }
    }
    content["body"] = Value::Array(blocks);
    true
}

/// The deduplication key of a job's incident: the same for the trigger of a problem and the
/// resolve of its recovery (a notification's own id would differ between the two). PagerDuty
/// takes 255 characters.
pub(crate) fn pagerduty_dedup_key(n: &Notification) -> String {
    truncate(&format!("belfry/{}", n.job), Limit::chars(255))
}

/// PagerDuty's Events API v2: a problem triggers (or updates) the job's incident, anything
/// else resolves it; `action=trigger` or `resolve` fixes one, and `dedup=` names the incident.
fn pagerduty(body: &mut Map<String, Value>, url: &UrlFinish, n: &Notification) -> bool {
    let Some(routing_key) = body.get("routing_key").cloned() else {
        return false;
    };
    let key = url.dedup.clone().unwrap_or_else(|| pagerduty_dedup_key(n));
    let trigger = match url.action {
        IncidentAction::Map => n.kind == Kind::Problem,
        IncidentAction::Trigger => true,
        IncidentAction::Resolve => false,
    };
    if !trigger {
        body.clear();
        body.insert("routing_key".into(), routing_key);
        body.insert("event_action".into(), json!("resolve"));
        body.insert("dedup_key".into(), json!(key));
        body.insert("client".into(), json!("belfry"));
        return true;
    }
    body.insert("event_action".into(), json!("trigger"));
    body.insert("dedup_key".into(), json!(key));
    body.insert("client".into(), json!("belfry"));
    let Some(Value::Object(payload)) = body.get_mut("payload") else {
        return true;
    };
    payload.insert(
        "summary".into(),
        json!(truncate(&one_line(n), Limit::chars(1024))),
    );
    payload.insert("timestamp".into(), json!(n.time.to_rfc3339()));
    // tocsin's default source is its own name; belfry's is the host the job ran on.
    if payload.get("source").and_then(Value::as_str) == Some("tocsin") {
        let source = n.host.clone().unwrap_or_else(|| "belfry".to_owned());
        payload.insert("source".into(), json!(source));
    }
    let mut details = match payload.remove("custom_details") {
        Some(Value::Object(d)) => d,
        _ => Map::new(),
    };
    let mut add = |k: &str, v: Value| {
        if !v.is_null() {
            // What the URL set (`+key=value`) wins.
            details.entry(k.to_owned()).or_insert(v);
        }
    };
    add("job", json!(n.job));
    add("state", json!(n.state.name()));
    add("reason", json!(n.reason_text));
    add("exit_code", json!(n.exit_code));
    add("signal", json!(n.signal));
    add("duration_seconds", json!(n.duration_seconds));
    add("host", json!(n.host));
    add("run_id", json!(n.run_id));
    add("consecutive_problems", json!(n.consecutive_problems));
    add("digest", json!(n.digest_phrase()));
    add(
        "error",
        json!(n.error.as_deref().map(|e| truncate(e, Limit::chars(2000)))),
    );
    add(
        "output_tail",
        json!(n.tail_lines(50).map(|t| keep_end(&t, Limit::chars(8000)))),
    );
    payload.insert("custom_details".into(), Value::Object(details));
    true
}

/// ntfy: problems at high priority (4) unless the URL chose one (`priority=`, sent by tocsin
/// as the `X-Priority` header).
fn ntfy(body: &mut Map<String, Value>, n: &Notification, req: &HttpRequest) -> bool {
    let chosen = req
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("x-priority"));
    if chosen || !body.contains_key("topic") || n.kind != Kind::Problem {
        return false;
    }
    body.insert("priority".into(), json!(4));
    true
}

/// Mattermost shows tocsin's name when the URL names no bot; belfry's instead.
fn mattermost(body: &mut Map<String, Value>) -> bool {
    if body.get("username").and_then(Value::as_str) != Some("tocsin") {
        return false;
    }
    body.insert("username".into(), json!("belfry"));
    true
}

/// Prowl's form fields: belfry is the application.
fn prowl(req: &mut HttpRequest) {
    let Ok(text) = std::str::from_utf8(&req.body) else {
        return;
    };
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
        if k == "application" {
            ser.append_pair(&k, "belfry");
        } else {
            ser.append_pair(&k, &v);
        }
    }
    req.body = ser.finish().into_bytes();
}
