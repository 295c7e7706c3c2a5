//! What every channel is: the [`Channel`] trait, the [`Message`] it sends and the [`Pace`] it
//! asks for. Every family builds on this file, and it names none of them.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use belfry_core::Notification;

use crate::http::{Context, HttpRequest};
use crate::outcome::Outcome;
use crate::url_parse::UrlError;

/// A boxed future, as channels return them (the trait must stay object-safe: belfry holds its
/// channels as `Box<dyn Channel>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One notification to deliver through one channel.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    /// What to say.
    pub notification: &'a Notification,
    /// Unique to this (notification, channel); passed to services that deduplicate.
    pub idempotency_key: &'a str,
}

/// A destination for notifications.
///
/// Implementations render the message for their service, send it, and judge the outcome
/// themselves ([`Outcome`]); they must never panic on a bad answer, and never put a secret in
/// a reason or a description.
pub trait Channel: Send + Sync + fmt::Debug {
    /// The URL scheme that made this channel (`"json"`, `"slack"`, `"console"`).
    fn scheme(&self) -> &'static str;

    /// The destination, safe to print: secrets replaced by `***`, paths by `…`.
    fn describe(&self) -> String;

    /// The HTTP requests this channel would send for `msg`, if it is an HTTP channel.
    fn plan(&self, msg: &Message<'_>) -> Option<Vec<HttpRequest>> {
        let _ = msg;
        None
    }

    /// How fast this destination may be sent to. The default suits a service that states no
    /// limit: no rate limit, 8 requests at a time.
    fn pace(&self) -> Pace {
        Pace::default()
    }

    /// Sends `msg` and classifies the outcome.
    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome>;
}

/// How fast one destination may be sent to: a token bucket (`per_second` tokens a second, at
/// most `burst` saved up) and a limit on requests in flight. The delivery engine keeps one per
/// destination, so a slow or rate-limited channel never holds up the others.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pace {
    /// Sustained sends per second; `None`: no limit.
    pub per_second: Option<f64>,
    /// Sends allowed at once after a quiet spell.
    pub burst: u32,
    /// Requests in flight at once.
    pub concurrency: usize,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            per_second: None,
            burst: 1,
            concurrency: 8,
        }
    }
}

impl Pace {
    /// At most `per_second` sends a second, `burst` at once, one request at a time.
    pub const fn limited(per_second: f64, burst: u32) -> Self {
        Pace {
            per_second: Some(per_second),
            burst,
            concurrency: 1,
        }
    }
}

/// A parsed channel, boxed as the registry hands channels out.
pub(crate) fn boxed<C: Channel + 'static>(
    r: Result<C, UrlError>,
) -> Result<Box<dyn Channel>, UrlError> {
    r.map(|c| Box::new(c) as Box<dyn Channel>)
}
