//! No two files of one crate import each other, directly or around a longer circle.
//!
//! A circle of imports means none of its files can be read, tested or moved without the others,
//! so the layout stops showing which part is built on which. This test reads the sources of
//! every workspace crate (`crates/*/src`), builds the graph "file A uses something of file B",
//! and reports every strongly connected component of more than one file, with the files and one
//! circle of edges through them.
//!
//! What counts as an edge from the file of module A to the file of module B:
//!
//! - a `use` path or a path in code that names B or one of B's items: `crate::b::…`,
//!   `super::b::…`, `self::b::…`, or `b::…` where `b` is a module declared in A;
//! - `crate::Item` (or `super::Item`) for an item defined in B, found by following `pub use`
//!   re-exports to where the item is defined: `crate::Context`, re-exported by `lib.rs` from
//!   `http.rs`, is an edge to `http.rs`, while `crate::Channel`, defined in `lib.rs`, is an edge
//!   to `lib.rs`.
//!
//! What does not count:
//!
//! - `mod b;`: a parent declaring its child is the tree, not an import. A child that uses its
//!   parent's items does import it, so a parent that also uses its child's items is a circle;
//! - a `pub use b::Item` re-export, unless the re-exporting file itself uses `Item` too (a
//!   facade that only passes names on depends on nothing);
//! - code under `#[cfg(test)]`: a module's tests may reach the whole crate through its front
//!   door without that being part of the layout;
//! - paths to other crates, and paths inside comments and string literals.
//!
//! The crates in [`MUST_BE_FREE`] fail the test when they have a circle; the circles of the
//! others are printed, so that adding a crate to that list is the whole change once it is clean.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};

/// Crates whose files must not import each other in a circle: every crate of the workspace.
const MUST_BE_FREE: &[&str] = &[
    "belfry",
    "belfry-cli",
    "belfry-core",
    "belfry-store",
    "belfry-channels",
    "belfry-macros",
    "belfry-server",
    "belfry-testkit",
];

#[test]
fn no_workspace_crate_has_an_import_circle() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&crates)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", crates.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("src").is_dir())
        .collect();
    dirs.sort();
    let names: Vec<String> = dirs
        .iter()
        .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for must in MUST_BE_FREE {
        assert!(
            names.iter().any(|n| n == must),
            "{must} is listed as circle-free but there is no crates/{must}/src"
        );
    }
    let mut failures = Vec::new();
    for (dir, name) in dirs.iter().zip(&names) {
        let files = read_sources(&dir.join("src"));
        let report = circles(&files);
        if report.is_empty() {
            continue;
        }
        let text = format!("crates/{name}/src:\n{}", report.join("\n"));
        if MUST_BE_FREE.contains(&name.as_str()) {
            failures.push(text);
        } else {
            eprintln!("not yet circle-free (reported, not failed): {text}");
        }
    }
    assert!(
        failures.is_empty(),
        "files import each other in a circle:\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_made_up_circle_is_found_with_an_edge_each_way() {
    let files = tree(&[
        (
            "lib.rs",
            "mod a;\nmod b;\nmod c;\npub use a::Thing;\npub struct Root;",
        ),
        ("a.rs", "use crate::b::helper;\npub struct Thing;"),
        // b reaches a through the re-export in lib.rs: still an edge to a.rs.
        ("b.rs", "pub fn helper() -> crate::Thing { crate::Thing }"),
        (
            "c.rs",
            "use crate::Root; // c only uses the root: no circle",
        ),
    ]);
    let report = circles(&files);
    assert_eq!(report.len(), 1, "{report:?}");
    assert!(report[0].contains("a.rs, b.rs"), "{}", report[0]);
    assert!(
        report[0].contains("a.rs -> b.rs (crate::b::helper)"),
        "{}",
        report[0]
    );
    assert!(
        report[0].contains("b.rs -> a.rs (crate::Thing)"),
        "{}",
        report[0]
    );
    assert!(!report[0].contains("c.rs"), "{}", report[0]);
}

