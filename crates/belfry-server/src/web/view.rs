//! What the pages show, made from the store's rows: plain values for the templates, with every
//! time, age and state already in words. Pure: tested without a server.

use std::time::Duration;

use belfry_core::{Class, Expect, Schedule, Silence, State, Timestamp};
use belfry_store::{
    CheckRow, Delivery, FlipRow, NotificationRow, OutboxRow, PingKind, PingRow, RunRow,
};
use serde::Serialize;

use crate::api::due;

/// Jobs shown on one page of the jobs list.
pub(crate) const PAGE: usize = 50;

/// Runs in a job's strip.
pub(crate) const STRIP: u32 = 30;

/// A state as shown: words, a symbol and a colour class (never colour alone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Badge {
    /// `failed`, `late`, `ok`, `due`, `running`, `paused`, `new`, …
    pub label: String,
    /// `bad`, `warn`, `info`, `good`, `idle`: the colour.
    pub class: &'static str,
    /// A symbol that says the same without colour.
    pub symbol: &'static str,
}

impl Badge {
    fn new(label: impl Into<String>, class: &'static str) -> Badge {
        let symbol = match class {
            "bad" => "✗",
            "warn" => "!",
            "info" => "▶",
            "good" => "✓",
            _ => "–",
        };
        Badge {
            label: label.into(),
            class,
            symbol,
        }
    }

    /// Problems first, then jobs due, running, fine, and idle ones.
    fn rank(&self) -> u8 {
        match self.class {
            "bad" => 0,
            "warn" => 1,
            "info" => 2,
            "good" => 3,
            _ => 4,
        }
    }
}

fn state_badge(s: State) -> Badge {
    match s.class() {
        Class::Problem => Badge::new(s.name(), "bad"),
        Class::Ok => Badge::new(s.name(), "good"),
        _ => Badge::new(s.name(), "info"),
    }
}

/// A job's state as the dashboard shows it.
pub(crate) fn badge(c: &CheckRow, now: Timestamp) -> Badge {
    if c.paused {
        return Badge::new("paused", "idle");
    }
    let Some(state) = c.state else {
        return match c.running_since {
            Some(_) => Badge::new("running", "info"),
            None => Badge::new("new", "idle"),
        };
    };
    if state.is_problem() {
        return state_badge(state);
    }
    if c.late_at.is_some_and(|l| now >= l) {
        return Badge::new("late", "bad");
    }
    if c.running_since.is_some() {
        return Badge::new("running", "info");
    }
    if due(c).is_some_and(|d| now >= d) {
        return Badge::new("due", "warn");
    }
    state_badge(state)
}

/// `2026-12-04 21:45:10 UTC`.
pub(crate) fn time(t: Timestamp) -> String {
    let s = t.rfc3339();
    let s = s.as_str();
    format!("{} {} UTC", &s[..10], &s[11..19])
}

/// How long ago (or, for a time to come, how soon): `12 s ago`, `in 5 min`.
pub(crate) fn age(t: Timestamp, now: Timestamp) -> String {
    let (d, future) = if t > now {
        (t.since(now), true)
    } else {
        (now.since(t), false)
    };
    let s = d.as_secs();
    // Under ten hours or days, the next unit too: "1 h 59 min" is not "1 h".
    let two = |big: u64, big_unit: &str, small: u64, small_unit: &str| match (big, small) {
        (1..10, 1..) => format!("{big} {big_unit} {small} {small_unit}"),
        _ => format!("{big} {big_unit}"),
    };
    let words = match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => two(s / 3600, "h", s % 3600 / 60, "min"),
        _ => two(s / 86_400, "d", s % 86_400 / 3600, "h"),
    };
    if future {
        format!("in {words}")
    } else {
        format!("{words} ago")
    }
}

fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d < Duration::from_secs(60) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        span(d)
    }
}

/// A span in its units that are not zero: `1h`, `1h 30m`, `2d 4h`, `45s`.
fn span(d: Duration) -> String {
    let s = d.as_secs();
    let parts = [
        (s / 86_400, "d"),
        (s % 86_400 / 3600, "h"),
        (s % 3600 / 60, "m"),
        (s % 60, "s"),
    ];
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if words.is_empty() {
        "0s".into()
    } else {
        words.join(" ")
    }
}

/// A time with its age, for a `<time>` element.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct When {
    /// RFC 3339, for the element's `datetime`.
    pub iso: String,
    /// For people.
    pub text: String,
    /// How long ago, or how soon.
    pub age: String,
}

