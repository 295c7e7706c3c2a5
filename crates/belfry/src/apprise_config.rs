//! Apprise's configuration, read so that its users bring what they have: `APPRISE_URLS`, and
//! Apprise's configuration files in both of its formats, from `APPRISE_CONFIG_PATH` or the
//! places Apprise looks (`~/.apprise`, `~/.config/apprise.yml`, `/etc/apprise`, …), or named by
//! `--config`. Each URL becomes a channel with its tags; a tagged channel takes the jobs whose
//! `channels` list names one of its tags ([`belfry_core::Route`]).
//!
//! The TEXT format: one URL per line, optionally preceded by tags (`devops, admin=slack://…`);
//! `#` or `;` begin a comment; `group=tag, tag` makes a group tag that stands for the others;
//! `include PATH` reads another file. The YAML format: `urls:` a list of URLs, each a string or
//! a mapping from the URL to its options (one set, or a list of sets, each a channel), where
//! `tag` gives tags and anything else is an option of the URL; `tag:` at the top applies to
//! every URL; `groups:` and `include:` as in TEXT.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

/// The most files one configuration may include, directly or not (Apprise's default depth is
/// 1; more is allowed, but a loop is stopped).
const MAX_INCLUDES: usize = 16;

/// One URL of an Apprise configuration, with its tags (lowercase, groups expanded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub url: String,
    pub tags: Vec<String>,
}

/// The places Apprise looks for its configuration on Linux and macOS, in its order, for the
/// home directory `home`.
pub(crate) fn default_paths(home: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(h) = home {
        for rel in [
            ".apprise",
            ".apprise.conf",
            ".apprise.yml",
            ".apprise.yaml",
            ".config/apprise",
            ".config/apprise.conf",
            ".config/apprise.yml",
            ".config/apprise.yaml",
            ".apprise/apprise",
            ".apprise/apprise.conf",
            ".apprise/apprise.yml",
            ".apprise/apprise.yaml",
            ".config/apprise/apprise",
            ".config/apprise/apprise.conf",
            ".config/apprise/apprise.yml",
            ".config/apprise/apprise.yaml",
        ] {
            out.push(h.join(rel));
        }
    }
    for abs in [
        "/etc/apprise",
        "/etc/apprise.yml",
        "/etc/apprise.yaml",
        "/etc/apprise/apprise",
        "/etc/apprise/apprise.conf",
        "/etc/apprise/apprise.yml",
        "/etc/apprise/apprise.yaml",
    ] {
        out.push(PathBuf::from(abs));
    }
    out
}

/// `APPRISE_CONFIG_PATH`'s list: paths separated by `;` or line breaks, as Apprise splits it.
pub(crate) fn split_paths(list: &str) -> Vec<PathBuf> {
    list.split([';', '\n', '\r'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// Whether a file is written in YAML: by its name, else by its first line that says
/// something (a `key:` of Apprise's YAML format, rather than a URL or `tags=URL`).
fn is_yaml(path: &Path, text: &str) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yml" | "yaml") => return true,
        Some("conf" | "txt" | "cfg") => return false,
        _ => {}
    }
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .is_some_and(|l| {
            let key = l.split(':').next().unwrap_or("");
            !l.contains("://")
                && !key.is_empty()
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && l.len() > key.len()
        })
}

/// The file at `path` read as Apprise's configuration, or `None` when it is belfry's TOML: a
/// name ending in `.toml`, or, for a name not ending in `.yml` or `.yaml`, a text that does not
/// read as Apprise's TEXT or YAML format (belfry's TOML does not: `[channels.x]` is neither).
/// The file is read once.
pub(crate) fn read_if_apprise(path: &Path) -> Option<Result<Vec<Entry>, String>> {
    let named_yaml = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => return None,
        Some("yml" | "yaml") => true,
        _ => false,
    };
    let mut seen = Vec::new();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        // Not read here: belfry's own loading says why.
        Err(_) if !named_yaml => return None,
        Err(e) => return Some(Err(format!("{}: cannot read: {e}", path.display()))),
    };
    let parsed = parse_any(path, &text);
    if !named_yaml
        && !parsed
            .as_ref()
            .is_ok_and(|p| !p.entries.is_empty() || !p.includes.is_empty())
    {
        return None;
    }
    Some(finish(path, parsed, &mut seen))
}