#[test]
fn a_child_using_its_parent_and_the_parent_using_the_child_is_a_circle() {
    let files = tree(&[
        ("lib.rs", "mod fam;"),
        (
            "fam/mod.rs",
            "mod parse;\npub(crate) const MAX: u32 = 3;\nfn f() { parse::go(); }",
        ),
        ("fam/parse.rs", "pub(crate) fn go() -> u32 { super::MAX }"),
    ]);
    let report = circles(&files);
    assert_eq!(report.len(), 1, "{report:?}");
    assert!(
        report[0].contains("fam/mod.rs, fam/parse.rs"),
        "{}",
        report[0]
    );
}

#[test]
fn a_tree_without_a_circle_passes() {
    let files = tree(&[
        (
            "lib.rs",
            "mod fam;\nmod shared;\npub use fam::Fam;\npub use shared::Bits;\n\
             /// crate::fam::Fam in a comment is no edge\npub fn f() {}",
        ),
        (
            "fam/mod.rs",
            "mod parse;\npub use parse::Fam;\nuse super::shared::Bits;",
        ),
        (
            "fam/parse.rs",
            "use crate::shared::Bits;\npub struct Fam(Bits);",
        ),
        // A string that spells a path, and tests that use the whole crate, are not edges.
        (
            "shared.rs",
            "pub struct Bits;\nconst S: &str = \"crate::fam::Fam\";\n\
             #[cfg(test)]\nmod tests { use crate::fam::Fam; use super::*; }",
        ),
    ]);
    assert_eq!(circles(&files), Vec::<String>::new());
}

/// Every `.rs` file under `src`, by its path relative to `src` (with `/` separators).
fn read_sources(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                let rel = path.strip_prefix(src).unwrap_or(&path);
                let rel = rel.components().map(|c| c.as_os_str().to_string_lossy());
                out.insert(rel.collect::<Vec<_>>().join("/"), text);
            }
        }
    }
    out
}

fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

/// One line per strongly connected component of more than one file: the files, then a circle
/// through them, each edge with the path that made it.
fn circles(files: &BTreeMap<String, String>) -> Vec<String> {
    let krate = Crate::read(files);
    let graph = krate.edges();
    let mut out = Vec::new();
    for comp in strongly_connected(&graph) {
        if comp.len() < 2 {
            continue;
        }
        let circle = shortest_circle(&graph, &comp);
        let steps: Vec<String> = circle
            .windows(2)
            .map(|w| format!("{} -> {} ({})", w[0], w[1], graph[&w[0]][&w[1]]))
            .collect();
        out.push(format!(
            "  {} files: {}\n    e.g. {}",
            comp.len(),
            comp.iter().cloned().collect::<Vec<_>>().join(", "),
            steps.join(", ")
        ));
    }
    out
}

/// A token of Rust source, as far as paths need: identifiers and punctuation. Comments, strings
/// and character literals are dropped; lifetimes are kept as punctuation so they never look
/// like a path.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

fn tokenize(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_string(&c, i + 1);
        } else if (ch == 'r' || ch == 'b')
            && let Some(end) = raw_string_end(&c, i)
        {
            i = end;
        } else if ch == '\'' {
            // A character literal ('a', '\n', '\u{1F514}') or a lifetime ('a, 'static).
            if c.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                out.push(Tok::Punct('\''));
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            // b"…" and b'…' literals: the prefix was read as a word.
            if word == "b" && matches!(c.get(i), Some('"')) {
                i = skip_string(&c, i + 1);
            } else if word == "b" && c.get(i) == Some(&'\'') {
                i += 1;
                while i < c.len() && c[i] != '\'' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            } else {
                out.push(Tok::Ident(word.trim_start_matches("r#").to_owned()));
            }
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push(Tok::PathSep);
            i += 2;
        } else if ch.is_whitespace() {
            i += 1;
        } else {
            out.push(Tok::Punct(ch));
            i += 1;
        }
    }
    out
}

