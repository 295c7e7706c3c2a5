//! The command channel: runs a program per notification, with an argv template, never through
//! a shell.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use belfry_core::{Notification, parse_duration, placeholders};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::outcome::shorten;
use crate::url_parse::{UrlError, decode, redact_url};
use crate::{BoxFuture, Channel, Context, Message, Outcome};

/// How long a command may run when its channel does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Exit codes from `sysexits.h` that say "this will not work if you try again": usage, data,
/// input, user, host, software, OS, OS file, can't create, protocol, permission and
/// configuration errors. Everything else that is not 0 is retried.
const PERMANENT_EXITS: &[(i32, &str)] = &[
    (64, "EX_USAGE"),
    (65, "EX_DATAERR"),
    (66, "EX_NOINPUT"),
    (67, "EX_NOUSER"),
    (68, "EX_NOHOST"),
    (70, "EX_SOFTWARE"),
    (71, "EX_OSERR"),
    (72, "EX_OSFILE"),
    (73, "EX_CANTCREAT"),
    (76, "EX_PROTOCOL"),
    (77, "EX_NOPERM"),
    (78, "EX_CONFIG"),
];

/// One piece of an argument template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(&'static str),
}

/// An argument with `{name}` placeholders (`{{` and `}}` for literal braces).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Template {
    source: String,
    pieces: Vec<Piece>,
}

impl Template {
    fn parse(src: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = src.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => {
                                return Err(format!(
                                    "{{{name} is not closed (write {{{{ for a literal brace)"
                                ));
                            }
                        }
                    }
                    let name = name.trim();
                    let var = placeholders::NAMES
                        .iter()
                        .find(|v| **v == name)
                        .ok_or_else(|| {
                            format!(
                                "unknown placeholder {{{name}}} (known: {})",
                                placeholders::NAMES.join(", ")
                            )
                        })?;
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Var(var));
                }
                '}' => return Err("a lone } (write }} for a literal brace)".to_owned()),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template {
            source: src.to_owned(),
            pieces,
        })
    }

    fn fill(&self, n: &Notification) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(&placeholders::value(n, v).unwrap_or_default()),
            }
        }
        // An argument cannot hold a NUL byte; a job's output might.
        out.replace('\0', "\u{fffd}")
    }

    /// Whether the literal text of this argument looks like a credential.
    fn looks_secret(&self) -> bool {
        let text: String = self
            .pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Text(t) => Some(t.as_str()),
                Piece::Var(_) => None,
            })
            .collect();
        arg_looks_secret(&text)
    }
}

fn arg_looks_secret(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    const WORDS: &[&str] = &[
        "pass",
        "secret",
        "token",
        "key",
        "auth",
        "bearer",
        "cookie",
        "session",
        "sig",
        "credential",
    ];
    if WORDS.iter().any(|w| lower.contains(w)) {
        return true;
    }
    // A long run of letters and digits is more likely a token than a word.
    let mut run = 0;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            run += 1;
            if run >= 20 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// Runs a program for each notification: `cmd://PROGRAM?arg=…&arg=…&timeout=30s`, or in the
/// configuration `command = ["notify-send", "{title}", "{body}"]`.
///
/// - The program is started directly, never through a shell: each argument arrives as one
///   literal string, whatever the notification holds (`; rm -rf ~`, `$(id)`, quotes, new
///   lines). A bare name is looked up on `PATH`.
/// - Each argument is a template: `{job}`, `{state}`, `{title}`, `{body}`, … (the names of
///   [`belfry_core::placeholders::NAMES`]); `{{` and `}}` are literal braces. An unknown name is
///   an error when the URL is parsed, that is when the configuration is loaded.
/// - Standard input receives the notification as one line of JSON (docs/webhook.md's schema),
///   then end of file. Standard output is discarded; the end of standard error is quoted in
///   the failure reason. The environment is belfry's, plus `BELFRY_JOB`, `BELFRY_STATE`,
///   `BELFRY_KIND`, `BELFRY_TITLE`, `BELFRY_MESSAGE`, `BELFRY_NOTIFICATION_ID` and
///   `BELFRY_RUN_ID`.
/// - The program runs in its own process group. Past `timeout` (default 30 s) the whole
///   group is killed and the delivery is retried.
/// - Exit status 0 is delivered. The `sysexits.h` codes for errors that repeating cannot fix
///   (64 usage, 65 data, 66, 67, 68, 70, 71, 72, 73, 76, 77 permission, 78 configuration) are
///   permanent; any other status, or death by a signal, is retried. A program that cannot be
///   started (not found, not executable) is permanent.
///
/// In the URL form, write the program after `cmd://` (`cmd:///usr/bin/notify-send` or
/// `cmd://notify-send`), each argument as one `arg=` in order, and percent-encode `%`, `&`,
/// `#`, `?`, spaces and new lines in them (`arg=%7Btitle%7D` and `arg={title}` are the same).
#[derive(Clone)]
pub struct Command {
    program: String,
    args: Vec<Template>,
    timeout: Duration,
    describe: String,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("argv", &self.describe)
            .finish_non_exhaustive()
    }
}