/// Reads the Apprise configuration file `path` (and what it includes).
pub(crate) fn read_file(path: &Path) -> Result<Vec<Entry>, String> {
    let mut seen = Vec::new();
    read_into(path, &mut seen)
}

/// `text` in the format its file `path` is written in.
fn parse_any(path: &Path, text: &str) -> Result<Parsed, String> {
    if is_yaml(path, text) {
        parse_yaml(text)
    } else {
        parse_text(text)
    }
}

fn read_into(path: &Path, seen: &mut Vec<PathBuf>) -> Result<Vec<Entry>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    finish(path, parse_any(path, &text), seen)
}

/// What the file `path` parsed to, with its includes read (relative to it; a loop or more
/// than [`MAX_INCLUDES`] files is an error).
fn finish(
    path: &Path,
    parsed: Result<Parsed, String>,
    seen: &mut Vec<PathBuf>,
) -> Result<Vec<Entry>, String> {
    let shown = path.display().to_string();
    if seen.len() > MAX_INCLUDES {
        return Err(format!("{shown}: more than {MAX_INCLUDES} included files"));
    }
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if seen.contains(&canonical) {
        return Err(format!("{shown}: included again (an include loop)"));
    }
    seen.push(canonical);
    let parsed = parsed.map_err(|e| format!("{shown}: {e}"))?;
    let mut entries = parsed.entries;
    for inc in parsed.includes {
        if inc.contains("://") && !inc.starts_with("file://") {
            return Err(format!(
                "{shown}: include {inc:?}: belfry includes local files only (a configuration \
                 fetched over the network would decide at each start where alerts go)"
            ));
        }
        let rel = PathBuf::from(inc.trim_start_matches("file://"));
        let full = if rel.is_absolute() {
            rel
        } else {
            path.parent().unwrap_or(Path::new(".")).join(rel)
        };
        entries.extend(read_into(&full, seen)?);
    }
    Ok(entries)
}

/// What one file holds: its URLs with their tags (groups applied), and what it includes.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub entries: Vec<Entry>,
    pub includes: Vec<String>,
}

/// Splits a list of tags (commas and blanks), lowercase.
fn tag_list(s: &str) -> Vec<String> {
    s.split([',', ' ', '\t'])
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// An Apprise-style tag: letters, digits, `_`, `-` and `:`.
pub(crate) fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'))
}

/// Adds to each entry the groups that contain one of its tags (a group may contain groups).
fn apply_groups(entries: &mut [Entry], groups: &BTreeMap<String, Vec<String>>) {
    for e in entries {
        loop {
            let before = e.tags.len();
            for (group, members) in groups {
                if !e.tags.contains(group) && members.iter().any(|m| e.tags.contains(m)) {
                    e.tags.push(group.clone());
                }
            }
            if e.tags.len() == before {
                break;
            }
        }
        e.tags.sort();
        e.tags.dedup();
    }
}