pub(crate) fn when(t: Timestamp, now: Timestamp) -> When {
    When {
        iso: t.to_rfc3339(),
        text: time(t),
        age: age(t, now),
    }
}

/// A schedule in words: `every 1d, grace 1h` or `at 03:00 every day (Europe/Berlin), grace 1h`.
pub(crate) fn schedule(e: &Expect) -> String {
    let mut s = match &e.schedule {
        Schedule::Period { period } => format!("every {}", span(*period)),
        Schedule::Cron(c) => format!("{} ({}; cron {})", c.describe(), c.tz(), c.expr()),
    };
    s.push_str(", grace ");
    s.push_str(&span(e.grace));
    if let Some(m) = e.max_runtime {
        s.push_str(", runs at most ");
        s.push_str(&span(m));
    }
    s
}

/// One run in a strip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Cell {
    pub class: &'static str,
    pub symbol: &'static str,
    /// State, duration and time in words (the cell's label for screen readers too).
    pub label: String,
}

/// A job's last runs, oldest first (`runs` come newest first).
pub(crate) fn strip(runs: &[RunRow]) -> Vec<Cell> {
    runs.iter()
        .rev()
        .map(|r| {
            let b = state_badge(r.state);
            let mut label = r.state.name().to_owned();
            if let Some(d) = r.duration {
                label.push_str(", ");
                label.push_str(&duration(d));
            }
            label.push_str(", ");
            label.push_str(&time(r.started));
            Cell {
                class: b.class,
                symbol: b.symbol,
                label,
            }
        })
        .collect()
}

/// One line of the jobs list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct JobLine {
    pub name: String,
    pub title: String,
    pub badge: Badge,
    pub tags: Vec<String>,
    pub last: Option<When>,
    pub schedule: Option<String>,
    pub next: Option<When>,
    pub silenced: Option<String>,
    pub acked: Option<String>,
    pub strip: Vec<Cell>,
}

/// What silences a job now, in words, if any does.
pub(crate) fn silenced_by(c: &CheckRow, silences: &[Silence], now: Timestamp) -> Option<String> {
    let s = silences
        .iter()
        .filter(|s| s.holds(&c.name, &c.meta.tags, now))
        .max_by_key(|s| s.until)?;
    let mut text = format!("silenced until {} by {}", time(s.until), s.by);
    if !s.reason.is_empty() {
        text.push_str(": ");
        text.push_str(&s.reason);
    }
    Some(text)
}

/// A job's line, without its strip (filled for the jobs on the page only).
pub(crate) fn job_line(c: &CheckRow, silences: &[Silence], now: Timestamp) -> JobLine {
    JobLine {
        name: c.name.clone(),
        title: c.meta.title.clone(),
        badge: badge(c, now),
        tags: c.meta.tags.clone(),
        last: c.last_report.map(|t| when(t, now)),
        schedule: c.expect.as_ref().map(schedule),
        next: due(c).map(|t| when(t, now)),
        silenced: silenced_by(c, silences, now),
        acked: c
            .acked
            .as_ref()
            .map(|(t, by)| format!("acknowledged by {by} {}", age(*t, now))),
        strip: Vec::new(),
    }
}

/// The jobs list's filters, from the query string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Filter {
    /// Text found in the name, title or tags.
    pub q: String,
    /// `problem`, `due`, `running`, `ok`, `paused`, `new`, or empty for all.
    pub state: String,
    pub tag: String,
    /// From 1.
    pub page: usize,
}

impl Filter {
    pub(crate) fn parse(query: &str) -> Filter {
        let mut f = Filter {
            page: 1,
            ..Filter::default()
        };
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "q" => f.q = v.trim().to_owned(),
                "state" => f.state = v.into_owned(),
                "tag" => f.tag = v.trim().to_owned(),
                "page" => f.page = v.parse().unwrap_or(1).max(1),
                _ => {}
            }
        }
        f
    }

    fn keeps(&self, line: &JobLine) -> bool {
        let state_ok = match self.state.as_str() {
            "" | "all" => true,
            "problem" => line.badge.class == "bad",
            "ok" => line.badge.class == "good",
            s => line.badge.label == s,
        };
        let q = self.q.to_lowercase();
        let text_ok = q.is_empty()
            || line.name.to_lowercase().contains(&q)
            || line.title.to_lowercase().contains(&q)
            || line.tags.iter().any(|t| t.to_lowercase() == q);
        state_ok && text_ok && (self.tag.is_empty() || line.tags.contains(&self.tag))
    }

    /// The query string for page `page` of these filters.
    pub(crate) fn query(&self, page: usize) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("q", &self.q), ("state", &self.state), ("tag", &self.tag)] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        if page > 1 {
            q.append_pair("page", &page.to_string());
        }
        q.finish()
    }
}

