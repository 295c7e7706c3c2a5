//! E-mail over SMTP: Apprise's `mailto://` and `mailtos://`, sent with lettre on rustls.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment as MimeAttachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection as Connection, Certificate, Tls, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailParameter};

use super::mail::{self, is_address, mailbox, split_addresses};
use crate::channel::{BoxFuture, Channel, Message};
use crate::http::{Context, Kept};
use crate::outcome::{Outcome, shorten};
use crate::url_parse::UrlError;
use crate::url_parts::{Parts, parse_bool};

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Security {
    /// No TLS at all (`mode=insecure`).
    Plain,
    /// STARTTLS when the server offers it, plain otherwise (`mailto://` without `mode=`).
    StartTlsIfOffered,
    /// STARTTLS, required (`mailtos://`, `mode=starttls`).
    StartTls,
    /// TLS from the first byte (`mode=ssl`).
    ImplicitTls,
}

impl Security {
    /// The usual port for this security.
    pub const fn default_port(self) -> u16 {
        match self {
            Security::Plain | Security::StartTlsIfOffered => 25,
            Security::StartTls => 587,
            Security::ImplicitTls => 465,
        }
    }

    const fn label(self) -> &'static str {
        match self {
            Security::Plain => "no TLS",
            Security::StartTlsIfOffered => "STARTTLS if offered",
            Security::StartTls => "STARTTLS",
            Security::ImplicitTls => "TLS",
        }
    }
}

/// What Apprise knows about a few large mail providers: when the address's domain matches and
/// no `smtp=` is given, the server, port and security come from here.
struct Provider {
    domains: &'static [&'static str],
    smtp: &'static str,
    port: u16,
    security: Security,
    /// Whether the provider's login is the whole address (`user@gmail.com`) rather than the
    /// user part alone.
    login_is_address: Option<bool>,
}

const PROVIDERS: &[Provider] = &[
    Provider {
        domains: &["gmail.com"],
        smtp: "smtp.gmail.com",
        port: 587,
        security: Security::StartTls,
        login_is_address: Some(true),
    },
    Provider {
        domains: &[
            "yandex.com",
            "yandex.ru",
            "yandex.ua",
            "yandex.by",
            "yandex.kz",
            "yandex.uz",
            "yandex.tr",
            "yandex.fr",
        ],
        smtp: "smtp.yandex.ru",
        port: 465,
        security: Security::ImplicitTls,
        login_is_address: Some(false),
    },
    Provider {
        domains: &["hotmail.com", "live.com", "hotmail.com.au", "live.com.au"],
        smtp: "smtp-mail.outlook.com",
        port: 587,
        security: Security::StartTls,
        login_is_address: Some(true),
    },
    Provider {
        domains: &[
            "outlook.com",
            "outlook.com.au",
            "smtp.outlook.com",
            "smtp.outlook.com.au",
        ],
        smtp: "smtp.outlook.com",
        port: 587,
        security: Security::StartTls,
        login_is_address: Some(true),
    },
    Provider {
        domains: &["office365.com", "smtp.office365.com"],
        smtp: "smtp.office365.com",
        port: 587,
        security: Security::StartTls,
        login_is_address: None,
    },
    Provider {
        domains: &["yahoo.com", "yahoo.ca"],
        smtp: "smtp.mail.yahoo.com",
        port: 465,
        // Apprise says STARTTLS on 465; Yahoo's port 465 speaks TLS from the first byte.
        security: Security::ImplicitTls,
        login_is_address: Some(true),
    },
    Provider {
        domains: &["gmx.com", "gmx.net", "gmx.de", "gmx.at", "gmx.ch", "gmx.fr"],
        smtp: "mail.gmx.com",
        port: 587,
        security: Security::StartTls,
        login_is_address: Some(true),
    },
    Provider {
        domains: &[
            "fastmail.com",
            "fastmail.cn",
            "fastmail.co.uk",
            "fastmail.com.au",
            "fastmail.de",
            "fastmail.es",
            "fastmail.fm",
            "fastmail.fr",
            "fastmail.im",
            "fastmail.in",
            "fastmail.jp",
            "fastmail.mx",
            "fastmail.net",
            "fastmail.nl",
            "fastmail.org",
            "fastmail.se",
            "fastmail.to",
            "fastmail.tw",
            "fastmail.uk",
            "fastmail.us",
        ],
        smtp: "smtp.fastmail.com",
        port: 465,
        security: Security::ImplicitTls,
        login_is_address: Some(true),
    },
    Provider {
        domains: &["zoho.com", "zohomail.com"],
        smtp: "smtp.zoho.com",
        port: 587,
        security: Security::StartTls,
        login_is_address: Some(true),
    },
    Provider {
        domains: &["sendgrid.com", "sendgrid.net", "smtp.sendgrid.net"],
        smtp: "smtp.sendgrid.net",
        port: 465,
        security: Security::ImplicitTls,
        login_is_address: Some(false),
    },
    Provider {
        domains: &["163.com"],
        smtp: "smtp.163.com",
        port: 465,
        security: Security::ImplicitTls,
        login_is_address: Some(true),
    },
    Provider {
        domains: &["qq.com", "foxmail.com"],
        smtp: "smtp.qq.com",
        port: 587,
        security: Security::StartTls,
        login_is_address: Some(true),
    },
    Provider {
        domains: &["comcast.net"],
        smtp: "smtp.comcast.net",
        port: 465,
        security: Security::ImplicitTls,
        login_is_address: Some(true),
    },
];

