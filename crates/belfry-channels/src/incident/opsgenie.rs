//! Opsgenie alerts: opened on a problem, closed on recovery, one alert per job (its alias).

use std::time::SystemTime;

use belfry_core::{Kind, Notification, email};
use serde_json::{Map, Value, json};

use crate::outcome::{classify_http, shorten};
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, parse_bool, split_list};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// Opsgenie: `opsgenie://APIKey[/@user][/#team][/*schedule][/^escalation]?region=us|eu&priority=…&alias=…&entity=…&tags=…&+detail=value`,
/// Apprise's syntax.
///
/// - A problem opens (creates) an alert; a recovery, or any OK notification, closes it.
/// - Every notification about a job uses the same alias, `belfry:JOB` (or `alias=`): Opsgenie
///   folds a repeated create of an open alert into it (counting it), which makes a retried
///   create harmless, and the close finds the alert by that alias. A close when no alert is
///   open is delivered (there is nothing to close).
/// - Targets become responders: `@` users, `#` teams, `*` schedules, `^` escalations; a bare
///   name is a user. A UUID is sent as an id, anything else as a name.
/// - `priority=` takes Opsgenie's own `1`…`5` / `P1`…`P5` (P1 most urgent), or the words
///   `emergency`, `high`, `normal` (the default, P3), `moderate`, `low`.
/// - `region=eu` uses Opsgenie's EU API.
/// - `action=` fixes what every notification does to the job's alert: `new` (create),
///   `close`, `acknowledge`, `note` (add the message as a note) or `delete`; `map` (the
///   default) chooses by the notification's Apprise type, `failure`/`warning` → `new`,
///   `success` → `close`, `info` → `close`, and `:failure=…`, `:success=…`, `:info=…`,
///   `:warning=…` change one entry (Apprise's syntax; a value may be shortened to its start,
///   matched in Apprise's order, so `:info=n` is `new` and `:info=no` is `note`). Apprise notes on `info`; belfry closes, since its `info`
///   notifications (a first success, a still-OK heartbeat) say the job is fine. An action on
///   an alert that is not open (Opsgenie answers 404) is delivered: there is nothing to do.
#[derive(Clone)]
pub struct Opsgenie {
    pub(crate) base: String,
    api_key: String,
    responders: Vec<Value>,
    priority: u8,
    /// What a notification of each Apprise type does: failure, warning, success, info.
    actions: [Action; 4],
    alias: Option<String>,
    entity: Option<String>,
    tags: Vec<String>,
    details: Vec<(String, String)>,
    describe: String,
    /// What may be secret in the URL, scrubbed from failure reasons (an error page may echo
    /// the request).
    secrets: Secrets,
}

impl std::fmt::Debug for Opsgenie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opsgenie")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What a notification does to the job's alert in Opsgenie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    New,
    Close,
    Acknowledge,
    Note,
    Delete,
}

/// The actions by name, in the order Apprise matches a shortened value against them.
const ACTIONS: [(&str, Action); 5] = [
    ("new", Action::New),
    ("close", Action::Close),
    ("delete", Action::Delete),
    ("acknowledge", Action::Acknowledge),
    ("note", Action::Note),
];

/// Apprise's notification types, in the order of [`Opsgenie::actions`].
const TYPES: [&str; 4] = ["failure", "warning", "success", "info"];

/// An action by its name or the start of it (`ack`, `n`), as Apprise reads one.
fn parse_action(raw: &str, key: &str, v: &str) -> Result<Action, UrlError> {
    let l = v.trim().to_ascii_lowercase();
    ACTIONS
        .iter()
        .find(|(name, _)| !l.is_empty() && name.starts_with(&l))
        .map(|(_, a)| *a)
        .ok_or_else(|| {
            UrlError::new(
                raw,
                format!("{key}={v:?} is not one of new, close, acknowledge, note, delete"),
            )
        })
}

/// The action of each notification type from `action=` and the `:type=action` keys.
fn parse_actions(raw: &str, p: &Parts) -> Result<[Action; 4], UrlError> {
    let mut actions = [Action::New, Action::New, Action::Close, Action::Close];
    match p.get("action").map(str::trim).filter(|a| !a.is_empty()) {
        None => {}
        Some(a) if "map".starts_with(&a.to_ascii_lowercase()) => {}
        Some(a) => actions = [parse_action(raw, "action", a)?; 4],
    }
    for (k, v) in &p.query {
        let Some(t) = k.strip_prefix(':') else {
            continue;
        };
        let lt = t.to_ascii_lowercase();
        let i = TYPES
            .iter()
            .position(|name| !lt.is_empty() && name.starts_with(&lt))
            .ok_or_else(|| {
                UrlError::new(
                    raw,
                    format!("{k:?} names no notification type (failure, warning, success, info)"),
                )
            })?;
        actions[i] = parse_action(raw, k, v)?;
    }
    Ok(actions)
}