/// What a URL's pieces must percent-encode to come back unchanged.
const ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'%')
    .add(b'&')
    .add(b'#')
    .add(b'?')
    .add(b'=');

impl Command {
    /// The `cmd://` URL of a configured command (`[channels.X] command = [...]`): how the
    /// configuration hands a command channel on, so that it is checked, described and built
    /// like any other channel.
    pub fn url_for(argv: &[String], timeout: Option<Duration>) -> String {
        let mut url = String::from("cmd://");
        if let Some(program) = argv.first() {
            url.extend(utf8_percent_encode(program, ENCODE));
        }
        let mut sep = '?';
        for a in argv.iter().skip(1) {
            url.push(sep);
            url.push_str("arg=");
            url.extend(utf8_percent_encode(a, ENCODE));
            sep = '&';
        }
        if let Some(t) = timeout {
            url.push(sep);
            url.push_str(&format!("timeout={}ms", t.as_millis()));
        }
        url
    }

    pub(crate) fn from_url(raw: &str) -> Result<Self, UrlError> {
        let raw = raw.trim();
        let after = raw
            .split_once("://")
            .map(|(_, r)| r)
            .ok_or_else(|| UrlError::new(raw, "it has no scheme://"))?;
        let (prog, query) = after.split_once('?').unwrap_or((after, ""));
        let program = decode(prog);
        if program.trim().is_empty() {
            return Err(UrlError::new(
                raw,
                "it names no program: cmd:///path/to/program?arg=… or cmd://program?arg=…",
            ));
        }
        if program.contains('\0') {
            return Err(UrlError::new(raw, "the program name holds a NUL byte"));
        }
        let mut args = Vec::new();
        let mut timeout = DEFAULT_TIMEOUT;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (decode(k), decode(v));
            match k.as_str() {
                "arg" => {
                    let t = Template::parse(&v).map_err(|why| {
                        UrlError::new(raw, format!("argument {}: {why}", args.len() + 1))
                    })?;
                    args.push(t);
                }
                "timeout" => {
                    timeout = parse_duration(&v)
                        .ok()
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| {
                            UrlError::new(
                                raw,
                                format!("timeout={v:?} is not a duration such as 30s"),
                            )
                        })?;
                }
                other => {
                    return Err(UrlError::new(
                        raw,
                        format!("unknown option {other:?} for cmd:// (known: arg, timeout)"),
                    ));
                }
            }
        }
        let mut describe = format!("cmd://{}", quote(&program));
        for a in &args {
            describe.push(' ');
            if a.looks_secret() {
                describe.push_str("***");
            } else if a.source.contains("://") {
                describe.push_str(&redact_url(&a.source));
            } else {
                describe.push_str(&quote(&a.source));
            }
        }
        Ok(Command {
            program,
            args,
            timeout,
            describe,
        })
    }

    /// Why the program of a `cmd://` URL could not be started from here, or `None` if it can
    /// (or `url` is not a valid `cmd://` URL: parsing says why). A path must name an
    /// executable file; a bare name must be one in a `PATH` directory, as `execvp` looks.
    /// Checked when the configuration is loaded, so that a channel that could never run is an
    /// error then rather than an alert lost at its first delivery.
    pub fn program_problem(url: &str) -> Option<String> {
        let (scheme, _) = url.trim().split_once("://")?;
        if !scheme.eq_ignore_ascii_case("cmd") {
            return None;
        }
        let program = Command::from_url(url).ok()?.program;
        let shown = quote(&program);
        if program.contains('/') {
            return executable_problem(Path::new(&program)).map(|why| format!("{shown} {why}"));
        }
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
        let mut found = None;
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(&program);
            match executable_problem(&candidate) {
                None => return None,
                Some(why) if found.is_none() && candidate.exists() => {
                    found = Some(format!("{} {why}", candidate.display()));
                }
                Some(_) => {}
            }
        }
        Some(found.unwrap_or_else(|| {
            format!("{shown} is not found on PATH (install it, or give its full path)")
        }))
    }

    /// The program and its arguments for `n`, as they will be passed (secrets included).
    fn argv(&self, n: &Notification) -> Vec<String> {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().map(|a| a.fill(n)))
            .collect()
    }

    /// Text from the program (its standard error) made safe to store: addresses redacted,
    /// secret-looking arguments blanked.
    fn scrub(&self, text: &str, argv: &[String]) -> String {
        let mut s = text.to_owned();
        for (a, t) in argv.iter().skip(1).zip(&self.args) {
            if t.looks_secret() && a.len() >= 4 {
                s = s.replace(a.as_str(), "***");
            }
        }
        s.split_inclusive(char::is_whitespace)
            .map(|w| {
                if w.contains("://") {
                    let trail: String = w.chars().rev().take_while(|c| c.is_whitespace()).collect();
                    format!("{}{trail}", redact_url(w.trim_end()))
                } else {
                    w.to_owned()
                }
            })
            .collect()
    }

    async fn run(&self, msg: &Message<'_>) -> Outcome {
        let n = msg.notification;
        let argv = self.argv(n);
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("BELFRY_JOB", &n.job)
            .env("BELFRY_STATE", n.state.name())
            .env(
                "BELFRY_KIND",
                placeholders::value(n, "kind").unwrap_or_default(),
            )
            .env("BELFRY_TITLE", &n.title)
            .env("BELFRY_MESSAGE", &n.message)
            .env("BELFRY_NOTIFICATION_ID", &n.id)
            .env("BELFRY_RUN_ID", n.run_id.as_deref().unwrap_or(""))
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let what = format!("cannot start {}: {e}", quote(&self.program));
                return match e.kind() {
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                        Outcome::permanent(what)
                    }
                    _ => Outcome::retry(what),
                };
            }
        };
        // Whatever happens from here (a timeout, the caller giving up), the group dies with
        // this guard unless the program has been seen to exit.
        let mut group = GroupGuard(child.id());
        let stdin = child.stdin.take();
        let stderr = child.stderr.take();
        let json = {
            let mut j = serde_json::to_vec(n).expect("a notification serialises");
            j.push(b'\n');
            j
        };
        let feed = async move {
            if let Some(mut s) = stdin {
                // A program that does not read its input closes the pipe: not an error.
                let _ = s.write_all(&json).await;
                let _ = s.shutdown().await;
            }
        };
        let mut stderr_task = tokio::spawn(read_tail(stderr, 4096));
        let waited =
            tokio::time::timeout(self.timeout, async { tokio::join!(feed, child.wait()).1 }).await;
        let status = match waited {
            Err(_) => {
                group.kill();
                let _ = child.wait().await;
                stderr_task.abort();
                return Outcome::retry(format!(
                    "{} did not finish within {}; its process group was killed",
                    quote(&self.program),
                    belfry_core::format_duration(self.timeout)
                ));
            }
            Ok(Err(e)) => {
                group.kill();
                stderr_task.abort();
                return Outcome::retry(format!("cannot wait for {}: {e}", quote(&self.program)));
            }
            Ok(Ok(status)) => {
                group.disarm();
                status
            }
        };
        // A process the program left behind may hold standard error open: do not wait for it.
        let err = match tokio::time::timeout(Duration::from_millis(200), &mut stderr_task).await {
            Ok(Ok(bytes)) => bytes,
            _ => {
                stderr_task.abort();
                Vec::new()
            }
        };
        if status.success() {
            return Outcome::Delivered;
        }
        let err = String::from_utf8_lossy(&err);
        let last = err
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(|l| format!(": {}", shorten(&self.scrub(l, &argv), 300)))
            .unwrap_or_default();
        let prog = quote(&self.program);
        match (status.code(), signal_of(&status)) {
            (Some(code), _) => match PERMANENT_EXITS.iter().find(|(c, _)| *c == code) {
                Some((_, name)) => {
                    Outcome::permanent(format!("{prog} exited with {code} ({name}){last}"))
                }
                None => Outcome::retry(format!("{prog} exited with {code}{last}")),
            },
            (None, Some(sig)) => Outcome::retry(format!("{prog} was killed by signal {sig}{last}")),
            (None, None) => Outcome::retry(format!("{prog} failed{last}")),
        }
    }
}

fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

/// Kills a process group when dropped, unless disarmed.
struct GroupGuard(Option<u32>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pid) = self.0.take()
            && let Some(pid) = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads `r` to its end, keeping the last `max` bytes.
async fn read_tail(r: Option<tokio::process::ChildStderr>, max: usize) -> Vec<u8> {
    let Some(mut r) = r else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                kept.extend_from_slice(&buf[..k]);
                if kept.len() > max {
                    kept.drain(..kept.len() - max);
                }
            }
        }
    }
    kept
}

/// An argument as a reader would type it: bare when plain, in double quotes otherwise.
/// Why `path` cannot be run as a program, or `None` if it can.
fn executable_problem(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("does not exist".into()),
        Err(e) => Some(format!("cannot be read ({e})")),
        Ok(m) if m.is_dir() => Some("is a directory".into()),
        Ok(_) => match rustix::fs::access(path, rustix::fs::Access::EXEC_OK) {
            Ok(()) => None,
            Err(_) => Some("is not executable (chmod +x)".into()),
        },
    }
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || "-_./:{}@+=,%".contains(c))
    {
        s.to_owned()
    } else {
        let escaped: String = s
            .chars()
            .flat_map(|c| match c {
                '"' => vec!['\\', '"'],
                '\\' => vec!['\\', '\\'],
                '\n' => vec!['\\', 'n'],
                c => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    }
}

impl Channel for Command {
    fn scheme(&self) -> &'static str {
        "cmd"
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn send<'a>(&'a self, msg: &'a Message<'a>, _cx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(self.run(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_know_their_placeholders_and_escapes() {
        let t = Template::parse("[{job}] {{literal}} {state}").unwrap();
        assert_eq!(
            t.pieces,
            [
                Piece::Text("[".into()),
                Piece::Var("job"),
                Piece::Text("] {literal} ".into()),
                Piece::Var("state"),
            ]
        );
        let e = Template::parse("{jbo}").unwrap_err();
        assert!(
            e.contains("unknown placeholder {jbo}") && e.contains("job"),
            "{e}"
        );
        assert!(Template::parse("{job").unwrap_err().contains("not closed"));
        assert!(Template::parse("a } b").unwrap_err().contains("lone }"));
    }

    #[test]
    fn a_program_that_cannot_be_started_is_named_with_the_reason() {
        // Found: by path, and by bare name on PATH (as execvp looks).
        assert_eq!(Command::program_problem("cmd:///bin/sh?arg=x"), None);
        assert_eq!(Command::program_problem("cmd://sh"), None);
        let missing = Command::program_problem("cmd:///no/such/notifier").unwrap();
        assert!(missing.contains("does not exist"), "{missing}");
        let unknown = Command::program_problem("cmd://belfry-no-such-notifier").unwrap();
        assert!(unknown.contains("not found on PATH"), "{unknown}");
        // A file without execute permission (even root needs an x bit for a file).
        let plain = Command::program_problem("cmd:///etc/passwd").unwrap();
        assert!(plain.contains("not executable"), "{plain}");
        let dir = Command::program_problem("cmd:///tmp").unwrap();
        assert!(dir.contains("is a directory"), "{dir}");
        // Other schemes are not programs.
        assert_eq!(Command::program_problem("json://127.0.0.1/x"), None);
    }

    #[test]
    fn config_commands_round_trip_through_their_url() {
        let argv: Vec<String> = [
            "/usr/bin/notify-send",
            "-u",
            "critical",
            "{title}",
            "a & b = c? #1 100% {{x}}\nnext",
            "",
        ]
        .map(String::from)
        .to_vec();
        let url = Command::url_for(&argv, Some(Duration::from_millis(1500)));
        assert!(!url.contains(' ') && !url.contains('\n'), "{url}");
        let c = Command::from_url(&url).unwrap();
        assert_eq!(c.program, "/usr/bin/notify-send");
        let sources: Vec<&str> = c.args.iter().map(|a| a.source.as_str()).collect();
        assert_eq!(
            sources,
            &argv[1..].iter().map(String::as_str).collect::<Vec<_>>()[..]
        );
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(
            Command::from_url("cmd://notify-send").unwrap().timeout,
            DEFAULT_TIMEOUT
        );
    }

    #[test]
    fn bad_commands_are_refused_with_the_argument_named() {
        for (raw, needle) in [
            ("cmd://", "names no program"),
            (
                "cmd://x?arg=ok&arg={nope}",
                "argument 2: unknown placeholder {nope}",
            ),
            ("cmd://x?timeout=soon", "timeout=\"soon\""),
            ("cmd://x?args=1", "unknown option \"args\""),
        ] {
            let e = Command::from_url(raw).unwrap_err().to_string();
            assert!(e.contains(needle), "{raw}: {e}");
        }
    }

    #[test]
    fn descriptions_show_the_argv_template_with_secrets_blanked() {
        let c = Command::from_url(
            "cmd://curl?arg=-H&arg=Authorization:%20Bearer%20abc&arg=--data&arg={body}\
             &arg=https://u:pw@example.com/hook&arg=AKIAIOSFODNN7EXAMPLEKEY1",
        )
        .unwrap();
        assert_eq!(
            c.describe(),
            "cmd://curl -H *** --data {body} https://u:***@example.com/… ***"
        );
        assert!(!format!("{c:?}").contains("abc"));
    }

    #[test]
    fn stderr_is_scrubbed_of_secret_arguments_and_addresses() {
        let c = Command::from_url("cmd://x?arg=--token&arg=tok-SECRET-1234").unwrap();
        let argv = vec![
            "x".to_owned(),
            "--token".to_owned(),
            "tok-SECRET-1234".to_owned(),
        ];
        let s = c.scrub(
            "bad tok-SECRET-1234 for https://u:pw@h.example/p?q=1 now",
            &argv,
        );
        assert_eq!(s, "bad *** for https://u:***@h.example/… now");
    }
}
