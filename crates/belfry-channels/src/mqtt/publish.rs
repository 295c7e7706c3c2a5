//! Publishing a notification to MQTT topics, in Apprise's `mqtt://` syntax: one connection
//! per notification, a PUBLISH per topic, each acknowledged as its QoS asks, then DISCONNECT.

use belfry_core::render::{Limit, Markup, TextStyle, render_text};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::packet::{self, Connect, Incoming, Version};
use crate::secrets::Secrets;
use crate::url_parse::{UrlError, decode};
use crate::url_parts::{Parts, parse_bool, split_list};
use crate::{BoxFuture, Channel, Context, Message, Outcome};

/// MQTT: `mqtt://[USER[:PASSWORD]@]HOST[:PORT]/TOPIC[,TOPIC…]`, Apprise's syntax; port 1883
/// (`mqtts://` over TLS, port 8883, the certificate checked against the system's trust store
/// unless `verify=no`).
/// A topic keeps its slashes (`mqtt://broker/home/alerts` publishes to `home/alerts`); several
/// are separated by commas or spaces, or given with `to=`.
///
/// - `qos=0|1|2` (0 by default): with 1 the broker's PUBACK is awaited, with 2 the
///   PUBREC/PUBREL/PUBCOMP exchange, so a delivered notification is one the broker took.
/// - `retain=yes` keeps the message on the topic; `version=3.1.1|3.1|5` (3.1.1 by default);
///   `client_id=` (else `belfry-PID-N`), `session=yes` to keep the session (with a client id).
/// - The payload is belfry's text: headline, summary, details and, for a problem, the
///   output's end.
///
/// A refused login is permanent; a broker that cannot be reached, is unavailable or does not
/// answer in time is retried.
#[derive(Clone)]
pub struct Mqtt {
    /// `mqtts://`: TLS, checked unless `verify=no`.
    tls: bool,
    verify_tls: bool,
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    topics: Vec<String>,
    qos: u8,
    retain: bool,
    version: Version,
    client_id: Option<String>,
    session: bool,
    describe: String,
    secrets: Secrets,
}

impl std::fmt::Debug for Mqtt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mqtt")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

/// The options Apprise 2.3 reads for MQTT.
const OPTIONS: &[&str] = &["qos", "version", "client_id", "session", "retain", "to"];

/// The longest payload sent: far below MQTT's 256 MB, well above any alert.
const PAYLOAD_MAX: usize = 65_536;

