//! Syslog facilities as Apprise names them, with their RFC 5424 codes, and the severity of a
//! notification by its Apprise type.

use crate::url_parse::UrlError;

/// The facilities, with their RFC 5424 codes.
pub(super) const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// The facility a URL names (`user` when none), as Apprise reads one: its name, or the first
/// that starts with what is written.
pub(super) fn read(raw: &str, named: Option<&str>) -> Result<u8, UrlError> {
    let Some(f) = named else {
        return Ok(1);
    };
    let l = f.trim().to_ascii_lowercase();
    FACILITIES
        .iter()
        .find(|(name, _)| *name == l)
        .or_else(|| FACILITIES.iter().find(|(name, _)| name.starts_with(&l)))
        .filter(|_| !l.is_empty())
        .map(|(_, code)| *code)
        .ok_or_else(|| {
            UrlError::new(
                raw,
                format!(
                    "{f:?} is not a syslog facility ({})",
                    FACILITIES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}

/// The severity of a notification, as Apprise maps its type: failure `crit` (2), warning
/// `warning` (4), success `notice` (5), info `info` (6).
pub(super) fn severity(apprise_type: &str) -> u8 {
    match apprise_type {
        "failure" => 2,
        "warning" => 4,
        "success" => 5,
        _ => 6,
    }
}

/// The name of a facility code.
pub(super) fn name(code: u8) -> &'static str {
    FACILITIES
        .iter()
        .find(|(_, c)| *c == code)
        .map_or("user", |(n, _)| n)
}