const KNOWN_OPTIONS: &[&str] = &[
    "to", "cc", "bcc", "from", "name", "smtp", "mode", "reply", "user", "pass", "cafile",
];

/// E-mail through an SMTP server, from Apprise's `mailto://` / `mailtos://` syntax:
///
/// `mailtos://user:password@example.com[:port][/to@example.org…]?smtp=…&from=…&to=…&cc=…&bcc=…&name=…&mode=starttls|ssl|insecure&reply=…&+Header=value`
///
/// - `mailto://` uses STARTTLS when the server offers it, on port 25; `mailtos://` requires
///   STARTTLS, on port 587; `mode=ssl` is TLS from the first byte, on port 465;
///   `mode=insecure` never uses TLS. A port in the URL wins; port 465 without `mode=` means
///   TLS from the first byte.
/// - The server is the URL's host unless `smtp=` names another; for Gmail, Outlook, Yahoo,
///   Fastmail and the other providers Apprise knows, their server, port and security are
///   filled in.
/// - The sender is `user@host` (or the user itself when it is an address), `from=` replaces
///   it (`from=Name <addr>` or an address; a bare name only names it), `name=` names it.
/// - Recipients are the path's addresses and `to=`; with none, the sender. `cc=`, `bcc=`,
///   `reply=` (Reply-To) take lists.
/// - `cafile=PATH` trusts the CA certificates in that PEM file besides the system's (a private
///   relay, or a test); `verify=no` accepts any certificate.
///
/// Attached files are sent base64 unless they already are short CRLF lines of ASCII, so they
/// arrive byte for byte, and every line on the wire ends in CRLF within 998 octets. Mails sent
/// through one [`Context`] to the same server with the same login share connections.
#[derive(Clone)]
pub struct Smtp {
    scheme: &'static str,
    server: String,
    port: u16,
    security: Security,
    login: Option<(String, String)>,
    from: Mailbox,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    bcc: Vec<Mailbox>,
    reply_to: Vec<Mailbox>,
    headers: Vec<(String, String)>,
    extra_roots: Option<Certificate>,
    verify: bool,
    describe: String,
    /// The connections this channel may share with others (same server, security, trust and
    /// login): the key of its pool in [`Context`].
    key: ConnectionKey,
    /// How to protect the connection, built on first use (loading trust roots costs time).
    tls: OnceLock<Result<Tls, String>>,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("destination", &self.describe)
            .finish_non_exhaustive()
    }
}

impl Smtp {
    /// Parses a `mailto://` or `mailtos://` URL.
    pub(crate) fn from_apprise(raw: &str) -> Result<Self, UrlError> {
        let p = Parts::parse(raw)?;
        let secure = p.scheme == "mailtos";
        if p.get("pgp").is_some() || p.get("pgppub").is_some() || p.get("pgpkey").is_some() {
            return Err(UrlError::new(
                raw,
                "belfry does not sign or encrypt e-mail (pgp=)",
            ));
        }
        p.check_keys(raw, KNOWN_OPTIONS, &['+'], &p.scheme)?;

        let user = p.get("user").map(str::to_owned).or(p.user.clone());
        let password = p.get("pass").map(str::to_owned).or(p.password.clone());
        let host = p.host.trim().to_ascii_lowercase();
        if !host.is_empty() && !host_ok(&host) {
            return Err(UrlError::new(raw, format!("{host:?} is not a host name")));
        }
        let mode = match p.get("mode") {
            None | Some("") => None,
            Some(m) => Some(match m.to_ascii_lowercase().as_str() {
                "insecure" => Security::Plain,
                "starttls" => Security::StartTls,
                "ssl" => Security::ImplicitTls,
                other => {
                    return Err(UrlError::new(
                        raw,
                        format!("mode={other:?} is not one of starttls, ssl, insecure"),
                    ));
                }
            }),
        };
        let smtp_param = p.get("smtp").map(str::trim).filter(|s| !s.is_empty());
        if let Some(s) = smtp_param
            && !host_ok(&s.to_ascii_lowercase())
        {
            return Err(UrlError::new(raw, format!("smtp={s:?} is not a host name")));
        }

        // The address the URL implies: the user at the host, or the user itself.
        let implied = match &user {
            Some(u) if is_address(u) => Some(u.clone()),
            Some(u) if !host.is_empty() => {
                let local = u.split(['@', ' ']).next().unwrap_or(u);
                Some(format!("{local}@{host}"))
            }
            _ => None,
        };
        let domain_of = |a: &str| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase());
        let probe_domain = implied
            .as_deref()
            .and_then(domain_of)
            .unwrap_or_else(|| host.clone());

