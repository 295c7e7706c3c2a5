//! What the incident services share: Apprise's way of matching a choice, key and address
//! checks, and the job's details every service carries as its custom fields.

/// The first of `choices` equal to `v`, else the first that starts with it (case and
/// surrounding spaces ignored), as Apprise's `parse_choice` matches a value.
pub(super) fn choice(v: &str, choices: &[&str]) -> Option<usize> {
    let l = v.trim().to_ascii_lowercase();
    if l.is_empty() {
        return None;
    }
    choices
        .iter()
        .position(|c| c.eq_ignore_ascii_case(&l))
        .or_else(|| {
            choices
                .iter()
                .position(|c| c.to_ascii_lowercase().starts_with(&l))
        })
}

/// The URL's `action=` among `[map, open, close]` as each service names them: `None` to map
/// each notification (the default), `Some(true)` to always open, `Some(false)` to always close.
pub(super) fn action(
    raw: &str,
    p: &crate::url_parts::Parts,
    names: [&str; 3],
) -> Result<Option<bool>, crate::url_parse::UrlError> {
    let Some(a) = p.get("action").filter(|a| !a.trim().is_empty()) else {
        return Ok(None);
    };
    match choice(a, &names) {
        Some(0) => Ok(None),
        Some(1) => Ok(Some(true)),
        Some(_) => Ok(Some(false)),
        None => Err(crate::url_parse::UrlError::new(
            raw,
            format!("action={a:?} is not one of {}", names.join(", ")),
        )),
    }
}

/// A key made of letters, digits, `_` and `-` (what these services' keys are).
pub(super) fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An `http(s)://` address taken apart: its host (lowercase, without a port), its path (from
/// its `/`, as written) and its query (with its `?`, or empty). `None` for any other scheme.
pub(super) fn web_address(raw: &str) -> Option<(String, &str, &str)> {
    let (scheme, rest) = raw.trim().split_once("://")?;
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return None;
    }
    let q = rest.find('?').unwrap_or(rest.len());
    let (hostpath, query) = rest.split_at(q);
    let p = hostpath.find('/').unwrap_or(hostpath.len());
    let (host, path) = hostpath.split_at(p);
    let host = host.rsplit('@').next().unwrap_or(host);
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    Some((host, path, query))
}

/// The details of a notification that every incident service carries as its custom fields:
/// job, state, reason, exit code, signal, host and run id (those the notification has).
pub(super) fn details(n: &belfry_core::Notification) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), serde_json::Value::String(v));
        }
    };
    put("job", Some(n.job.clone()));
    put("state", Some(n.state.name().to_owned()));
    put("reason", Some(n.reason_text.clone()));
    put("exit_code", n.exit_code.map(|c| c.to_string()));
    put("signal", n.signal.map(|s| s.to_string()));
    put("host", n.host.clone());
    put("run_id", n.run_id.clone());
    m
}

/// Whether `n` opens (triggers, raises) its job's incident rather than resolving it, by its
/// Apprise type as Apprise's `map` reads one (`failure`, `warning` open; `success` resolves),
/// except that `info` resolves too (belfry's `info`, a first success or a still-OK heartbeat,
/// says the job is fine); a type belfry does not know counts as its kind.
pub(super) fn opens(n: &belfry_core::Notification) -> bool {
    match n.apprise_type.as_str() {
        "failure" | "warning" => true,
        "success" | "info" => false,
        _ => n.kind == belfry_core::Kind::Problem,
    }
}

/// The key that names `n`'s incident: the URL's own (`dedup=` or the service's), else
/// `belfry/JOB`, the same for a problem and its recovery.
pub(super) fn incident_key(own: Option<&String>, n: &belfry_core::Notification) -> String {
    own.cloned().unwrap_or_else(|| format!("belfry/{}", n.job))
}

/// The URL's `+key=value` pairs, the `+` taken off.
pub(super) fn plus_pairs(p: &crate::url_parts::Parts) -> Vec<(String, String)> {
    p.query
        .iter()
        .filter_map(|(k, v)| k.strip_prefix('+').map(|k| (k.to_owned(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_reads_map_open_and_close_by_prefix_and_refuses_the_rest() {
        let read = |raw: &str| {
            let p = crate::url_parts::Parts::parse(raw).unwrap();
            action(raw, &p, ["map", "trigger", "close"]).map_err(|e| e.to_string())
        };
        assert_eq!(read("goalert://k"), Ok(None));
        assert_eq!(read("goalert://k?action=MAP"), Ok(None));
        assert_eq!(read("goalert://k?action=trig"), Ok(Some(true)));
        assert_eq!(read("goalert://k?action=close"), Ok(Some(false)));
        let e = read("goalert://k?action=page").unwrap_err();
        assert!(
            e.contains("\"page\" is not one of map, trigger, close"),
            "{e}"
        );
    }
}
