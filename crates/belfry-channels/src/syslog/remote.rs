//! A remote syslog server over UDP, in Apprise's `rsyslog://` syntax, each message an RFC 5424
//! line.

use belfry_core::Notification;
use belfry_core::render::{Limit, Markup, TextStyle, render_text};

use super::facility;
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, parse_bool};
use crate::{BoxFuture, Channel, Context, Message, Outcome};

/// Remote syslog: `rsyslog://HOST[:PORT][/FACILITY]?logpid=yes|no`, Apprise's syntax; port 514
/// and facility `user` unless given (`facility=` too; the start of a name is enough, as in
/// Apprise).
///
/// One UDP datagram per notification, an RFC 5424 message: `<PRI>1 TIME HOST belfry PID - -
/// TEXT`. The severity follows the notification's Apprise type as Apprise maps it (failure
/// `crit`, warning `warning`, success `notice`, info `info`); the time is the event's, the host
/// the job's (`-` when unknown), the process id belfry's (`-` with `logpid=no`). The text is the
/// headline and the summary on one line, at most 2,048 bytes for the whole datagram.
///
/// UDP says nothing back: a datagram handed to the network is delivered; a name that does not
/// resolve or a socket that cannot send is retried.
#[derive(Clone, Debug)]
pub struct RemoteSyslog {
    host: String,
    port: u16,
    facility: u8,
    log_pid: bool,
}

/// The longest datagram sent: what RFC 5424 asks every receiver to take.
const DATAGRAM_MAX: usize = 2048;

impl RemoteSyslog {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        p.check_keys(raw, &["facility", "logpid"], &[], "rsyslog")?;
        if p.host.is_empty() {
            return Err(UrlError::new(
                raw,
                "the syslog server is missing: rsyslog://HOST[:PORT][/FACILITY]",
            ));
        }
        let named = p
            .get("facility")
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .or_else(|| p.path.last().cloned());
        let facility = facility::read(raw, named.as_deref())?;
        let log_pid = match p.get("logpid").filter(|v| !v.trim().is_empty()) {
            Some(v) => parse_bool(raw, "logpid", v)?,
            None => true,
        };
        let host = p
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(RemoteSyslog {
            host,
            port: p.port.unwrap_or(514),
            facility,
            log_pid,
        })
    }

    /// The datagram for `n`.
    pub(crate) fn datagram(&self, n: &Notification) -> Vec<u8> {
        let severity = u32::from(facility::severity(&n.apprise_type));
        let pri = u32::from(self.facility) * 8 + severity;
        let host = n
            .host
            .as_deref()
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .map(|h| h.chars().take(255).collect::<String>())
            .unwrap_or_else(|| "-".to_owned());
        let pid = if self.log_pid {
            std::process::id().to_string()
        } else {
            "-".to_owned()
        };
        let head = format!("<{pri}>1 {} {host} belfry {pid} - - ", n.time.to_rfc3339());
        let text = render_text(
            n,
            &TextStyle {
                markup: Markup::Plain,
                title: true,
                details: true,
                tail_lines: 0,
                limit: Limit::bytes(DATAGRAM_MAX.saturating_sub(head.len())),
            },
        );
        // One line: a syslog message has no line breaks of its own.
        let text = text.replace('\n', " | ");
        let mut out = head.into_bytes();
        out.extend_from_slice(text.as_bytes());
        // " | " is one byte longer than "\n" per break: cut at a character boundary.
        if out.len() > DATAGRAM_MAX {
            let mut cut = DATAGRAM_MAX;
            while cut > 0 && (out[cut] & 0xC0) == 0x80 {
                cut -= 1;
            }
            out.truncate(cut);
        }
        out
    }

    fn describe_str(&self) -> String {
        let fac = facility::name(self.facility);
        if self.host.contains(':') {
            format!("rsyslog://[{}]:{}/{fac}", self.host, self.port)
        } else {
            format!("rsyslog://{}:{}/{fac}", self.host, self.port)
        }
    }
}

impl Channel for RemoteSyslog {
    fn scheme(&self) -> &'static str {
        "rsyslog"
    }

    fn describe(&self) -> String {
        self.describe_str()
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let datagram = self.datagram(msg.notification);
            let describe = self.describe_str();
            let work = async {
                let addr = tokio::net::lookup_host((self.host.as_str(), self.port))
                    .await
                    .map_err(|e| format!("cannot resolve {describe}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{describe} resolves to no address"))?;
                let local = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let sock = tokio::net::UdpSocket::bind(local)
                    .await
                    .map_err(|e| format!("cannot open a UDP socket for {describe}: {e}"))?;
                let sent = sock
                    .send_to(&datagram, addr)
                    .await
                    .map_err(|e| format!("cannot send to {describe}: {e}"))?;
                if sent < datagram.len() {
                    return Err(format!(
                        "{describe}: sent {sent} of {} bytes",
                        datagram.len()
                    ));
                }
                Ok(())
            };
            match tokio::time::timeout(cx.timeout(), work).await {
                Ok(Ok(())) => Outcome::Delivered,
                Ok(Err(reason)) => Outcome::retry(reason),
                Err(_) => Outcome::retry(format!("timed out sending to {describe}")),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_facility_and_port_are_read_as_apprise_reads_them() {
        let s = RemoteSyslog::from_apprise("rsyslog://logs.example.org").unwrap();
        assert_eq!((s.port, s.facility, s.log_pid), (514, 1, true));
        let s =
            RemoteSyslog::from_apprise("rsyslog://logs.example.org:1514/LOCAL5?logpid=no").unwrap();
        assert_eq!((s.port, s.facility, s.log_pid), (1514, 21, false));
        let s = RemoteSyslog::from_apprise("rsyslog://h/daemon?facility=cr").unwrap();
        assert_eq!(
            s.facility, 9,
            "facility= wins, and a start of a name is enough"
        );
        assert_eq!(s.describe(), "rsyslog://h:514/cron");
        let s = RemoteSyslog::from_apprise("rsyslog://[::1]:5514").unwrap();
        assert_eq!(s.describe(), "rsyslog://[::1]:5514/user");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, what) in [
            ("rsyslog://", "server is missing"),
            ("rsyslog://h/local9", "not a syslog facility"),
            ("rsyslog://h?logpid=maybe", "logpid"),
            ("rsyslog://h?tag=x", "unknown option"),
        ] {
            let e = RemoteSyslog::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
        }
    }
}
