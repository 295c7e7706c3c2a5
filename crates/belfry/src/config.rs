//! `belfry.toml`: channels, policy defaults, per-job overrides and routing.
//!
//! ```toml
//! [policy]                      # defaults for every job
//! repeat_failures_after = "1s"  # repeat a problem alert once the last one is this old
//! ok_heartbeat_after = "59m 24s"  # "still OK" after this long; "off" for never
//! fail_threshold = 1            # problems in a row before the first alert
//!
//! [channels.ops]
//! url = "slack://TokenA/TokenB/TokenC"
//! states = ["problem", "recovered"]   # optional: which notifications (default all)
//! jobs = ["backup-*"]                 # optional: which jobs, glob patterns (default all)
//! rate = 1.0                    # optional, instead of the service's own limits: sends a second,
//! burst = 3                     #   sends at once after a quiet spell,
//! concurrency = 1               #   and requests in flight at once
//!
//! [channels.hook]
//! url = "json://127.0.0.1:8080/belfry"
//! title = "[{{ host }}] {{ title }}"   # optional templates (minijinja) for the title…
//! body = "{{ message }}"              # …and the body; see `belfry::template`
//!
//! [channels.pager]
//! url = "json://belfry:${env:PAGER_TOKEN}@127.0.0.1:8080/page"  # or ${file:/run/secrets/x}
//! states = ["problem"]
//!
//! [channels.desk]               # a program run per notification, never through a shell
//! command = ["notify-send", "{title}", "{body}"]
//! timeout = "10s"               # killed (and retried) after this long; default 30s
//! jobs = ["backup-*"]
//!
//! [jobs.backup-db]
//! fail_threshold = 2
//! channels = ["ops"]            # only these channels for this job
//! timeout = "2h"                # `belfry run` time limit for this job
//! ok_codes = [0, 24]            # exit codes that count as success
//! period = "1d"                 # `belfry serve`: expected every day (or cron = "0 3 * * *",
//! grace = "1h"                  #   tz = "Europe/Berlin"); late after the slot + grace (default 1h)
//! max_runtime = "3h"            # optional: a start with no finish within this is late
//! tags = ["db", "prod"]         # `belfry serve`: the dashboard's filter, silences by tag
//!
//! [server]                      # `belfry serve`
//! listen = "127.0.0.1:8000"     # the address to listen on (default; --listen overrides)
//! ping_key = "${env:BELFRY_PING_KEY}"  # /ping/<ping_key>/<job> (letters, digits, - and _)
//! ping_body_limit = 10000       # bytes of a ping's body kept; longer bodies are cut
//! api_key = "${env:BELFRY_API_KEY}"  # the management API's read-write key (X-Api-Key)
//! api_key_readonly = "${env:BELFRY_API_KEY_RO}"  # and its read-only key
//! api_rate_limit = 100          # API requests a minute per key; more get 429
//! cookie_secure = true          # dashboard sessions only over HTTPS (and http://localhost)
//!
//! [server.users.ann]            # a dashboard login
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$…"  # from `belfry hash-password`
//! role = "read-write"           # or "read-only" (look, do not act)
//!
//! [run]
//! tail_bytes = 65536            # output kept per run: the last bytes…
//! head_lines = 5                # …and the first lines
//! kill_after = "10s"            # after --timeout's TERM, KILL this much later
//!
//! [delivery]
//! wait = "10s"                  # how long `belfry run` waits for delivery before exiting
//! give_up_after = "24h"         # undelivered notifications are dead after this long
//! request_timeout = "5s"        # one HTTP request's time limit
//! background = true             # retry what `belfry run` could not deliver, detached
//! digest_window = "3s"          # a job's alerts to one channel this soon after the last go out as one
//! lease = "15s"                 # a dead sender's claimed rows go to another after this (≥ 1s)
//!
//! [ping]                        # `belfry run` pings a healthchecks-style server (or $BELFRY_PING_URL)
//! url = "https://hc-ping.com/${env:HC_PING_KEY}"  # …/<job>/start, …/<job>/<exit code>
//!
//! [store]                       # what each job keeps (1 to 10000; older rows are pruned)
//! keep_runs = 1000              # finished runs in its history
//! keep_notifications = 100      # notifications, with their outbox rows (never undelivered ones)
//! # url = "postgres://belfry:${env:PGPASSWORD}@db1/belfry?schema=ops"  # or $BELFRY_STORE;
//! #                             # default: belfry.db in the state directory
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use belfry_core::{
    Expect, Notification, Policy, Route, Schedule, State, StateFilter, parse_duration, stable_hash,
};
use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::secret::{Lookup, Secrets, resolve};
use crate::template::Templates;

/// The configuration could not be found, read or understood. The message names the file, the
/// line and the key where there is one.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn at(origin: &str, msg: impl fmt::Display) -> Self {
        ConfigError(format!("config {origin}: {msg}"))
    }
}

/// A channel from the configuration.
#[derive(Clone)]
pub struct ChannelConfig {
    /// Its name: the table name (`[channels.ops]` is `ops`), or `urls-XXXXXXXX` for
    /// `BELFRY_URLS` entries, or `console` for the default.
    pub name: String,
    /// Its URL (a `command` channel's is its `cmd://` URL). Holds secrets: print
    /// [`ChannelConfig::describe`] instead.
    url: String,
    /// Which notifications it receives.
    pub route: Route,
    /// Its title and body templates, if any.
    templates: Option<Templates>,
    /// The values its `${env:…}` / `${file:…}` references resolved to.
    secrets: Secrets,
    /// Overrides of the pace the channel's service sets (`rate`, `burst`, `concurrency`).
    pub pace: PaceOverride,
}

/// A channel's own settings for how fast it may be sent to; unset fields keep the service's
/// defaults ([`belfry_channels::Pace`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PaceOverride {
    /// `rate`: sends per second, sustained.
    pub per_second: Option<f64>,
    /// `burst`: sends at once after a quiet spell.
    pub burst: Option<u32>,
    /// `concurrency`: requests in flight at once.
    pub concurrency: Option<usize>,
}

impl PaceOverride {
    /// `pace` with these overrides applied.
    pub fn apply(&self, mut pace: belfry_channels::Pace) -> belfry_channels::Pace {
        if let Some(r) = self.per_second {
            pace.per_second = Some(r);
        }
        if let Some(b) = self.burst {
            pace.burst = b;
        }
        if let Some(c) = self.concurrency {
            pace.concurrency = c;
        }
        pace
    }
}

impl ChannelConfig {
    /// A channel with this name and URL (references already resolved) and no templates,
    /// receiving everything. The secrets written in the URL are hidden ([`Secrets::add_url`]).
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        let (name, url) = (name.into(), url.into());
        ChannelConfig {
            route: Route::all(name.clone()),
            name,
            secrets: Secrets::of_url(&url),
            url,
            templates: None,
            pace: PaceOverride::default(),
        }
    }

    /// The URL, secrets included: for building the channel, never for printing.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its title and body templates, if any.
    pub fn templates(&self) -> Option<&Templates> {
        self.templates.as_ref()
    }

    /// The values its references resolved to.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// `n` as this channel should say it: with its templates applied, if it has any.
    pub fn render<'a>(&self, n: &'a Notification) -> Cow<'a, Notification> {
        match &self.templates {
            Some(t) => Cow::Owned(t.apply(n)),
            None => Cow::Borrowed(n),
        }
    }

    /// The kind of channel: its URL's scheme, lowercase (`slack`, `mailto`, `console`).
    pub fn kind(&self) -> String {
        let u = self.url.trim();
        let scheme = u.split_once("://").map_or(u, |(s, _)| s);
        let scheme = scheme.split_once(':').map_or(scheme, |(s, _)| s);
        scheme.to_ascii_lowercase()
    }

    /// Whether this is the console channel.
    pub fn is_console(&self) -> bool {
        let u = self.url.trim();
        u == "console" || u.starts_with("console:") || u.starts_with("stderr://")
    }

    /// The URL with its secrets hidden: the URL's own secret parts (password, tokens, path)
    /// and every value a reference resolved to.
    pub fn describe(&self) -> String {
        self.secrets
            .scrub(&belfry_channels::redact_url(&self.url))
            .into_owned()
    }
}

impl fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelConfig")
            .field("name", &self.name)
            .field("url", &self.describe())
            .field("route", &self.route)
            .field("templates", &self.templates)
            .finish()
    }
}

/// Per-job settings from `[jobs.NAME]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobConfig {
    /// Overrides `[policy] repeat_failures_after`.
    pub repeat_failures_after: Option<Duration>,
    /// Overrides `[policy] ok_heartbeat_after` (`Some(None)` is "off").
    pub ok_heartbeat_after: Option<Option<Duration>>,
    /// Overrides `[policy] fail_threshold`.
    pub fail_threshold: Option<u32>,
    /// Only these channels.
    pub channels: Option<Vec<String>>,
    /// Default `--timeout` for `belfry run`.
    pub timeout: Option<Duration>,
    /// Default `--ok-codes` for `belfry run`.
    pub ok_codes: Option<Vec<i32>>,
    /// When the job is expected to report (`period` or `cron` + `tz`, `grace`,
    /// `max_runtime`): `belfry serve` marks it late when it is silent past that.
    pub expect: Option<Expect>,
    /// Its tags (`tags = ["db", "prod"]`): `belfry serve` gives them to the job when it
    /// starts (replacing the API's), for the dashboard's filter and silences by tag.
    pub tags: Option<Vec<String>>,
}

/// Whether `t` can be a job's tag: 1 to 100 characters, no spaces or control characters
/// (healthchecks.io's tags are a space-separated list).
pub fn is_tag(t: &str) -> bool {
    !t.is_empty()
        && t.chars().count() <= 100
        && !t.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The grace time of a schedule that does not give one: an hour, as healthchecks.io's default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// The address `belfry serve` listens on by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8000";

/// The bytes of a ping's body kept by default (healthchecks.io keeps as many).
pub const DEFAULT_PING_BODY_LIMIT: usize = 10_000;

/// The management API requests a minute each key may make by default.
pub const DEFAULT_API_RATE_LIMIT: u32 = 100;

/// `belfry serve`'s settings, from `[server]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    /// The address to listen on.
    pub listen: std::net::SocketAddr,
    /// The key of `/ping/<key>/<job>` URLs, if pings by name are allowed.
    pub ping_key: Option<PingKey>,
    /// The bytes of a ping's body kept; the rest is cut.
    pub ping_body_limit: usize,
    /// The management API's read-write key (`X-Api-Key`); without it the API is off.
    pub api_key: Option<PingKey>,
    /// The management API's read-only key.
    pub api_key_readonly: Option<PingKey>,
    /// Requests a minute each API key may make (healthchecks.io asks for at most 100).
    pub api_rate_limit: u32,
    /// The dashboard's logins, by user name.
    pub users: BTreeMap<String, DashboardUser>,
    /// Whether the dashboard's session cookie is `Secure`: browsers then send it only over
    /// HTTPS, and to `http://localhost` and `http://127.0.0.1`.
    pub cookie_secure: bool,
}