/// The index just past a `"…"` string whose contents start at `i`.
fn skip_string(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i] != '"' {
        i += if c[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

/// If a raw string (`r"…"`, `r#"…"#`, `br#"…"#`) starts at `i`, the index just past it.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if c[j] == 'b' {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if c.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < c.len() {
        if c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')) {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(c.len())
}

/// A module's path from its crate root; the root (`lib.rs`, `main.rs`, `bin/x.rs`) is the
/// first element, so a crate's library and binaries keep apart.
type ModPath = Vec<String>;

/// One `use` or code path found in a file.
struct Mention {
    /// The module the path was written in (inline modules included).
    within: ModPath,
    segments: Vec<String>,
    /// From a `pub use`: counts only if the file uses the imported name itself.
    reexport: Option<String>,
}

struct Crate {
    /// Module path → the file that holds it (an inline module maps to its file).
    modules: HashMap<ModPath, String>,
    /// (module, name) → where a `pub use` in that module says the name comes from.
    reexports: HashMap<(ModPath, String), (ModPath, Vec<String>)>,
    mentions: Vec<(String, Mention)>,
    /// Per file, the identifiers it uses outside `use` declarations.
    used_names: HashMap<String, BTreeSet<String>>,
}

impl Crate {
    fn read(files: &BTreeMap<String, String>) -> Crate {
        let mut krate = Crate {
            modules: HashMap::new(),
            reexports: HashMap::new(),
            mentions: Vec::new(),
            used_names: HashMap::new(),
        };
        let mut roots: Vec<&String> = files
            .keys()
            .filter(|k| *k == "lib.rs" || *k == "main.rs" || is_bin(k))
            .collect();
        roots.sort();
        let mut queue: VecDeque<(String, ModPath)> = roots
            .into_iter()
            .map(|r| (r.clone(), vec![r.clone()]))
            .collect();
        while let Some((file, path)) = queue.pop_front() {
            let Some(text) = files.get(&file) else {
                continue;
            };
            krate.modules.insert(path.clone(), file.clone());
            let children = krate.scan(&file, &path, &tokenize(text));
            for child in children {
                let dir = child_dir(&file);
                let mut child_path = path.clone();
                child_path.push(child.clone());
                for candidate in [format!("{dir}{child}.rs"), format!("{dir}{child}/mod.rs")] {
                    if files.contains_key(&candidate) {
                        queue.push_back((candidate, child_path.clone()));
                        break;
                    }
                }
            }
        }
        krate
    }

    /// Reads one file's tokens: records its mentions, re-exports, inline modules and used
    /// names, and returns the child modules it declares with `mod x;`.
    fn scan(&mut self, file: &str, path: &ModPath, toks: &[Tok]) -> Vec<String> {
        let mut children = Vec::new();
        // The inline modules we are in, each with the brace depth its block opened at.
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut depth = 0usize;
        let mut i = 0;
        let mut names = BTreeSet::new();
        while i < toks.len() {
            let within: ModPath = path
                .iter()
                .cloned()
                .chain(inline.iter().map(|(n, _)| n.clone()))
                .collect();
            match &toks[i] {
                Tok::Punct('#') if is_cfg_test(toks, i) => {
                    i = skip_item(toks, skip_attributes(toks, i));
                    continue;
                }
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    depth = depth.saturating_sub(1);
                    if inline.last().is_some_and(|(_, d)| *d == depth) {
                        inline.pop();
                    }
                }
                Tok::Ident(kw) if kw == "mod" => {
                    if let Some(Tok::Ident(name)) = toks.get(i + 1) {
                        match toks.get(i + 2) {
                            // `mod x;` inside an inline module is not followed (none here).
                            Some(Tok::Punct(';')) if inline.is_empty() => {
                                children.push(name.clone());
                            }
                            Some(Tok::Punct('{')) => {
                                let mut m = within.clone();
                                m.push(name.clone());
                                self.modules.insert(m, file.to_owned());
                                inline.push((name.clone(), depth));
                                depth += 1;
                                i += 3;
                                continue;
                            }
                            _ => {}
                        }
                    }
                }
                Tok::Ident(kw) if kw == "use" => {
                    let public = i > 0
                        && (toks[i - 1] == Tok::Ident("pub".into())
                            || toks[i - 1] == Tok::Punct(')'));
                    let end = toks[i..]
                        .iter()
                        .position(|t| *t == Tok::Punct(';'))
                        .map_or(toks.len(), |p| i + p);
                    for (segments, alias) in expand_use(&toks[i + 1..end]) {
                        if public {
                            let name = alias.clone();
                            if name != "*" && name != "self" {
                                self.reexports.insert(
                                    (within.clone(), name.clone()),
                                    (within.clone(), segments.clone()),
                                );
                            }
                            self.mentions.push((
                                file.to_owned(),
                                Mention {
                                    within: within.clone(),
                                    segments,
                                    reexport: Some(name),
                                },
                            ));
                        } else {
                            self.mentions.push((
                                file.to_owned(),
                                Mention {
                                    within: within.clone(),
                                    segments,
                                    reexport: None,
                                },
                            ));
                        }
                    }
                    i = end + 1;
                    continue;
                }
                Tok::Ident(word) => {
                    let after_dollar = i > 0 && toks[i - 1] == Tok::Punct('$');
                    let after_sep = i > 0 && toks[i - 1] == Tok::PathSep;
                    names.insert(word.clone());
                    if !after_dollar && !after_sep && toks.get(i + 1) == Some(&Tok::PathSep) {
                        let mut segments = vec![word.clone()];
                        let mut j = i + 1;
                        while toks.get(j) == Some(&Tok::PathSep) {
                            match toks.get(j + 1) {
                                Some(Tok::Ident(s)) => {
                                    segments.push(s.clone());
                                    names.insert(s.clone());
                                    j += 2;
                                }
                                _ => break,
                            }
                        }
                        self.mentions.push((
                            file.to_owned(),
                            Mention {
                                within,
                                segments,
                                reexport: None,
                            },
                        ));
                        i = j;
                        continue;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        self.used_names
            .entry(file.to_owned())
            .or_default()
            .extend(names);
        children
    }

    /// The file whose module or item the path names, if it is in this crate.
    fn resolve(&self, within: &ModPath, segments: &[String], hops: usize) -> Option<String> {
        if hops > 16 || segments.is_empty() {
            return None;
        }
        let (mut base, rest): (ModPath, &[String]) = match segments[0].as_str() {
            "crate" => (within[..1].to_vec(), &segments[1..]),
            "self" => (within.clone(), &segments[1..]),
            "super" => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                if ups >= within.len() {
                    return None;
                }
                (within[..within.len() - ups].to_vec(), &segments[ups..])
            }
            first => {
                let mut child = within.clone();
                child.push(first.to_owned());
                if self.modules.contains_key(&child) {
                    (within.clone(), segments)
                } else {
                    return None;
                }
            }
        };
        let mut rest = rest;
        while let Some(seg) = rest.first() {
            let mut next = base.clone();
            next.push(seg.clone());
            if self.modules.contains_key(&next) {
                base = next;
                rest = &rest[1..];
            } else {
                break;
            }
        }
        if let Some(item) = rest.first()
            && let Some((from, target)) = self.reexports.get(&(base.clone(), item.clone()))
        {
            // `pub use x::Item as Item`: follow to where Item is defined. A target that is not
            // in this crate leaves the re-exporting module as the edge.
            if let Some(found) = self.resolve(from, target, hops + 1) {
                return Some(found);
            }
        }
        self.modules.get(&base).cloned()
    }

    /// file → (file it uses → the first path that made the edge).
    fn edges(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for file in self.modules.values() {
            graph.entry(file.clone()).or_default();
        }
        for (file, m) in &self.mentions {
            if let Some(name) = &m.reexport {
                let uses_it =
                    name != "*" && self.used_names.get(file).is_some_and(|n| n.contains(name));
                if !uses_it {
                    continue;
                }
            }
            if let Some(target) = self.resolve(&m.within, &m.segments, 0)
                && target != *file
            {
                graph
                    .entry(file.clone())
                    .or_default()
                    .entry(target)
                    .or_insert_with(|| m.segments.join("::"));
            }
        }
        graph
    }
}

fn is_bin(file: &str) -> bool {
    file.strip_prefix("bin/")
        .is_some_and(|rest| !rest.contains('/'))
}

/// The directory (with a trailing `/`, or empty for `src`) where `file`'s `mod x;` looks.
fn child_dir(file: &str) -> String {
    let (dir, name) = match file.rsplit_once('/') {
        Some((d, n)) => (format!("{d}/"), n),
        None => (String::new(), file),
    };
    let is_root = dir.is_empty() && (name == "lib.rs" || name == "main.rs");
    if is_root || name == "mod.rs" {
        dir
    } else {
        format!("{dir}{}/", name.trim_end_matches(".rs"))
    }
}

/// Whether the attribute starting at `i` (`#[…]`) is `#[cfg(test)]`.
fn is_cfg_test(toks: &[Tok], i: usize) -> bool {
    let want = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    toks.get(i..i + want.len()) == Some(&want[..])
}

/// The index past every attribute starting at `i`.
fn skip_attributes(toks: &[Tok], mut i: usize) -> usize {
    while toks.get(i) == Some(&Tok::Punct('#')) {
        let mut depth = 0usize;
        i += 1;
        while i < toks.len() {
            match toks[i] {
                Tok::Punct('[') => depth += 1,
                Tok::Punct(']') => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    i
}

/// The index past the item starting at `i`: its `;` or its closing brace, whichever ends it.
fn skip_item(toks: &[Tok], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < toks.len() {
        match toks[i] {
            Tok::Punct(';') if depth == 0 => return i + 1,
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// The paths a `use` tree stands for, each with the name it brings in:
/// `a::{b, c::{d as e}}` → (`a::b`, `b`), (`a::c::d`, `e`).
fn expand_use(toks: &[Tok]) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    expand_into(toks, &mut i, Vec::new(), &mut out);
    out
}

fn expand_into(
    toks: &[Tok],
    i: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) {
    let mut path = prefix;
    while *i < toks.len() {
        match &toks[*i] {
            Tok::Ident(s) if s == "as" => {
                if let Some(Tok::Ident(alias)) = toks.get(*i + 1) {
                    *i += 2;
                    out.push((path, alias.clone()));
                    return;
                }
                *i += 1;
            }
            Tok::Ident(s) => {
                path.push(s.clone());
                *i += 1;
            }
            Tok::Punct('*') => {
                *i += 1;
                out.push((path, "*".into()));
                return;
            }
            Tok::PathSep => *i += 1,
            Tok::Punct('{') => {
                *i += 1;
                while *i < toks.len() {
                    if toks[*i] == Tok::Punct('}') {
                        *i += 1;
                        break;
                    }
                    expand_into(toks, i, path.clone(), out);
                    if toks.get(*i) == Some(&Tok::Punct(',')) {
                        *i += 1;
                    }
                }
                return;
            }
            Tok::Punct(',') | Tok::Punct('}') => break,
            _ => *i += 1,
        }
    }
    if let Some(last) = path.last().cloned() {
        let name = if last == "self" && path.len() > 1 {
            path.pop();
            path.last().cloned().unwrap_or(last)
        } else {
            last
        };
        out.push((path, name));
    }
}

/// Tarjan's strongly connected components, each as a sorted set of files.
fn strongly_connected(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<BTreeSet<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeMap<String, String>>,
        index: HashMap<&'g str, usize>,
        low: HashMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flat_map(|m| m.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.insert(w.to_owned());
                if w == v {
                    break;
                }
            }
            s.out.push(comp);
        }
    }
    let mut s = State {
        graph,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

/// A shortest circle inside `comp` through its first file, as a list of files that starts and
/// ends with that file.
fn shortest_circle(
    graph: &BTreeMap<String, BTreeMap<String, String>>,
    comp: &BTreeSet<String>,
) -> Vec<String> {
    let Some(start) = comp.iter().next() else {
        return Vec::new();
    };
    let mut came_from: HashMap<&str, &str> = HashMap::new();
    let mut queue = VecDeque::from([start.as_str()]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flat_map(|m| m.keys()) {
            if !comp.contains(w) {
                continue;
            }
            if w == start {
                let mut path = vec![start.clone()];
                let mut at = v;
                while at != start {
                    path.push(at.to_owned());
                    at = came_from[at];
                }
                path.push(start.clone());
                path.reverse();
                return path;
            }
            if !came_from.contains_key(w.as_str()) {
                came_from.insert(w.as_str(), v);
                queue.push_back(w.as_str());
            }
        }
    }
    vec![start.clone()]
}
