//! Bad input on the ping API: random paths, bodies and headers, malformed requests and slow
//! clients. Nothing panics, every answer is a 4xx (or the connection is closed for a request
//! that is not HTTP), nothing already stored is harmed, and a slow client holds no worker.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use belfry_testkit::Lcg;

use crate::support::{self, TestServer, request, send_raw};

const TOML: &str =
    "[server]\nping_key = \"key\"\nping_body_limit = 64\n[jobs.kept]\nperiod = \"1d\"\n";

fn random_bytes(rng: &mut Lcg, n: usize, alphabet: &[u8]) -> Vec<u8> {
    (0..n)
        .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
        .collect()
}

#[test]
fn fuzzed_paths_bodies_and_headers_get_4xx_and_harm_nothing() {
    let server = TestServer::start(TOML);
    assert_eq!(
        server
            .request("POST", "/ping/key/kept", b"the one ping")
            .status,
        200
    );
    let store = server.store();
    let before = support::pings(&store, "kept");
    let row_before = support::job(&store, "kept").expect("the job");
    let mut rng = Lcg(0x5eed_1234);
    let path_chars: &[u8] = b"abcdef0123456789-/%?=&._~:@!$'()*+,;startfaillog";
    for trial in 0..300 {
        let len = 1 + rng.below(80) as usize;
        let tail = random_bytes(&mut rng, len, path_chars);
        let tail = String::from_utf8(tail).unwrap();
        // Never the one job that must stay untouched, nor a path that could create one.
        let path = format!(
            "/ping/{}",
            tail.replace("kept", "kxpt").replace("create", "crxate")
        );
        let method = ["GET", "POST", "HEAD", "PUT", "OPTIONS", "PATCH"][rng.below(6) as usize];
        let body_len = rng.below(200) as usize;
        let body = random_bytes(&mut rng, body_len, &(0..=255).collect::<Vec<u8>>());
        let resp = request(server.addr, method, &path, &[], &body);
        assert!(
            (400..500).contains(&resp.status) || resp.status == 204,
            "trial {trial} (seed 0x5eed_1234): {method} {path:?} -> {} {}",
            resp.status,
            resp.text()
        );
    }
    let headers: [(&str, String); 6] = [
        ("User-Agent", "x".repeat(4000)),
        ("Content-Type", "\u{1}".into()),
        ("X-Forwarded-For", "not an address".into()),
        ("Transfer-Encoding", "gzip".into()),
        ("Expect", "100-continue".into()),
        ("Accept", "*/*".repeat(500)),
    ];
    for (k, v) in &headers {
        let raw = format!(
            "GET /ping/key/absent-job HTTP/1.1\r\nHost: x\r\n{k}: {v}\r\nConnection: close\r\n\r\n"
        );
        // Refused by the HTTP layer (an answer or a closed connection), or not found.
        if let Ok(resp) = send_raw(server.addr, raw.as_bytes()) {
            assert!(
                (400..500).contains(&resp.status),
                "{k}: {} {}",
                resp.status,
                resp.text()
            );
        }
    }
    // Requests that are not HTTP, or not whole: an error answer or a closed connection, never
    // a panic or a hang.
    let raws: [&[u8]; 8] = [
        b"GARBAGE\r\n\r\n",
        b"GET /ping/key/kept\r\n\r\n",
        b"GET /ping/key/absent HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"GET /ping/key/absent HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
        b"POST /ping/key/absent HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /ping/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /ping/key/absent HTTP/1.1\r\nBad Header Line\r\n\r\n",
        b"\x00\x01\x02\x03",
    ];
    for raw in raws {
        if let Ok(resp) = send_raw(server.addr, raw) {
            assert!(
                (400..500).contains(&resp.status),
                "{:?} -> {}",
                String::from_utf8_lossy(raw),
                resp.status
            );
        }
    }
    // A body beyond what is read at all is refused as too large, by its declared length.
    let resp = send_raw(
        server.addr,
        b"POST /ping/key/kept HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n",
    )
    .expect("an answer");
    assert_eq!(resp.status, 413, "{}", resp.text());
    // A huge header block is refused.
    let big = format!(
        "GET /ping/key/kept HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(200_000)
    );
    if let Ok(resp) = send_raw(server.addr, big.as_bytes()) {
        assert!((400..500).contains(&resp.status), "{}", resp.status);
    }

    assert_eq!(server.request("GET", "/healthz", b"").status, 200);
    let after = support::pings(&store, "kept");
    assert_eq!(after, before, "the kept job's pings changed");
    let row_after = support::job(&store, "kept").expect("the job");
    assert_eq!(row_after.state, row_before.state);
    assert_eq!(
        row_after.last_run.map(|r| r.id),
        row_before.last_run.map(|r| r.id)
    );
}

#[test]
fn slow_clients_hold_no_worker() {
    let server = TestServer::start(TOML);
    // Many connections that send half a request and then nothing.
    let idle: Vec<TcpStream> = (0..64)
        .map(|i| {
            let mut s = TcpStream::connect(server.addr).expect("connect");
            let part: &[u8] = if i % 2 == 0 {
                b"GET /ping/key/kept HTTP/1.1\r\nHo"
            } else {
                b"POST /ping/key/kept HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab"
            };
            s.write_all(part).expect("write");
            s
        })
        .collect();
    let started = Instant::now();
    let resp = server.request("GET", "/ping/key/kept", b"");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a ping waited behind slow clients"
    );
    // And the server lets go of them: the half-sent headers hit the header timeout, the
    // half-sent bodies the body timeout, and each connection is closed (after a 408 for a
    // body). A read that times out here means a connection the server would keep forever.
    for (i, mut s) in idle.into_iter().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("read timeout");
        let mut got = Vec::new();
        match s.read_to_end(&mut got) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("slow connection {i} was not closed by the server: {e}"),
        }
        let got = String::from_utf8_lossy(&got);
        if i % 2 == 1 {
            assert!(
                got.is_empty() || got.starts_with("HTTP/1.1 408"),
                "slow body {i}: {got}"
            );
        }
    }
}
