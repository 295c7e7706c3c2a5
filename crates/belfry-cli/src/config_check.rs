//! `belfry config check [--job NAME]`: the configuration as belfry reads it, its channels, and
//! where a job's alerts go.
//!
//! Loading is the check: `main` loads the configuration before any command, and every
//! channel's URL, templates, secret references and `command` program are checked then (a bad
//! one is a usage error, exit 2, for every command alike). This command shows the result.

use std::io::Write;

use belfry::Config;
use belfry::core::State;

use crate::tell::Usage;

/// The kinds of alert a job can send, as `--job` shows them: the problem states, a recovery,
/// and an OK (a first run, a "still OK").
const PROBLEMS: [State; 4] = [State::Failed, State::TimedOut, State::Crashed, State::Late];

/// Runs `belfry config check`. 0: fine; 1: the job's problem alerts reach no channel.
pub fn check(config: &Config, job: Option<&str>) -> anyhow::Result<u8> {
    if let Some(j) = job {
        belfry::core::validate_job_name(j).map_err(|e| Usage(format!("--job: {e}")))?;
    }
    let mut out = std::io::stdout().lock();
    let file = config
        .source
        .as_ref()
        .map_or("no file found".to_owned(), |f| f.display().to_string());
    let urls = if config.channels.iter().any(|c| c.name.starts_with("urls-")) {
        ", and $BELFRY_URLS"
    } else {
        ""
    };
    writeln!(out, "configuration: {file}{urls}")?;
    let mut rows = vec![[
        "CHANNEL".to_owned(),
        "DESTINATION".into(),
        "RECEIVES".into(),
    ]];
    for c in &config.channels {
        rows.push([c.name.clone(), c.describe(), crate::send::receives(c)]);
    }
    let mut table = Vec::new();
    crate::views::print_table(&mut table, &rows)?;
    write!(out, "{}", config.scrub(&String::from_utf8_lossy(&table)))?;
    writeln!(
        out,
        "{} channel(s); URLs, templates, secret references and command programs are valid",
        config.channels.len()
    )?;
    let scheduled: Vec<[String; 2]> = config
        .jobs
        .iter()
        .filter_map(|(name, j)| Some([name.clone(), j.expect.as_ref()?.to_string()]))
        .collect();
    let s = &config.server;
    writeln!(
        out,
        "\nbelfry serve: listens on {}, ping key {}, keeps {} bytes of a ping's body",
        s.listen,
        if s.ping_key.is_some() {
            "set (not shown)"
        } else {
            "not set (pings by UUID only)"
        },
        s.ping_body_limit
    )?;
    if !scheduled.is_empty() {
        writeln!(
            out,
            "\nschedules (belfry serve marks these jobs late when silent):"
        )?;
        let mut rows = vec![["JOB".to_owned(), "EXPECTED".into()]];
        rows.extend(scheduled);
        crate::views::print_table(&mut out, &rows)?;
    }
    let Some(job) = job else {
        return Ok(0);
    };
    writeln!(out, "\nwhere the alerts of {job} go:")?;
    let mut rows = vec![[
        "CHANNEL".to_owned(),
        "PROBLEMS".into(),
        "RECOVERIES".into(),
        "OK".into(),
        "WHY NOT".into(),
    ]];
    let mut problems_reach = false;
    for c in &config.channels {
        let mut why: Vec<String> = Vec::new();
        let mut takes = |state: &State, recovered: bool| {
            let only = config.jobs.get(job).and_then(|j| j.channels.as_deref());
            match c.route.refusal(job, state, recovered, only) {
                None => true,
                Some(r) => {
                    let text = r.describe(&c.route, job);
                    if !why.contains(&text) {
                        why.push(text);
                    }
                    false
                }
            }
        };
        let taken: Vec<&str> = PROBLEMS
            .iter()
            .filter(|s| takes(s, false))
            .map(State::name)
            .collect();
        problems_reach |= !taken.is_empty();
        let problems = match taken.len() {
            0 => "no".to_owned(),
            n if n == PROBLEMS.len() => "yes".to_owned(),
            _ => taken.join(","),
        };
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
        let recoveries = yes_no(takes(&State::Ok, true));
        let ok = yes_no(takes(&State::Ok, false));
        let why = if why.is_empty() {
            "-".to_owned()
        } else {
            why.join("; ")
        };
        rows.push([c.name.clone(), problems, recoveries, ok, why]);
    }
    crate::views::print_table(&mut out, &rows)?;
    if problems_reach {
        return Ok(0);
    }
    writeln!(
        out,
        "no channel takes the problem alerts of {job}: they would be sent nowhere"
    )?;
    Ok(1)
}