/// The jobs list: counts over every job, and one page of the filtered lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct JobsPage {
    pub total: usize,
    pub problems: usize,
    pub silenced: usize,
    pub matching: usize,
    pub lines: Vec<JobLine>,
    pub page: usize,
    pub pages: usize,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub tags: Vec<String>,
}

/// Sorts and filters every job's line, problems first, and keeps the asked page.
pub(crate) fn jobs_page(
    checks: &[CheckRow],
    silences: &[Silence],
    filter: &Filter,
    now: Timestamp,
) -> JobsPage {
    let mut lines: Vec<JobLine> = checks.iter().map(|c| job_line(c, silences, now)).collect();
    let problems = lines.iter().filter(|l| l.badge.class == "bad").count();
    let silenced = lines.iter().filter(|l| l.silenced.is_some()).count();
    let mut tags: Vec<String> = lines.iter().flat_map(|l| l.tags.clone()).collect();
    tags.sort();
    tags.dedup();
    let total = lines.len();
    lines.retain(|l| filter.keeps(l));
    lines.sort_by(|a, b| (a.badge.rank(), &a.name).cmp(&(b.badge.rank(), &b.name)));
    let matching = lines.len();
    let pages = matching.div_ceil(PAGE).max(1);
    let page = filter.page.clamp(1, pages);
    let lines: Vec<JobLine> = lines
        .into_iter()
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .collect();
    JobsPage {
        total,
        problems,
        silenced,
        matching,
        lines,
        page,
        pages,
        prev: (page > 1).then(|| filter.query(page - 1)),
        next: (page < pages).then(|| filter.query(page + 1)),
        tags,
    }
}

/// One run on a job's page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct RunView {
    pub badge: Badge,
    pub started: When,
    pub duration: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub host: Option<String>,
    pub error: Option<String>,
    pub output: Option<String>,
}

pub(crate) fn run_view(r: &RunRow, now: Timestamp) -> RunView {
    RunView {
        badge: state_badge(r.state),
        started: when(r.started, now),
        duration: r.duration.map(duration),
        exit_code: r.exit_code,
        signal: r.signal,
        host: r.host.clone(),
        error: r.error.clone(),
        output: r.output.clone().filter(|o| !o.is_empty()),
    }
}

/// One ping on a job's page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct PingView {
    pub n: u64,
    pub at: When,
    pub kind: String,
    pub class: &'static str,
    pub method: String,
    pub remote: Option<String>,
    pub user_agent: Option<String>,
    pub body: Option<String>,
}

pub(crate) fn ping_view(p: &PingRow, now: Timestamp) -> PingView {
    let class = match p.kind {
        PingKind::Fail => "bad",
        PingKind::Exit(s) if s != 0 => "bad",
        PingKind::Start => "info",
        PingKind::Log => "idle",
        _ => "good",
    };
    let kind = match p.kind.exit_status() {
        Some(s) if !matches!(p.kind, PingKind::Success | PingKind::Fail) => format!("exit {s}"),
        _ => p.kind.name().to_owned(),
    };
    PingView {
        n: p.n,
        at: when(p.at, now),
        kind,
        class,
        method: p.method.clone(),
        remote: p.remote.clone(),
        user_agent: p.user_agent.clone(),
        body: (!p.body.is_empty()).then(|| p.body.clone()),
    }
}

/// One change of state on a job's page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct FlipView {
    pub at: When,
    pub from: Option<Badge>,
    pub to: Badge,
}

pub(crate) fn flip_view(f: &FlipRow, now: Timestamp) -> FlipView {
    FlipView {
        at: when(f.at, now),
        from: f.from.map(state_badge),
        to: state_badge(f.to),
    }
}

/// One notification on a job's page, with its deliveries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct NotificationView {
    pub at: When,
    pub badge: Badge,
    pub reason: String,
    pub hushed: Option<String>,
    pub deliveries: Vec<DeliveryView>,
}

/// One channel's delivery of a notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct DeliveryView {
    pub id: i64,
    pub channel: String,
    pub status: String,
    pub class: &'static str,
    pub note: Option<String>,
    pub attempts: Vec<AttemptView>,
}

