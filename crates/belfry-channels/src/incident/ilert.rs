//! ilert through its events API: a problem raises the job's alert, a recovery resolves it, one
//! alert key per job.

use belfry_core::{Notification, email};
use serde_json::{Value, json};

use super::common::{choice, details, incident_key, is_key, opens, plus_pairs};
use crate::outcome::shorten;
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, parse_bool};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// ilert: `ilert://INTEGRATION_KEY?action=map|trigger|acknowledge|resolve&dedup=…&priority=high|low&route=…&click=URL&image=no&+label=value`,
/// Apprise's syntax.
///
/// - Every notification about a job carries the same alert key, `belfry/JOB` (or `dedup=`): a
///   problem sends `eventType: ALERT`, and a recovery or any OK notification `RESOLVE` with
///   that key, which resolves the alert.
/// - `action=trigger|acknowledge|resolve` fixes what every notification does (`ALERT`,
///   `ACCEPT`, `RESOLVE`); `map` (the default) chooses as above. Apprise resolves on `success`
///   only; belfry on `info` too.
/// - The job's details go in `customDetails`, the URL's `+label=value` in `labels`, `click=` in
///   `links`. `image=` is accepted and has no effect: belfry sends no image.
#[derive(Clone)]
pub struct Ilert {
    pub(crate) base: String,
    key: String,
    /// `None`: by the notification; else the event type of every notification.
    event: Option<&'static str>,
    dedup: Option<String>,
    priority: Option<&'static str>,
    route: Option<String>,
    click: Option<String>,
    labels: Vec<(String, String)>,
    secrets: Secrets,
}

impl std::fmt::Debug for Ilert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ilert").finish_non_exhaustive()
    }
}

/// The details are kept well inside what an event carries.
const DETAILS_MAX: usize = 20_000;

impl Ilert {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(
            raw,
            &[
                "key", "action", "dedup", "priority", "route", "click", "image",
            ],
            &['+'],
            "ilert",
        )?;
        let nonempty = |k: &str| {
            p.get(k)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let key = nonempty("key").unwrap_or_else(|| p.host.clone());
        if !is_key(&key) {
            return Err(UrlError::new(
                raw,
                "the integration key is missing or not letters, digits, _ and -: ilert://KEY",
            ));
        }
        let event = match nonempty("action") {
            None => None,
            Some(a) => match choice(&a, &["map", "trigger", "acknowledge", "resolve"]) {
                Some(0) => None,
                Some(1) => Some("ALERT"),
                Some(2) => Some("ACCEPT"),
                Some(_) => Some("RESOLVE"),
                None => {
                    return Err(UrlError::new(
                        raw,
                        format!("action={a:?} is not one of map, trigger, acknowledge, resolve"),
                    ));
                }
            },
        };
        let priority = match nonempty("priority") {
            None => None,
            Some(v) => match choice(&v, &["high", "low"]) {
                Some(0) => Some("HIGH"),
                Some(_) => Some("LOW"),
                None => {
                    return Err(UrlError::new(
                        raw,
                        format!("priority={v:?} is not high or low"),
                    ));
                }
            },
        };
        if let Some(v) = nonempty("image") {
            // Accepted for Apprise's sake: belfry sends no image.
            parse_bool(raw, "image", &v)?;
        }
        Ok(Ilert {
            base: "https://api.ilert.com".to_owned(),
            key,
            event,
            dedup: nonempty("dedup"),
            priority,
            route: nonempty("route"),
            click: nonempty("click"),
            labels: plus_pairs(&p),
            secrets: Secrets::of_url(raw),
        })
    }

    /// The event type `n` sends for its job's alert.
    fn event(&self, n: &Notification) -> &'static str {
        self.event
            .unwrap_or(if opens(n) { "ALERT" } else { "RESOLVE" })
    }

    fn body(&self, msg: &Message<'_>) -> Value {
        let n = msg.notification;
        let mut v = json!({
            "integrationKey": self.key,
            "eventType": self.event(n),
            "summary": n.title,
            "details": shorten(&email::render(n).text, DETAILS_MAX),
            "alertKey": incident_key(self.dedup.as_ref(), n),
            "customDetails": details(n),
        });
        if let Some(p) = self.priority {
            v["priority"] = json!(p);
        }
        if let Some(r) = &self.route {
            v["routingKey"] = json!(r);
        }
        if let Some(c) = &self.click {
            v["links"] = json!([{ "href": c }]);
        }
        if !self.labels.is_empty() {
            let labels: serde_json::Map<String, Value> = self
                .labels
                .iter()
                .map(|(k, val)| (k.clone(), json!(val)))
                .collect();
            v["labels"] = Value::Object(labels);
        }
        v
    }
}

impl Channel for Ilert {
    fn scheme(&self) -> &'static str {
        "ilert"
    }

    fn describe(&self) -> String {
        "ilert://***".to_owned()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        Some(vec![HttpRequest {
            method: Method::Post,
            url: format!("{}/api/events", self.base),
            headers: vec![
                ("Content-Type".to_owned(), "application/json".to_owned()),
                ("Accept".to_owned(), "application/json".to_owned()),
            ],
            body: serde_json::to_vec(&self.body(msg)).expect("a JSON value serialises"),
        }])
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reqs = self.plan(msg).unwrap_or_default();
            let o =
                crate::http::send_planned(reqs, "ilert://***", cx, crate::default_classify).await;
            self.secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_as_apprise_reads_them() {
        let i = Ilert::from_apprise(
            "ilert://il1api_KEY?action=ack&dedup=db&priority=H&route=ops&click=https://x.example/\
             &image=no&+team=storage",
        )
        .unwrap();
        assert_eq!(i.key, "il1api_KEY");
        assert_eq!(i.event, Some("ACCEPT"));
        assert_eq!(i.dedup.as_deref(), Some("db"));
        assert_eq!(i.priority, Some("HIGH"));
        assert_eq!(i.route.as_deref(), Some("ops"));
        assert_eq!(i.click.as_deref(), Some("https://x.example/"));
        assert_eq!(i.labels, [("team".to_owned(), "storage".to_owned())]);
        let i = Ilert::from_apprise("ilert://x?key=K2&action=map").unwrap();
        assert_eq!((i.key.as_str(), i.event), ("K2", None));
        assert_eq!(i.describe(), "ilert://***");
    }

    #[test]
    fn bad_values_are_refused_without_the_key() {
        for (url, what) in [
            ("ilert://", "integration key"),
            ("ilert://T0PS3CR3T.x", "integration key"),
            ("ilert://T0PS3CR3T?action=page", "action=\"page\""),
            ("ilert://T0PS3CR3T?priority=urgent", "priority=\"urgent\""),
            ("ilert://T0PS3CR3T?image=perhaps", "image"),
            ("ilert://T0PS3CR3T?region=eu", "unknown option"),
        ] {
            let e = Ilert::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("T0PS3CR3T"), "{url}: {e}");
        }
    }
}
