//! Apprise API as a relay, against the recording receiver standing in for the server.

use base64::Engine as _;
use belfry_channels::{Outcome, parse};
use belfry_testkit::{Receiver, Reply};

use crate::{form, problem, recovery, send};

const KEY: &str = "S3CRET_config-key";

fn field<'a>(f: &'a [(String, String)], k: &str) -> Option<&'a str> {
    f.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
}

#[test]
fn apprise_api_posts_a_form_to_the_keys_notify_endpoint() {
    let rx = Receiver::start(vec![Reply::status(200), Reply::status(200)]);
    let host = rx
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let url = format!("apprise://ops:pa55@{host}/relay/{KEY}?tags=devops,admin&+X-Team=storage");
    let ch = parse(&url).unwrap();
    assert_eq!(ch.scheme(), "apprise");
    assert!(!ch.describe().contains(KEY), "{}", ch.describe());
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    assert_eq!(send(ch.as_ref(), &recovery()), Outcome::Delivered);

    let reqs = rx.requests();
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, format!("/relay/notify/{KEY}"));
    assert_eq!(
        r.header("content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("ops:pa55");
    assert_eq!(r.header("authorization").unwrap(), format!("Basic {basic}"));
    assert_eq!(r.header("x-team").unwrap(), "storage");
    assert_eq!(r.header("x-apprise-recursion-count").unwrap(), "1");
    let f = form(&r.body);
    assert_eq!(field(&f, "type"), Some("failure"));
    assert_eq!(field(&f, "format"), Some("text"));
    assert_eq!(field(&f, "tag"), Some("devops, admin"));
    assert!(
        field(&f, "title")
            .unwrap()
            .contains("nightly-backup: Failed")
    );
    let body = field(&f, "body").unwrap();
    assert!(
        body.contains("<b>disk</b> full & sad"),
        "plain text: {body}"
    );
    assert_eq!(field(&form(&reqs[1].body), "type"), Some("success"));
}

#[test]
fn apprise_api_sends_json_when_asked_and_its_own_address_works_too() {
    let rx = Receiver::start(vec![Reply::status(200), Reply::status(200)]);
    let ch = parse(&format!(
        "{}?method=json&format=markdown",
        rx.url(&format!("/notify/{KEY}"))
    ))
    .unwrap();
    assert_eq!(
        ch.scheme(),
        "apprise",
        "the server's address is read as the relay"
    );
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let r = &rx.requests()[0];
    assert_eq!(r.target, format!("/notify/{KEY}"));
    assert_eq!(r.header("content-type").unwrap(), "application/json");
    let v = r.json();
    assert_eq!(v["type"], "failure");
    assert_eq!(v["format"], "markdown");
    let body = v["body"].as_str().unwrap();
    assert!(
        body.contains("```\nstarting\n<b>disk</b>"),
        "the output in a code block: {body}"
    );
    assert!(v.get("tag").is_none());
}

#[test]
fn apprise_api_answers_are_classified_without_the_key() {
    let rx = Receiver::start(vec![
        Reply::status(204),
        Reply::status(424).body(&format!("one or more notifications failed for {KEY}")),
        Reply::status(400).body(&format!("bad request for {KEY}")),
        Reply::status(503),
        Reply::status(200),
    ]);
    let ch = parse(&format!("apprise://{}/{KEY}", rx.addr())).unwrap();
    let o = send(ch.as_ref(), &problem());
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("no configuration under this key")),
        "204: the server sent nothing: {o:?}"
    );
    let o = send(ch.as_ref(), &problem());
    assert!(
        matches!(&o, Outcome::Retry { reason, .. } if reason.contains("424") && !reason.contains(KEY)),
        "{o:?}"
    );
    let o = send(ch.as_ref(), &problem());
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("400") && !reason.contains(KEY)),
        "{o:?}"
    );
    assert!(matches!(
        send(ch.as_ref(), &problem()),
        Outcome::Retry { .. }
    ));
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
}
