//! Squadcast through a service's incident webhook: a problem triggers the job's incident, a
//! recovery resolves it, one event id per job.

use belfry_core::{Notification, email};
use serde_json::{Value, json};

use super::common::{action, details, incident_key, is_key, opens, plus_pairs, web_address};
use crate::outcome::shorten;
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::Parts;
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// Squadcast: `squadcast://KEY?region=us|eu&action=map|trigger|resolve&dedup=…&priority=P1…P5&+tag=value`,
/// Apprise's syntax; or the webhook's own address,
/// `https://api.squadcast.com/v2/incidents/api/KEY` (`api.eu.squadcast.com` for the EU).
///
/// - Every notification about a job carries the same event id, `belfry/JOB` (or `dedup=`): a
///   problem sends `status: trigger`, which opens the incident (a repeat is folded into it),
///   and a recovery or any OK notification sends `status: resolve` with that id.
/// - `action=trigger` or `action=resolve` fixes what every notification does; `map` (the
///   default) chooses as above. Apprise resolves on `success` only; belfry resolves on `info`
///   too, as its `info` notifications say the job is fine.
/// - The job's details and the URL's `+tag=value` pairs go in `tags`.
#[derive(Clone)]
pub struct Squadcast {
    pub(crate) base: String,
    key: String,
    /// `None`: by the notification; else always trigger (`true`) or resolve (`false`).
    trigger: Option<bool>,
    dedup: Option<String>,
    priority: Option<String>,
    tags: Vec<(String, String)>,
    describe: String,
    secrets: Secrets,
}

impl std::fmt::Debug for Squadcast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Squadcast")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

/// Squadcast's payload limit is 30 KB; the description is kept well inside it.
const DESCRIPTION_MAX: usize = 20_000;

impl Squadcast {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(
            raw,
            &["key", "region", "action", "dedup", "priority"],
            &['+'],
            "squadcast",
        )?;
        let key = p
            .get("key")
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| p.host.clone());
        if !is_key(&key) {
            return Err(UrlError::new(
                raw,
                "the webhook key is missing or not letters, digits, _ and -: squadcast://KEY",
            ));
        }
        let base = match p.get("region").map(|r| r.trim().to_ascii_lowercase()) {
            None => "https://api.squadcast.com",
            Some(r) if r.is_empty() || r == "us" => "https://api.squadcast.com",
            Some(r) if r == "eu" => "https://api.eu.squadcast.com",
            Some(r) => {
                return Err(UrlError::new(raw, format!("region={r:?} is not us or eu")));
            }
        };
        let trigger = action(raw, &p, ["map", "trigger", "resolve"])?;
        let priority = match p.get("priority").map(str::trim).filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => {
                let up = v.to_ascii_uppercase();
                let up = if up.bytes().all(|b| b.is_ascii_digit()) {
                    format!("P{up}")
                } else {
                    up
                };
                if !matches!(up.as_str(), "P1" | "P2" | "P3" | "P4" | "P5") {
                    return Err(UrlError::new(
                        raw,
                        format!("priority={v:?} is not one of P1, P2, P3, P4, P5 (or 1-5)"),
                    ));
                }
                Some(up)
            }
        };
        Ok(Squadcast {
            base: base.to_owned(),
            key,
            trigger,
            dedup: p
                .get("dedup")
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
            priority,
            tags: plus_pairs(&p),
            describe: "squadcast://***".to_owned(),
            secrets: Secrets::of_url(raw),
        })
    }

    /// Whether `n` triggers (else resolves) its job's incident.
    fn triggers(&self, n: &Notification) -> bool {
        self.trigger.unwrap_or_else(|| opens(n))
    }

    fn body(&self, msg: &Message<'_>) -> Value {
        let n = msg.notification;
        let mut tags = details(n);
        for (k, v) in &self.tags {
            tags.insert(k.clone(), json!(v));
        }
        let mut v = json!({
            "message": n.title,
            "description": shorten(&email::render(n).text, DESCRIPTION_MAX),
            "status": if self.triggers(n) { "trigger" } else { "resolve" },
            "event_id": incident_key(self.dedup.as_ref(), n),
            "tags": tags,
        });
        if let Some(p) = &self.priority {
            v["priority"] = json!(p);
        }
        v
    }
}

