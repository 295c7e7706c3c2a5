//! xMatters through a workflow's HTTP trigger: every notification starts the flow, which
//! decides; belfry says whether the job's incident is open or resolved, under one key per job.

use base64::Engine as _;
use belfry_core::{Kind, email};
use serde_json::{Value, json};

use super::common::{details, incident_key, web_address};
use crate::outcome::shorten;
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, split_list};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// xMatters: `xmatters://APIKEY@HOST/INTEGRATION_ID[/RECIPIENT…]` or
/// `xmatters://USER:PASSWORD@HOST/INTEGRATION_ID[/RECIPIENT…]` (`?to=`/`recipients=` add
/// recipients, `?apikey=` the key), Apprise's syntax; a `HOST` without a dot is
/// `HOST.xmatters.com`. Or the trigger's own address,
/// `https://COMPANY.xmatters.com/api/integration/1/functions/INTEGRATION_ID/triggers?apiKey=KEY`.
///
/// An HTTP trigger hands the JSON to a flow, and the flow decides what happens; xMatters has no
/// fixed "resolve". belfry sends what Apprise sends (`summary`, `message`, `recipients`) and,
/// for a flow that tracks incidents, `incident_key` `belfry/JOB` (the same for every
/// notification about a job) and `status` `open` on a problem, `resolved` on a recovery or any
/// OK notification, with the job's details as fields.
#[derive(Clone)]
pub struct XMatters {
    pub(crate) base: String,
    integration: String,
    auth: Auth,
    recipients: Vec<String>,
    describe: String,
    secrets: Secrets,
}

#[derive(Clone)]
enum Auth {
    ApiKey(String),
    Basic(String),
}

impl std::fmt::Debug for XMatters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XMatters")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

/// Apprise's limit on the message, in characters.
const MESSAGE_MAX: usize = 32_768;

fn is_integration(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl XMatters {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(raw, &["apikey", "to", "recipients"], &[], "xmatters")?;
        if p.host.is_empty()
            || !p
                .host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(UrlError::new(
                raw,
                "the xMatters host is missing or not a host name: \
                 xmatters://APIKEY@COMPANY.xmatters.com/INTEGRATION_ID",
            ));
        }
        let mut path = p.path.iter();
        let integration = path.next().cloned().unwrap_or_default();
        if !is_integration(&integration) {
            return Err(UrlError::new(
                raw,
                "the integration id is missing or not letters, digits and -: \
                 xmatters://APIKEY@HOST/INTEGRATION_ID",
            ));
        }
        let mut recipients: Vec<String> = path.cloned().collect();
        for k in ["to", "recipients"] {
            recipients.extend(p.get(k).into_iter().flat_map(split_list).map(str::to_owned));
        }
        let password = p.password.as_deref().filter(|s| !s.is_empty());
        let auth = match (p.user.as_deref(), password) {
            (Some(u), Some(pw)) => {
                Auth::Basic(base64::engine::general_purpose::STANDARD.encode(format!("{u}:{pw}")))
            }
            _ => {
                let key = p
                    .get("apikey")
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned)
                    .or_else(|| p.user.clone())
                    .unwrap_or_default();
                if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(UrlError::new(
                        raw,
                        "an API key, or a user name and password, is needed: \
                         xmatters://APIKEY@HOST/INTEGRATION_ID",
                    ));
                }
                Auth::ApiKey(key)
            }
        };
        let host = if p.host.contains('.') {
            p.host.clone()
        } else {
            format!("{}.xmatters.com", p.host)
        };
        let port = p.port.map(|n| format!(":{n}")).unwrap_or_default();
        let mut secrets = Secrets::of_url(raw);
        if let Auth::Basic(b) = &auth {
            secrets.add(b);
        }
        Ok(XMatters {
            base: format!("https://{host}{port}"),
            describe: format!("xmatters://{host}{port}/{integration}"),
            integration,
            auth,
            recipients,
            secrets,
        })
    }

    fn body(&self, msg: &Message<'_>) -> Value {
        let n = msg.notification;
        let resolved = match n.apprise_type.as_str() {
            "failure" | "warning" => false,
            "success" | "info" => true,
            _ => n.kind != Kind::Problem,
        };
        let mut v = Value::Object(details(n));
        v["summary"] = json!(n.title);
        v["message"] = json!(shorten(&email::render(n).text, MESSAGE_MAX - 1));
        v["incident_key"] = json!(incident_key(None, n));
        v["status"] = json!(if resolved { "resolved" } else { "open" });
        if !self.recipients.is_empty() {
            v["recipients"] = json!(self.recipients.join(","));
        }
        v
    }
}