fn responder(raw: &str, target: &str) -> Result<Value, UrlError> {
    let (kind, name) = match target.chars().next() {
        Some('@') => ("user", &target[1..]),
        Some('#') => ("team", &target[1..]),
        Some('*') => ("schedule", &target[1..]),
        Some('^') => ("escalation", &target[1..]),
        _ => ("user", target),
    };
    if name.is_empty() {
        return Err(UrlError::new(
            raw,
            format!("the responder {target:?} has no name"),
        ));
    }
    let key = if is_uuid(name) {
        "id"
    } else if kind == "user" {
        "username"
    } else {
        "name"
    };
    Ok(json!({"type": kind, key: name}))
}

fn parse_priority(raw: &str, v: &str) -> Result<u8, UrlError> {
    let l = v.trim().to_ascii_lowercase();
    let l = l.strip_prefix('p').unwrap_or(&l);
    if let Ok(n @ 1..=5) = l.parse::<u8>() {
        return Ok(n);
    }
    // Words by their meaning; Apprise's prefixes (`e`, `h`, `n`, `m`, `l`) too.
    for (word, p) in [
        ("emergency", 1),
        ("high", 2),
        ("normal", 3),
        ("moderate", 4),
        ("low", 5),
    ] {
        if !l.is_empty() && word.starts_with(l) {
            return Ok(p);
        }
    }
    Err(UrlError::new(
        raw,
        format!("priority={v:?} is not 1-5, P1-P5, emergency, high, normal, moderate or low"),
    ))
}

impl Opsgenie {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(
            raw,
            &[
                "region", "priority", "alias", "entity", "tags", "batch", "to", "apikey", "action",
            ],
            &['+', ':'],
            "opsgenie",
        )?;
        let api_key = p.get("apikey").map(str::to_owned).unwrap_or(p.host.clone());
        if api_key.is_empty() || api_key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::new(
                raw,
                "the API key is missing: opsgenie://APIKey",
            ));
        }
        let base = match p.get("region").map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("us") => "https://api.opsgenie.com",
            Some("eu") => "https://api.eu.opsgenie.com",
            Some(other) => {
                return Err(UrlError::new(
                    raw,
                    format!("region={other:?} is not us or eu"),
                ));
            }
        };
        if let Some(b) = p.get("batch") {
            // Accepted for Apprise's sake: belfry always sends every responder in one alert.
            parse_bool(raw, "batch", b)?;
        }
        let mut responders = Vec::new();
        for t in p
            .path
            .iter()
            .map(String::as_str)
            .chain(p.get("to").into_iter().flat_map(split_list))
        {
            responders.push(responder(raw, t)?);
        }
        let priority = match p.get("priority") {
            Some(v) if !v.is_empty() => parse_priority(raw, v)?,
            _ => 3,
        };
        let actions = parse_actions(raw, &p)?;
        let alias = p.get("alias").filter(|a| !a.is_empty()).map(str::to_owned);
        if alias.as_ref().is_some_and(|a| a.chars().count() > 512) {
            return Err(UrlError::new(raw, "alias= is longer than 512 characters"));
        }
        let describe = format!(
            "opsgenie://***/{}{}",
            responders.len(),
            if responders.len() == 1 {
                " responder"
            } else {
                " responders"
            }
        );
        Ok(Opsgenie {
            base: base.to_owned(),
            api_key,
            responders,
            priority,
            actions,
            alias,
            entity: p.get("entity").filter(|e| !e.is_empty()).map(str::to_owned),
            tags: p
                .get("tags")
                .map(split_list)
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect(),
            details: p
                .query
                .iter()
                .filter_map(|(k, v)| k.strip_prefix('+').map(|k| (k.to_owned(), v.clone())))
                .collect(),
            describe,
            secrets: Secrets::of_url(raw),
        })
    }

    /// What `n` does to its job's alert, by its Apprise type (a type belfry does not know
    /// counts as its kind's).
    fn action(&self, n: &Notification) -> Action {
        let t = match TYPES.iter().position(|t| *t == n.apprise_type) {
            Some(i) => i,
            None => match n.kind {
                Kind::Problem => 0,
                Kind::Recovered => 2,
                Kind::Ok => 3,
            },
        };
        self.actions[t]
    }

    /// The alias of the alert for `n`'s job: `belfry:JOB`, or the URL's `alias=`.
    fn alias(&self, n: &Notification) -> String {
        match &self.alias {
            Some(a) => a.clone(),
            None => shorten_exact(&format!("belfry:{}", n.job), 512),
        }
    }

    fn create(&self, msg: &Message<'_>) -> Value {
        let n = msg.notification;
        let mut details = Map::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                details.insert(k.to_owned(), json!(v));
            }
        };
        put("job", Some(n.job.clone()));
        put("state", Some(n.state.name().to_owned()));
        put("reason", Some(n.reason_text.clone()));
        put("exit_code", n.exit_code.map(|c| c.to_string()));
        put("signal", n.signal.map(|s| s.to_string()));
        put("host", n.host.clone());
        put("run_id", n.run_id.clone());
        put("type", Some(n.apprise_type.clone()));
        for (k, v) in &self.details {
            details.insert(k.clone(), json!(v));
        }
        let mut p = json!({
            "message": shorten_exact(&n.title, 130),
            "alias": self.alias(n),
            "description": shorten_exact(&email::render(n).text, 15_000),
            "details": details,
            "priority": format!("P{}", self.priority),
            "source": "belfry",
            "note": format!("belfry notification {}", msg.idempotency_key),
        });
        if !self.responders.is_empty() {
            p["responders"] = Value::Array(self.responders.clone());
        }
        if !self.tags.is_empty() {
            p["tags"] = json!(self.tags);
        }
        if let Some(e) = &self.entity {
            p["entity"] = json!(e);
        } else if let Some(h) = &n.host {
            p["entity"] = json!(h);
        }
        p
    }
}

