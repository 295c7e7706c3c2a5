//! `belfry send`, `belfry channels` and `belfry test`: messages written by hand, sent at once.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use belfry::Config;
use belfry::core::{Adhoc, Attachment, MessageType, Notification, Timestamp};
use belfry::send::{Preview, SendSettings, Sent, Target};
use serde_json::{Value, json};

use crate::tell::{Usage, warn};

/// What `belfry send` was asked to do.
#[derive(Debug, clap::Args)]
pub struct SendOptions {
    /// The title (default: none, as with Apprise).
    #[arg(short, long, value_name = "TITLE")]
    pub title: Option<String>,
    /// The body (default: read from standard input).
    #[arg(short, long, value_name = "BODY")]
    pub body: Option<String>,
    /// How the message is meant: info, success, warning or failure (Apprise's types). It is
    /// sent as `type`; warning and failure are sent as problems (`kind`), info and success as
    /// OK, which is what channels colour by.
    #[arg(
        short = 'n',
        long = "notification-type",
        value_name = "TYPE",
        default_value = "info",
        value_parser = parse_type
    )]
    pub message_type: MessageType,
    /// A file to send along (repeatable). The JSON webhook carries it as Apprise does
    /// (`attachments`: name, MIME type, base64); channels that cannot carry files (the
    /// console, Slack webhooks) send the message without it.
    #[arg(short, long = "attach", value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// A configured channel to send to (repeatable), by its name or a tag (every channel with
    /// the tag; `all` is every channel). Without --channel and without URLs, every configured
    /// channel without a tag gets the message (and those tagged `always`), as with Apprise.
    #[arg(long = "channel", visible_alias = "tag", value_name = "NAME")]
    pub channels: Vec<String>,
    /// The job name the message goes under (`job` in the JSON and in templates).
    #[arg(long, value_name = "NAME", default_value = "send")]
    pub job: String,
    /// Print what would be sent to each channel (HTTP method and address, title and body,
    /// secrets redacted) and send nothing.
    #[arg(short = 'd', long)]
    pub dry_run: bool,
    /// With --dry-run: what would be sent, as JSON: `type`, `attachments` (file names) and
    /// `channels`, each with `name`, `destination`, `scheme`, `requests` (`method`, `address`,
    /// `body_bytes`; null when it makes none), `title` and `body`.
    #[arg(long, requires = "dry_run")]
    pub json: bool,
    /// Retry a passing failure (network, 429, 5xx) in place, with backoff, for up to this
    /// long; by default one attempt.
    #[arg(long, value_name = "DUR", allow_hyphen_values = true, value_parser = crate::args::parse_dur)]
    pub retry_for: Option<Duration>,
    /// Channel URLs in Apprise's syntax (json://host/path, slack://A/B/C, …). They may hold
    /// ${env:NAME} and ${file:PATH} references (quote them from the shell), which keeps
    /// secrets off the command line.
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,
}

fn parse_type(s: &str) -> Result<MessageType, String> {
    s.parse()
}

fn out() -> std::io::StdoutLock<'static> {
    std::io::stdout().lock()
}

/// The configured channels named, or all of them, plus the URLs.
fn targets(config: &Config, names: &[String], urls: &[String]) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    let configured: Vec<&belfry::config::ChannelConfig> = if names.is_empty() && urls.is_empty() {
        config
            .channels
            .iter()
            .filter(|c| c.route.takes_untagged())
            .collect()
    } else {
        let mut chosen: Vec<&belfry::config::ChannelConfig> = Vec::new();
        for name in names {
            let matching: Vec<&belfry::config::ChannelConfig> = config
                .channels
                .iter()
                .filter(|c| c.route.is_named_by(name))
                .collect();
            if matching.is_empty() {
                let known: Vec<&str> = config.channels.iter().map(|c| c.name.as_str()).collect();
                return Err(Usage(format!(
                    "--channel {name}: no channel named {name:?} and none tagged so (configured: {})",
                    known.join(", ")
                ))
                .into());
            }
            for c in matching {
                if !chosen.iter().any(|k| k.name == c.name) {
                    chosen.push(c);
                }
            }
        }
        chosen
    };
    for c in configured {
        targets.push(Target::configured(c).map_err(|e| Usage(e.to_string()))?);
    }
    for (i, url) in urls.iter().enumerate() {
        let label = format!("url {}", i + 1);
        targets.push(Target::from_url(&label, url, None).map_err(|e| Usage(e.to_string()))?);
    }
    Ok(targets)
}