impl Channel for XMatters {
    fn scheme(&self) -> &'static str {
        "xmatters"
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let id: String =
            url::form_urlencoded::byte_serialize(self.integration.as_bytes()).collect();
        let mut url = format!("{}/api/integration/1/functions/{id}/triggers", self.base);
        let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        match &self.auth {
            Auth::ApiKey(k) => {
                let k: String = url::form_urlencoded::byte_serialize(k.as_bytes()).collect();
                url.push_str(&format!("?apiKey={k}"));
            }
            Auth::Basic(b) => headers.push(("Authorization".to_owned(), format!("Basic {b}"))),
        }
        Some(vec![HttpRequest {
            method: Method::Post,
            url,
            headers,
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

/// The trigger's own address as an [`XMatters`] channel (its key in `?apiKey=`), or `None`
/// when `raw` is not one.
pub(crate) fn parse_address(raw: &str) -> Option<Result<XMatters, UrlError>> {
    const PREFIX: &str = "/api/integration/1/functions/";
    let (host, path, query) = web_address(raw)?;
    let company = host.strip_suffix(".xmatters.com")?;
    if company.is_empty() || company.ends_with('.') {
        return None;
    }
    let rest = path
        .get(..PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(PREFIX))
        .map(|_| &path[PREFIX.len()..])?;
    let integration = rest
        .trim_end_matches('/')
        .strip_suffix("/triggers")
        .filter(|i| is_integration(i));
    let Some(integration) = integration else {
        return Some(Err(UrlError::new(
            raw,
            "this xMatters address is not a trigger: expected \
             https://COMPANY.xmatters.com/api/integration/1/functions/INTEGRATION_ID/triggers?apiKey=KEY",
        )));
    };
    Some(
        XMatters::from_apprise(&format!("xmatters://{host}/{integration}/{query}")).map(|mut s| {
            s.secrets.add_url(raw);
            s
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hosts_and_recipients_are_read_as_apprise_reads_them() {
        let x = XMatters::from_apprise("xmatters://KEY1@acme/int-1/ada/bob?to=ops").unwrap();
        assert_eq!(x.base, "https://acme.xmatters.com");
        assert_eq!(x.integration, "int-1");
        assert!(matches!(&x.auth, Auth::ApiKey(k) if k == "KEY1"));
        assert_eq!(x.recipients, ["ada", "bob", "ops"]);
        assert_eq!(x.describe(), "xmatters://acme.xmatters.com/int-1");
        let x = XMatters::from_apprise("xmatters://u:p@xm.example.com:8443/i2").unwrap();
        assert_eq!(x.base, "https://xm.example.com:8443");
        assert!(matches!(&x.auth, Auth::Basic(b) if b == "dTpw"));
        let x = parse_address(
            "https://acme.xmatters.com/api/integration/1/functions/f00d-1/triggers?apiKey=K9",
        )
        .unwrap()
        .unwrap();
        assert_eq!(x.integration, "f00d-1");
        assert!(matches!(&x.auth, Auth::ApiKey(k) if k == "K9"));
        assert!(parse_address("https://acme.xmatters.com/other").is_none());
        assert!(
            parse_address("https://xmatters.com.evil/api/integration/1/functions/x/triggers")
                .is_none()
        );
    }

    #[test]
    fn bad_values_are_refused_without_the_key() {
        for (url, what) in [
            ("xmatters://T0PS3CR3T@acme", "integration id"),
            ("xmatters://acme/int-1", "API key"),
            ("xmatters://T0PS3CR3T@acme/int_1", "integration id"),
            (
                "xmatters://T0PS3CR3T@acme/int-1?priority=1",
                "unknown option",
            ),
        ] {
            let e = XMatters::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("T0PS3CR3T"), "{url}: {e}");
        }
        let e = parse_address("https://acme.xmatters.com/api/integration/1/functions/x/other")
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a trigger"), "{e}");
    }
}
