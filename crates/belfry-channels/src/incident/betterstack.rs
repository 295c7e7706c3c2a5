//! Better Stack (Better Stack Uptime, once Better Uptime) through its incidents API: a problem
//! opens an incident named after the job, a recovery resolves the open incidents of that name.
//! Apprise has no plugin for it, so the URL is belfry's own, shaped like Squadcast's.

use belfry_core::{Notification, email};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use super::common::{action, incident_key, is_key, opens};
use crate::outcome::shorten;
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, parse_bool};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// Better Stack: `betterstack://TOKEN?requester=EMAIL&team=NAME&policy=ID&team_wait=SECONDS&call=yes&sms=yes&email=yes&push=yes&critical_alert=yes&dedup=NAME&action=map|trigger|resolve`,
/// with an Uptime API token (`token=` also takes it).
///
/// Better Stack's incidents carry no key the sender chooses; an incident's resolve needs the
/// id Better Stack gave it. So the incident's `name` is the key, `belfry/JOB` (or `dedup=`),
/// and every notification starts by listing the open incidents
/// (`GET /api/v3/incidents?resolved=false`, 50 a page, up to 10 pages):
///
/// - A problem creates an incident (`POST /api/v3/incidents`: `name`, the title as `summary`,
///   belfry's text as `description`) unless one of that name is open, into which it is folded
///   (the on-call person was alerted when it opened).
/// - A recovery or any OK notification resolves every open incident of that name
///   (`POST /api/v3/incidents/ID/resolve`, `resolved_by` the requester or `belfry`); with none
///   open there is nothing to close, which is delivered.
/// - `action=trigger` or `action=resolve` fixes what every notification does; `map` (the
///   default) chooses as above.
/// - `requester=` is the `requester_email`, `team=` the `team_name` (which a global token
///   needs, and which the listing is filtered by), `policy=` the escalation policy's id; the
///   alerting flags `call`, `sms`, `email`, `push` and `critical_alert` and `team_wait`
///   (seconds) are sent as written and otherwise left to Better Stack.
#[derive(Clone)]
pub struct BetterStack {
    pub(crate) base: String,
    token: String,
    /// `None`: by the notification; else always open (`true`) or resolve (`false`).
    trigger: Option<bool>,
    dedup: Option<String>,
    requester: Option<String>,
    team: Option<String>,
    policy: Option<String>,
    team_wait: Option<u64>,
    /// The alerting flags the URL sets, by their API names.
    alerts: Vec<(&'static str, bool)>,
    secrets: Secrets,
}

impl std::fmt::Debug for BetterStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BetterStack").finish_non_exhaustive()
    }
}

const DESCRIBE: &str = "betterstack://***";

/// The description is kept well inside what an incident carries.
const DESCRIPTION_MAX: usize = 20_000;

/// Incidents a page of the listing holds: Better Stack's maximum.
const PER_PAGE: u32 = 50;

/// Pages of open incidents read at most: 500 incidents open at once is far past what a team
/// works through, and a notification must not page through a history without end.
const MAX_PAGES: u32 = 10;

/// The incident's alerting flags, as the URL and the API both name them.
const ALERTS: [&str; 5] = ["call", "sms", "email", "push", "critical_alert"];

