//! PagerTree through a webhook integration: a problem creates the job's alert, a recovery
//! resolves it, one third-party id per job.

use belfry_core::{Notification, email};
use serde_json::{Value, json};

use super::common::{details, incident_key, opens};
use crate::outcome::shorten;
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, split_list};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// PagerTree: `pagertree://INTEGRATION_ID?action=…&tid=…&urgency=…&tags=a,b&+Header=v&-meta=v&:field=v`,
/// Apprise's syntax (`thirdparty=` and `dedup=` are `tid=`; `id=`/`integration=` the
/// integration id, `int_…`).
///
/// - Every notification about a job carries the same id, `belfry/JOB` (or `tid=`): a problem
///   sends `event_type: create`, and a recovery or any OK notification `resolve` with that id.
/// - `action=create|acknowledge|resolve` fixes what every notification does; `map` chooses as
///   above, and is belfry's default. Apprise's default is `create` (a new alert per process,
///   never resolved); belfry keeps its promise that a recovery closes what the problem opened.
/// - `urgency=silent|low|medium|high|critical`, `tags=`; `-key=value` go in `meta` (with the
///   job's details), `:key=value` are set on the payload itself, `+Header=value` are sent as
///   headers.
#[derive(Clone)]
pub struct PagerTree {
    pub(crate) base: String,
    integration: String,
    /// `None`: by the notification; else the event type of every notification.
    event: Option<&'static str>,
    tid: Option<String>,
    urgency: Option<&'static str>,
    tags: Vec<String>,
    headers: Vec<(String, String)>,
    meta: Vec<(String, String)>,
    extras: Vec<(String, String)>,
    secrets: Secrets,
}

impl std::fmt::Debug for PagerTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagerTree").finish_non_exhaustive()
    }
}

const URGENCIES: [&str; 5] = ["silent", "low", "medium", "high", "critical"];

/// The description is kept well inside what an alert carries.
const DESCRIPTION_MAX: usize = 20_000;

/// An integration id as PagerTree writes one: `int_` and 7 to 14 letters, digits, `-`, `_`.
fn is_integration(s: &str) -> bool {
    s.strip_prefix("int_").is_some_and(|rest| {
        (7..=14).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

fn prefixed(p: &Parts, prefix: char) -> Vec<(String, String)> {
    p.query
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(prefix)
                .filter(|k| !k.is_empty())
                .map(|k| (k.to_owned(), v.clone()))
        })
        .collect()
}

impl PagerTree {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(
            raw,
            &[
                "id",
                "integration",
                "action",
                "thirdparty",
                "tid",
                "dedup",
                "urgency",
                "tags",
            ],
            &['+', '-', ':'],
            "pagertree",
        )?;
        let nonempty = |k: &str| {
            p.get(k)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let integration = nonempty("id")
            .or_else(|| nonempty("integration"))
            .unwrap_or_else(|| p.host.clone());
        if !is_integration(&integration) {
            return Err(UrlError::new(
                raw,
                "the integration id is missing or not int_ and 7 to 14 letters, digits, - and _: \
                 pagertree://int_…",
            ));
        }
        let event = match nonempty("action").map(|a| a.to_ascii_lowercase()) {
            None => None,
            Some(a) => match a.as_str() {
                "map" => None,
                "create" => Some("create"),
                "acknowledge" => Some("acknowledge"),
                "resolve" => Some("resolve"),
                _ => {
                    return Err(UrlError::new(
                        raw,
                        format!("action={a:?} is not one of map, create, acknowledge, resolve"),
                    ));
                }
            },
        };
        let urgency = match nonempty("urgency") {
            None => None,
            Some(u) => Some(
                URGENCIES
                    .iter()
                    .copied()
                    .find(|x| x.eq_ignore_ascii_case(&u))
                    .ok_or_else(|| {
                        UrlError::new(
                            raw,
                            format!(
                                "urgency={u:?} is not one of silent, low, medium, high, critical"
                            ),
                        )
                    })?,
            ),
        };
        Ok(PagerTree {
            base: "https://api.pagertree.com".to_owned(),
            integration,
            event,
            tid: nonempty("tid")
                .or_else(|| nonempty("thirdparty"))
                .or_else(|| nonempty("dedup")),
            urgency,
            tags: p
                .get("tags")
                .map(split_list)
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect(),
            headers: prefixed(&p, '+'),
            meta: prefixed(&p, '-'),
            extras: prefixed(&p, ':'),
            secrets: Secrets::of_url(raw),
        })
    }

    /// The event type `n` sends for its job's alert.
    fn event(&self, n: &Notification) -> &'static str {
        self.event
            .unwrap_or(if opens(n) { "create" } else { "resolve" })
    }

    fn body(&self, msg: &Message<'_>) -> Value {
        let n = msg.notification;
        let event = self.event(n);
        let mut v = json!({
            "id": incident_key(self.tid.as_ref(), n),
            "event_type": event,
        });
        if event == "create" {
            let mut meta = details(n);
            for (k, val) in &self.meta {
                meta.insert(k.clone(), json!(val));
            }
            v["title"] = json!(n.title);
            v["description"] = json!(shorten(&email::render(n).text, DESCRIPTION_MAX));
            v["meta"] = Value::Object(meta);
            v["tags"] = json!(self.tags);
            if let Some(u) = self.urgency {
                v["urgency"] = json!(u);
            }
        }
        for (k, val) in &self.extras {
            v[k.as_str()] = json!(val);
        }
        v
    }
}