/// Whether `s` starts with a scheme and `://` as Apprise's TEXT format recognises one.
fn is_url(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        (1..=32).contains(&scheme.len()) && scheme.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// Apprise's TEXT format. The error names the line.
pub(crate) fn parse_text(text: &str) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let n = i + 1;
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("include")
            && rest.starts_with([' ', '\t'])
        {
            out.includes.push(rest.trim().to_owned());
            continue;
        }
        if is_url(line) {
            out.entries.push(Entry {
                url: line.to_owned(),
                tags: Vec::new(),
            });
            continue;
        }
        let Some((left, right)) = line.split_once('=') else {
            return Err(format!(
                "line {n}: expected a URL, TAGS=URL, GROUP=TAGS or include PATH"
            ));
        };
        let tags = tag_list(left);
        if let Some(bad) = tags.iter().find(|t| !valid_tag(t)) {
            return Err(format!(
                "line {n}: {bad:?} is not a tag (letters, digits, _, - and :)"
            ));
        }
        let right = right.trim();
        if is_url(right) {
            out.entries.push(Entry {
                url: right.to_owned(),
                tags,
            });
        } else {
            let members = tag_list(right);
            if tags.is_empty() || members.is_empty() || !members.iter().all(|t| valid_tag(t)) {
                return Err(format!(
                    "line {n}: expected TAGS=URL or GROUP=TAGS (the right side is neither a URL \
                     nor tags)"
                ));
            }
            for g in tags {
                groups.entry(g).or_default().extend(members.iter().cloned());
            }
        }
    }
    apply_groups(&mut out.entries, &groups);
    Ok(out)
}

/// A YAML scalar as text (a string, number or boolean), or `None`.
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(if *b { "yes" } else { "no" }.to_owned()),
        _ => None,
    }
}

/// Tags from a YAML value: a string of tags or a list of them.
fn yaml_tags(y: &Yaml, what: &str) -> Result<Vec<String>, String> {
    let tags = match y {
        Yaml::Array(items) => items
            .iter()
            .map(|i| scalar(i).ok_or_else(|| format!("{what}: a tag must be text")))
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .flat_map(|s| tag_list(s))
            .collect(),
        other => tag_list(
            &scalar(other).ok_or_else(|| format!("{what}: tags are text or a list of text"))?,
        ),
    };
    match tags.iter().find(|t| !valid_tag(t)) {
        Some(bad) => Err(format!(
            "{what}: {bad:?} is not a tag (letters, digits, _, - and :)"
        )),
        None => Ok(tags),
    }
}

