//! Splunk On-Call (VictorOps) through its REST endpoint: a problem triggers the job's
//! incident, a recovery resolves it, one entity per job.

use belfry_core::{Kind, Notification};
use serde_json::{Value, json};

use super::common::{choice, incident_key, is_key, web_address};
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::Parts;
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// The REST endpoint's fixed address and version.
const API: &str = "https://alert.victorops.com";
const PATH: &str = "/integrations/generic/20131114/alert";

/// Splunk On-Call: `splunk://ROUTING_KEY@API_KEY[/ENTITY_ID]?action=…&:failure=…` (also
/// `victorops://`), Apprise's syntax; or the REST endpoint's own address,
/// `https://alert.victorops.com/integrations/generic/20131114/alert/API_KEY/ROUTING_KEY[/ENTITY_ID]`.
///
/// - Every notification about a job names the same entity, `belfry/JOB` (or the URL's
///   entity id): a problem sends `CRITICAL`, which opens the incident (a repeat is folded into
///   it), and a recovery or any OK notification sends `RECOVERY`, which resolves it.
/// - `action=` fixes the message type of every notification: `critical`, `warning`, `info`,
///   `acknowledgement`, `recovery` (or `resolve`); `map` (the default) chooses by the Apprise
///   type, `failure` → `CRITICAL`, `warning` → `WARNING`, `success` → `RECOVERY`, `info` →
///   `RECOVERY`, and `:failure=…`, `:warning=…`, `:success=…`, `:info=…` change one entry
///   (values as Splunk names them: `CRITICAL`, `WARNING`, `ACKNOWLEDGEMENT`, `INFO`,
///   `RECOVERY`, or the start of one). Apprise sends `INFO` for `info`; belfry resolves, as
///   its `info` notifications say the job is fine.
#[derive(Clone)]
pub struct Splunk {
    pub(crate) base: String,
    api_key: String,
    routing_key: String,
    entity_id: Option<String>,
    /// The message type of each Apprise type: failure, warning, success, info.
    types: [&'static str; 4],
    scheme: &'static str,
    describe: String,
    secrets: Secrets,
}

impl std::fmt::Debug for Splunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Splunk")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

/// Splunk's message types, in the order Apprise matches a shortened value against them.
const MESSAGE_TYPES: [&str; 5] = ["CRITICAL", "WARNING", "ACKNOWLEDGEMENT", "INFO", "RECOVERY"];

/// `action=` values, in Apprise's order, with the message type each one fixes (`None`: map).
const ACTIONS: [(&str, Option<&str>); 7] = [
    ("map", None),
    ("info", Some("INFO")),
    ("acknowledgement", Some("ACKNOWLEDGEMENT")),
    ("warning", Some("WARNING")),
    ("recovery", Some("RECOVERY")),
    ("resolve", Some("RECOVERY")),
    ("critical", Some("CRITICAL")),
];

/// Apprise's notification types, in the order of [`Splunk::types`].
const TYPES: [&str; 4] = ["failure", "warning", "success", "info"];

impl Splunk {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let scheme: &'static str = if p.scheme == "victorops" {
            "victorops"
        } else {
            "splunk"
        };
        p.check_keys(
            raw,
            &["apikey", "routing_key", "route", "entity_id", "action"],
            &[':'],
            scheme,
        )?;
        let nonempty = |k: &str| p.get(k).filter(|v| !v.is_empty()).map(str::to_owned);
        let api_key = nonempty("apikey").unwrap_or_else(|| p.host.clone());
        if !is_key(&api_key) {
            return Err(UrlError::new(
                raw,
                format!(
                    "the API key is missing or not letters, digits, _ and -: \
                     {scheme}://ROUTING_KEY@API_KEY"
                ),
            ));
        }
        let routing_key = nonempty("routing_key")
            .or_else(|| nonempty("route"))
            .or_else(|| p.user.clone())
            .unwrap_or_default();
        if !is_key(&routing_key) {
            return Err(UrlError::new(
                raw,
                format!(
                    "the routing key is missing or not letters, digits, _ and -: \
                     {scheme}://ROUTING_KEY@API_KEY"
                ),
            ));
        }
        let entity_id = nonempty("entity_id")
            .or_else(|| (!p.path.is_empty()).then(|| p.path.join("/")))
            .map(|e| {
                e.trim_matches([' ', '\r', '\n', '\t', '\x0b', '/'])
                    .to_owned()
            })
            .filter(|e| !e.is_empty());
        let mut types = ["CRITICAL", "WARNING", "RECOVERY", "RECOVERY"];
        if let Some(a) = p.get("action").filter(|a| !a.trim().is_empty()) {
            let i = choice(a, &ACTIONS.map(|(n, _)| n)).ok_or_else(|| {
                UrlError::new(
                    raw,
                    format!(
                        "action={a:?} is not one of map, critical, warning, info, \
                         acknowledgement, recovery, resolve"
                    ),
                )
            })?;
            if let Some(t) = ACTIONS[i].1 {
                types = [t; 4];
            }
        }
        for (k, v) in &p.query {
            let Some(t) = k.strip_prefix(':') else {
                continue;
            };
            let i = choice(t, &TYPES).ok_or_else(|| {
                UrlError::new(
                    raw,
                    format!("{k:?} names no notification type (failure, warning, success, info)"),
                )
            })?;
            let m = choice(v, &MESSAGE_TYPES).ok_or_else(|| {
                UrlError::new(
                    raw,
                    format!(
                        "{k}={v:?} is not one of CRITICAL, WARNING, ACKNOWLEDGEMENT, INFO, RECOVERY"
                    ),
                )
            })?;
            types[i] = MESSAGE_TYPES[m];
        }
        let describe = format!("{scheme}://{routing_key}@***");
        Ok(Splunk {
            base: API.to_owned(),
            api_key,
            routing_key,
            entity_id,
            types,
            scheme,
            describe,
            secrets: Secrets::of_url(raw),
        })
    }

    /// The message type of `n`, by its Apprise type (else its kind).
    fn message_type(&self, n: &Notification) -> &'static str {
        let i = TYPES
            .iter()
            .position(|t| *t == n.apprise_type)
            .unwrap_or(match n.kind {
                Kind::Problem => 0,
                Kind::Recovered => 2,
                Kind::Ok => 3,
            });
        self.types[i]
    }

    fn body(&self, msg: &Message<'_>) -> Value {
        let n = msg.notification;
        let entity = incident_key(self.entity_id.as_ref(), n);
        let mut v = json!({
            "message_type": self.message_type(n),
            "entity_id": entity,
            "entity_display_name": n.title,
            "state_message": n.message,
            "monitoring_tool": "belfry",
            "job": n.job,
            "state": n.state.name(),
            "reason": n.reason_text,
            "apprise_type": n.apprise_type,
            "belfry_notification": msg.idempotency_key,
        });
        let mut put = |k: &str, val: Option<String>| {
            if let Some(val) = val {
                v[k] = json!(val);
            }
        };
        put("exit_code", n.exit_code.map(|c| c.to_string()));
        put("signal", n.signal.map(|s| s.to_string()));
        put("host_name", n.host.clone());
        put("run_id", n.run_id.clone());
        v
    }
}