impl Channel for PagerTree {
    fn scheme(&self) -> &'static str {
        "pagertree"
    }

    fn describe(&self) -> String {
        "pagertree://***".to_owned()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        headers.extend(self.headers.iter().cloned());
        Some(vec![HttpRequest {
            method: Method::Post,
            url: format!("{}/integration/{}", self.base, self.integration),
            headers,
            body: serde_json::to_vec(&self.body(msg)).expect("a JSON value serialises"),
        }])
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reqs = self.plan(msg).unwrap_or_default();
            let o = crate::http::send_planned(reqs, "pagertree://***", cx, crate::default_classify)
                .await;
            self.secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_as_apprise_reads_them() {
        let t = PagerTree::from_apprise(
            "pagertree://int_abc1234?action=Resolve&dedup=db&urgency=HIGH&tags=a,b\
             &+X-Team=ops&-runbook=r1&:source=cron",
        )
        .unwrap();
        assert_eq!(t.integration, "int_abc1234");
        assert_eq!(t.event, Some("resolve"));
        assert_eq!(t.tid.as_deref(), Some("db"));
        assert_eq!(t.urgency, Some("high"));
        assert_eq!(t.tags, ["a", "b"]);
        assert_eq!(t.headers, [("X-Team".to_owned(), "ops".to_owned())]);
        assert_eq!(t.meta, [("runbook".to_owned(), "r1".to_owned())]);
        assert_eq!(t.extras, [("source".to_owned(), "cron".to_owned())]);
        let t = PagerTree::from_apprise("pagertree://x?id=int_xyz98765&tid=t1").unwrap();
        assert_eq!(
            (t.integration.as_str(), t.tid.as_deref()),
            ("int_xyz98765", Some("t1"))
        );
    }

    #[test]
    fn bad_values_are_refused_without_the_integration_id() {
        for (url, what) in [
            ("pagertree://", "integration id"),
            ("pagertree://int_s3cr", "integration id"),
            ("pagertree://int_s3cr3t00?action=page", "action=\"page\""),
            (
                "pagertree://int_s3cr3t00?urgency=urgent",
                "urgency=\"urgent\"",
            ),
            ("pagertree://int_s3cr3t00?priority=1", "unknown option"),
        ] {
            let e = PagerTree::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("s3cr"), "{url}: {e}");
        }
    }
}