/// One attempt of a delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct AttemptView {
    pub at: When,
    pub outcome: String,
    pub class: &'static str,
    pub reason: Option<String>,
    pub elapsed: Option<String>,
}

fn status_class(status: &str) -> &'static str {
    match status {
        "delivered" => "good",
        "dead" | "permanent" => "bad",
        "retry" => "warn",
        _ => "info",
    }
}

fn delivery_view(d: &Delivery, now: Timestamp, scrub: &dyn Fn(&str) -> String) -> DeliveryView {
    DeliveryView {
        id: d.id,
        channel: d.channel.clone(),
        status: d.status.clone(),
        class: status_class(&d.status),
        note: d
            .folded_into
            .map(|into| format!("carried in the digest of row {into}")),
        attempts: d
            .attempts
            .iter()
            .map(|a| AttemptView {
                at: when(a.at, now),
                outcome: a.outcome.clone(),
                class: status_class(&a.outcome),
                reason: a.reason.as_deref().map(scrub),
                elapsed: a.elapsed.map(duration),
            })
            .collect(),
    }
}

/// `scrub` hides secrets in failure reasons (they may quote a channel's address).
pub(crate) fn notification_view(
    n: &NotificationRow,
    now: Timestamp,
    scrub: &dyn Fn(&str) -> String,
) -> NotificationView {
    NotificationView {
        at: when(n.at, now),
        badge: state_badge(n.state),
        reason: n.reason.replace('_', " "),
        hushed: n.hushed.as_ref().map(|h| format!("not sent: {h}")),
        deliveries: n
            .deliveries
            .iter()
            .map(|d| delivery_view(d, now, scrub))
            .collect(),
    }
}

/// One outbox row on the outbox page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct OutboxView {
    pub id: i64,
    pub job: String,
    pub channel: String,
    pub status: String,
    pub class: &'static str,
    pub attempts: u32,
    pub created: When,
    pub reason: Option<String>,
    pub retryable: bool,
}

pub(crate) fn outbox_view(
    r: &OutboxRow,
    now: Timestamp,
    scrub: &dyn Fn(&str) -> String,
) -> OutboxView {
    OutboxView {
        id: r.id,
        job: r.job.clone(),
        channel: r.channel.clone(),
        status: r.status.clone(),
        class: status_class(&r.status),
        attempts: r.attempts,
        created: when(r.created, now),
        reason: r.last_reason.as_deref().map(scrub),
        retryable: r.status == "dead" || r.status == "pending",
    }
}

