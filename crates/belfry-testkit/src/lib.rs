//! A real HTTP/1.1 receiver on loopback that records every request and answers from a
//! script, for belfry's tests and benchmarks. Not published; not for production.
//!
//! ```
//! use belfry_testkit::{Receiver, Reply};
//! use std::io::{Read, Write};
//!
//! let rx = Receiver::start(vec![Reply::status(503), Reply::ok()]);
//! for _ in 0..2 {
//!     let mut s = std::net::TcpStream::connect(rx.addr()).unwrap();
//!     s.write_all(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi").unwrap();
//!     let mut answer = String::new();
//!     s.read_to_string(&mut answer).unwrap();
//! }
//! let reqs = rx.requests();
//! assert_eq!(reqs.len(), 2);
//! assert_eq!(reqs[0].status_sent, 503);
//! assert_eq!(reqs[1].body, b"hi");
//! ```

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A loopback port with nothing listening on it (bound, then released): a channel that
/// refuses connections, until a test binds it again to bring the channel back.
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// A small deterministic generator (a linear congruential one) for tests that shuffle or
/// draw at random: a failing trial can be replayed from the seed it names.
pub struct Lcg(pub u64);

impl Lcg {
    /// The next draw, in `0..n` (`n` must not be 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns its last answer.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
    /// If set, the body ends with this template filled from the request (see
    /// [`Reply::echo`]).
    pub echo: Option<String>,
}

impl Reply {
    /// `200 OK` with body `ok`.
    pub fn ok() -> Self {
        Reply::status(200).body("ok")
    }

    /// An empty answer with this status.
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
            echo: None,
        }
    }

    /// With a header.
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }

    /// With a body.
    pub fn body(mut self, b: &str) -> Self {
        self.body = b.to_owned();
        self
    }

    /// Quote the request back after the body, as error pages do: `template` with
    /// `{target}`, `{headers}` (every header, `name: value` a line), `{header:NAME}` and
    /// `{body}` replaced by the request's, each as it is or, with `|percent`, `|json` or
    /// `|html` after the name, percent-encoded, JSON-escaped or HTML-escaped
    /// (`{header:authorization|json}`).
    pub fn echo(mut self, template: &str) -> Self {
        self.echo = Some(template.to_owned());
        self
    }

    /// Answer only after `d`.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

/// A request as received.
#[derive(Clone, Debug)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// When it arrived, relative to the receiver's start.
    pub at: Duration,
    /// The status it was answered with.
    pub status_sent: u16,
}

impl Request {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

struct Shared {
    script: Mutex<VecDeque<Reply>>,
    fallback: Reply,
    requests: Mutex<Vec<Request>>,
    arrived: Condvar,
    started: Instant,
}

/// A running receiver; it stops accepting when dropped.
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Receiver {
    /// Starts a receiver on 127.0.0.1 (a free port) that answers with `script` in order, then
    /// `200 ok` for ever.
    pub fn start(script: Vec<Reply>) -> Receiver {
        Receiver::start_with_fallback(script, Reply::ok())
    }

    /// Like [`Receiver::start`], answering `fallback` once the script is used up.
    pub fn start_with_fallback(script: Vec<Reply>, fallback: Reply) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        Receiver::on(listener, script, fallback)
    }

    /// Serves on an already bound listener.
    pub fn on(listener: TcpListener, script: Vec<Reply>, fallback: Reply) -> Receiver {
        let addr = listener.local_addr().expect("a bound address");
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into()),
            fallback,
            requests: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            started: Instant::now(),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("testkit-receiver".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { continue };
                    let s = s.clone();
                    std::thread::spawn(move || serve(conn, &s));
                }
            })
            .expect("spawn the receiver");
        Receiver { addr, shared }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests have arrived, or `timeout`; returns them.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Request> {
        let deadline = Instant::now() + timeout;
        let mut reqs = self.shared.requests.lock().expect("lock");
        while reqs.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            reqs = self
                .shared
                .arrived
                .wait_timeout(reqs, left)
                .expect("lock")
                .0;
        }
        reqs.clone()
    }
}

