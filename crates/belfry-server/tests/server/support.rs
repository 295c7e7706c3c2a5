//! What the tests share: a server in a temporary state directory, a raw HTTP/1.1 client (raw,
//! so that a test can send anything, malformed or not), and reading what the store shows.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use belfry::Config;
use belfry_server::{Running, Server};
use belfry_store::Store;

/// A server on a free loopback port, with its state directory.
pub struct TestServer {
    pub running: Option<Running>,
    pub addr: SocketAddr,
    pub home: tempfile::TempDir,
    pub config: Config,
}

impl TestServer {
    /// Starts a server with `toml` as its belfry.toml, in a new temporary state directory.
    pub fn start(toml: &str) -> TestServer {
        let home = tempfile::tempdir().expect("a temporary directory");
        TestServer::start_in(toml, home)
    }

    /// Starts a server with `toml` in the state directory `home`.
    pub fn start_in(toml: &str, home: tempfile::TempDir) -> TestServer {
        let config = Config::parse(toml, "test.toml").expect("the test's configuration parses");
        let running = Server::start(config.clone(), home.path(), "127.0.0.1:0".parse().unwrap())
            .expect("the server starts");
        TestServer {
            addr: running.addr(),
            running: Some(running),
            home,
            config,
        }
    }

    /// A store handle on the server's store.
    pub fn store(&self) -> Store {
        Store::open(self.config.store_location(self.home.path())).expect("the store opens")
    }

    /// The state directory.
    #[allow(dead_code)]
    pub fn home(&self) -> PathBuf {
        self.home.path().to_path_buf()
    }

    /// Sends one request and reads the answer.
    pub fn request(&self, method: &str, target: &str, body: &[u8]) -> Resp {
        request(self.addr, method, target, &[], body)
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `method target` with `headers` and `body` on a new connection (closed after).
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    send_raw(addr, &bytes).unwrap_or_else(|e| panic!("{method} {target}: {e}"))
}

/// Sends raw bytes and parses the answer.
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Result<Resp, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(bytes).map_err(|e| format!("write: {e}"))?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| format!("read: {e}"))?;
    parse_response(&out)
}

fn parse_response(out: &[u8]) -> Result<Resp, String> {
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no complete answer: {:?}", String::from_utf8_lossy(out)))?;
    let head = String::from_utf8_lossy(&out[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = out[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[i + 4 + n..];
    }
    out
}

/// The job's row as the store shows it.
pub fn job(store: &Store, name: &str) -> Option<belfry_store::JobRow> {
    store
        .jobs()
        .expect("the store lists its jobs")
        .into_iter()
        .find(|j| j.name == name)
}

/// Whether a path exists (for the state directory's files).
#[allow(dead_code)]
pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// A kept ping, as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub kind: &'static str,
    pub exit: Option<u8>,
    pub body: String,
}

/// The job's kept pings, newest first.
pub fn pings(store: &Store, name: &str) -> Vec<Kept> {
    let mut rows = store.pings(name, 1000).expect("the store lists pings");
    rows.sort_by_key(|p| std::cmp::Reverse(p.id));
    rows.into_iter()
        .map(|p| Kept {
            kind: p.kind.name(),
            exit: p.kind.exit_status(),
            body: p.body,
        })
        .collect()
}

/// The job's UUID.
pub fn uuid_of(store: &Store, name: &str) -> uuid::Uuid {
    store
        .check(belfry_store::JobRef::Name(name))
        .expect("the store reads checks")
        .unwrap_or_else(|| panic!("no job {name}"))
        .uuid
}

/// The ids of the job's runs that are going.
pub fn running(store: &Store, name: &str) -> Vec<String> {
    store
        .running_runs()
        .expect("the store lists running runs")
        .into_iter()
        .filter(|r| r.job == name)
        .map(|r| r.id)
        .collect()
}
