//! `belfry store migrate --to URL`: moving up from the SQLite file to PostgreSQL (or back).

use std::io::Write as _;

use belfry::Config;
use belfry::channels::Secrets;
use belfry::secret::{Lookup, resolve};
use belfry_store::{Location, Store};
use serde_json::json;

use crate::tell::Usage;

/// Copies the configured store (`[store] url`, `$BELFRY_STORE`, or the state directory's file)
/// into the store at `to`, and says what it copied. Idempotent: a second run copies only what
/// was added since.
pub fn migrate(config: &Config, to: &str, as_json: bool) -> anyhow::Result<u8> {
    let home = belfry::home_dir()?;
    let from = config.store_location(&home);
    let mut secrets = Secrets::default();
    let url = resolve(to, &Lookup::process(None), &mut secrets)
        .map_err(|e| Usage(format!("--to: {e}")))?;
    let target = Location::parse(&url)
        .map_err(|e| Usage(format!("--to: {}", secrets.scrub(&e.to_string()))))?;
    if target == from {
        return Err(Usage(format!("--to: the store is already at {target}")).into());
    }
    let source = Store::open(from.clone())?;
    let mut dest = Store::open(target.clone())?;
    let copied = source.copy_into(&mut dest)?;
    let mut out = std::io::stdout().lock();
    if as_json {
        let counts = json!({
            "from": from.to_string(),
            "to": target.to_string(),
            "jobs": copied.jobs,
            "runs": copied.runs,
            "notifications": copied.notifications,
            "outbox": {
                "pending": copied.pending,
                "delivered": copied.delivered,
                "dead": copied.dead,
            },
            "attempts": copied.attempts,
            "pings": copied.pings,
            "flips": copied.flips,
            "silences": copied.silences,
            "already_there": copied.already_there,
        });
        serde_json::to_writer_pretty(&mut out, &counts)?;
        writeln!(out)?;
    } else if copied.is_empty() {
        writeln!(
            out,
            "copied nothing from {from} to {target}: it has every row already ({} records)",
            copied.already_there
        )?;
    } else {
        writeln!(out, "copied from {from} to {target}: {copied}")?;
        let shown = target.to_string();
        let hint = if matches!(target, Location::Sqlite(_)) {
            "move the file to $BELFRY_HOME/belfry.db".to_owned()
        } else {
            format!(
                "set [store] url = \"{shown}\" in belfry.toml (with the password as a ${{env:…}} reference), or BELFRY_STORE"
            )
        };
        writeln!(out, "to use it: {hint}")?;
    }
    Ok(0)
}