/// A dashboard login, from `[server.users.NAME]`.
#[derive(Clone, PartialEq, Eq)]
pub struct DashboardUser {
    /// The password's Argon2 hash in the PHC string format (`$argon2id$v=19$…`), as
    /// `belfry hash-password` writes it. Never shown.
    pub password_hash: String,
    /// May look but not act (`role = "read-only"`).
    pub read_only: bool,
}

impl fmt::Debug for DashboardUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashboardUser")
            .field("password_hash", &"***")
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: DEFAULT_LISTEN.parse().expect("the default address parses"),
            ping_key: None,
            ping_body_limit: DEFAULT_PING_BODY_LIMIT,
            api_key: None,
            api_key_readonly: None,
            api_rate_limit: DEFAULT_API_RATE_LIMIT,
            users: BTreeMap::new(),
            cookie_secure: true,
        }
    }
}

/// A key of the server's (the ping key, an API key): a secret, so it is never shown (its
/// `Debug` says `PingKey(***)`); compare it with [`PingKey::matches`].
#[derive(Clone, PartialEq, Eq)]
pub struct PingKey(String);

impl PingKey {
    /// Whether `given` is this key. Takes as long whatever `given` is, up to its length.
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// The key itself, for building ping URLs (never for showing).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PingKey(***)")
    }
}

/// How `belfry run` keeps output and stops jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSettings {
    /// Bytes of the output's end kept per run.
    pub tail_bytes: usize,
    /// Lines of the output's start kept per run.
    pub head_lines: usize,
    /// Time between TERM and KILL on timeout.
    pub kill_after: Duration,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            tail_bytes: 64 * 1024,
            head_lines: 5,
            kill_after: Duration::from_secs(10),
        }
    }
}

/// How notifications are delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliverySettings {
    /// How long a short-lived process (`belfry run`) waits for its notifications to go out.
    pub wait: Duration,
    /// After this long undelivered, a notification is dead.
    pub give_up_after: Duration,
    /// One request's time limit.
    pub request_timeout: Duration,
    /// Whether `belfry run` leaves what it could not deliver to a detached
    /// `belfry deliver --background` (`$BELFRY_BACKGROUND=0` turns it off too).
    pub background: bool,
    /// After a job's alert reached a channel, its next alerts for that channel wait until
    /// this much time has passed and go out as one digest (zero: no wait).
    pub digest_window: Duration,
    /// How long a claim on an outbox row lasts without renewal: a sender renews it while it
    /// works, so this is how long the rows of a sender that died wait for another.
    pub lease: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            wait: Duration::from_secs(10),
            give_up_after: Duration::from_secs(24 * 3600),
            request_timeout: Duration::from_secs(5),
            background: true,
            digest_window: Duration::from_secs(3),
            lease: Duration::from_secs(15),
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
    /// Policy defaults.
    pub policy: Policy,
    /// Channels, in name order (file channels, then `BELFRY_URLS`).
    pub channels: Vec<ChannelConfig>,
    /// Per-job settings.
    pub jobs: BTreeMap<String, JobConfig>,
    /// `belfry run` settings.
    pub run: RunSettings,
    /// Delivery settings.
    pub delivery: DeliverySettings,
    /// What the store keeps of each job (`[store]`).
    pub store: belfry_store::Retention,
    /// `belfry serve`'s settings (`[server]`).
    pub server: ServerSettings,
    /// Where the store is, if not the SQLite file in the state directory: `[store] url`, or
    /// `$BELFRY_STORE` (which wins). Its password is among [`Config::secrets`].
    pub store_url: Option<belfry_store::Location>,
    /// Every value a secret reference resolved to, in any channel: hidden by
    /// [`Config::scrub`].
    pub secrets: Secrets,
    /// The healthchecks-style pinger `belfry run` feeds (`[ping] url`, `$BELFRY_PING_URL`):
    /// a hidden channel, named `ping:` and a hash of the URL as written, that no routing
    /// rule reaches; [`Config::channel`] finds it.
    pub ping: Option<ChannelConfig>,
}

impl Default for Config {
    /// No file, no channels but the console.
    fn default() -> Self {
        let mut c = Config::empty();
        c.ensure_a_channel();
        c
    }
}