impl BetterStack {
    pub(crate) fn from_url(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let mut known = vec![
            "token",
            "requester",
            "team",
            "policy",
            "team_wait",
            "action",
            "dedup",
        ];
        known.extend(ALERTS);
        p.check_keys(raw, &known, &[], "betterstack")?;
        let nonempty = |k: &str| {
            p.get(k)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let token = nonempty("token").unwrap_or_else(|| p.host.clone());
        if !is_key(&token) {
            return Err(UrlError::new(
                raw,
                "the API token is missing or not letters, digits, _ and -: betterstack://TOKEN",
            ));
        }
        let trigger = action(raw, &p, ["map", "trigger", "resolve"])?;
        let requester = nonempty("requester");
        if let Some(r) = &requester
            && (!r.contains('@') || r.chars().any(char::is_whitespace))
        {
            return Err(UrlError::new(
                raw,
                format!("requester={r:?} is not an e-mail address"),
            ));
        }
        let policy = nonempty("policy");
        if let Some(id) = &policy
            && !is_key(id)
        {
            return Err(UrlError::new(
                raw,
                format!("policy={id:?} is not an escalation policy's id"),
            ));
        }
        let team_wait = match nonempty("team_wait") {
            None => None,
            Some(w) => Some(w.parse::<u64>().map_err(|_| {
                UrlError::new(raw, format!("team_wait={w:?} is not a number of seconds"))
            })?),
        };
        let mut alerts = Vec::new();
        for flag in ALERTS {
            if let Some(v) = nonempty(flag) {
                alerts.push((flag, parse_bool(raw, flag, &v)?));
            }
        }
        let mut secrets = Secrets::of_url(raw);
        secrets.add(&token);
        Ok(BetterStack {
            base: "https://uptime.betterstack.com".to_owned(),
            token,
            trigger,
            dedup: nonempty("dedup"),
            requester,
            team: nonempty("team"),
            policy,
            team_wait,
            alerts,
            secrets,
        })
    }

    /// Whether `n` opens (else resolves) its job's incident.
    fn triggers(&self, n: &Notification) -> bool {
        self.trigger.unwrap_or_else(|| opens(n))
    }

    fn request(&self, method: Method, path: &str, body: Option<&Value>) -> HttpRequest {
        let mut headers = vec![("Authorization".to_owned(), format!("Bearer {}", self.token))];
        if body.is_some() {
            headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
        }
        HttpRequest {
            method,
            url: format!("{}{path}", self.base),
            headers,
            body: body.map_or_else(Vec::new, |b| {
                serde_json::to_vec(b).expect("a JSON value serialises")
            }),
        }
    }

    /// Page `page` (from 1) of the open incidents, of the URL's team if it names one.
    fn list_request(&self, page: u32) -> HttpRequest {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("resolved", "false");
        q.append_pair("per_page", &PER_PAGE.to_string());
        if page > 1 {
            q.append_pair("page", &page.to_string());
        }
        if let Some(team) = &self.team {
            q.append_pair("team_name", team);
        }
        self.request(
            Method::Get,
            &format!("/api/v3/incidents?{}", q.finish()),
            None,
        )
    }

    fn create_request(&self, n: &Notification, name: &str) -> HttpRequest {
        let mut v = json!({
            "name": name,
            "summary": n.title,
            "description": shorten(&email::render(n).text, DESCRIPTION_MAX),
        });
        let mut put = |k: &str, val: Value| v[k] = val;
        if let Some(r) = &self.requester {
            put("requester_email", json!(r));
        }
        if let Some(t) = &self.team {
            put("team_name", json!(t));
        }
        if let Some(id) = &self.policy {
            put("policy_id", json!(id));
        }
        if let Some(w) = self.team_wait {
            put("team_wait", json!(w));
        }
        for (flag, on) in &self.alerts {
            put(flag, json!(on));
        }
        self.request(Method::Post, "/api/v3/incidents", Some(&v))
    }

    fn resolve_request(&self, id: &str) -> HttpRequest {
        let by = self.requester.as_deref().unwrap_or("belfry");
        self.request(
            Method::Post,
            &format!(
                "/api/v3/incidents/{}/resolve",
                utf8_percent_encode(id, NON_ALPHANUMERIC)
            ),
            Some(&json!({ "resolved_by": by })),
        )
    }

    /// The ids of the open incidents named `name`.
    async fn open_incidents(&self, name: &str, call: &Call<'_>) -> Result<Vec<String>, Outcome> {
        let mut ids = Vec::new();
        for page in 1..=MAX_PAGES {
            let v = call
                .json(self.list_request(page), "listing the open incidents", None)
                .await?;
            for incident in v["data"].as_array().into_iter().flatten() {
                let a = &incident["attributes"];
                if a["name"].as_str() == Some(name) && a["resolved_at"].is_null() {
                    match &incident["id"] {
                        Value::String(id) => ids.push(id.clone()),
                        Value::Number(id) => ids.push(id.to_string()),
                        _ => {}
                    }
                }
            }
            if v["pagination"]["next"].as_str().is_none_or(str::is_empty) {
                break;
            }
        }
        Ok(ids)
    }

    async fn steps(&self, n: &Notification, call: &Call<'_>) -> Result<(), Outcome> {
        let name = incident_key(self.dedup.as_ref(), n);
        let open = self.open_incidents(&name, call).await?;
        if self.triggers(n) {
            if open.is_empty() {
                call.json(self.create_request(n, &name), "creating the incident", None)
                    .await?;
            }
            return Ok(());
        }
        for id in open {
            // 409: resolved by someone else since it was listed, which is what was wanted.
            call.json(
                self.resolve_request(&id),
                &format!("resolving incident {id}"),
                Some(409),
            )
            .await?;
        }
        Ok(())
    }
}

/// One notification's requests, sent through one context.
struct Call<'a> {
    cx: &'a Context,
}