/// A job's next report times: five, in the job's time zone for a cron schedule; for a period,
/// the next due time only (later ones count from the report that comes).
pub(crate) fn next_times(c: &CheckRow, now: Timestamp) -> Vec<String> {
    let Some(e) = &c.expect else {
        return Vec::new();
    };
    match &e.schedule {
        Schedule::Cron(cron) => e
            .schedule
            .next_times(now, 5)
            .into_iter()
            .map(|t| format!("{} ({})", cron.wall_clock(t), age(t, now)))
            .collect(),
        Schedule::Period { .. } => due(c)
            .map(|t| format!("{} ({})", time(t), age(t, now)))
            .into_iter()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use belfry_core::Scope;
    use belfry_store::{CheckMeta, Uuid};

    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_millis(1_800_000_000_000)
    }

    fn check(name: &str, state: Option<State>, tags: &[&str]) -> CheckRow {
        CheckRow {
            name: name.into(),
            uuid: Uuid::nil(),
            expect: Some(
                Expect::new(
                    Schedule::period(Duration::from_secs(600)).unwrap(),
                    Duration::from_secs(60),
                    None,
                )
                .unwrap(),
            ),
            expect_set: Some(now()),
            paused: false,
            late_at: Some(now().add_millis(300_000)),
            last_report: Some(now().add_millis(-360_000)),
            created: now(),
            state,
            running_since: None,
            meta: CheckMeta {
                tags: tags.iter().map(|t| t.to_string()).collect(),
                ..CheckMeta::default()
            },
            n_pings: 0,
            last_duration: None,
            acked: None,
        }
    }

    #[test]
    fn a_badge_says_the_state_in_words_and_a_symbol() {
        let mut c = check("a", Some(State::Failed), &[]);
        assert_eq!(badge(&c, now()), Badge::new("failed", "bad"));
        assert_eq!(badge(&c, now()).symbol, "✗");
        c.state = Some(State::Ok);
        assert_eq!(badge(&c, now()).label, "ok");
        // Past its due time (late_at less grace) but within its grace: due.
        assert_eq!(badge(&c, now().add_millis(250_000)).label, "due");
        assert_eq!(badge(&c, now().add_millis(300_000)).label, "late");
        c.paused = true;
        assert_eq!(badge(&c, now()).label, "paused");
        c.paused = false;
        c.state = None;
        assert_eq!(badge(&c, now()).label, "new");
    }

    #[test]
    fn problems_come_first_and_filters_and_pages_apply() {
        let mut checks: Vec<CheckRow> = (0..120)
            .map(|i| check(&format!("job-{i:03}"), Some(State::Ok), &["web"]))
            .collect();
        checks.push(check("zz-broken", Some(State::Failed), &["db"]));
        checks.push(check("aa-new", None, &[]));
        let p = jobs_page(&checks, &[], &Filter::parse(""), now());
        assert_eq!((p.total, p.problems, p.matching, p.pages), (122, 1, 122, 3));
        assert_eq!(p.lines[0].name, "zz-broken");
        assert_eq!(p.lines[1].name, "job-000");
        assert_eq!(p.lines.len(), PAGE);
        assert_eq!(p.next.as_deref(), Some("page=2"));
        let last = jobs_page(&checks, &[], &Filter::parse("page=99"), now());
        assert_eq!(last.page, 3);
        assert_eq!(last.lines.last().map(|l| l.name.as_str()), Some("aa-new"));
        let db = jobs_page(&checks, &[], &Filter::parse("tag=db"), now());
        assert_eq!(db.matching, 1);
        let bad = jobs_page(&checks, &[], &Filter::parse("state=problem"), now());
        assert_eq!(
            bad.lines.iter().map(|l| &l.name).collect::<Vec<_>>(),
            ["zz-broken"]
        );
        let q = jobs_page(&checks, &[], &Filter::parse("q=JOB-11&state=ok"), now());
        assert_eq!(q.matching, 10);
        assert_eq!(
            Filter::parse("q=a b&tag=x&page=2").query(3),
            "q=a+b&tag=x&page=3"
        );
        assert_eq!(p.tags, ["db", "web"]);
    }

    #[test]
    fn a_silence_shows_on_the_jobs_it_covers() {
        let s = Silence {
            id: 1,
            scope: Scope::Tag("db".into()),
            until: now().add_millis(3_600_000),
            reason: "disk swap".into(),
            by: "ann".into(),
            created: now(),
        };
        let checks = [
            check("a", Some(State::Ok), &["db"]),
            check("b", Some(State::Ok), &[]),
        ];
        let p = jobs_page(&checks, std::slice::from_ref(&s), &Filter::default(), now());
        assert_eq!(p.silenced, 1);
        assert_eq!(
            p.lines[0].silenced.as_deref(),
            Some("silenced until 2027-01-15 09:00:00 UTC by ann: disk swap")
        );
        assert_eq!(p.lines[1].silenced, None);
    }

    #[test]
    fn times_read_as_ages() {
        assert_eq!(age(now().add_millis(-5_000), now()), "5 s ago");
        assert_eq!(age(now().add_millis(7_200_000), now()), "in 2 h");
        assert_eq!(age(now().add_millis(7_199_000), now()), "in 1 h 59 min");
        assert_eq!(
            age(now().add_millis(-36_000_000 - 60_000), now()),
            "10 h ago"
        );
        assert_eq!(age(now().add_millis(-90_000_000), now()), "1 d 1 h ago");
        assert_eq!(time(now()), "2027-01-15 08:00:00 UTC");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(duration(Duration::from_millis(15)), "15 ms");
        assert_eq!(span(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(span(Duration::from_secs(86_400 + 5)), "1d 5s");
    }

    #[test]
    fn a_cron_schedule_lists_its_next_five_times_on_its_own_clock() {
        let mut c = check("a", Some(State::Ok), &[]);
        c.expect = Some(
            Expect::new(
                Schedule::cron("0 3 * * *", Some("Europe/Berlin")).unwrap(),
                Duration::from_secs(3600),
                None,
            )
            .unwrap(),
        );
        let times = next_times(&c, now());
        assert_eq!(times.len(), 5);
        assert!(times[0].starts_with("2027-01-16 03:00 CET"), "{times:?}");
        assert!(times[4].starts_with("2027-01-20 03:00 CET"), "{times:?}");
        assert_eq!(
            schedule(c.expect.as_ref().unwrap()),
            "at 03:00 every day (Europe/Berlin; cron 0 3 * * *), grace 1h"
        );
    }
}