/// Where the configuration may come from; the environment is passed in so that the search is
/// testable (and a library user can supply their own).
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// `--config`.
    pub explicit: Option<PathBuf>,
    /// `$BELFRY_CONFIG`.
    pub env_config: Option<PathBuf>,
    /// `$BELFRY_URLS`.
    pub env_urls: Option<String>,
    /// `$BELFRY_STORE`.
    pub env_store: Option<String>,
    /// `$BELFRY_PING_URL`.
    pub env_ping: Option<String>,
    /// The working directory (for `./belfry.toml`).
    pub cwd: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<PathBuf>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$APPRISE_URLS`: used when belfry's own configuration names no channel.
    pub env_apprise_urls: Option<String>,
    /// `$APPRISE_CONFIG_PATH` (Apprise's files, `;`-separated), else Apprise's own places:
    /// used when belfry's own configuration names no channel and `$APPRISE_URLS` is unset.
    pub env_apprise_config: Option<String>,
}

impl Sources {
    /// The sources of this process: its environment and working directory.
    pub fn from_env(explicit: Option<PathBuf>) -> Self {
        let var = |k| std::env::var_os(k).filter(|v| !v.is_empty());
        Sources {
            explicit,
            env_config: var("BELFRY_CONFIG").map(PathBuf::from),
            env_urls: var("BELFRY_URLS").map(|v| v.to_string_lossy().into_owned()),
            env_store: var("BELFRY_STORE").map(|v| v.to_string_lossy().into_owned()),
            env_ping: var("BELFRY_PING_URL").map(|v| v.to_string_lossy().into_owned()),
            cwd: std::env::current_dir().ok(),
            xdg_config_home: var("XDG_CONFIG_HOME").map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
            env_apprise_urls: var("APPRISE_URLS").map(|v| v.to_string_lossy().into_owned()),
            env_apprise_config: var("APPRISE_CONFIG_PATH")
                .or_else(|| var("APPRISE_CONFIG"))
                .map(|v| v.to_string_lossy().into_owned()),
        }
    }

    /// The file to read: `--config`, `$BELFRY_CONFIG`, `./belfry.toml`, then
    /// `$XDG_CONFIG_HOME/belfry/belfry.toml` (`~/.config/belfry/belfry.toml`). The first two
    /// must exist; the others are used if they do.
    pub fn find(&self) -> Result<Option<PathBuf>, ConfigError> {
        for (given, how) in [
            (&self.explicit, "--config"),
            (&self.env_config, "$BELFRY_CONFIG"),
        ] {
            if let Some(p) = given {
                if !p.is_file() {
                    return Err(ConfigError(format!(
                        "config {} (from {how}): no such file",
                        p.display()
                    )));
                }
                return Ok(Some(p.clone()));
            }
        }
        let mut candidates = Vec::new();
        if let Some(cwd) = &self.cwd {
            candidates.push(cwd.join("belfry.toml"));
        }
        match (&self.xdg_config_home, &self.home) {
            (Some(x), _) => candidates.push(x.join("belfry/belfry.toml")),
            (None, Some(h)) => candidates.push(h.join(".config/belfry/belfry.toml")),
            (None, None) => {}
        }
        Ok(candidates.into_iter().find(|p| p.is_file()))
    }
}

impl Config {
    /// Finds, reads and checks the configuration, and adds `BELFRY_URLS`. Beyond what
    /// [`Config::parse`] checks, a `command` channel's program must exist here and be
    /// executable: every command that loads the configuration refuses one that could never
    /// run.
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let mut text = String::new();
        let found = sources.find()?;
        // A file named by --config or $BELFRY_CONFIG may be Apprise's configuration (TEXT or
        // YAML) rather than belfry's TOML.
        let apprise = found
            .as_deref()
            .and_then(crate::apprise_config::read_if_apprise);
        let mut config = match (found, apprise) {
            (Some(path), Some(entries)) => {
                let entries = entries.map_err(ConfigError)?;
                let mut c = Config::empty();
                c.add_apprise(&entries, &path.display().to_string())?;
                c.source = Some(path);
                c
            }
            (Some(path), None) => {
                text = std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError::at(&path.display().to_string(), format!("cannot read: {e}"))
                })?;
                let lookup = Lookup::process(path.parent());
                let mut c = Config::parse_with(&text, &path.display().to_string(), &lookup)?;
                c.source = Some(path);
                c
            }
            (None, _) => Config::empty(),
        };
        if let Some(urls) = &sources.env_urls {
            config.add_urls(urls, "$BELFRY_URLS")?;
        }
        if config.channels.is_empty() {
            config.add_apprise_sources(sources)?;
        }
        if let Some((job, name)) = config.jobs.iter().find_map(|(job, j)| {
            let list = j.channels.as_deref()?;
            list.iter()
                .find(|n| config.unknown_channel(n))
                .map(|n| (job, n))
        }) {
            return Err(ConfigError(format!(
                "[jobs.{job}] channels: no channel or tag named {name:?} (defined: {})",
                names(&config.channels)
            )));
        }
        if let Some(url) = &sources.env_store {
            config
                .set_store_url(url, &Lookup::process(None))
                .map_err(|why| ConfigError::at("$BELFRY_STORE", why))?;
        }
        if let Some(url) = &sources.env_ping {
            config
                .set_ping_url(url, &Lookup::process(None))
                .map_err(|why| ConfigError::at("$BELFRY_PING_URL", why))?;
        }
        config.check_programs(&text)?;
        config.ensure_a_channel();
        Ok(config)
    }

    /// Whether `name`, in a job's `channels` list, names no channel and no channel's tag
    /// (`all` names every channel).
    fn unknown_channel(&self, name: &str) -> bool {
        name != belfry_core::TAG_ALL && !self.channels.iter().any(|c| c.route.is_named_by(name))
    }

    /// Apprise's configuration, when belfry's names no channel: `$APPRISE_URLS`, else the
    /// files of `$APPRISE_CONFIG_PATH`, else those of Apprise's own places that exist.
    fn add_apprise_sources(&mut self, sources: &Sources) -> Result<(), ConfigError> {
        if let Some(urls) = &sources.env_apprise_urls {
            let entries: Vec<crate::apprise_config::Entry> = split_urls(urls)
                .into_iter()
                .map(|url| crate::apprise_config::Entry {
                    url,
                    tags: Vec::new(),
                })
                .collect();
            return self.add_apprise(&entries, "$APPRISE_URLS");
        }
        let paths = match &sources.env_apprise_config {
            Some(list) => crate::apprise_config::split_paths(list),
            None => crate::apprise_config::default_paths(sources.home.as_deref())
                .into_iter()
                .filter(|p| p.is_file())
                .collect(),
        };
        for path in paths {
            let entries = crate::apprise_config::read_file(&path).map_err(ConfigError)?;
            self.add_apprise(&entries, &path.display().to_string())?;
        }
        Ok(())
    }

    /// Adds Apprise's URLs as channels named `apprise-` and a hash of the URL and its tags (a
    /// name that stays when the file's order changes, so that the outbox's rows keep their
    /// channel), each with its tags.
    fn add_apprise(
        &mut self,
        entries: &[crate::apprise_config::Entry],
        origin: &str,
    ) -> Result<(), ConfigError> {
        for (i, e) in entries.iter().enumerate() {
            let mut secrets = Secrets::default();
            secrets.add_url(&e.url);
            let mut key: Vec<&str> = vec![e.url.as_str()];
            key.extend(e.tags.iter().map(String::as_str));
            let name = format!("apprise-{:08x}", stable_hash(&key));
            let what = format!("URL {}: ", i + 1);
            self.add_url_channel(name, e.url.clone(), &e.tags, secrets, origin, &what)?;
        }
        Ok(())
    }

    /// Adds a channel named `name` for `url`, checked now (the error, from `origin`, begins
    /// with `what` and hides `secrets`), with `tags`; nothing when a channel has that name
    /// already (the same URL given twice).
    fn add_url_channel(
        &mut self,
        name: String,
        url: String,
        tags: &[String],
        mut secrets: Secrets,
        origin: &str,
        what: &str,
    ) -> Result<(), ConfigError> {
        belfry_channels::parse(&url).map_err(|e| {
            ConfigError::at(origin, format!("{what}{}", secrets.scrub(&e.to_string())))
        })?;
        if self.channels.iter().any(|c| c.name == name) {
            return Ok(());
        }
        secrets.add_url(&url);
        self.secrets.extend(&secrets);
        let mut ch = ChannelConfig::new(name, url);
        ch.route.tags = tags.to_vec();
        ch.secrets = secrets;
        self.channels.push(ch);
        Ok(())
    }

    /// Refuses a `command` channel (or `cmd://` URL) whose program cannot be started here.
    /// `text` is the file's, to name the channel's line.
    fn check_programs(&self, text: &str) -> Result<(), ConfigError> {
        for c in &self.channels {
            let Some(why) = belfry_channels::Command::program_problem(&c.url) else {
                continue;
            };
            let why = format!("the program {}", c.secrets.scrub(&why));
            return Err(if c.name.starts_with("urls-") {
                ConfigError::at("$BELFRY_URLS", format!("channel {}: {why}", c.name))
            } else {
                let file = self.source.as_ref().map(|p| p.display().to_string());
                let line = text
                    .find(&format!("[channels.{}]", c.name))
                    .map(|i| format!("line {}: ", line_of(text, i)))
                    .unwrap_or_default();
                ConfigError::at(
                    file.as_deref().unwrap_or("?"),
                    format!("{line}[channels.{}]: {why}", c.name),
                )
            });
        }
        Ok(())
    }

    fn empty() -> Config {
        Config {
            source: None,
            policy: Policy::default(),
            channels: Vec::new(),
            jobs: BTreeMap::new(),
            run: RunSettings::default(),
            delivery: DeliverySettings::default(),
            store: belfry_store::Retention::default(),
            server: ServerSettings::default(),
            store_url: None,
            secrets: Secrets::default(),
            ping: None,
        }
    }

    /// With nothing configured, alerts go to the console.
    fn ensure_a_channel(&mut self) {
        if self.channels.is_empty() {
            self.channels
                .push(ChannelConfig::new("console", "console://"));
        }
    }

    /// Parses a configuration text; `origin` names it in errors. Does not add the console
    /// default or `BELFRY_URLS`. Secret references are looked up in this process's
    /// environment, relative files from the working directory.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Config::parse_with(text, origin, &Lookup::process(None))
    }

    /// [`Config::parse`], with secret references looked up through `lookup`.
    pub fn parse_with(
        text: &str,
        origin: &str,
        lookup: &Lookup<'_>,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
        let mut c = Config::empty();
        let p = &raw.policy;
        if let Some(d) = &p.repeat_failures_after {
            c.policy.repeat_failures_after = d.0;
        }
        if let Some(h) = &p.ok_heartbeat_after {
            c.policy.ok_heartbeat_after = h.0;
        }
        if let Some(t) = &p.fail_threshold {
            c.policy.fail_threshold = t.0;
        }
        for (name, ch) in raw.channels {
            check_channel_name(&name)
                .map_err(|why| ConfigError::at(origin, format!("[channels.{name}]: {why}")))?;
            let at = |key: &str, span: std::ops::Range<usize>, msg: &dyn fmt::Display| {
                let (line, column) = line_column(text, span.start);
                ConfigError::at(
                    origin,
                    format!("line {line}, column {column}, key channels.{name}.{key}: {msg}"),
                )
            };
            let table = |why: &str| {
                let line = text
                    .find(&format!("[channels.{name}]"))
                    .map(|i| format!("line {}: ", line_of(text, i)))
                    .unwrap_or_default();
                ConfigError::at(origin, format!("{line}[channels.{name}]: {why}"))
            };
            let mut secrets = Secrets::default();
            let url = match (&ch.url, &ch.command) {
                (Some(u), None) => {
                    if ch.timeout.is_some() {
                        return Err(table("timeout applies to command channels only"));
                    }
                    let url = resolve(u.get_ref(), lookup, &mut secrets)
                        .map_err(|e| at("url", u.span(), &e))?;
                    if let Err(e) = belfry_channels::parse(&url) {
                        return Err(at("url", u.span(), &secrets.scrub(&e.to_string())));
                    }
                    url
                }
                // A command travels as its cmd:// URL, so that it is checked, described and
                // built like every other channel. Its arguments may hold references too.
                (None, Some(cmd)) => {
                    if cmd.get_ref().first().is_none_or(|p| p.trim().is_empty()) {
                        return Err(at(
                            "command",
                            cmd.span(),
                            &"a command is a list that starts with the program: \
                              [\"notify-send\", \"{title}\"]",
                        ));
                    }
                    let argv = cmd
                        .get_ref()
                        .iter()
                        .map(|a| resolve(a, lookup, &mut secrets))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| at("command", cmd.span(), &e))?;
                    let url = belfry_channels::Command::url_for(&argv, ch.timeout.map(|t| t.0));
                    if let Err(e) = belfry_channels::parse(&url) {
                        return Err(at("command", cmd.span(), &secrets.scrub(e.why())));
                    }
                    url
                }
                (Some(_), Some(_)) => return Err(table("give url or command, not both")),
                (None, None) => {
                    return Err(table(
                        "give url = \"scheme://…\" or command = [\"program\", \"{title}\", …]",
                    ));
                }
            };
            let templates = if ch.title.is_some() || ch.body.is_some() {
                let title = ch.title.as_ref().map(|t| t.get_ref().as_str());
                let body = ch.body.as_ref().map(|t| t.get_ref().as_str());
                let t = Templates::new(title, body).map_err(|e| {
                    let spanned = if e.which() == "title" {
                        &ch.title
                    } else {
                        &ch.body
                    };
                    let span = spanned.as_ref().map_or(0..0, toml::Spanned::span);
                    at(e.which(), span, &e)
                })?;
                Some(t)
            } else {
                None
            };
            // Secrets written inline count as much as references: any channel's receiver may
            // echo them (in their own or another channel's error).
            secrets.add_url(&url);
            c.secrets.extend(&secrets);
            let tags = match ch.tags {
                Some(t) => {
                    let span = t.span();
                    let tags: Vec<String> = t
                        .into_inner()
                        .iter()
                        .map(|t| t.to_ascii_lowercase())
                        .collect();
                    if let Some(bad) = tags.iter().find(|t| !crate::apprise_config::valid_tag(t)) {
                        return Err(at(
                            "tags",
                            span,
                            &format!("{bad:?} is not a tag (letters, digits, _, - and :)"),
                        ));
                    }
                    tags
                }
                None => Vec::new(),
            };
            c.channels.push(ChannelConfig {
                route: Route {
                    channel: name.clone(),
                    jobs: ch.jobs.unwrap_or_default(),
                    tags,
                    states: ch
                        .states
                        .unwrap_or_default()
                        .into_iter()
                        .map(|s| s.0)
                        .collect(),
                },
                name,
                url,
                templates,
                secrets,
                pace: PaceOverride {
                    per_second: ch.rate.map(|r| r.0),
                    burst: ch.burst.map(|b| b.0),
                    concurrency: ch.concurrency.map(|c| c.0 as usize),
                },
            });
        }
        for (name, j) in raw.jobs {
            // With no channel in the file, the channels come from the environment or Apprise's
            // configuration, and `Config::load` checks the names once they are known.
            if let Some(list) = j.channels.as_ref().filter(|_| !c.channels.is_empty()) {
                for ch in list.get_ref() {
                    if c.unknown_channel(ch) {
                        let line = line_of(text, list.span().start);
                        return Err(ConfigError::at(
                            origin,
                            format!(
                                "line {line}: [jobs.{name}] channels: no channel or tag named \
                                 {ch:?} (defined: {})",
                                names(&c.channels)
                            ),
                        ));
                    }
                }
            }
            let expect = job_expect(&j, text, origin, &name)?;
            if let Some(tags) = &j.tags {
                for t in tags.get_ref() {
                    if !is_tag(t) {
                        let (line, column) = line_column(text, tags.span().start);
                        return Err(ConfigError::at(
                            origin,
                            format!(
                                "line {line}, column {column}, key jobs.{name}.tags: {t:?} is \
                                 not a tag (1 to 100 characters, no spaces)"
                            ),
                        ));
                    }
                }
            }
            c.jobs.insert(
                name,
                JobConfig {
                    expect,
                    repeat_failures_after: j.repeat_failures_after.map(|d| d.0),
                    ok_heartbeat_after: j.ok_heartbeat_after.map(|h| h.0),
                    fail_threshold: j.fail_threshold.map(|t| t.0),
                    channels: j.channels.map(toml::Spanned::into_inner),
                    timeout: j.timeout.map(|d| d.0),
                    ok_codes: j.ok_codes.map(|v| v.into_iter().map(|c| c.0).collect()),
                    tags: j.tags.map(toml::Spanned::into_inner),
                },
            );
        }
        if let Some(t) = raw.run.tail_bytes {
            c.run.tail_bytes = t;
        }
        if let Some(h) = raw.run.head_lines {
            c.run.head_lines = h;
        }
        if let Some(k) = raw.run.kill_after {
            c.run.kill_after = k.0;
        }
        if let Some(w) = raw.delivery.wait {
            c.delivery.wait = w.0;
        }
        if let Some(g) = raw.delivery.give_up_after {
            c.delivery.give_up_after = g.0;
        }
        if let Some(r) = raw.delivery.request_timeout {
            c.delivery.request_timeout = r.0;
        }
        if let Some(b) = raw.delivery.background {
            c.delivery.background = b;
        }
        if let Some(d) = raw.delivery.digest_window {
            c.delivery.digest_window = d.0;
        }
        if let Some(l) = raw.delivery.lease {
            c.delivery.lease = l.0.max(Duration::from_secs(1));
        }
        if let Some(n) = raw.store.keep_runs {
            c.store.runs_per_job = n.0;
        }
        if let Some(n) = raw.store.keep_notifications {
            c.store.notifications_per_job = n.0;
        }
        c.server = server_settings(&raw.server, text, origin, lookup, &mut c.secrets)?;
        if let Some(url) = &raw.ping.url {
            c.set_ping_url(url.get_ref(), lookup).map_err(|why| {
                let (line, column) = line_column(text, url.span().start);
                ConfigError::at(
                    origin,
                    format!("line {line}, column {column}, key ping.url: {why}"),
                )
            })?;
        }
        if let Some(url) = &raw.store.url {
            c.set_store_url(url.get_ref(), lookup).map_err(|why| {
                let (line, column) = line_column(text, url.span().start);
                ConfigError::at(
                    origin,
                    format!("line {line}, column {column}, key store.url: {why}"),
                )
            })?;
        }
        Ok(c)
    }

    /// Adds channels from a list of URLs separated by white space or commas (a comma splits
    /// only where a new `scheme://` follows, so `?to=a,b` stays whole). Secret references are
    /// resolved from this process's environment.
    pub fn add_urls(&mut self, list: &str, origin: &str) -> Result<(), ConfigError> {
        self.add_urls_with(list, origin, &Lookup::process(None))
    }

    /// [`Config::add_urls`], with secret references looked up through `lookup`.
    pub fn add_urls_with(
        &mut self,
        list: &str,
        origin: &str,
        lookup: &Lookup<'_>,
    ) -> Result<(), ConfigError> {
        for (i, written) in split_urls(list).into_iter().enumerate() {
            let mut secrets = Secrets::default();
            let url = resolve(&written, lookup, &mut secrets)
                .map_err(|e| ConfigError::at(origin, format!("URL {}: {e}", i + 1)))?;
            // Named after the URL as written, references unresolved: the name stays when a
            // secret is rotated, and no secret value goes into the hash.
            let name = format!("urls-{:08x}", stable_hash(&[written.as_str()]));
            self.add_url_channel(name, url, &[], secrets, origin, "")?;
        }
        Ok(())
    }

    /// `text` with every secret value of every channel replaced by `***`: for anything about
    /// a channel that belfry prints or stores (a delivery failure's reason, an error).
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.secrets.scrub(text)
    }

    /// Adds a named channel that receives every notification, as a `[channels.NAME]` table
    /// with only a `url` would (for configuration in code: the library's builder). The URL
    /// is checked now; the error names the channel and hides the URL's secrets.
    pub fn add_channel(&mut self, name: &str, url: &str) -> Result<(), ConfigError> {
        let origin = format!("channel {name:?}");
        check_channel_name(name).map_err(|why| ConfigError::at(&origin, why))?;
        if self.channels.iter().any(|c| c.name == name) {
            return Err(ConfigError::at(
                &origin,
                "a channel with this name exists already",
            ));
        }
        belfry_channels::parse(url).map_err(|e| ConfigError::at(&origin, e))?;
        let ch = ChannelConfig::new(name, url);
        self.secrets.extend(&ch.secrets);
        self.channels.push(ch);
        Ok(())
    }

    /// Sets where the store is from a URL as written (secret references resolved through
    /// `lookup`), and hides its password. The error says why, without the password.
    fn set_store_url(&mut self, written: &str, lookup: &Lookup<'_>) -> Result<(), String> {
        let mut secrets = Secrets::default();
        let url = resolve(written, lookup, &mut secrets).map_err(|e| e.to_string())?;
        if !belfry_store::PostgresUrl::is_postgres_url(&url) {
            return Err(format!(
                "{:?} is not a store URL: give postgres://user:password@host/database \
                 (the default store, belfry.db in the state directory, needs no url)",
                secrets.scrub(&url)
            ));
        }
        let location = belfry_store::Location::parse(&url)
            .map_err(|e| secrets.scrub(&e.to_string()).into_owned())?;
        // The password, as the URL carries it (`user:password@`, or `password=`).
        let authority = url.split_once("://").map_or("", |(_, rest)| {
            &rest[..rest.find(['/', '?']).unwrap_or(rest.len())]
        });
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, pass)) = userinfo.split_once(':')
        {
            secrets.add(pass);
        }
        if let Some((_, query)) = url.split_once('?') {
            for pass in query.split('&').filter_map(|p| p.strip_prefix("password=")) {
                secrets.add(pass);
            }
        }
        self.secrets.extend(&secrets);
        self.store_url = Some(location);
        Ok(())
    }

    /// Sets the healthchecks-style ping base `belfry run` pings (`[ping] url`,
    /// `$BELFRY_PING_URL`), from the URL as written (secret references resolved through
    /// `lookup`). The key in it is hidden everywhere; the error says what is wrong without it.
    pub fn set_ping_url(&mut self, written: &str, lookup: &Lookup<'_>) -> Result<(), String> {
        let mut secrets = Secrets::default();
        let base = resolve(written, lookup, &mut secrets).map_err(|e| e.to_string())?;
        belfry_channels::HcPing::from_base(&base).map_err(|why| {
            format!(
                "{why}; give the ping base healthchecks shows: https://hc-ping.com/<ping-key>, \
                 http://host:8000/ping/<ping-key>, or a check's https://hc-ping.com/<uuid>"
            )
        })?;
        // Stored as the channel URL it is (`hcping://`, `hcpings://`), named by the URL as
        // written: a drain started with another ping URL does not send this one's rows there.
        let url = match base.trim().split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => {
                format!("hcpings://{rest}")
            }
            Some((_, rest)) => format!("hcping://{rest}"),
            None => return Err("not a URL".into()),
        };
        let name = format!("ping:{:08x}", stable_hash(&[written.trim()]));
        // Not among `channels`: no routing rule reaches it, only `belfry run` writes its rows.
        // Its secrets: what references resolved to, and the key (the base's last segment),
        // however short; the host stays readable in reasons.
        let mut ch = ChannelConfig::new(name, url);
        if let Some(key) = base.trim().trim_end_matches('/').rsplit('/').next() {
            secrets.add(key);
        }
        ch.secrets = secrets;
        self.secrets.extend(&ch.secrets);
        self.ping = Some(ch);
        Ok(())
    }

    /// Where the store is: [`Config::store_url`], or `belfry.db` in the state directory
    /// `home`.
    pub fn store_location(&self, home: &std::path::Path) -> belfry_store::Location {
        match &self.store_url {
            Some(location) => location.clone(),
            None => belfry_store::Location::Sqlite(crate::store_path(home)),
        }
    }

    /// What the store keeps of what this configuration's processes write: how long an alert
    /// may wait for delivery (`[delivery] give_up_after`) and how much history (`[store]`).
    pub fn limits(&self) -> belfry_store::Limits {
        belfry_store::Limits {
            delivery_deadline: self.delivery.give_up_after,
            retention: self.store,
        }
    }

    /// The policy for `job`: the defaults with its overrides.
    pub fn policy_for(&self, job: &str) -> Policy {
        let mut p = self.policy.clone();
        if let Some(j) = self.jobs.get(job) {
            if let Some(d) = j.repeat_failures_after {
                p.repeat_failures_after = d;
            }
            if let Some(h) = j.ok_heartbeat_after {
                p.ok_heartbeat_after = h;
            }
            if let Some(t) = j.fail_threshold {
                p.fail_threshold = t;
            }
        }
        p
    }

    /// The names of the channels that receive a notification about `job` in `state`.
    pub fn route(&self, job: &str, state: &State, recovered: bool) -> Vec<String> {
        let only = self.jobs.get(job).and_then(|j| j.channels.as_deref());
        Route::select(
            self.channels.iter().map(|c| &c.route),
            job,
            state,
            recovered,
            only,
        )
        .into_iter()
        .map(str::to_owned)
        .collect()
    }

    /// A channel by name (the hidden pinger's too, [`Config::ping`]).
    pub fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        self.channels
            .iter()
            .chain(self.ping.as_ref())
            .find(|c| c.name == name)
    }
}

