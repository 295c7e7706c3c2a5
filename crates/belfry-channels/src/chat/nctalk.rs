//! Nextcloud Talk, read with Apprise's syntax: a user's message to each room (conversation)
//! through the Talk app's chat API.

use base64::Engine as _;
use belfry_core::render::{Limit, Markup, TextStyle, render_text};
use serde_json::json;

use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, parse_bool};
use crate::{BoxFuture, Channel, Context, HttpRequest, Message, Method, Outcome};

/// Nextcloud Talk: `nctalk://USER:PASSWORD@HOST[:PORT]/ROOM_TOKEN[/ROOM_TOKEN…]`
/// (`nctalks://` for HTTPS), Apprise's syntax; `url_prefix=` for a Nextcloud under a path,
/// `+Header=value` for extra headers, `verify=no` for any certificate.
///
/// Each room gets `POST [/PREFIX]/ocs/v2.php/apps/spreed/api/v1/chat/ROOM_TOKEN` with basic
/// authentication (the password may be an app password), `OCS-APIRequest: true` and
/// `{"message": …}`: belfry's text, its headline first, within Apprise's 4,000 characters.
/// Rooms are posted to in order; the first failure stops the notification and the retry posts
/// to every room again.
#[derive(Clone)]
pub struct NextcloudTalk {
    scheme: &'static str,
    /// `http(s)://HOST[:PORT][/PREFIX]`.
    base: String,
    auth: String,
    rooms: Vec<String>,
    headers: Vec<(String, String)>,
    verify_tls: bool,
    describe: String,
    secrets: Secrets,
}

impl std::fmt::Debug for NextcloudTalk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextcloudTalk")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

const MESSAGE_MAX: usize = 4_000;

/// `s` percent-encoded as one path segment.
fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl NextcloudTalk {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let scheme: &'static str = if p.scheme == "nctalks" {
            "nctalks"
        } else {
            "nctalk"
        };
        p.check_keys(raw, &["url_prefix"], &['+'], scheme)?;
        if p.host.is_empty() {
            return Err(UrlError::new(
                raw,
                format!("the Nextcloud server is missing: {scheme}://USER:PASSWORD@HOST/ROOM"),
            ));
        }
        let (Some(user), Some(password)) = (p.user.clone(), p.password.clone()) else {
            return Err(UrlError::new(
                raw,
                format!("a user and password are needed: {scheme}://USER:PASSWORD@HOST/ROOM"),
            ));
        };
        if p.path.is_empty() {
            return Err(UrlError::new(
                raw,
                format!("no room to post to: {scheme}://USER:PASSWORD@HOST/ROOM_TOKEN"),
            ));
        }
        let verify_tls = match p.get("verify").filter(|v| !v.trim().is_empty()) {
            Some(v) => parse_bool(raw, "verify", v)?,
            None => true,
        };
        let prefix: String = p
            .get("url_prefix")
            .map(|s| s.trim_matches('/'))
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.split('/')
                    .filter(|seg| !seg.is_empty())
                    .map(|seg| format!("/{}", segment(seg)))
                    .collect()
            })
            .unwrap_or_default();
        let http = if scheme == "nctalks" { "https" } else { "http" };
        let port = p.port.map(|n| format!(":{n}")).unwrap_or_default();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let headers = p
            .query
            .iter()
            .filter_map(|(k, v)| k.strip_prefix('+').map(|k| (k.to_owned(), v.clone())))
            .collect();
        let mut secrets = Secrets::of_url(raw);
        secrets.add(&password);
        Ok(NextcloudTalk {
            scheme,
            base: format!("{http}://{}{port}{prefix}", p.host),
            auth: format!("Basic {auth}"),
            rooms: p.path.clone(),
            headers,
            verify_tls,
            describe: format!(
                "{scheme}://{user}:***@{}{port}/{} room{}",
                p.host,
                p.path.len(),
                if p.path.len() == 1 { "" } else { "s" }
            ),
            secrets,
        })
    }
}

impl Channel for NextcloudTalk {
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let text = render_text(
            msg.notification,
            &TextStyle {
                markup: Markup::Plain,
                title: true,
                details: true,
                tail_lines: 20,
                limit: Limit::chars(MESSAGE_MAX),
            },
        );
        let body =
            serde_json::to_vec(&json!({ "message": text })).expect("a JSON value serialises");
        let mut headers = vec![
            ("OCS-APIRequest".to_owned(), "true".to_owned()),
            ("Accept".to_owned(), "application/json".to_owned()),
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("Authorization".to_owned(), self.auth.clone()),
        ];
        headers.extend(self.headers.iter().cloned());
        Some(
            self.rooms
                .iter()
                .map(|room| HttpRequest {
                    method: Method::Post,
                    url: format!(
                        "{}/ocs/v2.php/apps/spreed/api/v1/chat/{}",
                        self.base,
                        segment(room)
                    ),
                    headers: headers.clone(),
                    body: body.clone(),
                })
                .collect(),
        )
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reqs = self.plan(msg).unwrap_or_default();
            let o = crate::http::send_planned_checking(
                reqs,
                &self.describe,
                cx,
                self.verify_tls,
                crate::default_classify,
            )
            .await;
            self.secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_prefix_and_headers_are_read_as_apprise_reads_them() {
        let t = NextcloudTalk::from_apprise(
            "nctalks://ada:pw@cloud.example.org:8443/room1/room2?url_prefix=/nc/&+X-Team=ops",
        )
        .unwrap();
        assert_eq!(t.base, "https://cloud.example.org:8443/nc");
        assert_eq!(t.rooms, ["room1", "room2"]);
        assert_eq!(t.headers, [("X-Team".to_owned(), "ops".to_owned())]);
        assert_eq!(
            t.describe(),
            "nctalks://ada:***@cloud.example.org:8443/2 rooms"
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_password() {
        for (url, what) in [
            ("nctalk://ada:S3CR3T@cloud", "no room"),
            ("nctalk://ada@cloud/room", "user and password"),
            ("nctalk://ada:S3CR3T@cloud/room?to=x", "unknown option"),
            ("nctalk://ada:S3CR3T@/room", "server is missing"),
        ] {
            let e = NextcloudTalk::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("S3CR3T"), "{url}: {e}");
        }
    }
}
