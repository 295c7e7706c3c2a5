//! A healthchecks-style pinger (`hcping://`, `hcpings://`): each notification becomes one
//! ping of a healthchecks.io check, or of a `belfry serve` job, as runitor sends them.
//!
//! `belfry run` adds this channel itself when `BELFRY_PING_URL` or `[ping] url` is set (see
//! `docs/decisions.md`, "`belfry run` as a healthchecks pinger"); the ping base is the URL with
//! `hcping` for `http` and `hcpings` for `https`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use belfry_core::{Notification, State};

use crate::channel::{Channel, boxed};
use crate::secrets::Secrets;
use crate::url_parse::UrlError;
use crate::{BoxFuture, Context, HttpRequest, Message, Method, Outcome};

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["hcping", "hcpings"];

/// healthchecks' default limit on a ping's body, used until a server names its own
/// (`Ping-Body-Limit`).
pub const DEFAULT_BODY_LIMIT: usize = 10_000;

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(_scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    boxed(HcPing::from_url(raw))
}

/// Pings a healthchecks-style ping base: `<base>/<job>/<what>` for a base that ends in a
/// ping key (`https://hc-ping.com/<ping-key>`, a belfry server's `/ping/<ping-key>`), or
/// `<base>/<what>` for a base that ends in a check's UUID (the check's own ping URL).
///
/// `<what>` is `start` for a run that began, `0` for one that succeeded (by its own
/// `--ok-codes`), its exit code for one that failed, 124 for one that ran past its time limit,
/// 128+N for one killed by signal N, and `fail` for one with neither (it could not be
/// started, or its watcher vanished). `?rid=` is the run's id, so that the server pairs a
/// start with its finish. The body is the end of the output, within the server's limit.
#[derive(Clone)]
pub struct HcPing {
    /// `http(s)://host[:port]/path`, no trailing slash. Holds the ping key: never printed.
    base: String,
    /// Whether the base's last segment is a check's UUID (no job name goes in the path).
    by_uuid: bool,
    describe: String,
    secrets: Secrets,
}

impl std::fmt::Debug for HcPing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HcPing")
            .field("url", &self.describe)
            .finish_non_exhaustive()
    }
}

/// The body limit each ping base's server named, for the rest of the process: a start's
/// answer says it before the finish is sent.
fn limits() -> &'static Mutex<HashMap<String, usize>> {
    static LIMITS: OnceLock<Mutex<HashMap<String, usize>>> = OnceLock::new();
    LIMITS.get_or_init(Mutex::default)
}

impl HcPing {
    /// `hcping://host/path` or `hcpings://host/path`.
    pub fn from_url(raw: &str) -> Result<Self, UrlError> {
        let (scheme, rest) = raw
            .trim()
            .split_once("://")
            .ok_or_else(|| UrlError::new(raw, "it has no scheme"))?;
        let web = match scheme.to_ascii_lowercase().as_str() {
            "hcping" => "http",
            "hcpings" => "https",
            other => return Err(UrlError::new(raw, format!("{other}:// is not a ping URL"))),
        };
        Self::from_base(&format!("{web}://{rest}")).map_err(|why| UrlError::new(raw, why))
    }