fn read_body(given: Option<String>) -> anyhow::Result<String> {
    if let Some(b) = given {
        return Ok(b);
    }
    let mut stdin = std::io::stdin().lock();
    if stdin.is_terminal() {
        return Err(Usage(
            "no body: give it with -b BODY, or pipe it in (echo hi | belfry send …)".into(),
        )
        .into());
    }
    let mut bytes = Vec::new();
    stdin
        .read_to_end(&mut bytes)
        .map_err(|e| Usage(format!("cannot read the body from standard input: {e}")))?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

fn read_attachments(paths: &[PathBuf]) -> anyhow::Result<Vec<Attachment>> {
    paths
        .iter()
        .map(|p| {
            let data = std::fs::read(p)
                .map_err(|e| Usage(format!("--attach {}: cannot read it: {e}", p.display())))?;
            Ok(Attachment::new(&p.to_string_lossy(), data))
        })
        .collect()
}

/// `belfry send`.
pub fn send(opts: SendOptions, config: &Config) -> anyhow::Result<u8> {
    belfry::core::validate_job_name(&opts.job).map_err(|e| Usage(format!("--job: {e}")))?;
    // Check every channel before reading anything: a bad URL is the likelier mistake.
    let targets = targets(config, &opts.channels, &opts.urls)?;
    let body = read_body(opts.body)?;
    let title = opts.title.unwrap_or_default();
    let attachments = read_attachments(&opts.attach)?;
    if title.is_empty() && body.is_empty() && attachments.is_empty() {
        return Err(Usage(
            "nothing to send: give a title (-t), a body (-b, or on standard input) or a file \
             (--attach)"
                .into(),
        )
        .into());
    }
    let host = belfry::internal::host::host_name();
    let n = Notification::adhoc(
        belfry_store::new_id(),
        Adhoc {
            job: opts.job,
            title,
            body,
            message_type: opts.message_type,
            host: Some(host),
            reason: "sent",
            reason_text: "sent with belfry send".into(),
            attachments,
        },
        Timestamp::now(),
    );
    if opts.dry_run {
        print_previews(config, &targets, &n, opts.json)?;
        return Ok(0);
    }
    let mut settings = SendSettings::from(config);
    settings.retry_for = opts.retry_for.unwrap_or_default();
    let sent = belfry::send::send(&targets, &n, &settings);
    Ok(report(config, &sent, false))
}

/// Prints the failures (and, with `verbose`, the successes); 0 if every target took the
/// message, 1 otherwise.
fn report(config: &Config, sent: &[Sent], verbose: bool) -> u8 {
    let mut code = 0;
    for s in sent {
        let tries = if s.attempts > 1 {
            format!(" after {} attempts", s.attempts)
        } else {
            String::new()
        };
        match s.outcome.reason() {
            None if verbose => {
                let _ = writeln!(out(), "sent to {} ({}){tries}", s.label, s.destination);
            }
            None => {}
            Some(reason) => {
                code = 1;
                warn(&config.scrub(&format!(
                    "not sent to {} ({}){tries}: {reason}",
                    s.label, s.destination
                )));
            }
        }
    }
    code
}

/// The first line of `s`, at most `max` characters, with a mark when cut.
fn first_line(s: &str, max: usize) -> String {
    if s.is_empty() {
        return "(none)".into();
    }
    let line = s.lines().next().unwrap_or("");
    let more = line.chars().count() > max || s.lines().nth(1).is_some();
    let cut: String = line.chars().take(max).collect();
    if more { format!("{cut}…") } else { cut }
}

fn print_previews(
    config: &Config,
    targets: &[Target],
    n: &Notification,
    as_json: bool,
) -> anyhow::Result<()> {
    let mut out = out();
    let previews: Vec<Preview> = targets.iter().map(|t| t.preview(n)).collect();
    if as_json {
        let channels: Vec<Value> = previews
            .iter()
            .map(|p| {
                json!({
                    "name": p.label,
                    "destination": p.destination,
                    "scheme": p.scheme,
                    "requests": p.requests.as_ref().map(|reqs| reqs.iter().map(|r| json!({
                        "method": r.method.as_str(),
                        "address": r.address,
                        "body_bytes": r.body_bytes,
                    })).collect::<Vec<_>>()),
                    "title": p.title,
                    "body": p.body,
                })
            })
            .collect();
        let v = json!({
            "type": n.apprise_type,
            "attachments": n.attachments.iter().map(|a| &a.name).collect::<Vec<_>>(),
            "channels": channels,
        });
        // Scrubbed as a whole, as `channels --json` is: no secret in any field.
        let text = serde_json::to_string_pretty(&v)?;
        writeln!(out, "{}", config.scrub(&text))?;
        return Ok(());
    }
    writeln!(
        out,
        "dry run: nothing sent; {} channel(s) would get this {} message{}:",
        previews.len(),
        n.apprise_type,
        match n.attachments.len() {
            0 => String::new(),
            k => format!(" with {k} attachment(s)"),
        }
    )?;
    for p in &previews {
        let mut text = format!("{}: {}\n", p.label, p.destination);
        match &p.requests {
            Some(reqs) => {
                for r in reqs {
                    text.push_str(&format!(
                        "    {} {} ({} bytes)\n",
                        r.method.as_str(),
                        r.address,
                        r.body_bytes
                    ));
                }
            }
            None => text.push_str(&format!("    {} (no HTTP request)\n", p.scheme)),
        }
        text.push_str(&format!("    title: {}\n", first_line(&p.title, 100)));
        text.push_str(&format!("    body:  {}\n", first_line(&p.body, 100)));
        write!(out, "{}", config.scrub(&text))?;
    }
    Ok(())
}

pub(crate) fn receives(c: &belfry::config::ChannelConfig) -> String {
    let mut parts = Vec::new();
    if !c.route.states.is_empty() {
        let s: Vec<String> = c.route.states.iter().map(ToString::to_string).collect();
        parts.push(format!("states {}", s.join(",")));
    }
    if !c.route.jobs.is_empty() {
        parts.push(format!("jobs {}", c.route.jobs.join(",")));
    }
    if !c.route.tags.is_empty() {
        parts.push(format!("tags {}", c.route.tags.join(",")));
    }
    if parts.is_empty() {
        "everything".into()
    } else {
        parts.join("; ")
    }
}

fn templates(c: &belfry::config::ChannelConfig) -> Vec<&'static str> {
    match c.templates() {
        Some(t) => [("title", t.has_title()), ("body", t.has_body())]
            .into_iter()
            .filter_map(|(k, on)| on.then_some(k))
            .collect(),
        None => Vec::new(),
    }
}