/// `url` with `options` added to its query (percent-encoded), as Apprise applies a YAML URL's
/// options to it.
fn with_options(url: &str, options: &[(String, String)]) -> String {
    if options.is_empty() {
        return url.to_owned();
    }
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in options {
        query.append_pair(k, v);
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", query.finish())
}

/// Apprise's YAML format (version 1). The error says where.
pub(crate) fn parse_yaml(text: &str) -> Result<Parsed, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    let Some(doc) = docs.first() else {
        return Ok(Parsed::default());
    };
    let Yaml::Hash(top) = doc else {
        return Err("expected a mapping with `urls:` at the top".into());
    };
    let get = |k: &str| top.get(&Yaml::String(k.to_owned()));
    if let Some(v) = get("version")
        && scalar(v).as_deref() != Some("1")
    {
        return Err(format!(
            "version {:?}: belfry reads version 1 of Apprise's YAML format",
            scalar(v).unwrap_or_default()
        ));
    }
    for key in top.keys() {
        let k = key.as_str().unwrap_or("");
        if !matches!(
            k,
            "version" | "tag" | "tags" | "groups" | "include" | "urls" | "asset"
        ) {
            return Err(format!(
                "unknown key {k:?} at the top (known: version, tag, groups, include, urls, asset)"
            ));
        }
    }
    let global = match get("tag").or_else(|| get("tags")) {
        Some(y) => yaml_tags(y, "tag")?,
        None => Vec::new(),
    };
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add_group = |name: &Yaml, members: &Yaml| -> Result<(), String> {
        let name = scalar(name).ok_or("groups: a group's name must be text")?;
        let members = yaml_tags(members, &format!("groups: {name}"))?;
        for g in tag_list(&name) {
            groups.entry(g).or_default().extend(members.iter().cloned());
        }
        Ok(())
    };
    match get("groups") {
        None => {}
        Some(Yaml::Hash(h)) => {
            for (k, v) in h {
                add_group(k, v)?;
            }
        }
        Some(Yaml::Array(items)) => {
            for item in items {
                let Yaml::Hash(h) = item else {
                    return Err("groups: each entry is `name: tags`".into());
                };
                for (k, v) in h {
                    add_group(k, v)?;
                }
            }
        }
        Some(_) => return Err("groups: expected a mapping or a list of `name: tags`".into()),
    }
    let mut out = Parsed::default();
    match get("include") {
        None => {}
        Some(Yaml::Array(items)) => {
            for i in items {
                out.includes
                    .push(scalar(i).ok_or("include: each entry is a path")?);
            }
        }
        Some(other) => out
            .includes
            .push(scalar(other).ok_or("include: a path or a list of paths")?),
    }
    let urls = match get("urls") {
        None | Some(Yaml::Null) => Vec::new(),
        Some(Yaml::Array(items)) => items.clone(),
        Some(_) => return Err("urls: expected a list".into()),
    };
    for (i, item) in urls.iter().enumerate() {
        let at = format!("urls entry {}", i + 1);
        match item {
            Yaml::String(url) => out.entries.push(Entry {
                url: url.trim().to_owned(),
                tags: global.clone(),
            }),
            Yaml::Hash(h) if h.len() == 1 => {
                let (url, sets) = h.iter().next().expect("one entry");
                let url = scalar(url)
                    .ok_or_else(|| format!("{at}: the URL must be text"))?
                    .trim()
                    .to_owned();
                let sets: Vec<&Yaml> = match sets {
                    Yaml::Array(list) => list.iter().collect(),
                    Yaml::Null => vec![],
                    other => vec![other],
                };
                if sets.is_empty() {
                    out.entries.push(Entry {
                        url: url.clone(),
                        tags: global.clone(),
                    });
                }
                for set in sets {
                    let Yaml::Hash(opts) = set else {
                        return Err(format!("{at}: a URL's options are `key: value` pairs"));
                    };
                    let mut tags = global.clone();
                    let mut options = Vec::new();
                    for (k, v) in opts {
                        let k = scalar(k)
                            .ok_or_else(|| format!("{at}: an option's name must be text"))?;
                        if k == "tag" || k == "tags" {
                            tags.extend(yaml_tags(v, &format!("{at}: tag"))?);
                            continue;
                        }
                        let v = match v {
                            Yaml::Array(items) => items
                                .iter()
                                .map(scalar)
                                .collect::<Option<Vec<_>>>()
                                .map(|v| v.join(",")),
                            other => scalar(other),
                        }
                        .ok_or_else(|| {
                            format!("{at}: option {k:?} must be text, a number, yes/no or a list")
                        })?;
                        options.push((k, v));
                    }
                    out.entries.push(Entry {
                        url: with_options(&url, &options),
                        tags,
                    });
                }
            }
            _ => {
                return Err(format!(
                    "{at}: expected a URL, or `URL:` followed by its options"
                ));
            }
        }
    }
    for e in &mut out.entries {
        if !is_url(&e.url) {
            return Err(format!("{:?} is not a URL (scheme://…)", redact(&e.url)));
        }
    }
    apply_groups(&mut out.entries, &groups);
    Ok(out)
}

