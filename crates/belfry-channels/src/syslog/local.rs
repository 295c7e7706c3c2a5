//! The local syslog, in Apprise's `syslog://` syntax: a datagram to `/dev/log`, as the C
//! library's `syslog()` sends one.

use belfry_core::Notification;
use belfry_core::render::{Limit, Markup, TextStyle, render_text};

use super::facility;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, parse_bool};
use crate::{BoxFuture, Channel, Context, Message, Outcome};

/// The local syslog: `syslog://[FACILITY]?logpid=yes|no`, Apprise's syntax (the facility as
/// the host or the last path part, or `facility=`; `user` by default).
///
/// One datagram per notification to `/dev/log`, in the form the C library's `syslog()` writes
/// there: `<PRI>Mmm dd hh:mm:ss belfry[PID]: TEXT` (the event's time in UTC; `[PID]` unless
/// `logpid=no`), the severity by the notification's Apprise type as for `rsyslog://`, the text
/// one line. `logperror=yes` (Apprise also copies each message to standard error) is refused:
/// belfry's library code does not print; add `console://` as a channel for that.
#[derive(Clone, Debug)]
pub struct LocalSyslog {
    /// `/dev/log`; a test's socket in the unit tests.
    pub(crate) path: std::path::PathBuf,
    facility: u8,
    log_pid: bool,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The longest datagram sent (what a local syslog daemon takes without question).
const DATAGRAM_MAX: usize = 2048;

impl LocalSyslog {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(raw, &["facility", "logpid", "logperror"], &[], "syslog")?;
        let mut tokens: Vec<String> = Vec::new();
        if !p.host.is_empty() {
            tokens.push(p.host.clone());
        }
        tokens.extend(p.path.iter().cloned());
        let named = p
            .get("facility")
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .or_else(|| tokens.last().cloned());
        let facility = facility::read(raw, named.as_deref())?;
        let flag = |k: &str, default: bool| match p.get(k).filter(|v| !v.trim().is_empty()) {
            Some(v) => parse_bool(raw, k, v),
            None => Ok(default),
        };
        if flag("logperror", false)? {
            return Err(UrlError::new(
                raw,
                "logperror=yes (a copy on standard error) is not supported: add console:// as \
                 another channel",
            ));
        }
        Ok(LocalSyslog {
            path: "/dev/log".into(),
            facility,
            log_pid: flag("logpid", true)?,
        })
    }

    /// The datagram for `n`.
    fn datagram(&self, n: &Notification) -> Vec<u8> {
        let pri = u32::from(self.facility) * 8 + u32::from(facility::severity(&n.apprise_type));
        // `YYYY-MM-DDTHH:MM:SS…` → `Mmm dd HH:MM:SS`, the day padded with a space.
        let t = n.time.to_rfc3339();
        let month = t
            .get(5..7)
            .and_then(|m| m.parse::<usize>().ok())
            .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
            .copied()
            .unwrap_or("Jan");
        let day = t.get(8..10).and_then(|d| d.parse::<u8>().ok()).unwrap_or(1);
        let clock = t.get(11..19).unwrap_or("00:00:00");
        let tag = if self.log_pid {
            format!("belfry[{}]", std::process::id())
        } else {
            "belfry".to_owned()
        };
        let head = format!("<{pri}>{month} {day:>2} {clock} {tag}: ");
        let text = render_text(
            n,
            &TextStyle {
                markup: Markup::Plain,
                title: true,
                details: true,
                tail_lines: 0,
                limit: Limit::bytes(DATAGRAM_MAX / 2),
            },
        )
        .replace('\n', " | ");
        let mut out = head.into_bytes();
        out.extend_from_slice(text.as_bytes());
        out
    }

    async fn deliver(&self, datagram: &[u8]) -> Result<(), String> {
        let sock = tokio::net::UnixDatagram::unbound()
            .map_err(|e| format!("cannot open a socket for the local syslog: {e}"))?;
        sock.send_to(datagram, &self.path).await.map_err(|e| {
            format!(
                "cannot send to the local syslog ({}): {e}",
                self.path.display()
            )
        })?;
        Ok(())
    }
}

impl Channel for LocalSyslog {
    fn scheme(&self) -> &'static str {
        "syslog"
    }

    fn describe(&self) -> String {
        format!("syslog://{}", facility::name(self.facility))
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let datagram = self.datagram(msg.notification);
            match tokio::time::timeout(cx.timeout(), self.deliver(&datagram)).await {
                Ok(Ok(())) => Outcome::Delivered,
                Ok(Err(reason)) => Outcome::retry(reason),
                Err(_) => Outcome::retry("timed out sending to the local syslog"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use belfry_core::{Decision, Details, Event, Reason, State, Timestamp};

    use super::*;

    fn failed() -> Notification {
        let ev = Event {
            job: "backup".into(),
            state: State::Failed,
            at: Timestamp::from_millis(1_800_000_000_000), // 2027-01-15T08:00:00Z
            details: Details {
                exit_code: Some(2),
                ..Details::default()
            },
        };
        Notification::new(
            "n-1".into(),
            &ev,
            None,
            &Decision {
                notify: true,
                reason: Reason::FirstRun,
            },
        )
    }

    #[test]
    fn the_facility_is_read_as_apprise_reads_it() {
        assert_eq!(LocalSyslog::from_apprise("syslog://").unwrap().facility, 1);
        assert_eq!(
            LocalSyslog::from_apprise("syslog://local5")
                .unwrap()
                .facility,
            21
        );
        assert_eq!(
            LocalSyslog::from_apprise("syslog://x/dae")
                .unwrap()
                .facility,
            3
        );
        let s = LocalSyslog::from_apprise("syslog://?facility=cron&logpid=no").unwrap();
        assert_eq!((s.facility, s.log_pid), (9, false));
        assert_eq!(s.describe(), "syslog://cron");
        for (url, what) in [
            ("syslog://local9", "not a syslog facility"),
            ("syslog://?logperror=yes", "console://"),
            ("syslog://?tag=x", "unknown option"),
        ] {
            let e = LocalSyslog::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
        }
    }

    /// The datagram as a real Unix socket receives it.
    #[test]
    fn one_datagram_reaches_the_syslog_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut ch = LocalSyslog::from_apprise("syslog://local3").unwrap();
        ch.path = path;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let n = failed();
        let msg = Message {
            notification: &n,
            idempotency_key: "n-1:log",
        };
        let cx = Context::new(Duration::from_secs(5));
        assert_eq!(rt.block_on(ch.send(&msg, &cx)), Outcome::Delivered);
        let mut buf = [0u8; 4096];
        let got = rx.recv(&mut buf).unwrap();
        let line = String::from_utf8_lossy(&buf[..got]).into_owned();
        let head = format!("<154>Jan 15 08:00:00 belfry[{}]: ", std::process::id());
        assert!(line.starts_with(&head), "{line}");
        assert!(
            line.contains("backup: Failed") && !line.contains('\n'),
            "{line}"
        );

        // No syslog listening: retried, the reason naming the socket.
        drop(rx);
        let o = rt.block_on(ch.send(&msg, &cx));
        assert!(
            matches!(&o, Outcome::Retry { reason, .. } if reason.contains("local syslog")),
            "{o:?}"
        );
    }
}
