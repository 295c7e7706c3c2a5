//! Receivers that quote the request back in their errors (many error pages do): no secret of
//! any channel reaches standard error, `belfry outbox`, `outbox --json` or the store, in any
//! form belfry sent it in.

use std::process::Output;

use super::*;

/// Every planted secret holds this mark; `belfry_testkit::reveals` looks for it in every
/// encoding (base64 too).
const MARK: &str = "FAKESECRET";
/// Channel `b`'s bearer token, from the environment.
const TOKEN: &str = "FAKESECRETtok-b";

#[test]
fn credentials_quoted_back_by_any_receiver_leak_nowhere_in_any_encoding() {
    // `b`'s receiver also quotes `a`'s credentials (as a shared proxy's error page might):
    // each channel's errors must hide every channel's secrets.
    let a_basic = base64("alice:FAKESECRETpw-a");
    let rx_a = Receiver::start_with_fallback(
        vec![],
        Reply::status(400)
            .body(&format!(
                "token {TOKEN} / {} // ",
                TOKEN.replace('-', "%2D")
            ))
            .echo(
                "{header:authorization} {target|percent} \
                 {\"auth\":\"{header:authorization|json}\"}",
            ),
    );
    let rx_b = Receiver::start_with_fallback(
        vec![],
        Reply::status(400)
            .body(&format!(
                "{{\"seen\":\"Basic {a_basic}\\/FAKESECRETpath-a\"}} "
            ))
            .echo("{header:authorization|percent} {\"url\":\"{target|json}\"}"),
    );
    let w = World::with_config(&format!(
        "[delivery]\ndigest_window = \"0s\"\n\
         [channels.a]\nurl = \"json://alice:FAKESECRETpw-a@{}/FAKESECRETpath-a\"\n\
         [channels.b]\nurl = \"ntfy://{}/alerts?token=${{env:NTFY_TOKEN}}\"\n",
        rx_a.addr(),
        rx_b.addr()
    ));
    let run = |args: &[&str]| -> Output { w.cmd(args).env("NTFY_TOKEN", TOKEN).output().unwrap() };
    let clean = |what: &str, text: &str| {
        assert!(!reveals(text, MARK), "{what} shows a secret: {text}");
    };

    let o = run(&["run", "--name", "leaky", "--", "sh", "-c", "exit 3"]);
    assert_eq!(code(&o), 3);
    let e = stderr(&o);
    assert_eq!(e.matches("could not notify").count(), 2, "{e}");
    assert!(e.contains("HTTP 400"), "{e}");
    clean("belfry run's standard error", &e);
    // The receivers did get the secrets, and quoted them back.
    let a = rx_a.wait_for(1, Duration::from_secs(5));
    assert_eq!(
        a[0].header("authorization"),
        Some(format!("Basic {a_basic}").as_str())
    );
    assert_eq!(a[0].target, "/FAKESECRETpath-a");
    let b = rx_b.wait_for(1, Duration::from_secs(5));
    assert_eq!(
        b[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    // Again through `belfry deliver`.
    assert_eq!(code(&run(&["outbox", "retry", "--dead"])), 0);
    let o = run(&["deliver"]);
    let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(said.contains("HTTP 400"), "{said}");
    clean("belfry deliver", &said);
    assert_eq!(rx_a.requests().len() + rx_b.requests().len(), 4);

    for args in [&["outbox", "--all"][..], &["outbox", "--all", "--json"]] {
        let o = run(args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("HTTP 400"), "{out}");
        clean(&args.join(" "), &out);
    }

    // The rows as stored, read back raw.
    let conn = rusqlite::Connection::open(w.home().join("belfry.db")).unwrap();
    let mut reasons: Vec<String> = Vec::new();
    for sql in [
        "SELECT last_reason FROM outbox WHERE last_reason IS NOT NULL",
        "SELECT reason FROM attempts WHERE reason IS NOT NULL",
    ] {
        let mut st = conn.prepare(sql).unwrap();
        let rows = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
        reasons.extend(rows.map(Result::unwrap));
    }
    assert_eq!(reasons.len(), 2 + 4, "{reasons:?}");
    for r in &reasons {
        assert!(r.contains("HTTP 400"), "{r}");
        clean("a stored reason", r);
    }
    drop(conn);
    for f in std::fs::read_dir(w.home()).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        clean("the store's files", &String::from_utf8_lossy(&bytes));
    }
}

/// Standard base64, written here so that the test does not trust the code under test.
fn base64(s: &str) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| n << 8 | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
