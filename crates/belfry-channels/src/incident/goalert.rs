//! GoAlert (self-hosted) through its generic incoming API: a problem raises the job's alert, a
//! recovery closes it, one dedup key per job.

use belfry_core::{Notification, email};
use serde_json::{Value, json};

use super::common::{action, details, incident_key, opens, plus_pairs};
use crate::outcome::shorten;
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, split_list};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// GoAlert: `goalert://HOST[:PORT][/PATH]/KEY[/KEY…]?action=map|trigger|close&dedup=…&+meta=value`
/// (`goalerts://` for HTTPS), Apprise's syntax; a key is an integration key (a UUID), every
/// other path part is the server's path.
///
/// - Every notification about a job carries the same `dedup`, `belfry/JOB` (or `dedup=`):
///   a problem raises the alert (a repeat is folded into it), and a recovery or any OK
///   notification sends `action: close` with it, which closes it.
/// - `action=trigger` or `action=close` fixes what every notification does; `map` (the default)
///   chooses as above. Apprise closes on `success` only; belfry on `info` too.
/// - One request per key, each with its key as the bearer token.
#[derive(Clone)]
pub struct GoAlert {
    url: String,
    keys: Vec<String>,
    /// `None`: by the notification; else always raise (`true`) or close (`false`).
    raise: Option<bool>,
    dedup: Option<String>,
    meta: Vec<(String, String)>,
    scheme: &'static str,
    describe: String,
    secrets: Secrets,
}

impl std::fmt::Debug for GoAlert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoAlert")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

/// GoAlert's limits on a summary and on the details, in characters.
const SUMMARY_MAX: usize = 1024;
const DETAILS_MAX: usize = 6144;

/// An integration key: a UUID.
fn is_key(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl GoAlert {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let scheme: &'static str = if p.scheme == "goalerts" {
            "goalerts"
        } else {
            "goalert"
        };
        p.check_keys(raw, &["to", "token", "action", "dedup"], &['+'], scheme)?;
        if p.host.is_empty() {
            return Err(UrlError::new(
                raw,
                format!("the GoAlert server is missing: {scheme}://HOST/INTEGRATION_KEY"),
            ));
        }
        let mut keys = Vec::new();
        let mut path = Vec::new();
        for seg in &p.path {
            if is_key(seg.trim()) {
                keys.push(seg.trim().to_ascii_lowercase());
            } else {
                path.push(seg.as_str());
            }
        }
        for k in ["to", "token"] {
            for v in p.get(k).into_iter().flat_map(split_list) {
                if !is_key(v) {
                    return Err(UrlError::new(
                        raw,
                        format!("{k}= holds something that is not an integration key (a UUID)"),
                    ));
                }
                keys.push(v.to_ascii_lowercase());
            }
        }
        if keys.is_empty() {
            return Err(UrlError::new(
                raw,
                format!(
                    "no integration key (a UUID) to send with: {scheme}://HOST/INTEGRATION_KEY"
                ),
            ));
        }
        let raise = action(raw, &p, ["map", "trigger", "close"])?;
        let http = if scheme == "goalerts" {
            "https"
        } else {
            "http"
        };
        let port = p.port.map(|n| format!(":{n}")).unwrap_or_default();
        let prefix: String = path
            .iter()
            .map(|s| {
                let enc: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
                format!("{}/", enc.replace('+', "%20"))
            })
            .collect();
        let url = format!("{http}://{}{port}/{prefix}api/v2/generic/incoming", p.host);
        let describe = format!(
            "{scheme}://{}{port}/{} {}",
            p.host,
            keys.len(),
            if keys.len() == 1 { "key" } else { "keys" }
        );
        let mut secrets = Secrets::of_url(raw);
        for k in &keys {
            secrets.add(k);
        }
        Ok(GoAlert {
            url,
            keys,
            raise,
            dedup: p
                .get("dedup")
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
            meta: plus_pairs(&p),
            scheme,
            describe,
            secrets,
        })
    }

    /// Whether `n` raises (else closes) its job's alert.
    fn raises(&self, n: &Notification) -> bool {
        self.raise.unwrap_or_else(|| opens(n))
    }

    fn body(&self, msg: &Message<'_>) -> Value {
        let n = msg.notification;
        let mut meta = details(n);
        for (k, v) in &self.meta {
            meta.insert(k.clone(), json!(v));
        }
        let mut v = json!({
            "summary": shorten(&n.title, SUMMARY_MAX - 1),
            "details": shorten(&email::render(n).text, DETAILS_MAX - 1),
            "dedup": incident_key(self.dedup.as_ref(), n),
            "meta": meta,
        });
        if !self.raises(n) {
            v["action"] = json!("close");
        }
        v
    }
}

impl Channel for GoAlert {
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let body = serde_json::to_vec(&self.body(msg)).expect("a JSON value serialises");
        Some(
            self.keys
                .iter()
                .map(|k| HttpRequest {
                    method: Method::Post,
                    url: self.url.clone(),
                    headers: vec![
                        ("Authorization".to_owned(), format!("Bearer {k}")),
                        ("Content-Type".to_owned(), "application/json".to_owned()),
                    ],
                    body: body.clone(),
                })
                .collect(),
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    const K2: &str = "1a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

    #[test]
    fn keys_path_and_options_are_read_as_apprise_reads_them() {
        let g = GoAlert::from_apprise(&format!(
            "goalerts://alerts.example.com:8443/goalert/{K1}?to={K2}&action=c&dedup=db&+team=ops"
        ))
        .unwrap();
        assert_eq!(g.keys, [K1, K2]);
        assert_eq!(
            g.url,
            "https://alerts.example.com:8443/goalert/api/v2/generic/incoming"
        );
        assert_eq!(g.raise, Some(false));
        assert_eq!(g.dedup.as_deref(), Some("db"));
        assert_eq!(g.meta, [("team".to_owned(), "ops".to_owned())]);
        assert_eq!(g.describe(), "goalerts://alerts.example.com:8443/2 keys");
        let g = GoAlert::from_apprise(&format!("goalert://h/{}", K1.to_uppercase())).unwrap();
        assert_eq!(g.url, "http://h/api/v2/generic/incoming");
        assert_eq!(g.keys, [K1]);
    }

    #[test]
    fn bad_values_are_refused_without_the_key() {
        for (url, what) in [
            (format!("goalert:///{K1}"), "server is missing"),
            ("goalert://h/not-a-key".to_owned(), "no integration key"),
            (format!("goalert://h/{K1}?to=oops"), "to= holds"),
            (format!("goalert://h/{K1}?action=page"), "action=\"page\""),
            (format!("goalert://h/{K1}?priority=1"), "unknown option"),
        ] {
            let e = GoAlert::from_apprise(&url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains(K1), "{url}: {e}");
        }
    }
}