        let mut server = smtp_param.map(str::to_owned).unwrap_or(host.clone());
        let mut security = mode;
        let mut port = p.port;
        let mut login_user = user.clone();
        let mut default_from = implied.clone();
        if smtp_param.is_none() {
            if let Some(prov) = PROVIDERS
                .iter()
                .find(|pr| pr.domains.contains(&probe_domain.as_str()))
            {
                server = prov.smtp.to_owned();
                security = security.or(Some(prov.security));
                port = port.or(Some(prov.port));
                if let (Some(u), Some(whole)) = (&user, prov.login_is_address) {
                    login_user = Some(match (whole, is_address(u)) {
                        (true, false) => format!("{u}@{host}"),
                        (false, true) => u.split('@').next().unwrap_or(u).to_owned(),
                        _ => u.clone(),
                    });
                }
            } else if matches!(probe_domain.as_str(), "localhost" | "localhost.localdomain")
                && default_from.is_none()
            {
                default_from = Some(format!("root@{probe_domain}"));
            }
        }
        if server.is_empty() {
            return Err(UrlError::new(
                raw,
                "it names no mail server: give a host (mailto://user:pass@example.com) or smtp=",
            ));
        }
        let security = security.unwrap_or(if port == Some(465) {
            // Port 465 speaks TLS from the first byte; STARTTLS there would only hang.
            Security::ImplicitTls
        } else if secure {
            Security::StartTls
        } else {
            Security::StartTlsIfOffered
        });
        let port = port.unwrap_or(security.default_port());

        // The sender.
        let mut from_name = Some("belfry".to_owned());
        let mut from_addr = default_from;
        if let Some(f) = p.get("from").map(str::trim).filter(|f| !f.is_empty()) {
            match f.parse::<Mailbox>() {
                Ok(m) => {
                    from_addr = Some(m.email.to_string());
                    if m.name.is_some() {
                        from_name = m.name;
                    }
                }
                Err(_) if !f.contains('@') => from_name = Some(f.to_owned()),
                Err(_) => {
                    return Err(UrlError::new(
                        raw,
                        format!("from={f:?} is not an e-mail address"),
                    ));
                }
            }
        }
        if let Some(n) = p.get("name").map(str::trim).filter(|n| !n.is_empty()) {
            from_name = Some(n.to_owned());
        }
        let Some(from_addr) = from_addr else {
            return Err(UrlError::new(
                raw,
                "it names no sender: give a user (mailto://user:pass@example.com) or from=",
            ));
        };
        let from = Mailbox::new(
            from_name,
            from_addr.parse().map_err(|_| {
                UrlError::new(
                    raw,
                    format!("the sender {from_addr:?} is not an e-mail address"),
                )
            })?,
        );

        // The recipients.
        let list = |key: &str| -> Result<Vec<Mailbox>, UrlError> {
            let mut out = Vec::new();
            if let Some(v) = p.get(key) {
                for a in split_addresses(v) {
                    out.push(mailbox(raw, key, &a)?);
                }
            }
            Ok(out)
        };
        let mut to = Vec::new();
        for seg in &p.path {
            for a in split_addresses(seg) {
                to.push(mailbox(raw, "recipient", &a)?);
            }
        }
        to.extend(list("to")?);
        if to.is_empty() {
            to.push(from.clone());
        }
        dedupe(&mut to, &[]);
        let mut cc = list("cc")?;
        dedupe(&mut cc, &to);
        let mut bcc = list("bcc")?;
        let seen: Vec<Mailbox> = to.iter().chain(&cc).cloned().collect();
        dedupe(&mut bcc, &seen);
        let reply_to = list("reply")?;