/// The scheme of a URL and nothing else, for an error about it.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, _)) => format!("{scheme}://…"),
        None => "…".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_reads_tags_groups_comments_and_includes() {
        let p = parse_text(
            "# a comment\n; another\n\n\
             json://hooks.example.com/a\n\
             devops, admin=slack://T1/B2/C3\n\
             =ntfy://backups\n\
             family = alice bob\n\
             alice=mailto://u:p@example.com\n\
             include other.conf\n",
        )
        .unwrap();
        assert_eq!(
            p.entries,
            [
                Entry {
                    url: "json://hooks.example.com/a".into(),
                    tags: vec![]
                },
                Entry {
                    url: "slack://T1/B2/C3".into(),
                    tags: vec!["admin".into(), "devops".into()]
                },
                Entry {
                    url: "ntfy://backups".into(),
                    tags: vec![]
                },
                Entry {
                    url: "mailto://u:p@example.com".into(),
                    tags: vec!["alice".into(), "family".into()]
                },
            ]
        );
        assert_eq!(p.includes, ["other.conf"]);
        let e = parse_text("json://ok\nthis is not a url\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = parse_text("bad tag!=json://x\n").unwrap_err();
        assert!(
            e.contains("\"tag!\" is not a tag") || e.contains("is not a tag"),
            "{e}"
        );
    }

    #[test]
    fn the_yaml_format_reads_global_tags_option_sets_and_groups() {
        let p = parse_yaml(
            "version: 1\n\
             tag: team\n\
             groups:\n  - oncall: alice, bob\n\
             urls:\n\
             \x20 - json://hooks.example.com/a\n\
             \x20 - mailto://u:p@example.com:\n\
             \x20     - to: alice@example.com\n\
             \x20       tag: alice\n\
             \x20     - to: bob@example.com\n\
             \x20       tag: [bob, night]\n\
             \x20 - ntfy://backups:\n\
             \x20     priority: high\n\
             \x20     +X-Team: ops\n",
        )
        .unwrap();
        let got: Vec<(&str, Vec<&str>)> = p
            .entries
            .iter()
            .map(|e| (e.url.as_str(), e.tags.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            got,
            [
                ("json://hooks.example.com/a", vec!["team"]),
                (
                    "mailto://u:p@example.com?to=alice%40example.com",
                    vec!["alice", "oncall", "team"]
                ),
                (
                    "mailto://u:p@example.com?to=bob%40example.com",
                    vec!["bob", "night", "oncall", "team"]
                ),
                ("ntfy://backups?priority=high&%2BX-Team=ops", vec!["team"]),
            ]
        );
        for (bad, says) in [
            ("version: 2\nurls: []\n", "version \"2\""),
            ("urls: json://x\n", "urls: expected a list"),
            ("urls:\n  - 42\n", "urls entry 1"),
            ("colour: red\n", "unknown key \"colour\""),
            ("urls:\n  - not a url\n", "is not a URL"),
            ("urls: [\n", "not valid YAML"),
        ] {
            let e = parse_yaml(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_file_is_yaml_by_its_name_or_its_first_line() {
        assert!(is_yaml(Path::new("a.yml"), "json://x"));
        assert!(!is_yaml(Path::new("a.conf"), "urls:\n"));
        assert!(is_yaml(
            Path::new(".apprise"),
            "# c\nversion: 1\nurls: []\n"
        ));
        assert!(is_yaml(Path::new(".apprise"), "urls:\n  - json://x\n"));
        assert!(!is_yaml(Path::new(".apprise"), "json://x\n"));
        assert!(!is_yaml(Path::new(".apprise"), "devops=json://x\n"));
    }

    #[test]
    fn includes_are_read_relative_to_the_file_and_a_loop_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.conf"),
            "json://a.example.com/\ninclude more.yml\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("more.yml"),
            "urls:\n  - json://b.example.com/\n",
        )
        .unwrap();
        let e = read_file(&dir.path().join("main.conf")).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].url, "json://b.example.com/");
        std::fs::write(dir.path().join("loop.conf"), "include loop.conf\n").unwrap();
        let err = read_file(&dir.path().join("loop.conf")).unwrap_err();
        assert!(err.contains("include loop"), "{err}");
        std::fs::write(
            dir.path().join("net.conf"),
            "include https://example.com/apprise.yml\n",
        )
        .unwrap();
        let err = read_file(&dir.path().join("net.conf")).unwrap_err();
        assert!(err.contains("local files only"), "{err}");
    }
}