impl Channel for Splunk {
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        Some(vec![HttpRequest {
            method: Method::Post,
            url: format!("{}{PATH}/{}/{}", self.base, self.api_key, self.routing_key),
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

/// The REST endpoint's own address as a [`Splunk`] channel, or `None` when `raw` is not one.
pub(crate) fn parse_address(raw: &str) -> Option<Result<Splunk, UrlError>> {
    let (host, path, query) = web_address(raw)?;
    if host != "alert.victorops.com" {
        return None;
    }
    let lower = path.to_ascii_lowercase();
    let after = lower.strip_prefix("/integrations/generic/")?;
    let version_len = after.bytes().take_while(u8::is_ascii_digit).count();
    if version_len == 0 || !after[version_len..].starts_with("/alert/") {
        return None;
    }
    let tail = &path["/integrations/generic/".len() + version_len + "/alert/".len()..];
    let mut segs = tail.splitn(3, '/');
    let api_key = segs.next().unwrap_or_default();
    let routing_key = segs.next().unwrap_or_default();
    let entity = segs.next().unwrap_or_default();
    if api_key.is_empty() || routing_key.is_empty() {
        return Some(Err(UrlError::new(
            raw,
            "this Splunk On-Call address has no API key and routing key: expected \
             https://alert.victorops.com/integrations/generic/20131114/alert/API_KEY/ROUTING_KEY",
        )));
    }
    let as_apprise = format!("splunk://{routing_key}@{api_key}/{entity}{query}");
    Some(Splunk::from_apprise(&as_apprise).map(|mut s| {
        // Scrub what the address itself carries too.
        s.secrets.add_url(raw);
        s
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_entity_and_mappings_are_read_as_apprise_reads_them() {
        let s = Splunk::from_apprise("splunk://route_1@KEY-2/disk%20space/db01").unwrap();
        assert_eq!(
            (s.api_key.as_str(), s.routing_key.as_str()),
            ("KEY-2", "route_1")
        );
        assert_eq!(s.entity_id.as_deref(), Some("disk space/db01"));
        assert_eq!(s.describe(), "splunk://route_1@***");
        let s = Splunk::from_apprise("victorops://x@y?route=r&apikey=k&entity_id=e").unwrap();
        assert_eq!((s.api_key.as_str(), s.routing_key.as_str()), ("k", "r"));
        assert_eq!(s.entity_id.as_deref(), Some("e"));
        assert_eq!(s.scheme(), "victorops");
        let s = Splunk::from_apprise("splunk://r@k?:info=i&:s=ack&:f=w").unwrap();
        assert_eq!(s.types, ["WARNING", "WARNING", "ACKNOWLEDGEMENT", "INFO"]);
        let s = Splunk::from_apprise("splunk://r@k?action=res").unwrap();
        assert_eq!(s.types, ["RECOVERY"; 4]);
        let s = Splunk::from_apprise("splunk://r@k?action=MAP").unwrap();
        assert_eq!(s.types, ["CRITICAL", "WARNING", "RECOVERY", "RECOVERY"]);
    }

    #[test]
    fn bad_values_are_refused_without_the_key() {
        for (url, what) in [
            ("splunk://SECRETKEY", "routing key"),
            ("splunk://r@SECRET.KEY", "API key"),
            ("splunk://r@SECRETKEY?action=page", "action=\"page\""),
            ("splunk://r@SECRETKEY?:later=info", "no notification type"),
            ("splunk://r@SECRETKEY?:failure=loud", "CRITICAL"),
            ("splunk://r@SECRETKEY?colour=red", "unknown option"),
        ] {
            let e = Splunk::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("SECRET"), "{url}: {e}");
        }
    }

    #[test]
    fn the_rest_endpoint_address_is_read_as_splunk() {
        let s = parse_address(
            "https://alert.victorops.com/integrations/generic/20131114/alert/KEY/route/db%2F1?action=warning",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (s.api_key.as_str(), s.routing_key.as_str()),
            ("KEY", "route")
        );
        assert_eq!(s.entity_id.as_deref(), Some("db/1"));
        assert_eq!(s.types, ["WARNING"; 4]);
        assert!(parse_address("https://alert.victorops.com/other/KEY/route").is_none());
        assert!(parse_address("https://example.com/integrations/generic/1/alert/k/r").is_none());
        let e = parse_address("https://alert.victorops.com/integrations/generic/1/alert/KEY")
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.contains("routing key"), "{e}");
    }
}