        // Extra headers: Apprise's `+Name=value`.
        let mut headers = Vec::new();
        for (k, v) in &p.query {
            let Some(name) = k.strip_prefix('+') else {
                continue;
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return Err(UrlError::new(raw, format!("bad header name {name:?}")));
            }
            const OURS: &[&str] = &[
                "from",
                "to",
                "cc",
                "bcc",
                "subject",
                "date",
                "message-id",
                "reply-to",
                "mime-version",
                "content-type",
                "content-transfer-encoding",
            ];
            if OURS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(UrlError::new(
                    raw,
                    format!("the header {name} is belfry's to write; use the URL's options"),
                ));
            }
            if v.contains(['\r', '\n']) {
                return Err(UrlError::new(
                    raw,
                    format!("the value of header {name} spans lines"),
                ));
            }
            headers.push((name.to_owned(), v.clone()));
        }

        let extra_roots = match p.get("cafile").map(str::trim).filter(|f| !f.is_empty()) {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    UrlError::new(raw, format!("cafile={path:?} cannot be read: {e}"))
                })?;
                let cert = Certificate::from_pem(&pem).ok().filter(|_| {
                    // lettre accepts a file with no certificate at all; that is a mistake.
                    String::from_utf8_lossy(&pem).contains("BEGIN CERTIFICATE")
                });
                Some(cert.ok_or_else(|| {
                    UrlError::new(raw, format!("cafile={path:?} holds no PEM certificate"))
                })?)
            }
        };
        let verify = match p.get("verify") {
            Some(v) => parse_bool(raw, "verify", v)?,
            None => true,
        };
        if security != Security::Plain && !verify && extra_roots.is_some() {
            return Err(UrlError::new(
                raw,
                "cafile= and verify=no contradict each other",
            ));
        }

        let login = match (login_user, password) {
            (Some(u), Some(pw)) if !pw.is_empty() => Some((u, pw)),
            _ => None,
        };
        let scheme = if secure { "mailtos" } else { "mailto" };
        let mut describe = format!("{scheme}://");
        if let Some((u, _)) = &login {
            describe.push_str(&format!("{u}:***@"));
        }
        describe.push_str(&format!("{server}:{port} ({})", security.label()));
        if !verify {
            describe.push_str(" (certificate not verified)");
        }
        describe.push_str(" to ");
        describe.push_str(
            &to.iter()
                .map(|m| m.email.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        );
        if !cc.is_empty() {
            describe.push_str(&format!(", cc {}", cc.len()));
        }
        if !bcc.is_empty() {
            describe.push_str(&format!(", bcc {}", bcc.len()));
        }
        let key = ConnectionKey {
            server: server.clone(),
            port,
            security,
            login: login.clone(),
            cafile: p.get("cafile").map(|f| f.trim().to_owned()),
            verify,
        };
        Ok(Smtp {
            key,
            scheme,
            server,
            port,
            security,
            login,
            from,
            to,
            cc,
            bcc,
            reply_to,
            headers,
            extra_roots,
            verify,
            describe,
            tls: OnceLock::new(),
        })
    }

    /// The server this channel sends to.
    #[cfg(test)]
    fn server(&self) -> (&str, u16, Security) {
        (&self.server, self.port, self.security)
    }

    /// The sender and the recipients (To, Cc, Bcc), as addresses.
    #[cfg(test)]
    fn addresses(&self) -> (String, Vec<String>, Vec<String>, Vec<String>) {
        let s = |v: &[Mailbox]| v.iter().map(|m| m.email.to_string()).collect();
        (
            self.from.email.to_string(),
            s(&self.to),
            s(&self.cc),
            s(&self.bcc),
        )
    }

    /// The mail for a notification, as it will be sent.
    fn build_message(&self, msg: &Message<'_>) -> Result<lettre::Message, String> {
        let n = msg.notification;
        let r = mail::render(n);
        let domain = self.from.email.domain().to_owned();
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .subject(r.subject)
            .message_id(Some(mail::message_id(msg.idempotency_key, &domain)))
            .date_now()
            .user_agent(crate::USER_AGENT.to_owned());
        for m in &self.to {
            b = b.to(m.clone());
        }
        for m in &self.cc {
            b = b.cc(m.clone());
        }
        for m in &self.bcc {
            b = b.bcc(m.clone());
        }
        for m in &self.reply_to {
            b = b.reply_to(m.clone());
        }
        let ours = [
            ("X-Belfry-Job", n.job.clone()),
            ("X-Belfry-State", n.state.name().to_owned()),
            ("X-Belfry-Kind", n.apprise_type.clone()),
        ];
        for (k, v) in ours
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .chain(self.headers.iter().cloned())
        {
            let name = HeaderName::new_from_ascii(k.clone())
                .map_err(|_| format!("bad header name {k:?}"))?;
            b = b.raw_header(HeaderValue::new(name, v));
        }
        let body = MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text_body(r.text)),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(text_body(r.html)),
            );
        let result = if r.attachments.is_empty() {
            b.multipart(body)
        } else {
            let mut mixed = MultiPart::mixed().multipart(body);
            for a in r.attachments {
                let ct = a
                    .content_type
                    .parse()
                    .map_err(|_| format!("bad content type {:?}", a.content_type))?;
                let part: SinglePart = MimeAttachment::new(a.file_name).body(file_body(a.data), ct);
                mixed = mixed.singlepart(part);
            }
            b.multipart(mixed)
        };
        result.map_err(|e| format!("cannot build the mail: {e}"))
    }

    /// How to protect connections to the server, built once.
    fn tls(&self) -> Result<&Tls, String> {
        let built = self.tls.get_or_init(|| {
            let params = || -> Result<TlsParameters, String> {
                // ring, installed once per process; ignore "already installed".
                let _ = rustls::crypto::ring::default_provider().install_default();
                let mut b = TlsParameters::builder(self.server.clone());
                if let Some(c) = &self.extra_roots {
                    b = b.add_root_certificate(c.clone());
                }
                if !self.verify {
                    b = b.dangerous_accept_invalid_certs(true);
                }
                b.build()
                    .map_err(|e| format!("cannot set up TLS: {}", error_chain(&e)))
            };
            Ok(match self.security {
                Security::Plain => Tls::None,
                Security::StartTlsIfOffered => Tls::Opportunistic(params()?),
                Security::StartTls => Tls::Required(params()?),
                Security::ImplicitTls => Tls::Wrapper(params()?),
            })
        });
        built.as_ref().map_err(Clone::clone)
    }

    /// A new connection, greeted, protected as the URL says, and logged in.
    async fn connect(&self, tls: &Tls, timeout: Duration) -> Result<Connection, SmtpError> {
        let hello = ClientId::default();
        let wrapper = match tls {
            Tls::Wrapper(p) => Some(p.clone()),
            _ => None,
        };
        let mut conn = Connection::connect_tokio1(
            (self.server.as_str(), self.port),
            Some(timeout),
            &hello,
            wrapper,
            None,
        )
        .await?;
        match tls {
            Tls::Opportunistic(p) if conn.can_starttls() => {
                conn.starttls(p.clone(), &hello).await?
            }
            Tls::Required(p) => conn.starttls(p.clone(), &hello).await?,
            _ => {}
        }
        if let Some((u, p)) = &self.login {
            let credentials = Credentials::new(u.clone(), p.clone());
            conn.auth(DEFAULT_MECHANISMS, &credentials).await?;
        }
        Ok(conn)
    }

    fn classify(&self, e: &lettre::transport::smtp::Error) -> Outcome {
        let detail = shorten(&error_chain(e), 300);
        let at = format!("{}:{}", self.server, self.port);
        if e.is_permanent() {
            // 5xx: a refused sender or recipient, failed authentication, a rejected message.
            Outcome::permanent(format!("SMTP server {at} refused: {detail}"))
        } else if e.is_transient() {
            Outcome::retry(format!("SMTP server {at} deferred: {detail}"))
        } else if e.is_timeout() {
            Outcome::retry(format!("SMTP server {at} timed out: {detail}"))
        } else if e.is_tls() || is_tls_failure(e) {
            let hint = if self.extra_roots.is_none() {
                " (a private CA: trust it with cafile=PATH; no TLS: mode=insecure)"
            } else {
                ""
            };
            Outcome::retry(format!("TLS with {at} failed: {detail}{hint}"))
        } else if e.is_client() {
            // belfry and the server do not agree (no STARTTLS where it is required, no
            // authentication mechanism in common): retrying will not change that.
            Outcome::permanent(format!("cannot send through {at}: {detail}"))
        } else {
            Outcome::retry(format!("could not talk to SMTP server {at}: {detail}"))
        }
    }
}

