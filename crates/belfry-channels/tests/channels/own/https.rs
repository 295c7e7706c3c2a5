//! An HTTPS webhook against a real TLS server on loopback whose certificate no system trusts:
//! refused by default, accepted with Apprise's `verify=no`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use belfry_channels::{Outcome, parse};

use super::support::TestCa;
use crate::{problem, send};

/// A Python HTTPS server with the test CA's certificate for 127.0.0.1; each request's method,
/// path and body come back on a channel, one line each.
struct TlsServer {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<String>,
    _ca: TestCa,
}

const SERVER: &str = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        print("POST", self.path, body.decode(), flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("PORT", srv.server_address[1], flush=True)
srv.serve_forever()
"#;

impl TlsServer {
    fn start() -> TlsServer {
        let ca = TestCa::new();
        let mut child = Command::new("python3")
            .args(["-c", SERVER])
            .arg(ca.dir.path().join("server.pem"))
            .arg(ca.dir.path().join("server.key"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let (tx, lines) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the TLS server starts");
        let port = first
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{first}"));
        TlsServer {
            child,
            port,
            lines,
            _ca: ca,
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_untrusted_certificate_is_refused_unless_the_url_says_verify_no() {
    let server = TlsServer::start();
    // belfry's own webhook, and a service through tocsin (self-hosted ntfy).
    for url in [
        format!("jsons://127.0.0.1:{}/hook", server.port),
        format!("ntfys://127.0.0.1:{}/hook", server.port),
    ] {
        refused_then_accepted(&server, &url);
    }
}

fn refused_then_accepted(server: &TlsServer, url: &str) {
    let ch = parse(url).unwrap();
    let refused = send(ch.as_ref(), &problem());
    assert!(
        !matches!(refused, Outcome::Delivered),
        "{url}: an untrusted certificate was accepted: {refused:?}"
    );
    assert!(
        server
            .lines
            .recv_timeout(Duration::from_millis(300))
            .is_err(),
        "{url}: a request got through"
    );

    let ch = parse(&format!("{url}?verify=no")).unwrap();
    let sent = send(ch.as_ref(), &problem());
    assert_eq!(sent, Outcome::Delivered, "{url}");
    let line = server
        .lines
        .recv_timeout(Duration::from_secs(5))
        .expect("the request arrived");
    assert!(line.starts_with("POST /"), "{url}: {line}");
    assert!(line.contains("nightly-backup"), "{url}: {line}");
}