fn serve(conn: TcpStream, s: &Shared) {
    let mut w = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, target) = (method.to_owned(), target.to_owned());
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let close = headers
            .iter()
            .any(|(k, v)| k == "connection" && v.eq_ignore_ascii_case("close"));
        let reply = s
            .script
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or_else(|| s.fallback.clone());
        let request = Request {
            method,
            target,
            headers,
            body,
            at: s.started.elapsed(),
            status_sent: reply.status,
        };
        let mut body = reply.body.clone();
        if let Some(template) = &reply.echo {
            body.push_str(&fill_echo(template, &request));
        }
        {
            let mut reqs = s.requests.lock().expect("lock");
            reqs.push(request);
            s.arrived.notify_all();
        }
        if !reply.delay.is_zero() {
            std::thread::sleep(reply.delay);
        }
        let mut out = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
            reply.status,
            body.len()
        );
        for (k, v) in &reply.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&body);
        if w.write_all(out.as_bytes()).is_err() || close {
            return;
        }
    }
}

/// `template` with the request's parts put in (see [`Reply::echo`]).
fn fill_echo(template: &str, req: &Request) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let inner = &rest[open + 1..open + close];
        let (what, how) = inner.split_once('|').unwrap_or((inner, ""));
        let value = match what {
            "target" => req.target.clone(),
            "body" => String::from_utf8_lossy(&req.body).into_owned(),
            "headers" => req
                .headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}\n"))
                .collect(),
            h if h.starts_with("header:") && !h.contains('{') => req
                .header(&h["header:".len()..])
                .unwrap_or_default()
                .to_owned(),
            // Not a part's name: a brace of the template's own (`{"url": …}`).
            _ => {
                out.push('{');
                rest = &rest[open + 1..];
                continue;
            }
        };
        rest = &rest[open + close + 1..];
        out.push_str(&match how {
            "percent" => value
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect(),
            "json" => {
                let q = serde_json::Value::String(value).to_string();
                q[1..q.len() - 1].to_owned()
            }
            "html" => value
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;"),
            _ => value,
        });
    }
    out.push_str(rest);
    out
}

/// Whether `text` shows `mark` in any form a secret travels in: as it is, percent-encoded,
/// JSON-escaped (one or two layers, either order), or inside base64 (at any alignment). For
/// tests that plant a marked fake secret and check that it is hidden.
pub fn reveals(text: &str, mark: &str) -> bool {
    let mut texts = vec![text.to_owned()];
    for _ in 0..2 {
        let mut more = Vec::new();
        for t in &texts {
            more.push(percent_decode(t));
            more.push(json_unescape(t));
        }
        texts.extend(more);
    }
    texts.iter().any(|t| {
        t.contains(mark)
            || base64_runs(t).any(|run| {
                (0..4).any(|skip| {
                    let bytes = base64_decode(run.get(skip..).unwrap_or(""));
                    String::from_utf8_lossy(&bytes).contains(mark)
                })
            })
    })
}

fn percent_decode(t: &str) -> String {
    let b = t.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|&c| (c as char).to_digit(16));
        if let (b'%', Some(h), Some(l)) = (b[i], hex(i + 1), hex(i + 2)) {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_unescape(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut chars = t.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(c) => out.push(c),
                    None => out.push_str(&format!("\\u{hex}")),
                }
            }
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(e) => out.push(e),
            None => out.push('\\'),
        }
    }
    out
}

fn base64_runs(t: &str) -> impl Iterator<Item = &str> {
    t.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_')))
        .filter(|r| r.len() >= 8)
}

fn base64_decode(run: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for v in run.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The PostgreSQL server the tests use: `$BELFRY_TEST_POSTGRES`, or the one this machine kind
/// runs (`postgres://postgres@127.0.0.1:5432/test`, trust authentication).
pub fn postgres_server() -> String {
    std::env::var("BELFRY_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema of its own for one test on [`postgres_server`], named for the process, a tag and
/// a counter; dropped (with everything in it) when this value is. belfry creates it when it
/// first opens the store's [`PgSchema::url`].
#[derive(Debug)]
pub struct PgSchema {
    name: String,
}

impl PgSchema {
    /// A new, unused schema name.
    pub fn new(tag: &str) -> PgSchema {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        PgSchema {
            name: format!("belfry_{tag}_{}_{n}", std::process::id()),
        }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store URL belfry takes (`[store] url`, `$BELFRY_STORE`) for this schema.
    pub fn url(&self) -> String {
        let server = postgres_server();
        let sep = if server.contains('?') { '&' } else { '?' };
        format!("{server}{sep}schema={}", self.name)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // A server that is gone by now has nothing to clean; the test has failed already.
        if let Ok(mut c) = postgres::Client::connect(&postgres_server(), postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}
