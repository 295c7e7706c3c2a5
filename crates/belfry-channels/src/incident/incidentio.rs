//! incident.io through an HTTP alert source: a problem fires the job's alert, a recovery
//! resolves it, one deduplication key per job.

use belfry_core::{Notification, email};
use serde_json::{Value, json};

use super::common::{action, details, incident_key, opens, plus_pairs, web_address};
use crate::outcome::shorten;
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::Parts;
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// incident.io: `incidentio://SOURCE_ID/TOKEN?action=map|trigger|resolve&dedup=…&click=URL&+key=value`,
/// Apprise's syntax; or the alert source's own address,
/// `https://api.incident.io/v2/alert_events/http/SOURCE_ID?token=TOKEN`.
///
/// - Every notification about a job carries the same deduplication key, `belfry/JOB` (or
///   `dedup=`): a problem sends `status: firing`, and a recovery or any OK notification
///   `status: resolved` with that key, which resolves the alert.
/// - `action=trigger` or `action=resolve` fixes what every notification does; `map` (the
///   default) chooses as above. Apprise resolves on `success` only; belfry on `info` too, as
///   its `info` notifications say the job is fine.
/// - The job's details and the URL's `+key=value` pairs go in `metadata`; `click=` is the
///   alert's `source_url`.
#[derive(Clone)]
pub struct IncidentIo {
    pub(crate) base: String,
    source: String,
    token: String,
    /// `None`: by the notification; else always fire (`true`) or resolve (`false`).
    fire: Option<bool>,
    dedup: Option<String>,
    click: Option<String>,
    metadata: Vec<(String, String)>,
    describe: String,
    secrets: Secrets,
}

impl std::fmt::Debug for IncidentIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncidentIo")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

/// The description is kept well inside what an alert event carries.
const DESCRIPTION_MAX: usize = 20_000;

impl IncidentIo {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(
            raw,
            &["source", "token", "action", "dedup", "click"],
            &['+'],
            "incidentio",
        )?;
        let nonempty = |k: &str| {
            p.get(k)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let source = nonempty("source").unwrap_or_else(|| p.host.clone());
        if source.is_empty() || !source.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(UrlError::new(
                raw,
                "the alert source id is missing or not letters and digits: \
                 incidentio://SOURCE_ID/TOKEN",
            ));
        }
        let token = nonempty("token")
            .or_else(|| p.path.first().cloned())
            .unwrap_or_default();
        if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::new(
                raw,
                "the token is missing: incidentio://SOURCE_ID/TOKEN",
            ));
        }
        let fire = action(raw, &p, ["map", "trigger", "resolve"])?;
        let describe = format!("incidentio://{source}/***");
        Ok(IncidentIo {
            base: "https://api.incident.io".to_owned(),
            source,
            token,
            fire,
            dedup: nonempty("dedup"),
            click: nonempty("click"),
            metadata: plus_pairs(&p),
            describe,
            secrets: Secrets::of_url(raw),
        })
    }

    /// Whether `n` fires (else resolves) its job's alert.
    fn fires(&self, n: &Notification) -> bool {
        self.fire.unwrap_or_else(|| opens(n))
    }

    fn body(&self, msg: &Message<'_>) -> Value {
        let n = msg.notification;
        let mut metadata = details(n);
        for (k, v) in &self.metadata {
            metadata.insert(k.clone(), json!(v));
        }
        let mut v = json!({
            "title": n.title,
            "description": shorten(&email::render(n).text, DESCRIPTION_MAX),
            "status": if self.fires(n) { "firing" } else { "resolved" },
            "deduplication_key": incident_key(self.dedup.as_ref(), n),
            "metadata": metadata,
        });
        if let Some(c) = &self.click {
            v["source_url"] = json!(c);
        }
        v
    }
}

impl Channel for IncidentIo {
    fn scheme(&self) -> &'static str {
        "incidentio"
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        Some(vec![HttpRequest {
            method: Method::Post,
            url: format!("{}/v2/alert_events/http/{}", self.base, self.source),
            headers: vec![
                ("Authorization".to_owned(), format!("Bearer {}", self.token)),
                ("Content-Type".to_owned(), "application/json".to_owned()),
            ],
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

/// The alert source's own address as an [`IncidentIo`] channel (its token in `?token=`), or
/// `None` when `raw` is not one.
pub(crate) fn parse_address(raw: &str) -> Option<Result<IncidentIo, UrlError>> {
    const PREFIX: &str = "/v2/alert_events/http/";
    let (host, path, query) = web_address(raw)?;
    if host != "api.incident.io" {
        return None;
    }
    let source = path
        .get(..PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(PREFIX))
        .map(|_| path[PREFIX.len()..].trim_end_matches('/'))?;
    if source.is_empty() || !source.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Some(Err(UrlError::new(
            raw,
            "this incident.io address has no alert source id: expected \
             https://api.incident.io/v2/alert_events/http/SOURCE_ID?token=TOKEN",
        )));
    }
    Some(
        IncidentIo::from_apprise(&format!("incidentio://{source}/{query}")).map(|mut s| {
            s.secrets.add_url(raw);
            s
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_as_apprise_reads_them() {
        let s = IncidentIo::from_apprise(
            "incidentio://01ABC/tok.en?action=res&dedup=db&click=https://x.example/&+team=db",
        )
        .unwrap();
        assert_eq!((s.source.as_str(), s.token.as_str()), ("01ABC", "tok.en"));
        assert_eq!(s.fire, Some(false));
        assert_eq!(s.dedup.as_deref(), Some("db"));
        assert_eq!(s.click.as_deref(), Some("https://x.example/"));
        assert_eq!(s.metadata, [("team".to_owned(), "db".to_owned())]);
        assert_eq!(s.describe(), "incidentio://01ABC/***");
        let s = IncidentIo::from_apprise("incidentio://x?source=SRC&token=T&action=t").unwrap();
        assert_eq!(
            (s.source.as_str(), s.token.as_str(), s.fire),
            ("SRC", "T", Some(true))
        );
    }

    #[test]
    fn bad_values_are_refused_without_the_token() {
        for (url, what) in [
            ("incidentio://01ABC", "token is missing"),
            ("incidentio://01-ABC/SECRETTOKEN", "alert source id"),
            (
                "incidentio://01ABC/SECRETTOKEN?action=page",
                "action=\"page\"",
            ),
            (
                "incidentio://01ABC/SECRETTOKEN?colour=red",
                "unknown option",
            ),
        ] {
            let e = IncidentIo::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("SECRET"), "{url}: {e}");
        }
    }

    #[test]
    fn the_alert_source_address_is_read_as_incident_io() {
        let s = parse_address("https://api.incident.io/v2/alert_events/http/01ABC?token=SECRET")
            .unwrap()
            .unwrap();
        assert_eq!((s.source.as_str(), s.token.as_str()), ("01ABC", "SECRET"));
        let e = parse_address("https://api.incident.io/v2/alert_events/http/01ABC")
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.contains("token"), "{e}");
        assert!(parse_address("https://api.incident.io/v1/other").is_none());
        assert!(parse_address("https://example.com/v2/alert_events/http/01ABC").is_none());
    }
}