fn names(chs: &[ChannelConfig]) -> String {
    if chs.is_empty() {
        return "none".into();
    }
    chs.iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_channel_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("a channel name cannot be empty");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("a channel name may hold only letters, digits, '-', '_' and '.'");
    }
    if name.starts_with("urls-") {
        return Err("names starting with \"urls-\" are kept for $BELFRY_URLS");
    }
    Ok(())
}

/// toml's own message quotes the offending line, which may hold a secret (a URL's password):
/// rebuild it from the position instead, naming the file, line, column and dotted key.
/// serde's words for a value of the wrong type are Rust's; they are rewritten to say what to write.
fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> ConfigError {
    let msg = e.message().trim_end();
    let plain = plain_type_error(msg);
    let msg = plain.as_deref().unwrap_or(msg);
    let Some(span) = e.span() else {
        return ConfigError::at(origin, msg);
    };
    let line = line_of(text, span.start);
    let line_start = text[..span.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let column = text[line_start..span.start.min(text.len())].chars().count() + 1;
    let this_line = text[line_start..].lines().next().unwrap_or("");
    let key = this_line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_owned())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(['[', ']']).trim().to_owned());
    let at = match (table, key) {
        (Some(t), Some(k)) => format!(", key {t}.{k}"),
        (None, Some(k)) => format!(", key {k}"),
        _ => String::new(),
    };
    ConfigError::at(origin, format!("line {line}, column {column}{at}: {msg}"))
}