    /// A ping base as healthchecks shows it: `https://hc-ping.com/<ping-key>`,
    /// `http://host:8000/ping/<ping-key>`, or a check's own `https://hc-ping.com/<uuid>`.
    /// The error says what is wrong, without the key.
    pub fn from_base(base: &str) -> Result<Self, String> {
        let url = url::Url::parse(base.trim()).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "a ping URL starts with http:// or https://, not {}://",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("it has no host name".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("a ping base has no ?query or #fragment".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a ping base has no user:password@".into());
        }
        let path = url.path().trim_end_matches('/');
        let last = path.rsplit('/').next().unwrap_or_default();
        if last.is_empty() {
            return Err("it names no check (it ends in a ping key or a check's UUID)".into());
        }
        let by_uuid = uuid::Uuid::try_parse(last).is_ok();
        let mut origin = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
        if let Some(port) = url.port() {
            origin.push_str(&format!(":{port}"));
        }
        let base = format!("{origin}{path}");
        let mut secrets = Secrets::of_url(&base);
        // The key (or UUID) is the secret, however short.
        secrets.add(last);
        Ok(HcPing {
            describe: format!("{origin}/…"),
            base,
            by_uuid,
            secrets,
        })
    }

    /// What the ping says about `n`: `start`, an exit status, `fail`, or `log`.
    pub fn what(n: &Notification) -> String {
        match (&n.state, n.exit_code, n.signal) {
            (State::Running, _, _) => "start".into(),
            (State::Ok, _, _) => "0".into(),
            (State::TimedOut, _, _) => "124".into(),
            (State::Skipped, _, _) => "log".into(),
            (_, Some(c), _) if c != 0 => (c & 0xff).to_string(),
            (_, _, Some(s)) => (128 + s).clamp(0, 255).to_string(),
            _ => "fail".into(),
        }
    }

    /// The address of the ping for `n` (holds the key: never print it).
    pub fn address(&self, n: &Notification) -> String {
        let mut url = self.base.clone();
        if !self.by_uuid {
            url.push('/');
            url.extend(url::form_urlencoded::byte_serialize(n.job.as_bytes()));
        }
        url.push('/');
        url.push_str(&Self::what(n));
        if let Some(rid) = n
            .run_id
            .as_deref()
            .filter(|r| uuid::Uuid::try_parse(r).is_ok())
        {
            url.push_str("?rid=");
            url.push_str(rid);
        }
        url
    }

    /// The body of the ping for `n`: a finish's output (its end, at most `limit` bytes), or
    /// its error when it wrote nothing; nothing for a start.
    pub fn body(n: &Notification, limit: usize) -> Vec<u8> {
        if n.state == State::Running {
            return Vec::new();
        }
        let text = n
            .output_tail
            .as_deref()
            .filter(|o| !o.is_empty())
            .or(n.error.as_deref())
            .unwrap_or_default();
        let mut from = text.len().saturating_sub(limit);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        text.as_bytes()[from..].to_vec()
    }

    fn limit(&self) -> usize {
        limits()
            .lock()
            .ok()
            .and_then(|m| m.get(&self.base).copied())
            .unwrap_or(DEFAULT_BODY_LIMIT)
    }
}

impl Channel for HcPing {
    fn scheme(&self) -> &'static str {
        "hcping"
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let n = msg.notification;
        Some(vec![HttpRequest {
            method: Method::Post,
            url: self.address(n),
            headers: vec![(
                "Content-Type".to_owned(),
                "text/plain; charset=utf-8".to_owned(),
            )],
            body: Self::body(n, self.limit()),
        }])
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Some(req) = self.plan(msg).and_then(|mut r| r.pop()) else {
                return Outcome::permanent("nothing to send");
            };
            let outcome = match cx.exchange(&req, &self.describe, true).await {
                Ok(answer) => {
                    if let Some(limit) = answer.ping_body_limit
                        && let Ok(mut m) = limits().lock()
                    {
                        m.insert(self.base.clone(), limit);
                    }
                    crate::default_classify(
                        answer.status,
                        answer.retry_after.as_deref(),
                        &answer.text(),
                    )
                }
                Err(reason) => Outcome::retry(reason),
            };
            self.secrets.scrub_outcome(outcome)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use belfry_core::{Decision, Details, Event, Timestamp};

    fn note(state: State, details: Details) -> Notification {
        let event = Event {
            job: "backup db".into(),
            state,
            at: Timestamp::now(),
            details: Details {
                run_id: Some("0190a5e2-7c3b-7d4e-8f00-123456789abc".into()),
                ..details
            },
        };
        let decision: Decision =
            belfry_core::decide(None, &event.state, event.at, &Default::default());
        Notification::new("n1".into(), &event, None, &decision)
    }

