//! The `belfry-counter` binary, as the throughput script uses it: started on a free port, fed
//! requests on one kept-alive connection, asked for its count.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// Ends the counter however the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads one answer: its status line and its body (by its Content-Length).
fn answer(r: &mut BufReader<TcpStream>) -> (String, String) {
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut len = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some(v) = h.strip_prefix("Content-Length: ") {
            len = v.parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (
        status.trim_end().to_owned(),
        String::from_utf8(body).unwrap(),
    )
}

#[test]
fn counter_counts_posts_on_one_connection_but_not_its_own_count() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_belfry-counter"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = Killed(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();

    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let conn = TcpStream::connect(&addr).unwrap();
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    // A body by length, then a chunked one (with a chunk extension and a trailer), then the
    // count, all on the same connection: a body not read to its end would garble what follows.
    w.write_all(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert_eq!(
        answer(&mut r),
        ("HTTP/1.1 200 OK".to_owned(), "ok".to_owned())
    );
    w.write_all(
        b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          3;x=y\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Trailer: 1\r\n\r\n",
    )
    .unwrap();
    assert_eq!(answer(&mut r).1, "ok");
    w.write_all(b"GET /count HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (status, body) = answer(&mut r);
    assert_eq!(status, "HTTP/1.1 200 OK");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["count"], 2, "{body}");
    let last = v["last_ns"].as_u64().unwrap();
    assert!(
        u128::from(last) >= before,
        "{body} is before the test began"
    );

    // Asking again does not count the first question.
    w.write_all(b"GET /count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&answer(&mut r).1).unwrap();
    assert_eq!(v["count"], 2);
    // `Connection: close` is honoured: the counter ends the connection.
    let mut rest = Vec::new();
    assert_eq!(r.read_to_end(&mut rest).unwrap(), 0);
}