/// serde's message for a value of the wrong type (`invalid type: string "two", expected i64`,
/// `invalid value: integer \`-1\`, expected usize`) in the file's words: what to write there,
/// then what is there (`expected a whole number, not "two"`). `None` for any other message.
fn plain_type_error(msg: &str) -> Option<String> {
    let rest = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))?;
    // Only the found part can hold the separator (inside a string), so split at the last one.
    let (found, expected) = rest.rsplit_once(", expected ")?;
    let found = match found {
        "sequence" => "a list".to_owned(),
        "map" => "a table".to_owned(),
        f => match f.split_once(' ') {
            Some(("string", s)) => s.to_owned(),
            _ => match f.split_once('`') {
                Some((_, v)) => v.trim_end_matches('`').to_owned(),
                None => f.to_owned(),
            },
        },
    };
    let expected = match expected {
        "i64" | "i32" => "a whole number",
        "usize" | "u64" | "u32" => "a whole number, 0 or more",
        "f64" | "f32" => "a number",
        "a boolean" => "true or false",
        "a string" => "a string in quotes",
        "a sequence" => "a list in brackets, [ … ]",
        e if e.starts_with("struct ") => "a table",
        e => e,
    };
    Some(format!("expected {expected}, not {found}"))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    (
        line_of(text, offset),
        text[line_start..offset].chars().count() + 1,
    )
}

/// Splits a `BELFRY_URLS` value.
fn split_urls(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in list.split_whitespace() {
        let mut rest = word;
        loop {
            // Find a comma followed by something that looks like `scheme://`.
            let split = rest.match_indices(',').map(|(i, _)| i).find(|&i| {
                let after = &rest[i + 1..];
                after.find("://").is_some_and(|j| {
                    j > 0
                        && after[..j]
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                })
            });
            match split {
                Some(i) => {
                    if i > 0 {
                        out.push(rest[..i].to_owned());
                    }
                    rest = &rest[i + 1..];
                }
                None => {
                    let r = rest.trim_end_matches(',');
                    if !r.is_empty() {
                        out.push(r.to_owned());
                    }
                    break;
                }
            }
        }
    }
    out
}

// ---- the file's shape, checked by serde (unknown keys are errors with line and key) ----

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    channels: BTreeMap<String, RawChannel>,
    #[serde(default)]
    jobs: BTreeMap<String, RawJob>,
    #[serde(default)]
    run: RawRun,
    #[serde(default)]
    delivery: RawDelivery,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    ping: RawPing,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPing {
    /// Checked after its references are resolved, so its position is kept.
    url: Option<toml::Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<toml::Spanned<String>>,
    ping_key: Option<toml::Spanned<String>>,
    ping_body_limit: Option<toml::Spanned<i64>>,
    api_key: Option<toml::Spanned<String>>,
    api_key_readonly: Option<toml::Spanned<String>>,
    api_rate_limit: Option<toml::Spanned<i64>>,
    cookie_secure: Option<bool>,
    #[serde(default)]
    users: BTreeMap<toml::Spanned<String>, RawUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    password_hash: toml::Spanned<String>,
    role: Option<toml::Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    keep_runs: Option<AtLeastOne>,
    keep_notifications: Option<AtLeastOne>,
    url: Option<toml::Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    repeat_failures_after: Option<Dur>,
    ok_heartbeat_after: Option<Heartbeat>,
    fail_threshold: Option<Threshold>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    /// Checked after its references are resolved, so its position is kept.
    url: Option<toml::Spanned<String>>,
    command: Option<toml::Spanned<Vec<String>>>,
    timeout: Option<CommandTimeout>,
    jobs: Option<Vec<String>>,
    tags: Option<toml::Spanned<Vec<String>>>,
    states: Option<Vec<Filter>>,
    title: Option<toml::Spanned<String>>,
    body: Option<toml::Spanned<String>>,
    rate: Option<Rate>,
    burst: Option<AtLeastOne>,
    concurrency: Option<AtLeastOne>,
}

/// Sends per second: a positive number.
struct Rate(f64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = f64::deserialize(d)?;
        if !(r.is_finite() && r > 0.0) {
            return Err(de::Error::custom(format!(
                "a rate is sends per second, more than 0 (e.g. 0.5 or 10), not {r}"
            )));
        }
        Ok(Rate(r))
    }
}

/// A whole number, 1 or more.
struct AtLeastOne(u32);

impl<'de> Deserialize<'de> for AtLeastOne {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        if !(1..=10_000).contains(&n) {
            return Err(de::Error::custom(format!(
                "must be between 1 and 10000, not {n}"
            )));
        }
        Ok(AtLeastOne(n as u32))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    repeat_failures_after: Option<Dur>,
    ok_heartbeat_after: Option<Heartbeat>,
    fail_threshold: Option<Threshold>,
    channels: Option<toml::Spanned<Vec<String>>>,
    timeout: Option<Dur>,
    ok_codes: Option<Vec<ExitCode>>,
    period: Option<toml::Spanned<Dur>>,
    cron: Option<toml::Spanned<String>>,
    tz: Option<toml::Spanned<String>>,
    grace: Option<toml::Spanned<Dur>>,
    max_runtime: Option<toml::Spanned<Dur>>,
    tags: Option<toml::Spanned<Vec<String>>>,
}

/// A job's schedule from its `period` or `cron` (+ `tz`), `grace` and `max_runtime`; `None`
/// when it has none. Errors name the file, the line and the key.
fn job_expect(
    j: &RawJob,
    text: &str,
    origin: &str,
    name: &str,
) -> Result<Option<Expect>, ConfigError> {
    let at = |key: &str, span: std::ops::Range<usize>, msg: &dyn fmt::Display| {
        let (line, column) = line_column(text, span.start);
        ConfigError::at(
            origin,
            format!("line {line}, column {column}, key jobs.{name}.{key}: {msg}"),
        )
    };
    let schedule = match (&j.period, &j.cron) {
        (Some(p), None) => {
            if let Some(tz) = &j.tz {
                return Err(at("tz", tz.span(), &"tz goes with cron, not with period"));
            }
            Schedule::period(p.get_ref().0).map_err(|e| at("period", p.span(), &e))?
        }
        (None, Some(c)) => {
            let tz = j.tz.as_ref();
            Schedule::cron(c.get_ref(), tz.map(|t| t.get_ref().as_str())).map_err(|e| {
                // A time zone the expression could be read in is the cron's own error unless
                // it names the zone.
                match tz {
                    Some(t) if e.to_string().contains(t.get_ref().as_str()) => {
                        at("tz", t.span(), &e)
                    }
                    _ => at("cron", c.span(), &e),
                }
            })?
        }
        (Some(_), Some(c)) => {
            return Err(at("cron", c.span(), &"give period or cron, not both"));
        }
        (None, None) => {
            for (key, span) in [
                ("grace", j.grace.as_ref().map(toml::Spanned::span)),
                (
                    "max_runtime",
                    j.max_runtime.as_ref().map(toml::Spanned::span),
                ),
                ("tz", j.tz.as_ref().map(toml::Spanned::span)),
            ] {
                if let Some(span) = span {
                    return Err(at(
                        key,
                        span,
                        &format!(
                            "{key} needs a schedule: give period = \"1d\" or cron = \"0 3 * * *\""
                        ),
                    ));
                }
            }
            return Ok(None);
        }
    };
    let grace = j.grace.as_ref().map_or(DEFAULT_GRACE, |g| g.get_ref().0);
    let max_runtime = j.max_runtime.as_ref().map(|m| m.get_ref().0);
    Expect::new(schedule, grace, max_runtime)
        .map(Some)
        .map_err(|e| {
            let text_of = e.to_string();
            let (key, span) = if text_of.starts_with("max_runtime") {
                (
                    "max_runtime",
                    j.max_runtime.as_ref().map(toml::Spanned::span),
                )
            } else {
                ("grace", j.grace.as_ref().map(toml::Spanned::span))
            };
            at(key, span.unwrap_or(0..0), &e)
        })
}

/// `[server]`: the listening address, the ping key (a secret reference is resolved, and the
/// key is added to `secrets`) and the body limit.
fn server_settings(
    raw: &RawServer,
    text: &str,
    origin: &str,
    lookup: &Lookup<'_>,
    secrets: &mut Secrets,
) -> Result<ServerSettings, ConfigError> {
    let at = |key: &str, span: std::ops::Range<usize>, msg: &dyn fmt::Display| {
        let (line, column) = line_column(text, span.start);
        ConfigError::at(
            origin,
            format!("line {line}, column {column}, key server.{key}: {msg}"),
        )
    };
    let mut s = ServerSettings::default();
    if let Some(l) = &raw.listen {
        s.listen = l.get_ref().trim().parse().map_err(|_| {
            at(
                "listen",
                l.span(),
                &format!(
                    "{:?} is not an address and port, such as \"127.0.0.1:8000\" or \"[::]:8000\"",
                    l.get_ref()
                ),
            )
        })?;
    }
    let mut key = |name: &str, k: &toml::Spanned<String>| -> Result<PingKey, ConfigError> {
        let mut found = Secrets::default();
        let key = resolve(k.get_ref(), lookup, &mut found).map_err(|e| at(name, k.span(), &e))?;
        found.add(&key);
        secrets.extend(&found);
        check_ping_key(&key).map_err(|why| at(name, k.span(), &why))?;
        Ok(PingKey(key))
    };
    if let Some(k) = &raw.ping_key {
        s.ping_key = Some(key("ping_key", k)?);
    }
    if let Some(k) = &raw.api_key {
        s.api_key = Some(key("api_key", k)?);
    }
    if let Some(k) = &raw.api_key_readonly {
        let ro = key("api_key_readonly", k)?;
        if s.api_key.as_ref().is_some_and(|rw| rw.matches(ro.expose())) {
            return Err(at(
                "api_key_readonly",
                k.span(),
                &"the read-only key must differ from api_key",
            ));
        }
        s.api_key_readonly = Some(ro);
    }
    if let Some(n) = &raw.api_rate_limit {
        let v = *n.get_ref();
        if !(1..=1_000_000).contains(&v) {
            return Err(at(
                "api_rate_limit",
                n.span(),
                &format!("must be between 1 and 1000000 requests a minute, not {v}"),
            ));
        }
        s.api_rate_limit = v as u32;
    }
    if let Some(n) = &raw.ping_body_limit {
        let v = *n.get_ref();
        if !(0..=100_000_000).contains(&v) {
            return Err(at(
                "ping_body_limit",
                n.span(),
                &format!("must be between 0 and 100000000 bytes, not {v}"),
            ));
        }
        s.ping_body_limit = v as usize;
    }
    if let Some(b) = raw.cookie_secure {
        s.cookie_secure = b;
    }
    for (name, u) in &raw.users {
        let user = name.get_ref();
        let key = format!("users.{user}");
        let ok_name = !user.is_empty()
            && user.len() <= 64
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
        if !ok_name {
            return Err(at(
                &key,
                name.span(),
                &"a user name is 1 to 64 letters, digits, '-', '_', '.' and '@'",
            ));
        }
        let hash = u.password_hash.get_ref().trim();
        // The hash is checked whole when the server starts; this catches a password pasted
        // where its hash belongs, without saying it.
        if !hash.starts_with("$argon2") {
            return Err(at(
                &format!("{key}.password_hash"),
                u.password_hash.span(),
                &"is not an Argon2 hash (`$argon2id$…`); make one with `belfry hash-password`",
            ));
        }
        secrets.extend(&{
            let mut found = Secrets::default();
            found.add(hash);
            found
        });
        let read_only = match u.role.as_ref().map(|r| r.get_ref().as_str()) {
            None | Some("read-write") => false,
            Some("read-only") => true,
            Some(other) => {
                let span = u.role.as_ref().map_or(name.span(), |r| r.span());
                return Err(at(
                    &format!("{key}.role"),
                    span,
                    &format!("{other:?} is not \"read-write\" or \"read-only\""),
                ));
            }
        };
        s.users.insert(
            user.clone(),
            DashboardUser {
                password_hash: hash.to_owned(),
                read_only,
            },
        );
    }
    Ok(s)
}

