//! Reading a ping request: which job (by UUID, or by ping key and name), what it says (start,
//! success, fail, log, an exit status), its run id and `create` flag. Pure: no store, no I/O,
//! so that every answer the ping API gives for a malformed request is decided here and tested
//! without a server.
//!
//! The paths are healthchecks.io's: `/ping/<uuid>[/<action>]` and
//! `/ping/<ping-key>/<name>[/<action>]`, where the action is `start`, `fail`, `log` or an exit
//! status `0` to `255` (nothing: success).

use belfry_store::PingKind;
use percent_encoding::percent_decode_str;
use uuid::Uuid;

/// Which job a ping is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/ping/<uuid>`: the job's UUID.
    Uuid(Uuid),
    /// `/ping/<ping-key>/<name>`: the key as given (checked against `[server] ping_key` by the
    /// caller) and the job's name (belfry's job names are the slugs).
    Slug {
        /// The ping key in the path.
        key: String,
        /// The job's name, percent-decoded.
        name: String,
    },
}

/// A ping request read from its path and query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingRequest {
    /// The job.
    pub target: Target,
    /// What the ping says.
    pub kind: PingKind,
    /// `?rid=`: pairs a start with its finish.
    pub rid: Option<Uuid>,
    /// `?create=1`: create the job by name if it does not exist.
    pub create: bool,
}

/// Why a ping request was refused before it reached the store: the status and text
/// healthchecks.io answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400 `invalid url format`: an exit status above 255.
    InvalidUrl,
    /// 400 `invalid uuid format`: a `rid` that is not a UUID.
    InvalidUuid,
    /// 404 `not found`: no such ping URL.
    NotFound,
}

impl Refusal {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Refusal::InvalidUrl | Refusal::InvalidUuid => 400,
            Refusal::NotFound => 404,
        }
    }

    /// The body text, as healthchecks.io gives it.
    pub fn text(self) -> &'static str {
        match self {
            Refusal::InvalidUrl => "invalid url format",
            Refusal::InvalidUuid => "invalid uuid format",
            Refusal::NotFound => "not found",
        }
    }
}

/// Reads `path` (what follows `/ping/`, still percent-encoded) and `query` (without `?`).
pub fn parse(path: &str, query: Option<&str>) -> Result<PingRequest, Refusal> {
    let segments: Vec<&str> = path.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(Refusal::NotFound);
    }
    let (target, action) = match segments.as_slice() {
        [id] => (Target::Uuid(uuid_of(id)?), None),
        // A UUID followed by an action is the UUID form, as healthchecks.io's URL patterns
        // are tried in that order; anything else with two segments is a key and a name.
        [id, action] if Uuid::try_parse(id).is_ok() && is_action(action) => {
            (Target::Uuid(uuid_of(id)?), Some(*action))
        }
        [key, name] => (slug(key, name)?, None),
        [key, name, action] => (slug(key, name)?, Some(*action)),
        _ => return Err(Refusal::NotFound),
    };
    let kind = match action {
        None => PingKind::Success,
        Some("start") => PingKind::Start,
        Some("fail") => PingKind::Fail,
        Some("log") => PingKind::Log,
        Some(n) if is_number(n) => match n.parse::<u32>() {
            Ok(code @ 0..=255) => PingKind::Exit(code as u8),
            _ => return Err(Refusal::InvalidUrl),
        },
        Some(_) => return Err(Refusal::NotFound),
    };
    let mut rid = None;
    let mut create = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode_str(v).decode_utf8_lossy();
        match k {
            // The last value wins, as Django's `request.GET.get` does.
            "rid" => rid = Some(Uuid::try_parse(&v).map_err(|_| Refusal::InvalidUuid)?),
            "create" => create = v == "1",
            _ => {}
        }
    }
    Ok(PingRequest {
        target,
        kind,
        rid,
        create,
    })
}

fn is_action(s: &str) -> bool {
    matches!(s, "start" | "fail" | "log") || is_number(s)
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn uuid_of(s: &str) -> Result<Uuid, Refusal> {
    // Only the hyphenated form, as in the URLs healthchecks.io hands out.
    if s.len() != 36 {
        return Err(Refusal::NotFound);
    }
    Uuid::try_parse(s).map_err(|_| Refusal::NotFound)
}

fn slug(key: &str, name: &str) -> Result<Target, Refusal> {
    let name = percent_decode_str(name)
        .decode_utf8()
        .map_err(|_| Refusal::NotFound)?;
    if belfry_core::validate_job_name(&name).is_err() {
        return Err(Refusal::NotFound);
    }
    Ok(Target::Slug {
        key: key.to_owned(),
        name: name.into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "6f0a5b5e-35cb-4f6e-9a3b-6d1a8c2f0b11";

    #[test]
    fn uuid_and_slug_forms_with_their_actions() {
        let id = Uuid::parse_str(ID).unwrap();
        let p = parse(ID, None).unwrap();
        assert_eq!((p.target, p.kind), (Target::Uuid(id), PingKind::Success));
        assert_eq!(
            parse(&format!("{ID}/start"), None).unwrap().kind,
            PingKind::Start
        );
        assert_eq!(
            parse(&format!("{ID}/fail"), None).unwrap().kind,
            PingKind::Fail
        );
        assert_eq!(
            parse(&format!("{ID}/log"), None).unwrap().kind,
            PingKind::Log
        );
        assert_eq!(
            parse(&format!("{ID}/255"), None).unwrap().kind,
            PingKind::Exit(255)
        );
        let p = parse("key/backup-db/start", Some("create=1")).unwrap();
        assert_eq!(
            p.target,
            Target::Slug {
                key: "key".into(),
                name: "backup-db".into()
            }
        );
        assert!(p.create);
        assert_eq!(p.kind, PingKind::Start);
    }

    #[test]
    fn malformed_pings_get_healthchecks_answers() {
        assert_eq!(parse(&format!("{ID}/256"), None), Err(Refusal::InvalidUrl));
        assert_eq!(
            parse("k/job/99999999999999999999", None),
            Err(Refusal::InvalidUrl)
        );
        assert_eq!(parse(ID, Some("rid=nope")), Err(Refusal::InvalidUuid));
        assert_eq!(parse("not-a-uuid", None), Err(Refusal::NotFound));
        assert_eq!(parse(&format!("{ID}/"), None), Err(Refusal::NotFound));
        assert_eq!(parse("", None), Err(Refusal::NotFound));
        assert_eq!(parse("k/job/stop", None), Err(Refusal::NotFound));
        assert_eq!(parse("a/b/c/d", None), Err(Refusal::NotFound));
        assert_eq!(parse("k/%FF", None), Err(Refusal::NotFound));
    }
}