/// At most `max` characters, cut on a character boundary (with `…` when cut, counted).
fn shorten_exact(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        shorten(s, max - 1)
    }
}

impl Channel for Opsgenie {
    fn scheme(&self) -> &'static str {
        "opsgenie"
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let n = msg.notification;
        let headers = vec![
            (
                "Authorization".to_owned(),
                format!("GenieKey {}", self.api_key),
            ),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        if self.action(n) == Action::New {
            return Some(vec![HttpRequest {
                method: Method::Post,
                url: format!("{}/v2/alerts", self.base),
                headers,
                body: serde_json::to_vec(&self.create(msg)).expect("a JSON value serialises"),
            }]);
        }
        let alias: String = url::form_urlencoded::byte_serialize(self.alias(n).as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        let alert = format!("{}/v2/alerts/{alias}", self.base);
        let note = json!({
            "source": "belfry",
            "user": "belfry",
            "note": shorten_exact(&format!("{}: {}", n.title, n.message), 25_000),
        });
        let (method, url, body) = match self.action(n) {
            Action::Close => (
                Method::Post,
                format!("{alert}/close?identifierType=alias"),
                Some(note),
            ),
            Action::Acknowledge => (
                Method::Post,
                format!("{alert}/acknowledge?identifierType=alias"),
                Some(note),
            ),
            Action::Note => (
                Method::Post,
                format!("{alert}/notes?identifierType=alias"),
                Some(note),
            ),
            Action::Delete | Action::New => (
                Method::Delete,
                format!("{alert}?identifierType=alias&source=belfry&user=belfry"),
                None,
            ),
        };
        let body = match body {
            Some(b) => serde_json::to_vec(&b).expect("a JSON value serialises"),
            None => Vec::new(),
        };
        let headers = if body.is_empty() {
            headers.into_iter().take(1).collect()
        } else {
            headers
        };
        Some(vec![HttpRequest {
            method,
            url,
            headers,
            body,
        }])
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reqs = self.plan(msg).unwrap_or_default();
            let on_open_alert = self.action(msg.notification) != Action::New;
            let o =
                crate::http::send_planned(reqs, &self.describe, cx, |status, retry_after, body| {
                    // Nothing open under this alias: nothing to close, note or delete.
                    if on_open_alert && status == 404 {
                        return Outcome::Delivered;
                    }
                    classify_http(status, retry_after, body, SystemTime::now())
                })
                .await;
            self.secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_become_responders_by_prefix() {
        let o = Opsgenie::from_apprise(
            "opsgenie://KEY/@ada/%23ops/*oncall/^escalate/bob/#infra\
             ?to=@3f2b1c4d-0a1b-4c2d-9e8f-001122334455",
        )
        .unwrap();
        assert_eq!(
            o.responders,
            [
                json!({"type": "user", "username": "ada"}),
                json!({"type": "team", "name": "ops"}),
                json!({"type": "schedule", "name": "oncall"}),
                json!({"type": "escalation", "name": "escalate"}),
                json!({"type": "user", "username": "bob"}),
                json!({"type": "team", "name": "infra"}),
                json!({"type": "user", "id": "3f2b1c4d-0a1b-4c2d-9e8f-001122334455"}),
            ]
        );
        assert_eq!(o.describe(), "opsgenie://***/7 responders");
    }

    #[test]
    fn priorities_regions_and_bad_values() {
        let pr = |v: &str| {
            Opsgenie::from_apprise(&format!("opsgenie://K?priority={v}")).map(|o| o.priority)
        };
        assert_eq!(pr("1").unwrap(), 1);
        assert_eq!(pr("P5").unwrap(), 5);
        assert_eq!(pr("emergency").unwrap(), 1);
        assert_eq!(pr("h").unwrap(), 2);
        assert_eq!(pr("low").unwrap(), 5);
        assert!(pr("7").unwrap_err().to_string().contains("priority=\"7\""));
        let o = Opsgenie::from_apprise("opsgenie://K?region=EU").unwrap();
        assert_eq!(o.base, "https://api.eu.opsgenie.com");
        let e = Opsgenie::from_apprise("opsgenie://SECRETKEY?region=asia")
            .unwrap_err()
            .to_string();
        assert!(e.contains("region") && !e.contains("SECRETKEY"), "{e}");
        let e = Opsgenie::from_apprise("opsgenie://SECRETKEY/@")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no name") && !e.contains("SECRETKEY"), "{e}");
    }
}
