//! A lean counting HTTP receiver for throughput scripts (`scripts/bench-throughput.sh`):
//! listens on 127.0.0.1 (port from the first argument, default a free one), prints its
//! address, answers every request `200 ok` on a kept-alive connection, and only counts them.
//!
//! `GET /count` is not counted: it answers `{"count": N, "last_ns": T}`, with T the wall-clock
//! time (nanoseconds since the Unix epoch) at which the latest counted request had been read,
//! so a script that polls it learns when the Nth request arrived, not when it looked.
//!
//! `belfry-receiver` keeps every request and prints each one, which is work a sender under
//! measurement would be charged for; this one keeps two numbers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// How many requests were counted, and when the latest was read.
#[derive(Default)]
struct Tally {
    count: u64,
    last_ns: u128,
}

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("belfry-counter: cannot listen on 127.0.0.1:{port}: {e}");
            }
            std::process::exit(1);
        }
    };
    #[allow(clippy::print_stdout)]
    {
        match listener.local_addr() {
            Ok(addr) => println!("listening on http://{addr}"),
            Err(e) => println!("listening (address unknown: {e})"),
        }
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let tally = tally.clone();
        std::thread::spawn(move || serve(conn, &tally));
    }
}

/// Serves one connection until the peer closes it or sends something that is not HTTP.
fn serve(conn: TcpStream, tally: &Mutex<Tally>) {
    // Answers are small and written whole; waiting to coalesce them would only add latency.
    let _ = conn.set_nodelay(true);
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let is_count = line.starts_with("GET /count ");
        let (mut len, mut chunked, mut close) = (0usize, false, false);
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let h = line.trim_end();
            if h.is_empty() {
                break;
            }
            let Some((k, v)) = h.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.eq_ignore_ascii_case("chunked");
            } else if k.eq_ignore_ascii_case("connection") {
                close = v.eq_ignore_ascii_case("close");
            }
        }
        let read = if chunked {
            skip_chunks(&mut r)
        } else {
            std::io::copy(&mut r.by_ref().take(len as u64), &mut std::io::sink())
                .is_ok_and(|n| n == len as u64)
        };
        if !read {
            return;
        }
        let body = if is_count {
            let t = tally.lock().unwrap_or_else(|e| e.into_inner());
            format!("{{\"count\":{},\"last_ns\":{}}}", t.count, t.last_ns)
        } else {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
            t.count += 1;
            t.last_ns = t.last_ns.max(now);
            "ok".to_owned()
        };
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        if w.write_all(answer.as_bytes()).is_err() || close {
            return;
        }
    }
}

/// Reads a chunked body to its end; false when the stream ends or a chunk size is not hex.
fn skip_chunks(r: &mut BufReader<TcpStream>) -> bool {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        let size = line.trim_end().split(';').next().unwrap_or("");
        let Ok(size) = u64::from_str_radix(size.trim(), 16) else {
            return false;
        };
        if size == 0 {
            // Trailer lines, if any, end with an empty line.
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return false;
                }
                if line.trim_end().is_empty() {
                    return true;
                }
            }
        }
        let copied = std::io::copy(&mut r.by_ref().take(size + 2), &mut std::io::sink());
        if !copied.is_ok_and(|n| n == size + 2) {
            return false;
        }
    }
}