impl Call<'_> {
    /// Sends `req`; a 2xx answer's JSON (or a status `also_fine`'s), else the outcome, naming
    /// the step (`doing`).
    async fn json(
        &self,
        req: HttpRequest,
        doing: &str,
        also_fine: Option<u16>,
    ) -> Result<Value, Outcome> {
        let answer = self
            .cx
            .exchange(&req, DESCRIBE, true)
            .await
            .map_err(Outcome::retry)?;
        let text = answer.text();
        if Some(answer.status) == also_fine {
            return Ok(Value::Null);
        }
        match crate::default_classify(answer.status, answer.retry_after.as_deref(), &text) {
            Outcome::Delivered => Ok(serde_json::from_str(&text).unwrap_or(Value::Null)),
            Outcome::Retry { after, reason } => Err(Outcome::Retry {
                after,
                reason: format!("{DESCRIBE} ({doing}): {reason}"),
            }),
            Outcome::Permanent { reason } => Err(Outcome::permanent(format!(
                "{DESCRIBE} ({doing}): {reason}"
            ))),
        }
    }
}

impl Channel for BetterStack {
    fn scheme(&self) -> &'static str {
        "betterstack"
    }

    fn describe(&self) -> String {
        DESCRIBE.to_owned()
    }

    /// The listing of open incidents, then, for a problem, the incident it creates when none of
    /// its name is open. A resolve's address needs an id only the listing tells.
    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let n = msg.notification;
        let mut reqs = vec![self.list_request(1)];
        if self.triggers(n) {
            reqs.push(self.create_request(n, &incident_key(self.dedup.as_ref(), n)));
        }
        Some(reqs)
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let o = match self.steps(msg.notification, &Call { cx }).await {
                Ok(()) => Outcome::Delivered,
                Err(o) => o,
            };
            self.secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_into_the_incidents_fields() {
        let b = BetterStack::from_url(
            "betterstack://tok_123?requester=ops@example.org&team=Platform%20team&policy=981\
             &team_wait=180&call=yes&push=no&action=res&dedup=db",
        )
        .unwrap();
        assert_eq!(b.token, "tok_123");
        assert_eq!(b.requester.as_deref(), Some("ops@example.org"));
        assert_eq!(b.team.as_deref(), Some("Platform team"));
        assert_eq!(b.policy.as_deref(), Some("981"));
        assert_eq!(b.team_wait, Some(180));
        assert_eq!(b.alerts, [("call", true), ("push", false)]);
        assert_eq!((b.trigger, b.dedup.as_deref()), (Some(false), Some("db")));
        let b = BetterStack::from_url("betterstack://?token=T2&action=trigger").unwrap();
        assert_eq!((b.token.as_str(), b.trigger), ("T2", Some(true)));
        let q = b.list_request(3).url;
        assert_eq!(
            q,
            "https://uptime.betterstack.com/api/v3/incidents?resolved=false&per_page=50&page=3"
        );
    }

    #[test]
    fn bad_values_are_refused_without_the_token() {
        for (url, what) in [
            ("betterstack://", "API token is missing"),
            ("betterstack://SECRET.TOKEN", "API token"),
            ("betterstack://SECRETTOKEN?action=page", "action=\"page\""),
            (
                "betterstack://SECRETTOKEN?requester=ops",
                "requester=\"ops\" is not an e-mail address",
            ),
            (
                "betterstack://SECRETTOKEN?team_wait=soon",
                "team_wait=\"soon\"",
            ),
            ("betterstack://SECRETTOKEN?call=maybe", "call=\"maybe\""),
            ("betterstack://SECRETTOKEN?policy=a/b", "policy=\"a/b\""),
            (
                "betterstack://SECRETTOKEN?priority=high",
                "unknown option \"priority\" for betterstack://",
            ),
        ] {
            let e = BetterStack::from_url(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("SECRET"), "{url}: {e}");
        }
    }
}