impl Mqtt {
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let tls = p.scheme == "mqtts";
        let scheme = if tls { "mqtts" } else { "mqtt" };
        p.check_keys(raw, OPTIONS, &[], scheme)?;
        if p.host.is_empty() {
            return Err(UrlError::new(
                raw,
                "the broker is missing: mqtt://[USER:PASSWORD@]HOST[:PORT]/TOPIC",
            ));
        }
        // The path as written, less its first slash, is a list of topics (slashes kept).
        let rest = raw.trim().split_once("://").map_or("", |(_, r)| r);
        let rest = rest.split('?').next().unwrap_or("");
        let path = rest.find('/').map_or("", |i| &rest[i + 1..]);
        let mut topics: Vec<String> = split_list(&decode(path)).map(str::to_owned).collect();
        if let Some(to) = p.get("to") {
            topics.extend(split_list(to).map(str::to_owned));
        }
        if topics.is_empty() {
            return Err(UrlError::new(
                raw,
                "no topic to publish to: mqtt://HOST/TOPIC (or ?to=TOPIC)",
            ));
        }
        if let Some(bad) = topics
            .iter()
            .find(|t| t.contains(['+', '#']) || t.len() > 65_535)
        {
            return Err(UrlError::new(
                raw,
                format!("{bad:?} is not a topic to publish to (no + or # wildcards)"),
            ));
        }
        let flag = |k: &str, default: bool| match p.get(k).filter(|v| !v.trim().is_empty()) {
            Some(v) => parse_bool(raw, k, v),
            None => Ok(default),
        };
        let qos = match p.get("qos").map(str::trim).filter(|q| !q.is_empty()) {
            None => 0,
            Some(q) => match q.parse::<u8>() {
                Ok(n) if n <= 2 => n,
                _ => {
                    return Err(UrlError::new(raw, format!("qos={q:?} is not 0, 1 or 2")));
                }
            },
        };
        let version = match p.get("version").filter(|v| !v.trim().is_empty()) {
            None => Version::V311,
            Some(v) => {
                let digits: String = v.chars().filter(char::is_ascii_digit).collect();
                match digits.as_str() {
                    "311" => Version::V311,
                    "31" => Version::V31,
                    "5" | "50" => Version::V5,
                    _ => {
                        return Err(UrlError::new(
                            raw,
                            format!("version={v:?} is not v3.1.1, v3.1 or v5.0"),
                        ));
                    }
                }
            }
        };
        let client_id = p
            .get("client_id")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        // As Apprise: a kept session needs a client id to find it again.
        let session = flag("session", false)? && client_id.is_some();
        let retain = flag("retain", false)?;
        let verify_tls = flag("verify", true)?;
        let port = p.port.unwrap_or(if tls { 8883 } else { 1883 });
        let describe = format!(
            "{scheme}://{}{}:{port}/{}",
            if p.user.is_some() { "***@" } else { "" },
            p.host,
            topics.join(",")
        );
        let mut secrets = Secrets::of_url(raw);
        if let Some(pw) = &p.password {
            secrets.add(pw);
        }
        Ok(Mqtt {
            tls,
            verify_tls,
            host: p
                .host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            user: p.user.clone(),
            password: p.password.clone(),
            topics,
            qos,
            retain,
            version,
            client_id,
            session,
            describe,
            secrets,
        })
    }

    fn payload(n: &belfry_core::Notification) -> Vec<u8> {
        render_text(
            n,
            &TextStyle {
                markup: Markup::Plain,
                title: true,
                details: true,
                tail_lines: 20,
                limit: Limit::bytes(PAYLOAD_MAX),
            },
        )
        .into_bytes()
    }

    /// Connects, publishes to every topic and disconnects; `Err` carries the outcome of the
    /// first step that failed.
    async fn exchange(&self, payload: &[u8]) -> Result<(), Outcome> {
        let retry = |what: &str, e: std::io::Error| {
            Outcome::retry(format!("{what} {}: {e}", self.describe))
        };
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| retry("could not connect to", e))?;
        let mut stream: Box<dyn Stream> = if self.tls {
            Box::new(
                crate::tls::connect(tcp, &self.host, self.verify_tls)
                    .await
                    .map_err(|e| Outcome::retry(format!("{}: {e}", self.describe)))?,
            )
        } else {
            Box::new(tcp)
        };
        let generated;
        let client_id = match &self.client_id {
            Some(c) => c.as_str(),
            None => {
                generated = client_id();
                generated.as_str()
            }
        };
        let connect = packet::connect(&Connect {
            version: self.version,
            client_id,
            clean_session: !self.session,
            keep_alive: 30,
            user: self.user.as_deref(),
            password: self.password.as_deref(),
        });
        stream
            .write_all(&connect)
            .await
            .map_err(|e| retry("could not write to", e))?;
        let answer = read(&mut stream)
            .await
            .map_err(|e| retry("no CONNACK from", e))?;
        if answer.kind != 2 {
            return Err(Outcome::retry(format!(
                "{}: expected a CONNACK, got packet type {}",
                self.describe, answer.kind
            )));
        }
        if let Err((code, permanent)) = packet::connack(self.version, &answer.body) {
            let reason = format!(
                "{}: the broker refused the connection (code {code})",
                self.describe
            );
            return Err(if permanent {
                Outcome::permanent(reason)
            } else {
                Outcome::retry(reason)
            });
        }
        for (i, topic) in self.topics.iter().enumerate() {
            let id = u16::try_from(i + 1).unwrap_or(u16::MAX);
            let publish = packet::publish(self.version, topic, payload, self.qos, self.retain, id);
            stream
                .write_all(&publish)
                .await
                .map_err(|e| retry("could not publish to", e))?;
            if self.qos > 0 {
                self.await_ack(&mut stream, id, if self.qos == 1 { 4 } else { 5 })
                    .await?;
            }
            if self.qos == 2 {
                stream
                    .write_all(&packet::pubrel(id))
                    .await
                    .map_err(|e| retry("could not publish to", e))?;
                self.await_ack(&mut stream, id, 7).await?;
            }
        }
        // Packets are handled in order: the broker has the messages before it reads this.
        let _ = stream.write_all(&packet::disconnect()).await;
        let _ = stream.shutdown().await;
        Ok(())
    }

    /// Reads until the acknowledgement of type `kind` for packet `id`.
    async fn await_ack<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        id: u16,
        kind: u8,
    ) -> Result<(), Outcome> {
        loop {
            let p = read(stream).await.map_err(|e| {
                Outcome::retry(format!("{}: no acknowledgement: {e}", self.describe))
            })?;
            if p.kind != kind {
                continue;
            }
            match packet::ack(&p.body) {
                Some((got, reason)) if got == id => {
                    return if reason < 0x80 {
                        Ok(())
                    } else {
                        Err(Outcome::permanent(format!(
                            "{}: the broker refused the message (reason {reason:#x})",
                            self.describe
                        )))
                    };
                }
                _ => continue,
            }
        }
    }
}