/// `belfry channels`.
pub fn channels(config: &Config, as_json: bool) -> anyhow::Result<u8> {
    let mut out = out();
    if as_json {
        let v: Vec<Value> = config
            .channels
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "destination": c.describe(),
                    "states": c.route.states.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "jobs": c.route.jobs,
                    "tags": c.route.tags,
                    "templates": templates(c),
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&v)?;
        writeln!(out, "{}", config.scrub(&text))?;
        return Ok(0);
    }
    let mut rows = vec![[
        "NAME".to_owned(),
        "DESTINATION".into(),
        "RECEIVES".into(),
        "TEMPLATES".into(),
    ]];
    for c in &config.channels {
        let t = templates(c);
        rows.push([
            c.name.clone(),
            c.describe(),
            receives(c),
            if t.is_empty() {
                "-".into()
            } else {
                t.join(", ")
            },
        ]);
    }
    let mut text = Vec::new();
    crate::views::print_table(&mut text, &rows)?;
    write!(out, "{}", config.scrub(&String::from_utf8_lossy(&text)))?;
    Ok(0)
}

/// `belfry channels --schemes`: every scheme belfry reads, its service, and whether it is
/// Apprise's.
pub fn schemes(as_json: bool) -> anyhow::Result<u8> {
    let mut out = out();
    let all = belfry::channels::schemes();
    if as_json {
        let v: Vec<Value> = all
            .iter()
            .map(|s| json!({"scheme": s.scheme, "service": s.service, "apprise": s.from_apprise}))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(0);
    }
    let mut rows = vec![["SCHEME".to_owned(), "SERVICE".into(), "FROM".into()]];
    for s in &all {
        rows.push([
            format!("{}://", s.scheme),
            s.service.to_owned(),
            if s.from_apprise { "Apprise" } else { "belfry" }.to_owned(),
        ]);
    }
    crate::views::print_table(&mut out, &rows)?;
    Ok(0)
}

/// `belfry test NAME`: a test message to one channel (a configured one, or a URL).
pub fn test(config: &Config, name: &str) -> anyhow::Result<u8> {
    let target = if name.contains("://") {
        Target::from_url("url", name, None).map_err(|e| Usage(e.to_string()))?
    } else {
        let Some(c) = config.channel(name) else {
            let known: Vec<&str> = config.channels.iter().map(|c| c.name.as_str()).collect();
            return Err(Usage(format!(
                "no channel named {name:?} (configured: {}); a URL works too",
                known.join(", ")
            ))
            .into());
        };
        Target::configured(c).map_err(|e| Usage(e.to_string()))?
    };
    let host = belfry::internal::host::host_name();
    let n = Notification::adhoc(
        belfry_store::new_id(),
        belfry::template::test_message(&target.label, Some(host)),
        Timestamp::now(),
    );
    let sent = belfry::send::send(&[target], &n, &SendSettings::from(config));
    Ok(report(config, &sent, true))
}