/// A text body (the plain and HTML parts), its line breaks made CRLF. lettre sends short
/// lines of ASCII as they are (7bit), and longer lines or other characters quoted-printable or
/// base64; but it would send a bare CR or a NUL from the job's output as it is too, which
/// RFC 5322 forbids: those go quoted-printable.
fn text_body(text: String) -> Body {
    let body = Body::new(text);
    if body.encoding() == ContentTransferEncoding::SevenBit && !sendable_as_is(body.as_ref()) {
        return Body::new_with_encoding(body.into_vec(), ContentTransferEncoding::QuotedPrintable)
            .expect("quoted-printable encodes any bytes");
    }
    body
}

/// An attached file, encoded so that it decodes to exactly its bytes and no line on the wire is
/// too long or ends other than in CRLF: as it is (7bit) when it already is short lines of ASCII
/// ending in CRLF, base64 otherwise. (lettre would send short lines of ASCII as they are even
/// with bare LF line endings, which strict servers refuse; and quoted-printable turns a file's
/// CRLF into line breaks that some decoders give back as LF.)
fn file_body(data: Vec<u8>) -> Body {
    let data = if sendable_as_is(&data) {
        // Refused (given back) when lettre finds a line too long for 7bit.
        match Body::new_with_encoding(data, ContentTransferEncoding::SevenBit) {
            Ok(body) => return body,
            Err(data) => data,
        }
    } else {
        data
    };
    Body::new_with_encoding(data, ContentTransferEncoding::Base64)
        .expect("base64 encodes any bytes")
}

/// Whether `data` can go on the wire as it is: 7-bit bytes without NUL, CR and LF only as
/// CRLF pairs, no line longer than 998 octets (RFC 5322 §2.1.1).
fn sendable_as_is(data: &[u8]) -> bool {
    let mut line = 0usize;
    let mut prev = 0u8;
    for (i, &b) in data.iter().enumerate() {
        match b {
            0 | 128.. => return false,
            b'\r' if data.get(i + 1) != Some(&b'\n') => return false,
            b'\n' if prev != b'\r' => return false,
            b'\n' => line = 0,
            b'\r' => {}
            _ => {
                line += 1;
                if line > 998 {
                    return false;
                }
            }
        }
        prev = b;
    }
    true
}

/// Whether a TLS failure is among the causes of `e` (lettre reports a failed handshake as a
/// connection error).
fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if c.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        cur = c.source();
    }
    false
}

/// An error and its causes, as one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s.replace(['\r', '\n'], " ")
}

fn dedupe(list: &mut Vec<Mailbox>, already: &[Mailbox]) {
    let mut seen: Vec<String> = already
        .iter()
        .map(|m| m.email.to_string().to_ascii_lowercase())
        .collect();
    list.retain(|m| {
        let a = m.email.to_string().to_ascii_lowercase();
        if seen.contains(&a) {
            false
        } else {
            seen.push(a);
            true
        }
    });
}