/// A ping key goes in a URL's path, an API key in a header: 1 to 128 letters, digits, `-` and
/// `_` (healthchecks.io's ping keys are 22 of them, its API keys 32). The message never shows
/// the key.
fn check_ping_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 128 {
        return Err(format!("a key is 1 to 128 characters, not {}", key.len()));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("a key may hold only letters, digits, - and _".to_owned());
    }
    Ok(())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRun {
    tail_bytes: Option<usize>,
    head_lines: Option<usize>,
    kill_after: Option<Dur>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    wait: Option<Dur>,
    give_up_after: Option<Dur>,
    request_timeout: Option<Dur>,
    background: Option<bool>,
    digest_window: Option<Dur>,
    lease: Option<Dur>,
}

/// A string value, which a value of another type is refused for with `expected` as what to
/// write (`timeout = 300` says `expected a duration in quotes, such as "300s", not 300`).
struct Quoted(&'static str);

impl de::Visitor<'_> for Quoted {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
}

const A_DURATION: &str = "a duration in quotes, such as \"300s\"";

/// A duration such as `"1s"`, checked while parsing so the error points at the value.
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = d.deserialize_str(Quoted(A_DURATION))?;
        parse_duration(&s).map(Dur).map_err(de::Error::custom)
    }
}

/// A command channel's time limit: a duration its `cmd://` URL can carry, that is whole
/// milliseconds, at least one.
struct CommandTimeout(Duration);

impl<'de> Deserialize<'de> for CommandTimeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = d.deserialize_str(Quoted(A_DURATION))?;
        let t = parse_duration(&s).map_err(de::Error::custom)?;
        if t < Duration::from_millis(1) {
            return Err(de::Error::custom(format!(
                "a command's timeout must be 1ms or more, not {s:?}"
            )));
        }
        Ok(CommandTimeout(t))
    }
}

/// A duration or `"off"`.
struct Heartbeat(Option<Duration>);

impl<'de> Deserialize<'de> for Heartbeat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = d.deserialize_str(Quoted("a duration in quotes, such as \"59m\", or \"off\""))?;
        if matches!(s.trim(), "off" | "never" | "none") {
            return Ok(Heartbeat(None));
        }
        parse_duration(&s)
            .map(|d| Heartbeat(Some(d)))
            .map_err(|e| de::Error::custom(format!("{e}, or \"off\"")))
    }
}

/// An exit code a job may end with: 0 to 255.
struct ExitCode(i32);

impl<'de> Deserialize<'de> for ExitCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        if !(0..=255).contains(&n) {
            return Err(de::Error::custom(format!(
                "{n} is not an exit code (0 to 255)"
            )));
        }
        Ok(ExitCode(n as i32))
    }
}

/// At least 1.
struct Threshold(u32);

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        if n < 1 || n > i64::from(u32::MAX) {
            return Err(de::Error::custom(format!(
                "fail_threshold must be 1 or more, not {n}"
            )));
        }
        Ok(Threshold(n as u32))
    }
}

