//! SIGNL4 through a team's inbound webhook: a problem raises the job's alert, a recovery
//! resolves it, one external id per job.

use belfry_core::{Notification, email};
use serde_json::{Value, json};

use super::common::{choice, details, incident_key, opens};
use crate::outcome::shorten;
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, parse_bool};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// SIGNL4: `signl4://SECRET?service=…&location=…&alerting_scenario=…&filtering=yes&external_id=…&action=…&status=…`,
/// Apprise's syntax (`dedup=` is `external_id=`).
///
/// - Every notification about a job carries the same external id, `belfry/JOB` (or
///   `external_id=`/`dedup=`): a problem raises the alert (`X-S4-Status: new`), and a recovery
///   or any OK notification resolves it (`resolved`).
/// - `action=` fixes what every notification does: `trigger` (raise), `acknowledge`,
///   `resolve`; `map` chooses as above, and is belfry's default. Apprise's default is `trigger`,
///   a new alert for every notification that nothing ever resolves; belfry keeps its promise
///   that a recovery closes what the problem opened.
/// - `status=new|acknowledged|resolved` fixes the status itself, as in Apprise.
#[derive(Clone)]
pub struct Signl4 {
    pub(crate) base: String,
    secret: String,
    service: Option<String>,
    location: Option<String>,
    scenario: Option<String>,
    filtering: bool,
    external_id: Option<String>,
    /// `None`: by the notification; else the status every notification sends.
    status: Option<&'static str>,
    secrets: Secrets,
}

impl std::fmt::Debug for Signl4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signl4").finish_non_exhaustive()
    }
}

/// The body text is kept well inside what a webhook event carries.
const BODY_MAX: usize = 20_000;

impl Signl4 {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(
            raw,
            &[
                "secret",
                "service",
                "location",
                "alerting_scenario",
                "filtering",
                "external_id",
                "dedup",
                "action",
                "status",
            ],
            &[],
            "signl4",
        )?;
        let nonempty = |k: &str| {
            p.get(k)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let secret = nonempty("secret").unwrap_or_else(|| p.host.clone());
        if secret.is_empty()
            || !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            return Err(UrlError::new(
                raw,
                "the team or integration secret is missing or not letters, digits, _, - and .: \
                 signl4://SECRET",
            ));
        }
        let mut status = match p.get("action").filter(|a| !a.trim().is_empty()) {
            None => None,
            Some(a) => match choice(a, &["trigger", "map", "acknowledge", "resolve"]) {
                Some(0) => Some("new"),
                Some(1) => None,
                Some(2) => Some("acknowledged"),
                Some(_) => Some("resolved"),
                None => {
                    return Err(UrlError::new(
                        raw,
                        format!("action={a:?} is not one of trigger, map, acknowledge, resolve"),
                    ));
                }
            },
        };
        if let Some(s) = nonempty("status") {
            status = Some(match s.to_ascii_lowercase().as_str() {
                "new" => "new",
                "acknowledged" => "acknowledged",
                "resolved" => "resolved",
                _ => {
                    return Err(UrlError::new(
                        raw,
                        format!("status={s:?} is not one of new, acknowledged, resolved"),
                    ));
                }
            });
        }
        let filtering = match p.get("filtering").filter(|v| !v.is_empty()) {
            Some(v) => parse_bool(raw, "filtering", v)?,
            None => false,
        };
        Ok(Signl4 {
            base: "https://connect.signl4.com".to_owned(),
            secret,
            service: nonempty("service"),
            location: nonempty("location"),
            scenario: nonempty("alerting_scenario"),
            filtering,
            external_id: nonempty("external_id").or_else(|| nonempty("dedup")),
            status,
            secrets: Secrets::of_url(raw),
        })
    }

    /// The status `n` sends for its job's alert.
    fn status(&self, n: &Notification) -> &'static str {
        self.status
            .unwrap_or(if opens(n) { "new" } else { "resolved" })
    }

    fn body(&self, msg: &Message<'_>) -> Value {
        let n = msg.notification;
        let mut v = Value::Object(details(n));
        v["title"] = json!(n.title);
        v["body"] = json!(shorten(&email::render(n).text, BODY_MAX));
        v["X-S4-SourceSystem"] = json!("belfry");
        v["X-S4-ExternalID"] = json!(incident_key(self.external_id.as_ref(), n));
        v["X-S4-Status"] = json!(self.status(n));
        if let Some(s) = &self.service {
            v["X-S4-Service"] = json!(s);
        }
        if let Some(s) = &self.scenario {
            v["X-S4-AlertingScenario"] = json!(s);
        }
        if let Some(l) = &self.location {
            v["X-S4-Location"] = json!(l);
        }
        if self.filtering {
            v["X-S4-Filtering"] = json!(true);
        }
        v
    }
}

impl Channel for Signl4 {
    fn scheme(&self) -> &'static str {
        "signl4"
    }

    fn describe(&self) -> String {
        "signl4://***".to_owned()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        Some(vec![HttpRequest {
            method: Method::Post,
            url: format!("{}/webhook/{}/", self.base, self.secret),
            headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
            body: serde_json::to_vec(&self.body(msg)).expect("a JSON value serialises"),
        }])
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reqs = self.plan(msg).unwrap_or_default();
            let o =
                crate::http::send_planned(reqs, "signl4://***", cx, crate::default_classify).await;
            self.secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_as_apprise_reads_them() {
        let s = Signl4::from_apprise(
            "signl4://team-secret?service=db&location=52.5,13.4&alerting_scenario=single_ack\
             &filtering=yes&dedup=backup&action=ack",
        )
        .unwrap();
        assert_eq!(s.secret, "team-secret");
        assert_eq!(s.service.as_deref(), Some("db"));
        assert_eq!(s.location.as_deref(), Some("52.5,13.4"));
        assert_eq!(s.scenario.as_deref(), Some("single_ack"));
        assert!(s.filtering);
        assert_eq!(s.external_id.as_deref(), Some("backup"));
        assert_eq!(s.status, Some("acknowledged"));
        let s = Signl4::from_apprise("signl4://x?secret=S2&action=map&status=Resolved").unwrap();
        assert_eq!((s.secret.as_str(), s.status), ("S2", Some("resolved")));
        let s = Signl4::from_apprise("signl4://x?action=trigger").unwrap();
        assert_eq!(s.status, Some("new"));
        assert_eq!(s.describe(), "signl4://***");
    }

    #[test]
    fn bad_values_are_refused_without_the_secret() {
        for (url, what) in [
            ("signl4://", "secret is missing"),
            ("signl4://T0PS3CR3T?action=page", "action=\"page\""),
            ("signl4://T0PS3CR3T?status=open", "status=\"open\""),
            ("signl4://T0PS3CR3T?filtering=perhaps", "filtering"),
            ("signl4://T0PS3CR3T?priority=1", "unknown option"),
        ] {
            let e = Signl4::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("T0PS3CR3T"), "{url}: {e}");
        }
    }
}