fn host_ok(h: &str) -> bool {
    if let Some(inner) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl Channel for Smtp {
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let mail = match self.build_message(msg) {
                Ok(m) => m,
                Err(e) => return Outcome::permanent(e),
            };
            let formatted = mail.formatted();
            let Some(data) = std::str::from_utf8(&formatted)
                .ok()
                .filter(|d| d.is_ascii())
            else {
                // Every part is 7bit, quoted-printable or base64, and lettre encodes headers:
                // this cannot happen, but 8-bit data must not reach a server unannounced.
                return Outcome::permanent("the mail is not 7-bit text; not sent");
            };
            let envelope = mail.envelope();
            let pool = cx.kept::<SmtpPool>();
            // A kept connection first. One the server has closed meanwhile fails at MAIL,
            // before anything of the message was accepted: then on a new one.
            if let Some(mut conn) = pool.and_then(|p| p.take(&self.key)) {
                match transact(&mut conn, envelope, data).await {
                    Ok(()) => {
                        if let Some(pool) = pool {
                            pool.keep(&self.key, conn);
                        }
                        return Outcome::Delivered;
                    }
                    Err(Failed::AtMail(e)) if !e.is_permanent() => {}
                    Err(e) => return self.judge(e),
                }
            }
            let tls = match self.tls() {
                Ok(t) => t,
                Err(e) => return Outcome::retry(e),
            };
            // Mail servers may be slow to answer a connection (greylisting, DNS checks): give
            // it at least Apprise's 15 s; the delivery deadline still bounds the whole.
            let mut conn = match self
                .connect(tls, cx.timeout().max(Duration::from_secs(15)))
                .await
            {
                Ok(c) => c,
                Err(e) => return self.classify(&e),
            };
            match transact(&mut conn, envelope, data).await {
                Ok(()) => {
                    if let Some(pool) = pool {
                        pool.keep(&self.key, conn);
                    }
                    Outcome::Delivered
                }
                Err(e) => self.judge(e),
            }
        })
    }
}

impl Smtp {
    fn judge(&self, failed: Failed) -> Outcome {
        match failed {
            Failed::AtMail(e) | Failed::Later(e) => self.classify(&e),
            Failed::Unsendable(reason) => Outcome::permanent(format!(
                "cannot send through {}:{}: {reason}",
                self.server, self.port
            )),
        }
    }
}

/// What tells one server connection from another: connections are shared between channels
/// only when all of this is the same.
#[derive(Clone, PartialEq, Eq, Hash)]
struct ConnectionKey {
    server: String,
    port: u16,
    security: Security,
    /// The user and password (in memory only; never printed).
    login: Option<(String, String)>,
    cafile: Option<String>,
    verify: bool,
}

/// How one mail transaction went wrong.
enum Failed {
    /// At the first command: nothing of the message was accepted, so another connection may
    /// try it again.
    AtMail(SmtpError),
    /// Once the server had taken part of it.
    Later(SmtpError),
    /// The server cannot take it (no SMTPUTF8 for an address that needs it).
    Unsendable(&'static str),
}

/// Sends one mail over `conn`: MAIL, RCPT for each recipient, DATA, then the message and its
/// terminating line in a single write. (lettre writes them in two; with Nagle's algorithm the
/// small second write waits for the server's delayed ACK of the first, some 40 ms a message.)
async fn transact(conn: &mut Connection, envelope: &Envelope, data: &str) -> Result<(), Failed> {
    let mut params = Vec::new();
    let ascii = envelope
        .from()
        .is_none_or(|a| AsRef::<str>::as_ref(a).is_ascii())
        && envelope
            .to()
            .iter()
            .all(|a| AsRef::<str>::as_ref(a).is_ascii());
    if !ascii {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(Failed::Unsendable(
                "an address is not ASCII and the server does not offer SMTPUTF8",
            ));
        }
        params.push(MailParameter::SmtpUtfEight);
    }
    conn.command(Mail::new(envelope.from().cloned(), params))
        .await
        .map_err(Failed::AtMail)?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), Vec::new()))
            .await
            .map_err(Failed::Later)?;
    }
    conn.command(Data).await.map_err(Failed::Later)?;
    conn.command(DataLines(data)).await.map_err(Failed::Later)?;
    Ok(())
}

/// A message as DATA sends it: a dot that begins a line doubled (RFC 5321 §4.5.2), and the
/// line with a lone dot that ends it. Every line of a built message ends in CRLF.
struct DataLines<'a>(&'a str);

impl std::fmt::Display for DataLines<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for line in self.0.split_inclusive('\n') {
            if line.starts_with('.') {
                f.write_char('.')?;
            }
            f.write_str(line)?;
        }
        if !self.0.is_empty() && !self.0.ends_with("\r\n") {
            f.write_str("\r\n")?;
        }
        f.write_str(".\r\n")
    }
}

/// How long a kept connection may sit unused before it is closed rather than reused: servers
/// drop idle clients after a few minutes, some sooner.
const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// Kept connections per server and login, at most.
const KEPT_PER_SERVER: usize = 8;

/// SMTP connections kept open between messages, by server and login. A [`Context`] holds one,
/// so that a delivery pass (or one `belfry send`) sends every mail for a server over the
/// connections it has already opened and greeted, instead of a new one per mail.
/// [`Context::close`] says goodbye (QUIT) to them.
#[derive(Default)]
pub(crate) struct SmtpPool {
    idle: Mutex<HashMap<ConnectionKey, Vec<(Connection, Instant)>>>,
}

impl std::fmt::Debug for SmtpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys hold passwords: only counts are shown.
        let kept = self
            .idle
            .lock()
            .map_or(0, |m| m.values().map(Vec::len).sum::<usize>());
        f.debug_struct("SmtpPool").field("kept", &kept).finish()
    }
}

