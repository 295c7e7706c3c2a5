//! Phone numbers as Apprise reads them (`is_phone_no`): digits with an optional `+`, spaces,
//! dashes and brackets; 10 to 14 digits unless a service asks for fewer (a short code).

use crate::url_parse::UrlError;
use crate::url_parts::{Parts, split_list};

/// The digits of `s`, if it is written as a phone number (digits, `+`, spaces, `-`, `(`, `)`,
/// `.`).
pub(super) fn digits(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
    {
        return None;
    }
    Some(s.chars().filter(char::is_ascii_digit).collect())
}

/// The digits of `s` as a phone number with its country code (10 to 14 digits), or an error
/// naming it as `what` (`the sender`, `the recipient`).
pub(super) fn number(raw: &str, what: &str, s: &str) -> Result<String, UrlError> {
    digits(s)
        .filter(|d| (10..=14).contains(&d.len()))
        .ok_or_else(|| {
            UrlError::new(
                raw,
                format!(
                    "{what} {s:?} is not a phone number with its country code (10 to 14 digits)"
                ),
            )
        })
}

/// The recipients written in the URL: `path` (those of its path parts that hold them) and
/// `to=`, each checked, as digits.
pub(super) fn recipients(raw: &str, p: &Parts, path: &[String]) -> Result<Vec<String>, UrlError> {
    path.iter()
        .map(String::as_str)
        .chain(p.get("to").into_iter().flat_map(split_list))
        .map(|t| number(raw, "the recipient", t))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_as_apprise_reads_them() {
        assert_eq!(digits("+1 (555) 123-4567").as_deref(), Some("15551234567"));
        assert_eq!(digits("12a"), None);
        assert_eq!(
            number("x://", "the sender", "+44 20 7946 0018").unwrap(),
            "442079460018"
        );
        let e = number("x://", "the recipient", "12345")
            .unwrap_err()
            .to_string();
        assert!(e.contains("the recipient \"12345\""), "{e}");
    }
}