/// A connection to the broker, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// `belfry-PID-N`: unique among this host's processes and this process's connections, and
/// within MQTT 3.1's 23 characters.
fn client_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "belfry-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Reads one packet.
async fn read<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<Incoming> {
    let first = stream.read_u8().await?;
    let mut len_bytes = Vec::new();
    for _ in 0..4 {
        let b = stream.read_u8().await?;
        len_bytes.push(b);
        if b & 0x80 == 0 {
            break;
        }
    }
    let mut it = len_bytes.into_iter();
    let len = packet::read_varint(|| it.next()).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "a malformed packet length")
    })?;
    if len > 1 << 20 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "an answer too long for an acknowledgement",
        ));
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await?;
    Ok(Incoming {
        kind: first >> 4,
        body,
    })
}

impl Channel for Mqtt {
    fn scheme(&self) -> &'static str {
        if self.tls { "mqtts" } else { "mqtt" }
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let payload = Mqtt::payload(msg.notification);
            let o = match tokio::time::timeout(cx.timeout(), self.exchange(&payload)).await {
                Ok(Ok(())) => Outcome::Delivered,
                Ok(Err(o)) => o,
                Err(_) => Outcome::retry(format!("{}: timed out", self.describe)),
            };
            self.secrets.scrub_outcome(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_options_are_read_as_apprise_reads_them() {
        let m = Mqtt::from_apprise(
            "mqtt://ada:pw@broker:1884/home/alerts,ops%20backups?qos=1&retain=yes&to=x",
        )
        .unwrap();
        assert_eq!(m.topics, ["home/alerts", "ops", "backups", "x"]);
        assert_eq!((m.port, m.qos, m.retain), (1884, 1, true));
        assert_eq!(
            (m.user.as_deref(), m.password.as_deref()),
            (Some("ada"), Some("pw"))
        );
        assert_eq!(
            m.describe(),
            "mqtt://***@broker:1884/home/alerts,ops,backups,x"
        );
        let m = Mqtt::from_apprise("mqtt://broker/t?version=v5.0&session=yes").unwrap();
        assert_eq!(
            (m.version, m.session, m.port),
            (Version::V5, false, 1883),
            "no session without a client id"
        );
        let m = Mqtt::from_apprise("mqtts://broker/t?verify=no").unwrap();
        assert_eq!((m.tls, m.verify_tls, m.port), (true, false, 8883));
        assert_eq!(m.describe(), "mqtts://broker:8883/t");
        let m = Mqtt::from_apprise("mqtt://broker/t?version=3.1&client_id=me&session=yes").unwrap();
        assert_eq!((m.version, m.session), (Version::V31, true));
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_password() {
        for (url, what) in [
            ("mqtt://u:S3CR3T@broker", "no topic"),
            ("mqtt://u:S3CR3T@broker/t?qos=3", "qos=\"3\""),
            ("mqtt://u:S3CR3T@broker/t?version=4", "version"),
            ("mqtt://u:S3CR3T@broker/a/%23", "wildcards"),
            ("mqtt://u:S3CR3T@broker/t?topic=x", "unknown option"),
            ("mqtt:///t", "broker is missing"),
        ] {
            let e = Mqtt::from_apprise(url).unwrap_err().to_string();
            assert!(e.contains(what), "{url}: {e}");
            assert!(!e.contains("S3CR3T"), "{url}: {e}");
        }
    }
}
