//! Desktop notifications (freedesktop, over D-Bus) through notify-rust, behind the `desktop`
//! cargo feature.

use crate::url_parse::UrlError;
#[cfg(feature = "desktop")]
use crate::url_parts::Parts;
#[cfg(feature = "desktop")]
use crate::{BoxFuture, Channel, Context, Message, Outcome};

/// The schemes of desktop notifications: belfry's `desktop://` and Apprise's names for the
/// same thing.
pub(crate) const SCHEMES: &[&str] = &["desktop", "dbus", "kde", "qt", "glib", "gnome"];

/// A desktop notification on the session's notification server (freedesktop's D-Bus
/// interface): `desktop://`, or Apprise's `dbus://`, `kde://`, `qt://`, `glib://`,
/// `gnome://`. A problem is shown as critical, anything else as normal, unless
/// `urgency=low|normal|high` says otherwise (Apprise's `x=`, `y=` and `image=` are accepted
/// and ignored).
///
/// Built only with the `desktop` feature; without it these URLs are refused with an
/// explanation.
#[cfg(feature = "desktop")]
#[derive(Clone, Debug)]
pub struct Desktop {
    urgency: Option<notify_rust::Urgency>,
    describe: String,
}

#[cfg(feature = "desktop")]
impl Desktop {
    pub(crate) fn from_url(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(
            raw,
            &["urgency", "priority", "x", "y", "image"],
            &[],
            &p.scheme,
        )?;
        let urgency = match p
            .get("urgency")
            .or(p.get("priority"))
            .map(str::to_ascii_lowercase)
        {
            None => None,
            Some(u) => Some(match u.as_str() {
                "low" | "l" | "0" => notify_rust::Urgency::Low,
                "normal" | "n" | "1" => notify_rust::Urgency::Normal,
                "high" | "h" | "critical" | "2" => notify_rust::Urgency::Critical,
                _ => {
                    return Err(UrlError::new(
                        raw,
                        format!("urgency={u:?} is not low, normal or high"),
                    ));
                }
            }),
        };
        Ok(Desktop {
            urgency,
            describe: format!("{}://", p.scheme),
        })
    }
}

#[cfg(feature = "desktop")]
impl Channel for Desktop {
    fn scheme(&self) -> &'static str {
        "desktop"
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let n = msg.notification;
            let urgency = self.urgency.unwrap_or(match n.kind {
                belfry_core::Kind::Problem => notify_rust::Urgency::Critical,
                _ => notify_rust::Urgency::Normal,
            });
            let (summary, body) = (n.title.clone(), n.message.clone());
            // notify-rust blocks on D-Bus: off the async thread, within the request timeout.
            let shown = tokio::task::spawn_blocking(move || {
                notify_rust::Notification::new()
                    .appname("belfry")
                    .summary(&summary)
                    .body(&body)
                    .urgency(urgency)
                    .show()
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
            match tokio::time::timeout(cx.timeout(), shown).await {
                Ok(Ok(Ok(()))) => Outcome::Delivered,
                Ok(Ok(Err(e))) => Outcome::retry(format!("no desktop notification: {e}")),
                Ok(Err(e)) => Outcome::retry(format!("no desktop notification: {e}")),
                Err(_) => Outcome::retry("the desktop's notification server did not answer"),
            }
        })
    }
}

/// Parses a desktop URL; without the `desktop` feature, says how to get one.
pub(crate) fn parse(raw: &str) -> Result<Box<dyn crate::Channel>, UrlError> {
    #[cfg(feature = "desktop")]
    {
        Desktop::from_url(raw).map(|d| Box::new(d) as Box<dyn crate::Channel>)
    }
    #[cfg(not(feature = "desktop"))]
    {
        Err(UrlError::new(
            raw,
            "this belfry was built without desktop notifications; build it with the `desktop` \
             feature (cargo install belfry-cli --features desktop, or cargo build --features \
             desktop)",
        ))
    }
}

#[cfg(test)]
mod tests {
    #[cfg(not(feature = "desktop"))]
    #[test]
    fn without_the_feature_desktop_urls_say_how_to_get_it() {
        for s in super::SCHEMES {
            let e = crate::parse(&format!("{s}://")).unwrap_err().to_string();
            assert!(e.contains("--features desktop"), "{e}");
        }
    }

    #[cfg(feature = "desktop")]
    #[test]
    fn desktop_urls_take_apprise_urgencies() {
        use crate::Channel;
        let d = super::Desktop::from_url("dbus://?urgency=high&x=10&image=no").unwrap();
        assert_eq!(d.urgency, Some(notify_rust::Urgency::Critical));
        assert_eq!(d.describe(), "dbus://");
        let e = super::Desktop::from_url("desktop://?urgency=loud")
            .unwrap_err()
            .to_string();
        assert!(e.contains("urgency=\"loud\""), "{e}");
    }
}