impl Channel for Squadcast {
    fn scheme(&self) -> &'static str {
        "squadcast"
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        Some(vec![HttpRequest {
            method: Method::Post,
            url: format!("{}/v2/incidents/api/{}", self.base, self.key),
            headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
            body: serde_json::to_vec(&self.body(msg)).expect("a JSON value serialises"),
        }])
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reqs = self.plan(msg).unwrap_or_default();
            let o =
                crate::http::send_planned(reqs, &self.describe, cx, crate::default_classify).await;
            self.secrets.scrub_outcome(o)
        })
    }
}

/// The webhook's own address as a [`Squadcast`] channel, or `None` when `raw` is not one.
pub(crate) fn parse_address(raw: &str) -> Option<Result<Squadcast, UrlError>> {
    let (host, path, query) = web_address(raw)?;
    let eu = match host.as_str() {
        "api.squadcast.com" => false,
        "api.eu.squadcast.com" => true,
        _ => return None,
    };
    let key = path
        .get(..18)
        .filter(|p| p.eq_ignore_ascii_case("/v2/incidents/api/"))
        .map(|_| path[18..].trim_end_matches('/'))?;
    if !is_key(key) {
        return Some(Err(UrlError::new(
            raw,
            "this Squadcast address has no webhook key: expected \
             https://api.squadcast.com/v2/incidents/api/KEY",
        )));
    }
    let mut as_apprise = format!("squadcast://{key}/{query}");
    if eu {
        as_apprise.push(if query.is_empty() { '?' } else { '&' });
        as_apprise.push_str("region=eu");
    }
    Some(Squadcast::from_apprise(&as_apprise).map(|mut s| {
        s.secrets.add_url(raw);
        s
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_as_apprise_reads_them() {
        let s = Squadcast::from_apprise(
            "squadcast://KEY_1?region=EU&action=res&dedup=db&priority=2&+team=storage",
        )
        .unwrap();
        assert_eq!(s.key, "KEY_1");
        assert_eq!(s.base, "https://api.eu.squadcast.com");
        assert_eq!(s.trigger, Some(false));
        assert_eq!(s.dedup.as_deref(), Some("db"));
        assert_eq!(s.priority.as_deref(), Some("P2"));
        assert_eq!(s.tags, [("team".to_owned(), "storage".to_owned())]);
        let s = Squadcast::from_apprise("squadcast://x?key=K2&action=t").unwrap();
        assert_eq!((s.key.as_str(), s.trigger), ("K2", Some(true)));
    }

    #[test]
    fn bad_values_are_refused_without_the_key() {
        for (url, what) in [
            ("squadcast://", "webhook key"),
            ("squadcast://SECRET.KEY", "webhook key"),
            ("squadcast://SECRETKEY?region=asia", "region=\"asia\""),
            ("squadcast://SECRETKEY?action=page", "action=\"page\""),
            ("squadcast://SECRETKEY?priority=P9", "priority=\"P9\""),
            ("squadcast://SECRETKEY?colour=red", "unknown option"),
        ] {
            let e = Squadcast::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("SECRET"), "{url}: {e}");
        }
    }

    #[test]
    fn the_webhook_address_is_read_as_squadcast() {
        let s = parse_address("https://api.eu.squadcast.com/v2/incidents/api/KEY9?priority=P1")
            .unwrap()
            .unwrap();
        assert_eq!(s.key, "KEY9");
        assert_eq!(s.base, "https://api.eu.squadcast.com");
        assert_eq!(s.priority.as_deref(), Some("P1"));
        let s = parse_address("https://api.squadcast.com/v2/incidents/api/KEY9/")
            .unwrap()
            .unwrap();
        assert_eq!(s.base, "https://api.squadcast.com");
        assert!(parse_address("https://api.squadcast.com/v3/other").is_none());
        assert!(parse_address("https://example.com/v2/incidents/api/KEY9").is_none());
        assert!(
            parse_address("https://api.squadcast.com/v2/incidents/api/")
                .unwrap()
                .is_err()
        );
    }
}