impl SmtpPool {
    /// The most recently used connection kept for `key` that has not sat unused too long.
    fn take(&self, key: &ConnectionKey) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = idle.get_mut(key)?;
        while let Some((conn, since)) = kept.pop() {
            if since.elapsed() < IDLE_LIMIT {
                return Some(conn);
            }
            // Closed without QUIT: the server may be gone, and this must not wait.
        }
        None
    }

    /// Keeps `conn`, after a mail went through it, for the next mail to the same server.
    fn keep(&self, key: &ConnectionKey, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = idle.entry(key.clone()).or_default();
        if kept.len() < KEPT_PER_SERVER {
            kept.push((conn, Instant::now()));
        }
    }

    /// Ends every kept connection with QUIT, all at once, giving servers a second to answer.
    async fn close_all(&self) {
        let kept: Vec<Connection> = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            idle.drain()
                .flat_map(|(_, v)| v.into_iter().map(|(c, _)| c))
                .collect()
        };
        if kept.is_empty() {
            return;
        }
        let mut quits = tokio::task::JoinSet::new();
        for mut conn in kept {
            quits.spawn(async move {
                let _ = conn.quit().await;
            });
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), quits.join_all()).await;
    }
}

impl Kept for SmtpPool {
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.close_all())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context as TaskContext, Poll};
    use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, DuplexStream};

    /// The client's end of an in-memory connection, noting every write it is given.
    #[derive(Debug)]
    struct Recording {
        inner: DuplexStream,
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    impl AsyncRead for Recording {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut TaskContext<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Recording {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut TaskContext<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let r = Pin::new(&mut self.inner).poll_write(cx, buf);
            if let Poll::Ready(Ok(n)) = r {
                self.writes.lock().unwrap().push(buf[..n].to_vec());
            }
            r
        }

        fn poll_flush(
            mut self: Pin<&mut Self>,
            cx: &mut TaskContext<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut TaskContext<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    impl lettre::transport::smtp::client::AsyncTokioStream for Recording {
        fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
            Ok(([127, 0, 0, 1], 25).into())
        }
    }

    /// A minimal SMTP server on the other end: says yes to everything, and returns the
    /// messages it took, their dots undoubled.
    async fn yes_server(end: DuplexStream) -> Vec<String> {
        let (r, mut w) = tokio::io::split(end);
        let mut r = tokio::io::BufReader::new(r);
        let mut taken = Vec::new();
        w.write_all(b"220 test\r\n").await.unwrap();
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await.unwrap() == 0 {
                return taken;
            }
            let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
            let answer: &[u8] = match verb.as_str() {
                "DATA" => {
                    w.write_all(b"354 go on\r\n").await.unwrap();
                    let mut message = String::new();
                    loop {
                        line.clear();
                        r.read_line(&mut line).await.unwrap();
                        if line == ".\r\n" {
                            break;
                        }
                        message.push_str(line.strip_prefix('.').unwrap_or(&line));
                    }
                    taken.push(message);
                    b"250 stored\r\n"
                }
                "QUIT" => b"221 bye\r\n",
                _ => b"250 ok\r\n",
            };
            w.write_all(answer).await.unwrap();
        }
    }

    #[test]
    fn a_message_and_its_final_dot_go_out_in_one_write_with_leading_dots_doubled() {
        // Two writes would leave the small second one waiting, under Nagle's algorithm, for
        // the server's delayed ACK of the first: some 40 ms a mail.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (client, server) = tokio::io::duplex(1 << 20);
        let writes = Arc::new(Mutex::new(Vec::new()));
        let stream = Recording {
            inner: client,
            writes: writes.clone(),
        };
        let message = "Subject: dots\r\n\r\n.a line that begins with a dot\r\n..two\r\nend\r\n";
        let taken = rt.block_on(async {
            let served = tokio::spawn(yes_server(server));
            let mut conn =
                Connection::connect_with_transport(Box::new(stream), &ClientId::Domain("t".into()))
                    .await
                    .unwrap();
            let a: lettre::Address = "ops@example.org".parse().unwrap();
            let envelope = Envelope::new(Some(a.clone()), vec![a]).unwrap();
            assert!(transact(&mut conn, &envelope, message).await.is_ok());
            conn.quit().await.unwrap();
            drop(conn);
            served.await.unwrap()
        });
        let writes = writes.lock().unwrap();
        let data = writes.iter().position(|w| w == b"DATA\r\n").unwrap();
        assert_eq!(
            String::from_utf8_lossy(&writes[data + 1]),
            "Subject: dots\r\n\r\n..a line that begins with a dot\r\n...two\r\nend\r\n.\r\n",
            "the whole message and its end in the one write after DATA"
        );
        assert_eq!(String::from_utf8_lossy(&writes[data + 2]), "QUIT\r\n");
        assert_eq!(taken, [message], "the server reads back what was sent");
    }

    fn smtp(raw: &str) -> Smtp {
        Smtp::from_apprise(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn apprise_defaults_mailto_is_port_25_and_mailtos_is_starttls_on_587() {
        let s = smtp("mailto://bob:pw@example.com");
        assert_eq!(s.server(), ("example.com", 25, Security::StartTlsIfOffered));
        assert_eq!(s.addresses().0, "bob@example.com");
        assert_eq!(
            s.addresses().1,
            ["bob@example.com"],
            "no target: the sender"
        );
        assert_eq!(s.login.as_ref().unwrap().0, "bob");

        let s = smtp("mailtos://bob:pw@example.com");
        assert_eq!(s.server(), ("example.com", 587, Security::StartTls));
        let s = smtp("mailtos://bob:pw@example.com?mode=ssl");
        assert_eq!(s.server(), ("example.com", 465, Security::ImplicitTls));
        let s = smtp("mailto://bob:pw@example.com:2525?mode=insecure");
        assert_eq!(s.server(), ("example.com", 2525, Security::Plain));
        let s = smtp("mailto://bob:pw@example.com?mode=starttls");
        assert_eq!(s.server(), ("example.com", 587, Security::StartTls));
        let s = smtp("mailtos://bob:pw@example.com:465");
        assert_eq!(s.server(), ("example.com", 465, Security::ImplicitTls));
    }

    #[test]
    fn known_providers_fill_in_their_server() {
        let s = smtp("mailto://alice:app-pw@gmail.com");
        assert_eq!(s.server(), ("smtp.gmail.com", 587, Security::StartTls));
        assert_eq!(s.login.as_ref().unwrap().0, "alice@gmail.com");
        let s = smtp("mailtos://me:pw@fastmail.com/ops@example.org");
        assert_eq!(
            s.server(),
            ("smtp.fastmail.com", 465, Security::ImplicitTls)
        );
        let s = smtp("mailtos://me:pw@yandex.ru");
        assert_eq!(s.login.as_ref().unwrap().0, "me");
        // smtp= means the user knows better.
        let s = smtp("mailtos://me:pw@gmail.com?smtp=relay.internal");
        assert_eq!(s.server(), ("relay.internal", 587, Security::StartTls));
        let s = smtp("mailto://localhost?to=ops@example.org");
        assert_eq!(s.addresses().0, "root@localhost");
    }

    #[test]
    fn senders_and_recipients_come_from_user_host_path_and_options() {
        let s = smtp(
            "mailtos://user:pw@mail.example.com/a@x.org/B%20Team%20%3Cb@y.org%3E\
             ?to=c@z.org,a@x.org&cc=d@w.org,c@z.org&bcc=e@v.org&from=Alerts%20%3Calerts@example.com%3E\
             &reply=oncall@example.com&+X-Team=ops",
        );
        let (from, to, cc, bcc) = s.addresses();
        assert_eq!(from, "alerts@example.com");
        assert_eq!(s.from.name.as_deref(), Some("Alerts"));
        assert_eq!(to, ["a@x.org", "b@y.org", "c@z.org"]);
        assert_eq!(
            cc,
            ["d@w.org"],
            "addresses already in To are not copied again"
        );
        assert_eq!(bcc, ["e@v.org"]);
        assert_eq!(s.headers, [("X-Team".to_owned(), "ops".to_owned())]);

        let s = smtp("mailto://me%40corp.org:pw@smtp.corp.org?name=Nightly");
        assert_eq!(
            s.addresses().0,
            "me@corp.org",
            "a user that is an address sends as itself"
        );
        assert_eq!(s.from.name.as_deref(), Some("Nightly"));
        let s = smtp("mailto://u:pw@corp.org?from=Robot");
        assert_eq!(s.addresses().0, "u@corp.org");
        assert_eq!(s.from.name.as_deref(), Some("Robot"));
    }

    #[test]
    fn bad_email_urls_say_what_is_wrong_without_the_password() {
        for (raw, needle) in [
            ("mailto://u:S3CRET@example.com?mode=tls", "mode=\"tls\""),
            (
                "mailto://u:S3CRET@example.com/not-an-address",
                "recipient \"not-an-address\"",
            ),
            (
                "mailto://u:S3CRET@example.com?bogus=1",
                "unknown option \"bogus\"",
            ),
            ("mailto://u:S3CRET@example.com?from=a@", "from=\"a@\""),
            ("mailto://example.com", "no sender"),
            ("mailto://u:S3CRET@ex%20ample.com", "not a host name"),
            ("mailto://u:S3CRET@example.com?+Subject=x", "Subject"),
            ("mailto://u:S3CRET@example.com?+X-A=a%0Db", "spans lines"),
            (
                "mailto://u:S3CRET@example.com?cafile=/nonexistent/ca.pem",
                "cannot be read",
            ),
            ("mailto://u:S3CRET@example.com?pgp=yes", "pgp"),
        ] {
            let e = Smtp::from_apprise(raw).unwrap_err().to_string();
            assert!(e.contains(needle), "{raw}: {e}");
            assert!(!e.contains("S3CRET"), "{raw}: {e}");
        }
    }

    #[test]
    fn descriptions_name_server_security_and_recipients_but_never_the_password() {
        let s = smtp("mailtos://bob:S3CRET@example.com/ops@example.org?cc=a@b.org");
        assert_eq!(
            s.describe(),
            "mailtos://bob:***@example.com:587 (STARTTLS) to ops@example.org, cc 1"
        );
        assert!(!format!("{s:?}").contains("S3CRET"));
    }
}