struct Filter(StateFilter);

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = d.deserialize_str(Quoted("a state in quotes, such as \"problem\""))?;
        s.parse().map(Filter).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("config.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").strip_prefix(' ').unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let env = |k: &str| match k {
            "PAGER_TOKEN" => Some("pager-secret-1".into()),
            "BELFRY_PING_KEY" => Some("ping-key-1".into()),
            "HC_PING_KEY" => Some("hc-key-1".into()),
            "BELFRY_API_KEY" => Some("api-key-1".into()),
            "BELFRY_API_KEY_RO" => Some("api-key-ro-1".into()),
            _ => None,
        };
        let c = Config::parse_with(&example, "example", &Lookup::with_env(&env, None)).unwrap();
        assert_eq!(c.channels.len(), 4);
        let p = c.policy_for("backup-db");
        assert_eq!(p.fail_threshold, 2);
        assert_eq!(p.repeat_failures_after, Duration::from_secs(1));
        assert_eq!(c.jobs["backup-db"].ok_codes, Some(vec![0, 24]));
        assert_eq!(c.route("backup-db", &State::Failed, false), ["ops"]);
        assert_eq!(
            c.route("backup-web", &State::Failed, false),
            ["desk", "hook", "ops", "pager"]
        );
        assert_eq!(c.route("backup-web", &State::Ok, false), ["desk", "hook"]);
        assert_eq!(c.route("other", &State::Failed, false), ["hook", "pager"]);
        let hook = c.channel("hook").unwrap();
        assert!(
            hook.templates()
                .is_some_and(|t| t.has_title() && t.has_body())
        );
        let pager = c.channel("pager").unwrap();
        assert!(pager.url().contains("pager-secret-1"));
        assert!(!pager.describe().contains("pager-secret-1"));
        assert!(!format!("{c:?}").contains("pager-secret-1"));
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let text = "[policy]\nrepeat_failures_after = \"5s\"\nrepeat_failure_after = \"5s\"\n";
        let e = Config::parse(text, "/etc/belfry.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/etc/belfry.toml"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("key policy.repeat_failure_after"), "{e}");
    }

    #[test]
    fn bad_values_are_named_with_their_line() {
        let e = Config::parse("[policy]\n\nok_heartbeat_after = \"5 parsecs\"\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("5 parsecs"), "{e}");
        assert!(e.contains("key policy.ok_heartbeat_after"), "{e}");
        let e = Config::parse("[policy]\nfail_threshold = 0\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("fail_threshold"), "{e}");
        let e = Config::parse("[channels.ops]\nurl = \"slack://T1/B2\"\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("three tokens"), "{e}");
        let e = Config::parse(
            "[channels.ops]\nurl = \"json://h\"\nstates = [\"failing\"]\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 3") && e.contains("failing"), "{e}");
    }

    #[test]
    fn type_errors_say_what_to_write_with_file_line_and_key() {
        for (text, line, key, says) in [
            (
                "[policy]\nfail_threshold = \"two\"\n",
                2,
                "policy.fail_threshold",
                "expected a whole number, not \"two\"",
            ),
            (
                "[jobs.x]\n\ntimeout = 300\n",
                3,
                "jobs.x.timeout",
                "expected a duration in quotes, such as \"300s\", not 300",
            ),
            (
                "[delivery]\nwait = 1.5\n",
                2,
                "delivery.wait",
                "such as \"300s\", not 1.5",
            ),
            (
                "[policy]\nok_heartbeat_after = false\n",
                2,
                "policy.ok_heartbeat_after",
                "or \"off\", not false",
            ),
            (
                "[run]\ntail_bytes = \"64k\"\n",
                2,
                "run.tail_bytes",
                "expected a whole number, 0 or more, not \"64k\"",
            ),
            (
                "[run]\nhead_lines = -1\n",
                2,
                "run.head_lines",
                "expected a whole number, 0 or more, not -1",
            ),
            (
                "[delivery]\nbackground = \"yes\"\n",
                2,
                "delivery.background",
                "expected true or false, not \"yes\"",
            ),
            (
                "[channels.a]\nurl = 5\n",
                2,
                "channels.a.url",
                "expected a string in quotes, not 5",
            ),
            (
                "[channels.a]\nurl = \"json://h/p\"\njobs = \"backup-*\"\n",
                3,
                "channels.a.jobs",
                "expected a list in brackets, [ … ], not \"backup-*\"",
            ),
            (
                "[channels.a]\nurl = \"json://h/p\"\nrate = \"fast\"\n",
                3,
                "channels.a.rate",
                "expected a number, not \"fast\"",
            ),
            (
                "[channels.a]\nurl = \"json://h/p\"\nstates = [1]\n",
                3,
                "channels.a.states",
                "expected a state in quotes, such as \"problem\", not 1",
            ),
            ("policy = 3\n", 1, "policy", "expected a table, not 3"),
        ] {
            let e = Config::parse(text, "f.toml").unwrap_err().to_string();
            assert!(
                e.starts_with("config f.toml: ")
                    && e.contains(&format!("line {line},"))
                    && e.contains(&format!("key {key}: "))
                    && e.ends_with(says),
                "{text:?}: {e}"
            );
            for rust in ["invalid type", "i64", "usize", "f64", "sequence", "struct"] {
                assert!(!e.contains(rust), "{text:?}: {e}");
            }
        }
    }

    #[test]
    fn a_sub_millisecond_command_timeout_names_its_key_and_the_value_as_written() {
        for t in ["500us", "0s", "999999ns"] {
            let text = format!("[channels.desk]\ncommand = [\"true\"]\ntimeout = \"{t}\"\n");
            let e = Config::parse(&text, "f.toml").unwrap_err().to_string();
            assert!(
                e.contains("line 3")
                    && e.contains("key channels.desk.timeout")
                    && e.contains(&format!("1ms or more, not \"{t}\"")),
                "{t}: {e}"
            );
            assert!(!e.contains("0ms"), "{t}: {e}");
        }
        let text = "[channels.desk]\ncommand = [\"true\"]\ntimeout = \"1ms\"\n";
        assert!(Config::parse(text, "f.toml").is_ok());
    }

    #[test]
    fn a_duration_past_a_hundred_years_is_refused_at_its_key() {
        for key in [
            "[jobs.x]\ntimeout",
            "[delivery]\nlease",
            "[policy]\nrepeat_failures_after",
        ] {
            let text = format!("{key} = \"9223372036854775807s\"\n");
            let e = Config::parse(&text, "f.toml").unwrap_err().to_string();
            assert!(
                e.contains("line 2")
                    && e.contains("100 years")
                    && e.contains("9223372036854775807s"),
                "{key}: {e}"
            );
        }
    }

    #[test]
    fn secrets_in_a_bad_url_do_not_reach_the_error() {
        let e = Config::parse(
            "[channels.ops]\nurl = \"json://u:SECRETPW@h/p?bogus=1\"\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bogus"), "{e}");
        assert!(e.contains("key channels.ops.url"), "{e}");
        assert!(!e.contains("SECRETPW"), "{e}");
    }

    fn env(k: &str) -> Option<std::ffi::OsString> {
        match k {
            "HOOK_HOST" => Some("secret-host.example".into()),
            "HOOK_PW" => Some("pw-SECRET-42".into()),
            _ => None,
        }
    }

    #[test]
    fn references_resolve_and_their_values_are_hidden_even_where_urls_show_hosts() {
        let text = "[channels.hook]\nurl = \"json://u:${env:HOOK_PW}@${env:HOOK_HOST}:8080/x\"\n";
        let c = Config::parse_with(text, "f.toml", &Lookup::with_env(&env, None)).unwrap();
        let hook = c.channel("hook").unwrap();
        assert_eq!(
            hook.url(),
            "json://u:pw-SECRET-42@secret-host.example:8080/x"
        );
        assert_eq!(hook.describe(), "json://u:***@***:8080/…");
        assert_eq!(
            c.scrub("could not connect to secret-host.example as pw-SECRET-42"),
            "could not connect to *** as ***"
        );
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("SECRET") && !dbg.contains("secret-host"),
            "{dbg}"
        );
    }

    #[test]
    fn command_arguments_take_references_and_hide_their_values() {
        let text =
            "[channels.desk]\ncommand = [\"notify\", \"--token=${env:HOOK_PW}\", \"{title}\"]\n";
        let c = Config::parse_with(text, "f.toml", &Lookup::with_env(&env, None)).unwrap();
        let desk = c.channel("desk").unwrap();
        assert!(
            desk.url().contains("pw-SECRET-42"),
            "the command gets the value"
        );
        assert!(
            !desk.describe().contains("pw-SECRET-42"),
            "{}",
            desk.describe()
        );
        assert!(!format!("{c:?}").contains("pw-SECRET-42"));
        let bad = "[channels.desk]\ncommand = [\"notify\", \"${env:NOPE}\"]\n";
        let e = Config::parse_with(bad, "f.toml", &Lookup::with_env(&env, None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key channels.desk.command") && e.contains("${env:NOPE}"),
            "{e}"
        );
        let both = "[channels.x]\nurl = \"console://\"\ncommand = [\"true\"]\n";
        let e = Config::parse(both, "f.toml").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("not both"), "{e}");
    }

    #[test]
    fn a_missing_reference_names_file_line_key_and_reference_never_a_value() {
        let text = "[channels.ok]\nurl = \"console://\"\n\n[channels.hook]\nurl = \"json://u:${env:HOOK_PW}@h/${env:NOPE}\"\n";
        let e = Config::parse_with(text, "/etc/belfry.toml", &Lookup::with_env(&env, None))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("config /etc/belfry.toml: line 5, column 7"),
            "{e}"
        );
        assert!(e.contains("key channels.hook.url: ${env:NOPE}"), "{e}");
        assert!(
            e.contains("NOPE is not set") && !e.contains("pw-SECRET"),
            "{e}"
        );
        // A URL that is wrong once resolved: named, with the secret hidden.
        let text = "[channels.hook]\nurl = \"json://${env:HOOK_HOST}/x?${env:HOOK_PW}=1\"\n";
        let e = Config::parse_with(text, "f.toml", &Lookup::with_env(&env, None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("key channels.hook.url"),
            "{e}"
        );
        assert!(e.contains("unknown option") && !e.contains("SECRET"), "{e}");
    }

    #[test]
    fn template_errors_name_file_line_and_key_at_load() {
        let text = "[channels.hook]\nurl = \"json://h/x\"\ntitle = \"{{ job }}\"\nbody = \"\"\"\nfirst\n{{ jbo }}\"\"\"\n";
        let e = Config::parse(text, "f.toml").unwrap_err().to_string();
        assert!(
            e.contains("line 4, column 8, key channels.hook.body"),
            "{e}"
        );
        assert!(e.contains("unknown variable jbo"), "{e}");
        let text = "[channels.hook]\nurl = \"json://h/x\"\ntitle = \"{{ job \"\n";
        let e = Config::parse(text, "f.toml").unwrap_err().to_string();
        assert!(
            e.contains("line 3, column 9, key channels.hook.title"),
            "{e}"
        );
        assert!(e.contains("syntax error"), "{e}");
    }

    #[test]
    fn belfry_urls_take_references_and_are_named_by_the_url_as_written() {
        let mut c = Config::empty();
        c.add_urls_with(
            "json://u:${env:HOOK_PW}@h/x",
            "$BELFRY_URLS",
            &Lookup::with_env(&env, None),
        )
        .unwrap();
        assert_eq!(
            c.channels[0].name,
            format!("urls-{:08x}", stable_hash(&["json://u:${env:HOOK_PW}@h/x"]))
        );
        assert!(c.channels[0].url().contains("pw-SECRET-42"));
        assert_eq!(c.scrub("pw-SECRET-42"), "***");
        let e = c
            .add_urls_with(
                "console:// json://${env:NOPE}/",
                "$BELFRY_URLS",
                &Lookup::with_env(&env, None),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("$BELFRY_URLS: URL 2: ${env:NOPE}"), "{e}");
    }

    #[test]
    fn command_channels_become_cmd_urls_and_bad_ones_are_named_with_their_line() {
        let c = Config::parse(
            "[channels.desk]\ncommand = [\"notify-send\", \"-u\", \"critical\", \"{title}\", \
             \"{body}\"]\ntimeout = \"5s\"\n",
            "f.toml",
        )
        .unwrap();
        let ch = belfry_channels::parse(c.channels[0].url()).unwrap();
        assert_eq!(ch.scheme(), "cmd");
        assert_eq!(
            ch.describe(),
            "cmd://notify-send -u critical {title} {body}"
        );

        let e = Config::parse(
            "[channels.desk]\n\ncommand = [\"notify-send\", \"{titel}\"]\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("line 3") && e.contains("unknown placeholder {titel}"),
            "{e}"
        );
        for (text, needle) in [
            ("[channels.d]\ncommand = []\n", "starts with the program"),
            (
                "[channels.d]\nurl = \"console://\"\ncommand = [\"x\"]\n",
                "not both",
            ),
            ("[channels.d]\njobs = [\"a\"]\n", "give url"),
            (
                "[channels.d]\nurl = \"console://\"\ntimeout = \"1s\"\n",
                "command channels only",
            ),
        ] {
            let e = Config::parse(text, "f.toml").unwrap_err().to_string();
            assert!(
                e.contains(needle) && e.contains("channels.d"),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn a_job_naming_an_unknown_channel_is_an_error() {
        let e = Config::parse(
            "[channels.ops]\nurl = \"console://\"\n\n[jobs.x]\nchannels = [\"opz\"]\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("line 5") && e.contains("\"opz\"") && e.contains("ops"),
            "{e}"
        );
    }

    #[test]
    fn belfry_urls_split_on_spaces_and_commas_but_not_inside_a_query() {
        assert_eq!(
            split_urls("json://a/x, slack://T/B/C,json://b/?to=a,b  console://"),
            [
                "json://a/x",
                "slack://T/B/C",
                "json://b/?to=a,b",
                "console://"
            ]
        );
    }

    #[test]
    fn sources_are_searched_in_the_documented_order() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().join("cwd");
        let xdg = dir.path().join("xdg");
        std::fs::create_dir_all(cwd.clone()).unwrap();
        std::fs::create_dir_all(xdg.join("belfry")).unwrap();
        std::fs::write(xdg.join("belfry/belfry.toml"), "").unwrap();
        let mut s = Sources {
            cwd: Some(cwd.clone()),
            xdg_config_home: Some(xdg.clone()),
            ..Sources::default()
        };
        assert_eq!(s.find().unwrap(), Some(xdg.join("belfry/belfry.toml")));
        std::fs::write(cwd.join("belfry.toml"), "").unwrap();
        assert_eq!(s.find().unwrap(), Some(cwd.join("belfry.toml")));
        s.env_config = Some(dir.path().join("missing.toml"));
        let e = s.find().unwrap_err().to_string();
        assert!(
            e.contains("missing.toml") && e.contains("BELFRY_CONFIG"),
            "{e}"
        );
    }

    #[test]
    fn a_ping_url_is_a_hidden_channel_and_a_bad_one_a_clear_error_without_its_key() {
        let c = Config::load(&Sources {
            env_ping: Some("https://hc-ping.com/pk-secret-1".into()),
            ..Sources::default()
        })
        .unwrap();
        let ping = c.ping.as_ref().unwrap();
        assert!(ping.name.starts_with("ping:"), "{}", ping.name);
        assert_eq!(ping.url(), "hcpings://hc-ping.com/pk-secret-1");
        // Found by name for delivery, reached by no routing rule.
        assert!(c.channel(&ping.name).is_some());
        assert!(!c.route("x", &State::Failed, false).contains(&ping.name));
        assert_eq!(c.scrub("key pk-secret-1"), "key ***");
        let text = "[ping]\nurl = \"http://127.0.0.1:8000/ping/${env:PK}\"\n";
        let env = |k: &str| (k == "PK").then(|| "k-from-env".into());
        let c = Config::parse_with(text, "belfry.toml", &Lookup::with_env(&env, None)).unwrap();
        assert_eq!(
            c.ping.as_ref().unwrap().url(),
            "hcping://127.0.0.1:8000/ping/k-from-env"
        );
        for (bad, why) in [
            ("hc-ping.com/pk-secret-2", "not a URL"),
            ("https://hc-ping.com/", "names no check"),
            ("https://hc-ping.com/pk-secret-2?create=1", "no ?query"),
        ] {
            let e = Config::load(&Sources {
                env_ping: Some(bad.into()),
                ..Sources::default()
            })
            .unwrap_err()
            .to_string();
            assert!(
                e.starts_with("config $BELFRY_PING_URL: ") && e.contains(why),
                "{e}"
            );
            assert!(!e.contains("pk-secret-2"), "{e}");
        }
        let e = Config::parse("[ping]\nurl = \"ftp://h/k\"\n", "belfry.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2, column 7, key ping.url"), "{e}");
    }

    #[test]
    fn nothing_configured_means_the_console() {
        let c = Config::load(&Sources::default()).unwrap();
        assert_eq!(c.channels.len(), 1);
        assert_eq!(c.channels[0].name, "console");
        let c = Config::load(&Sources {
            env_urls: Some("json://127.0.0.1:9/x".into()),
            ..Sources::default()
        })
        .unwrap();
        assert_eq!(c.channels.len(), 1);
        assert!(c.channels[0].name.starts_with("urls-"));
    }

    #[test]
    fn apprise_urls_and_files_are_read_when_belfry_names_no_channel() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".config")).unwrap();
        std::fs::write(
            home.join(".config/apprise.yml"),
            "urls:\n  - json://127.0.0.1:9/all\n  - json://127.0.0.1:9/ops:\n      tag: devops\n",
        )
        .unwrap();
        let sources = Sources {
            home: Some(home.clone()),
            ..Sources::default()
        };
        // Apprise's own place: both URLs, the tagged one only for jobs that name its tag.
        let c = Config::load(&sources).unwrap();
        assert_eq!(c.channels.len(), 2, "{:?}", names(&c.channels));
        assert!(c.channels.iter().all(|ch| ch.name.starts_with("apprise-")));
        let tagged = c
            .channels
            .iter()
            .find(|ch| !ch.route.tags.is_empty())
            .unwrap();
        assert_eq!(tagged.route.tags, ["devops"]);
        assert_eq!(c.route("any-job", &State::Failed, false).len(), 1);
        // $APPRISE_URLS comes before the files, as in Apprise.
        let c = Config::load(&Sources {
            env_apprise_urls: Some("json://127.0.0.1:9/a, json://127.0.0.1:9/b".into()),
            ..sources.clone()
        })
        .unwrap();
        assert_eq!(c.channels.len(), 2);
        // A channel of belfry's own: Apprise's configuration is not read at all.
        let toml = dir.path().join("belfry.toml");
        std::fs::write(&toml, "[channels.hook]\nurl = \"json://127.0.0.1:9/own\"\n").unwrap();
        let c = Config::load(&Sources {
            explicit: Some(toml.clone()),
            env_apprise_urls: Some("json://127.0.0.1:9/a".into()),
            ..sources.clone()
        })
        .unwrap();
        assert_eq!(names(&c.channels), "hook");
        // A job may route by tag; a name that is neither a channel nor a tag is refused.
        std::fs::write(&toml, "[jobs.backup]\nchannels = [\"devops\"]\n").unwrap();
        let c = Config::load(&Sources {
            explicit: Some(toml.clone()),
            ..sources.clone()
        })
        .unwrap();
        let to = c.route("backup", &State::Failed, false);
        assert_eq!(to, std::slice::from_ref(&tagged.name));
        std::fs::write(&toml, "[jobs.backup]\nchannels = [\"devopz\"]\n").unwrap();
        let e = Config::load(&Sources {
            explicit: Some(toml),
            ..sources.clone()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("no channel or tag named \"devopz\""), "{e}");
    }

    #[test]
    fn an_apprise_file_may_be_named_by_config() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("apprise.conf");
        std::fs::write(
            &text,
            "# mine\nadmin=json://127.0.0.1:9/x\njson://127.0.0.1:9/y\n",
        )
        .unwrap();
        let c = Config::load(&Sources {
            explicit: Some(text),
            ..Sources::default()
        })
        .unwrap();
        assert_eq!(c.channels.len(), 2);
        let bad = dir.path().join("apprise.yml");
        std::fs::write(
            &bad,
            "urls:\n  - json://127.0.0.1:9/x:\n      tag: [\"no good!\"]\n",
        )
        .unwrap();
        let e = Config::load(&Sources {
            explicit: Some(bad),
            ..Sources::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("apprise.yml") && e.contains("is not a tag"),
            "{e}"
        );
        // A URL Apprise would take but belfry refuses names the file and the entry.
        let refused = dir.path().join("apprise.yaml");
        std::fs::write(&refused, "urls:\n  - json://127.0.0.1:9/x?colour=red\n").unwrap();
        let e = Config::load(&Sources {
            explicit: Some(refused),
            ..Sources::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("apprise.yaml") && e.contains("URL 1") && e.contains("colour"),
            "{e}"
        );
    }

    #[test]
    fn schedules_are_read_per_job_with_an_hour_of_grace_by_default() {
        let c = Config::parse(
            "[jobs.a]\nperiod = \"1d\"\n[jobs.b]\nperiod = \"2s\"\ngrace = \"1s\"\n\
             max_runtime = \"5m\"\n[jobs.c]\nfail_threshold = 2\n",
            "t.toml",
        )
        .unwrap();
        let a = c.jobs["a"].expect.clone().unwrap();
        assert_eq!(
            a.schedule,
            Schedule::Period {
                period: Duration::from_secs(86_400)
            }
        );
        assert_eq!(a.grace, DEFAULT_GRACE);
        assert_eq!(a.max_runtime, None);
        let b = c.jobs["b"].expect.clone().unwrap();
        assert_eq!(b.grace, Duration::from_secs(1));
        assert_eq!(b.max_runtime, Some(Duration::from_secs(300)));
        assert_eq!(c.jobs["c"].expect, None);
        let c = Config::parse(
            "[jobs.d]\ncron = \"0 3 * * *\"\ntz = \"Europe/Berlin\"\n",
            "t.toml",
        )
        .unwrap();
        let d = c.jobs["d"].expect.clone().unwrap();
        assert!(matches!(&d.schedule, Schedule::Cron(c) if c.tz() == "Europe/Berlin"));
        assert_eq!(d.grace, DEFAULT_GRACE);
    }

    #[test]
    fn bad_schedules_name_the_file_line_and_key() {
        for (text, key) in [
            (
                "[jobs.a]\nperiod = \"1d\"\ncron = \"0 3 * * *\"\n",
                "jobs.a.cron",
            ),
            ("[jobs.a]\ngrace = \"1h\"\n", "jobs.a.grace"),
            ("[jobs.a]\nperiod = \"500ms\"\n", "jobs.a.period"),
            (
                "[jobs.a]\nperiod = \"1d\"\ngrace = \"0s\"\n",
                "jobs.a.grace",
            ),
            ("[jobs.a]\nperiod = \"1d\"\ntz = \"UTC\"\n", "jobs.a.tz"),
            (
                "[jobs.a]\nperiod = \"1d\"\nmax_runtime = \"0s\"\n",
                "jobs.a.max_runtime",
            ),
            ("[jobs.a]\nperiod = 5\n", "period"),
            ("[jobs.a]\ncron = \"0 3 * *\"\n", "jobs.a.cron"),
            (
                "[jobs.a]\ncron = \"0 3 * * *\"\ntz = \"Mars/Base\"\n",
                "jobs.a.tz",
            ),
        ] {
            let e = Config::parse(text, "t.toml").unwrap_err().to_string();
            assert!(e.contains("t.toml") && e.contains(key), "{text:?}: {e}");
        }
    }

    #[test]
    fn server_settings_are_read_and_the_ping_key_is_a_secret() {
        let env = |k: &str| (k == "PK").then(|| "k3y-from_env".into());
        let c = Config::parse_with(
            "[server]\nlisten = \"127.0.0.1:9999\"\nping_key = \"${env:PK}\"\n\
             ping_body_limit = 20\n",
            "t.toml",
            &Lookup::with_env(&env, None),
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 9999);
        let t = Config::parse("[jobs.a]\ntags = [\"db\", \"prod\"]\n", "t.toml").unwrap();
        assert_eq!(
            t.jobs["a"].tags.as_deref(),
            Some(&["db".to_owned(), "prod".to_owned()][..])
        );
        assert_eq!(c.server.ping_body_limit, 20);
        let key = c.server.ping_key.clone().unwrap();
        assert!(key.matches("k3y-from_env") && !key.matches("k3y-from_en"));
        assert!(!format!("{c:?}").contains("k3y-from_env"));
        assert_eq!(c.scrub("the key is k3y-from_env"), "the key is ***");
        let d = Config::parse("", "t.toml").unwrap();
        assert_eq!(d.server, ServerSettings::default());
        assert_eq!(d.server.listen.to_string(), DEFAULT_LISTEN);
        for (text, key) in [
            ("[server]\nlisten = \"nowhere\"\n", "server.listen"),
            ("[server]\nping_key = \"a/b\"\n", "server.ping_key"),
            ("[server]\nping_key = \"\"\n", "server.ping_key"),
            ("[server]\nping_body_limit = -1\n", "server.ping_body_limit"),
            ("[jobs.a]\ntags = [\"two words\"]\n", "jobs.a.tags"),
            ("[jobs.a]\ntags = [\"\"]\n", "jobs.a.tags"),
            ("[server]\nport = 1\n", "port"),
        ] {
            let e = Config::parse(text, "t.toml").unwrap_err().to_string();
            assert!(e.contains("t.toml") && e.contains(key), "{text:?}: {e}");
        }
        let c = Config::parse(
            "[server]\ncookie_secure = false\n[server.users.ann]\n\
             password_hash = \"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA\"\n\
             [server.users.\"bob@x\"]\npassword_hash = \"$argon2id$x\"\nrole = \"read-only\"\n",
            "t.toml",
        )
        .unwrap();
        assert!(!c.server.cookie_secure);
        assert!(!c.server.users["ann"].read_only && c.server.users["bob@x"].read_only);
        assert!(!format!("{c:?}").contains("aGFzaA"));
        for (text, key) in [
            (
                "[server.users.ann]\npassword_hash = \"hunter2\"\n",
                "users.ann.password_hash",
            ),
            (
                "[server.users.ann]\npassword_hash = \"$argon2id$\"\nrole = \"root\"\n",
                "users.ann.role",
            ),
            (
                "[server.users.\"a b\"]\npassword_hash = \"$argon2id$\"\n",
                "users.a b",
            ),
            (
                "[server.users.ann]\nrole = \"read-only\"\n",
                "password_hash",
            ),
        ] {
            let e = Config::parse(text, "t.toml").unwrap_err().to_string();
            assert!(e.contains("t.toml") && e.contains(key), "{text:?}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let e = Config::parse("[server]\nping_key = \"s3cr3t/x\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}