    #[test]
    fn a_key_base_pings_the_job_by_name_and_a_uuid_base_the_check_itself() {
        let rid = "?rid=0190a5e2-7c3b-7d4e-8f00-123456789abc";
        let start = note(State::Running, Details::default());
        let failed = note(
            State::Failed,
            Details {
                exit_code: Some(3),
                ..Details::default()
            },
        );
        let key = HcPing::from_base("http://127.0.0.1:8000/ping/abc-key_1/").unwrap();
        assert_eq!(
            key.address(&start),
            format!("http://127.0.0.1:8000/ping/abc-key_1/backup+db/start{rid}")
        );
        assert_eq!(
            key.address(&failed),
            format!("http://127.0.0.1:8000/ping/abc-key_1/backup+db/3{rid}")
        );
        let hc = HcPing::from_base("https://hc-ping.com/pingkey22charslong0000").unwrap();
        assert_eq!(
            hc.address(&failed),
            format!("https://hc-ping.com/pingkey22charslong0000/backup+db/3{rid}")
        );
        let uuid =
            HcPing::from_base("https://hc-ping.com/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278").unwrap();
        assert_eq!(
            uuid.address(&start),
            format!("https://hc-ping.com/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278/start{rid}")
        );
        // Neither description shows the key or the UUID.
        assert_eq!(key.describe(), "http://127.0.0.1:8000/…");
        assert_eq!(uuid.describe(), "https://hc-ping.com/…");
        // The channel URL form says the same.
        let ch = HcPing::from_url("hcpings://hc-ping.com/pingkey22charslong0000").unwrap();
        assert!(
            ch.address(&start)
                .starts_with("https://hc-ping.com/pingkey22")
        );
    }

    #[test]
    fn each_ending_has_its_status() {
        let with = |state, exit_code, signal| {
            HcPing::what(&note(
                state,
                Details {
                    exit_code,
                    signal,
                    ..Details::default()
                },
            ))
        };
        assert_eq!(with(State::Ok, Some(0), None), "0");
        // Success by --ok-codes is success to the server too.
        assert_eq!(with(State::Ok, Some(24), None), "0");
        assert_eq!(with(State::Failed, Some(3), None), "3");
        assert_eq!(with(State::TimedOut, Some(0), None), "124");
        assert_eq!(with(State::Crashed, None, Some(9)), "137");
        assert_eq!(with(State::Cancelled, None, Some(15)), "143");
        // Could not be started: no code, no signal.
        assert_eq!(with(State::Failed, None, None), "fail");
    }

    #[test]
    fn bad_bases_are_refused_without_their_key() {
        for (base, why) in [
            ("hc-ping.com/secretkey123", "not a URL"),
            ("ftp://hc-ping.com/secretkey123", "http:// or https://"),
            ("https://hc-ping.com/", "names no check"),
            ("https://hc-ping.com/secretkey123?x=1", "no ?query"),
            ("https://u:secretkey123@hc-ping.com/k", "user:password"),
        ] {
            let e = HcPing::from_base(base).unwrap_err();
            assert!(e.contains(why), "{base}: {e}");
            assert!(!e.contains("secretkey123"), "{base}: {e}");
        }
    }

    #[test]
    fn the_body_is_the_end_of_the_output_within_the_limit() {
        let mut n = note(State::Failed, Details::default());
        n.output_tail = Some(format!("{}é{}", "a".repeat(20_000), "z".repeat(9_998)));
        let body = HcPing::body(&n, DEFAULT_BODY_LIMIT);
        assert!(body.len() <= DEFAULT_BODY_LIMIT, "{}", body.len());
        assert!(body.ends_with(b"zzz"));
        assert!(std::str::from_utf8(&body).is_ok());
        assert!(HcPing::body(&note(State::Running, Details::default()), 10).is_empty());
    }
}
