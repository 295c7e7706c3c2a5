//! SendGrid, Twilio and Opsgenie: the requests they plan for the real services, and the same
//! requests sent to a loopback receiver standing in for them (`parse_with_api_base`).

use std::io::Read;
use std::time::Duration;

use base64::Engine as _;
use belfry_channels::{Channel, Message, Outcome, parse, parse_with_api_base};
use belfry_core::{Reason, State, sms};
use belfry_testkit::{Receiver, Reply};

use crate::{notification, send};

const SG_KEY: &str = "SG.S3CRETKEY-abc_def";
const TW_SID: &str = "AC0123456789abcdef0123456789abcdef";
const TW_TOKEN: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";
const OG_KEY: &str = "0b1c2d3e-S3CRET-key";

fn plan(ch: &dyn Channel, n: &belfry_core::Notification) -> Vec<belfry_channels::HttpRequest> {
    ch.plan(&Message {
        notification: n,
        idempotency_key: "n-1:ops",
    })
    .expect("an HTTP channel plans its requests")
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(f: &'a [(String, String)], k: &str) -> &'a str {
    &f.iter().find(|(key, _)| key == k).unwrap().1
}

#[test]
fn sendgrid_posts_both_bodies_and_the_gzipped_output_to_its_api() {
    let url = format!(
        "sendgrid://{SG_KEY}:alerts@example.com/ops@example.org?cc=lead@example.org&bcc=audit@example.org"
    );
    let n = notification(State::Failed, Reason::FirstRun);
    let real = plan(parse(&url).unwrap().as_ref(), &n);
    assert_eq!(real.len(), 1);
    assert_eq!(real[0].url, "https://api.sendgrid.com/v3/mail/send");

    let rx = Receiver::start(vec![Reply::status(202)]);
    let ch = parse_with_api_base(&url, &rx.url("")).unwrap();
    let mut n = notification(State::Failed, Reason::FirstRun);
    let output: String = (0..3000).map(|i| format!("row {i}\n")).collect();
    n.output_tail = Some(output.clone());
    assert_eq!(send(ch.as_ref(), &n), Outcome::Delivered);

    let r = &rx.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/v3/mail/send");
    assert_eq!(
        r.header("authorization").unwrap(),
        format!("Bearer {SG_KEY}")
    );
    let v = r.json();
    let p = &v["personalizations"][0];
    assert_eq!(p["to"], serde_json::json!([{"email": "ops@example.org"}]));
    assert_eq!(p["cc"], serde_json::json!([{"email": "lead@example.org"}]));
    assert_eq!(
        p["bcc"],
        serde_json::json!([{"email": "audit@example.org"}])
    );
    assert_eq!(
        v["from"],
        serde_json::json!({"email": "alerts@example.com", "name": "belfry"})
    );
    assert_eq!(v["subject"], "[belfry] nightly-backup: Failed");
    assert_eq!(v["content"][0]["type"], "text/plain");
    assert_eq!(v["content"][1]["type"], "text/html");
    assert!(
        v["content"][0]["value"]
            .as_str()
            .unwrap()
            .contains("row 2999")
    );
    assert!(v["content"][1]["value"].as_str().unwrap().contains("run-7"));
    let a = &v["attachments"][0];
    assert_eq!(a["filename"], "nightly-backup-output.txt.gz");
    assert_eq!(a["type"], "application/gzip");
    let gz = base64::engine::general_purpose::STANDARD
        .decode(a["content"].as_str().unwrap())
        .unwrap();
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, output);
}

#[test]
fn sendgrid_templates_get_the_notification_fields_and_the_url_data() {
    let rx = Receiver::start(vec![Reply::status(202)]);
    let url = format!("sendgrid://{SG_KEY}:alerts@example.com?template=d-123&+team=storage");
    let ch = parse_with_api_base(&url, &rx.url("")).unwrap();
    assert_eq!(
        send(ch.as_ref(), &notification(State::Failed, Reason::FirstRun)),
        Outcome::Delivered
    );
    let v = rx.requests()[0].json();
    assert_eq!(v["template_id"], "d-123");
    let data = &v["personalizations"][0]["dynamic_template_data"];
    assert_eq!(data["job"], "nightly-backup");
    assert_eq!(data["state"], "failed");
    assert_eq!(data["team"], "storage");
}

#[test]
fn sendgrid_refusals_are_permanent_and_rate_limits_wait() {
    let rx = Receiver::start(vec![
        Reply::status(401).body(r#"{"errors":[{"message":"bad key"}]}"#),
        Reply::status(429).header("Retry-After", "7"),
    ]);
    let url = format!("sendgrid://{SG_KEY}:alerts@example.com");
    let ch = parse_with_api_base(&url, &rx.url("")).unwrap();
    let n = notification(State::Failed, Reason::FirstRun);
    let o = send(ch.as_ref(), &n);
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("401") && !reason.contains("S3CRET")),
        "{o:?}"
    );
    assert!(matches!(
        send(ch.as_ref(), &n),
        Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(7)
    ));
}

#[test]
fn twilio_sends_one_segment_to_each_number_with_basic_auth() {
    let url = format!("twilio://{TW_SID}:{TW_TOKEN}@+15551234567/+15557654321/w:+447700900123");
    let n = notification(State::Failed, Reason::FirstRun);
    let real = plan(parse(&url).unwrap().as_ref(), &n);
    assert_eq!(
        real[0].url,
        format!("https://api.twilio.com/2010-04-01/Accounts/{TW_SID}/Messages.json")
    );

    let rx = Receiver::start(vec![Reply::status(201), Reply::status(201)]);
    let ch = parse_with_api_base(&url, &rx.url("")).unwrap();
    assert_eq!(send(ch.as_ref(), &n), Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TW_SID}:{TW_TOKEN}"))
    );
    for r in &reqs {
        assert_eq!(
            r.target,
            format!("/2010-04-01/Accounts/{TW_SID}/Messages.json")
        );
        assert_eq!(r.header("authorization"), Some(expected_auth.as_str()));
        assert_eq!(
            r.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
    }
    let sms = form(&reqs[0].body);
    assert_eq!(field(&sms, "To"), "+15557654321");
    assert_eq!(field(&sms, "From"), "+15551234567");
    let body = field(&sms, "Body");
    assert_eq!(body, sms::render(&n));
    assert!(
        body.starts_with("FAILED nightly-backup on db1: exit code 2"),
        "{body}"
    );
    assert!(body.chars().count() <= 160);
    let wa = form(&reqs[1].body);
    assert_eq!(field(&wa, "To"), "whatsapp:+447700900123");
    assert_eq!(field(&wa, "From"), "whatsapp:+15551234567");
}

#[test]
fn twilio_method_call_phones_each_number_and_reads_the_text_out() {
    let url =
        format!("twilio://{TW_SID}:{TW_TOKEN}@+15551234567/+15557654321/+447700900123?method=call");
    let n = notification(State::Failed, Reason::FirstRun);
    let rx = Receiver::start(vec![Reply::status(201), Reply::status(201)]);
    let ch = parse_with_api_base(&url, &rx.url("")).unwrap();
    assert_eq!(
        ch.describe(),
        "twilio://***:***@+15551234567/+15557654321/+447700900123?method=call"
    );
    assert_eq!(send(ch.as_ref(), &n), Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0].target,
        format!("/2010-04-01/Accounts/{TW_SID}/Calls.json")
    );
    let call = form(&reqs[1].body);
    assert_eq!(field(&call, "To"), "+447700900123");
    assert_eq!(field(&call, "From"), "+15551234567");
    let twiml = field(&call, "Twiml");
    assert!(
        twiml.starts_with("<Response><Say>FAILED nightly-backup on db1"),
        "{twiml}"
    );
    assert!(twiml.ends_with("</Say></Response>"), "{twiml}");
    assert!(
        call.iter().all(|(k, _)| k != "Body"),
        "a call carries no SMS body"
    );
}

#[test]
fn twilio_errors_are_classified_and_stop_at_the_first_failure() {
    let rx = Receiver::start(vec![Reply::status(400).body(
        r#"{"code": 21211, "message": "The 'To' number is not a valid phone number."}"#,
    )]);
    let url = format!("twilio://{TW_SID}:{TW_TOKEN}@+15551234567/+15557654321/+15550000000");
    let ch = parse_with_api_base(&url, &rx.url("")).unwrap();
    let o = send(ch.as_ref(), &notification(State::Failed, Reason::FirstRun));
    let Outcome::Permanent { reason } = &o else {
        panic!("{o:?}")
    };
    assert!(reason.contains("21211"), "{reason}");
    assert!(
        !reason.contains(TW_TOKEN) && !reason.contains(TW_SID),
        "{reason}"
    );
    assert_eq!(rx.requests().len(), 1);
}

#[test]
fn opsgenie_opens_an_alert_on_a_problem_and_closes_it_on_recovery_by_alias() {
    let url = format!("opsgenie://{OG_KEY}/@ada/%23ops?priority=high&tags=backup,db&+team=storage");
    let problem = notification(State::Failed, Reason::FirstRun);
    let real = plan(parse(&url).unwrap().as_ref(), &problem);
    assert_eq!(real[0].url, "https://api.opsgenie.com/v2/alerts");
    let eu = plan(
        parse(&format!("{url}&region=eu")).unwrap().as_ref(),
        &problem,
    );
    assert_eq!(eu[0].url, "https://api.eu.opsgenie.com/v2/alerts");

    let rx = Receiver::start(vec![Reply::status(202), Reply::status(202)]);
    let ch = parse_with_api_base(&url, &rx.url("")).unwrap();
    assert_eq!(send(ch.as_ref(), &problem), Outcome::Delivered);
    let recovery = notification(State::Ok, Reason::Recovered { after: 1 });
    assert_eq!(send(ch.as_ref(), &recovery), Outcome::Delivered);

    let reqs = rx.requests();
    let open = &reqs[0];
    assert_eq!(open.target, "/v2/alerts");
    assert_eq!(
        open.header("authorization").unwrap(),
        format!("GenieKey {OG_KEY}")
    );
    let v = open.json();
    assert_eq!(v["alias"], "belfry:nightly-backup");
    assert_eq!(v["message"], "nightly-backup: Failed");
    assert_eq!(v["priority"], "P2");
    assert_eq!(v["entity"], "db1");
    assert_eq!(v["tags"], serde_json::json!(["backup", "db"]));
    assert_eq!(v["details"]["exit_code"], "2");
    assert_eq!(v["details"]["team"], "storage");
    assert_eq!(
        v["responders"],
        serde_json::json!([{"type": "user", "username": "ada"}, {"type": "team", "name": "ops"}])
    );
    assert!(v["description"].as_str().unwrap().contains("run-7"));

    let close = &reqs[1];
    assert_eq!(
        close.target,
        "/v2/alerts/belfry%3Anightly-backup/close?identifierType=alias"
    );
    assert_eq!(close.json()["source"], "belfry");
}

#[test]
fn opsgenie_closing_nothing_is_delivered_and_a_refused_alert_is_permanent() {
    let rx = Receiver::start(vec![
        Reply::status(404).body(r#"{"message":"Alert does not exist"}"#),
        Reply::status(422).body(r#"{"message":"Request body is not processable"}"#),
        Reply::status(429),
    ]);
    let ch = parse_with_api_base(&format!("opsgenie://{OG_KEY}"), &rx.url("")).unwrap();
    let ok = notification(State::Ok, Reason::FirstRun);
    assert_eq!(send(ch.as_ref(), &ok), Outcome::Delivered);
    let problem = notification(State::Failed, Reason::FirstRun);
    let o = send(ch.as_ref(), &problem);
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("422")),
        "{o:?}"
    );
    assert!(matches!(send(ch.as_ref(), &problem), Outcome::Retry { .. }));
}

#[test]
fn opsgenie_actions_and_type_mappings_act_on_the_alert_by_alias() {
    let problem = notification(State::Failed, Reason::FirstRun);
    let recovery = notification(State::Ok, Reason::Recovered { after: 1 });
    let ok = notification(State::Ok, Reason::FirstRun);
    // (URL options, notification) -> (method, path) of the request.
    let alert = "/v2/alerts/belfry%3Anightly-backup";
    let cases: [(&str, &belfry_core::Notification, &str, String); 9] = [
        ("", &problem, "POST", "/v2/alerts".into()),
        (
            "",
            &recovery,
            "POST",
            format!("{alert}/close?identifierType=alias"),
        ),
        (
            "",
            &ok,
            "POST",
            format!("{alert}/close?identifierType=alias"),
        ),
        (
            "?action=ack",
            &problem,
            "POST",
            format!("{alert}/acknowledge?identifierType=alias"),
        ),
        (
            "?action=note",
            &recovery,
            "POST",
            format!("{alert}/notes?identifierType=alias"),
        ),
        (
            "?action=map&:info=no",
            &ok,
            "POST",
            format!("{alert}/notes?identifierType=alias"),
        ),
        (
            "?:success=delete",
            &recovery,
            "DELETE",
            format!("{alert}?identifierType=alias&source=belfry&user=belfry"),
        ),
        (
            "?:fail=close",
            &problem,
            "POST",
            format!("{alert}/close?identifierType=alias"),
        ),
        ("?action=new", &ok, "POST", "/v2/alerts".into()),
    ];
    let rx = Receiver::start(vec![Reply::status(202); cases.len()]);
    for (opts, n, _, _) in &cases {
        let ch = parse_with_api_base(&format!("opsgenie://{OG_KEY}{opts}"), &rx.url("")).unwrap();
        assert_eq!(send(ch.as_ref(), n), Outcome::Delivered, "{opts}");
    }
    let reqs = rx.requests();
    for ((opts, _, method, target), req) in cases.iter().zip(&reqs) {
        assert_eq!(
            (req.method.as_str(), req.target.as_str()),
            (*method, target.as_str()),
            "{opts}"
        );
        if req.target.contains("/notes?") {
            assert!(
                req.json()["note"]
                    .as_str()
                    .unwrap()
                    .starts_with("nightly-backup"),
                "{opts}"
            );
        }
    }
    // A note, an acknowledgement or a delete with no open alert has nothing to do.
    let rx = Receiver::start(vec![Reply::status(404)]);
    let ch =
        parse_with_api_base(&format!("opsgenie://{OG_KEY}?action=delete"), &rx.url("")).unwrap();
    assert_eq!(send(ch.as_ref(), &problem), Outcome::Delivered);

    for (bad, says) in [
        ("?action=explode", "action=\"explode\""),
        ("?:info=explode", ":info=\"explode\""),
        ("?:nonsense=close", "names no notification type"),
    ] {
        let e = parse(&format!("opsgenie://{OG_KEY}{bad}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(says) && !e.contains("S3CRET"), "{bad}: {e}");
    }
}

#[test]
fn opsgenie_reads_a_team_after_a_hash_in_the_query_as_apprise_does() {
    let rx = Receiver::start(vec![Reply::status(202)]);
    let ch = parse_with_api_base(
        &format!("opsgenie://{OG_KEY}?to=#infra,@ada;tags=a"),
        &rx.url(""),
    )
    .unwrap();
    assert_eq!(ch.describe(), "opsgenie://***/2 responders");
    assert_eq!(
        send(ch.as_ref(), &notification(State::Failed, Reason::FirstRun)),
        Outcome::Delivered
    );
    let v = rx.requests()[0].json();
    assert_eq!(
        v["responders"],
        serde_json::json!([{"type": "team", "name": "infra"}, {"type": "user", "username": "ada"}])
    );
    assert_eq!(v["tags"], serde_json::json!(["a"]));
}

#[test]
fn api_bases_are_only_for_services_that_have_one() {
    let e = parse_with_api_base("mailto://u:p@example.com", "http://127.0.0.1:1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no API address"), "{e}");
}

#[test]
fn service_secrets_stay_out_of_descriptions_debug_and_errors() {
    for url in [
        format!("sendgrid://{SG_KEY}:alerts@example.com/ops@example.org"),
        format!("twilio://{TW_SID}:{TW_TOKEN}@+15551234567/+15557654321"),
        format!("opsgenie://{OG_KEY}/@ada"),
    ] {
        let ch = parse(&url).unwrap();
        let shown = format!("{} {:?}", ch.describe(), ch);
        for secret in [SG_KEY, TW_SID, TW_TOKEN, OG_KEY] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let bad = format!("{url}&bogus=1").replacen("&", "?", usize::from(!url.contains('?')));
        let e = parse(&bad).unwrap_err().to_string();
        for secret in [SG_KEY, TW_SID, TW_TOKEN, OG_KEY] {
            assert!(!e.contains(secret), "{e}");
        }
        let e = belfry_channels::redact_url(&url);
        for secret in [SG_KEY, TW_SID, TW_TOKEN, OG_KEY] {
            assert!(!e.contains(secret), "{e}");
        }
    }
}

#[test]
fn pushsafer_posts_a_form_per_device_and_reads_its_verdict() {
    let key = "S3CRETpushsaferkey";
    let url = format!("psafers://{key}/dev1/gs23?priority=high&sound=bell&vibration=2");
    assert_eq!(
        plan(
            parse(&url).unwrap().as_ref(),
            &notification(State::Failed, Reason::FirstRun)
        )[0]
        .url,
        "https://www.pushsafer.com/api"
    );
    let rx = Receiver::start(vec![
        Reply::status(200).body(r#"{"status":1,"success":"message transmitted"}"#),
        Reply::status(200).body(r#"{"status":1,"success":"message transmitted"}"#),
        Reply::status(200).body(&format!(r#"{{"status":0,"error":"invalid key {key}"}}"#)),
    ]);
    let ch = parse(&url).unwrap();
    let cx = belfry_channels::Context::new(Duration::from_secs(5))
        .with_origin("https://www.pushsafer.com", &rx.url(""));
    let n = notification(State::Failed, Reason::FirstRun);
    assert_eq!(crate::send_with(ch.as_ref(), &n, cx), Outcome::Delivered);
    let reqs = rx.requests();
    for (r, d) in reqs.iter().zip(["dev1", "gs23"]) {
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/api");
        let f = form(&r.body);
        assert_eq!(field(&f, "k"), key);
        assert_eq!(field(&f, "d"), d);
        assert!(field(&f, "t").contains("nightly-backup: Failed"));
        assert!(field(&f, "m").contains("exit code 2"));
        assert_eq!(field(&f, "pr"), "1");
        assert_eq!(field(&f, "s"), "5");
        assert_eq!(field(&f, "v"), "2");
        assert_eq!(field(&f, "c"), "#D50200");
    }
    let cx = belfry_channels::Context::new(Duration::from_secs(5))
        .with_origin("https://www.pushsafer.com", &rx.url(""));
    let o = crate::send_with(ch.as_ref(), &n, cx);
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("invalid key") && !reason.contains(key)),
        "{o:?}"
    );
}

const AWS_SECRET: &str = "S3CRETnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

#[test]
fn sns_texts_phones_and_publishes_to_topics_with_signed_requests() {
    let url = format!("sns://AKIDEXAMPLE/{AWS_SECRET}/us-east-1/+15551234567/%23alerts");
    let n = notification(State::Failed, Reason::FirstRun);
    let ok = |action: &str| {
        Reply::status(200).body(&format!(
            "<{action}Response><{action}Result><MessageId>m-1</MessageId></{action}Result></{action}Response>"
        ))
    };
    let rx = Receiver::start(vec![
        ok("Publish"),
        Reply::status(200).body(
            "<CreateTopicResponse><CreateTopicResult><TopicArn>arn:aws:sns:us-east-1:123456789012:alerts</TopicArn></CreateTopicResult></CreateTopicResponse>",
        ),
        ok("Publish"),
        ok("Publish"),
        ok("Publish"),
        Reply::status(400).body("<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"),
    ]);
    let ch = parse(&url).unwrap();
    assert!(!ch.describe().contains("S3CRET"));
    let cx = || {
        belfry_channels::Context::new(Duration::from_secs(5))
            .with_origin("https://sns.us-east-1.amazonaws.com", &rx.url(""))
    };
    assert_eq!(crate::send_with(ch.as_ref(), &n, cx()), Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/");
        assert_eq!(
            r.header("content-type").unwrap(),
            "application/x-www-form-urlencoded; charset=utf-8"
        );
        let date = r.header("x-amz-date").unwrap();
        assert_eq!(date.len(), 16, "{date}");
        let auth = r.header("authorization").unwrap();
        assert!(
            auth.starts_with(&format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/us-east-1/sns/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=",
                &date[..8]
            )),
            "{auth}"
        );
        assert!(!auth.contains("S3CRET"));
    }
    let f = form(&reqs[0].body);
    assert_eq!(field(&f, "Action"), "Publish");
    assert_eq!(field(&f, "PhoneNumber"), "+15551234567");
    assert_eq!(field(&f, "Message"), sms::render(&n));
    let f = form(&reqs[1].body);
    assert_eq!(
        (field(&f, "Action"), field(&f, "Name")),
        ("CreateTopic", "alerts")
    );
    let f = form(&reqs[2].body);
    assert_eq!(
        field(&f, "TopicArn"),
        "arn:aws:sns:us-east-1:123456789012:alerts"
    );
    // Phones and topics together: SMS mode, the SMS text to the topic too.
    assert_eq!(field(&f, "Message"), sms::render(&n));
    assert!(f.iter().all(|(k, _)| k != "Subject"));

    // The topic's ARN is kept: the next notification publishes straight away.
    assert_eq!(crate::send_with(ch.as_ref(), &n, cx()), Outcome::Delivered);
    assert_eq!(rx.requests().len(), 5);
    assert_eq!(field(&form(&rx.requests()[4].body), "Action"), "Publish");

    // Throttling is retried.
    let o = crate::send_with(ch.as_ref(), &n, cx());
    assert!(
        matches!(&o, Outcome::Retry { reason, .. } if reason.contains("Throttling")),
        "{o:?}"
    );
}

#[test]
fn sns_topic_mode_publishes_the_whole_text_with_an_ascii_subject() {
    let rx = Receiver::start(vec![
        Reply::status(200).body("<CreateTopicResponse><CreateTopicResult><TopicArn>arn:aws:sns:eu-west-1:1:ops</TopicArn></CreateTopicResult></CreateTopicResponse>"),
        Reply::status(200).body("<PublishResponse/>"),
    ]);
    let ch = parse(&format!(
        "sns://SESSIONtok@AKIDEXAMPLE/{AWS_SECRET}/eu-west-1/%23ops"
    ))
    .unwrap();
    let cx = belfry_channels::Context::new(Duration::from_secs(5))
        .with_origin("https://sns.eu-west-1.amazonaws.com", &rx.url(""));
    let n = notification(State::Failed, Reason::FirstRun);
    assert_eq!(crate::send_with(ch.as_ref(), &n, cx), Outcome::Delivered);
    let r = &rx.requests()[1];
    assert_eq!(r.header("x-amz-security-token").unwrap(), "SESSIONtok");
    assert!(
        r.header("authorization")
            .unwrap()
            .contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token")
    );
    let f = form(&r.body);
    assert_eq!(field(&f, "Subject"), "nightly-backup: Failed");
    assert!(field(&f, "Message").contains("<b>disk</b> full & sad"));
}

#[test]
fn ses_sends_one_signed_send_email_to_every_recipient() {
    let url = format!(
        "ses://alerts:SESSIONtok@example.org/AKIDEXAMPLE/{AWS_SECRET}/us-east-1/ops@example.org\
         ?to=Dev%20%3Cdev@example.org%3E&cc=lead@example.org&bcc=audit@example.org\
         &reply=help@example.org&name=belfry"
    );
    let rx = Receiver::start(vec![
        Reply::status(200).body("<SendEmailResponse><SendEmailResult><MessageId>m-1</MessageId></SendEmailResult></SendEmailResponse>"),
        Reply::status(400).body("<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Maximum sending rate exceeded.</Message></Error></ErrorResponse>"),
        Reply::status(400).body(&format!("<ErrorResponse><Error><Code>MessageRejected</Code><Message>Email address is not verified. {AWS_SECRET}</Message></Error></ErrorResponse>")),
    ]);
    let ch = parse(&url).unwrap();
    assert_eq!(
        ch.describe(),
        "ses://alerts@example.org/***/***/us-east-1 to 4 recipients"
    );
    let cx = || {
        belfry_channels::Context::new(Duration::from_secs(5))
            .with_origin("https://email.us-east-1.amazonaws.com", &rx.url(""))
    };
    let n = notification(State::Failed, Reason::FirstRun);
    assert_eq!(crate::send_with(ch.as_ref(), &n, cx()), Outcome::Delivered);
    let r = &rx.requests()[0];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/"));
    assert_eq!(
        r.header("content-type").unwrap(),
        "application/x-www-form-urlencoded; charset=utf-8"
    );
    assert_eq!(r.header("x-amz-security-token").unwrap(), "SESSIONtok");
    let date = r.header("x-amz-date").unwrap();
    let auth = r.header("authorization").unwrap();
    assert!(
        auth.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/us-east-1/ses/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=",
            &date[..8]
        )),
        "{auth}"
    );
    let f = form(&r.body);
    let email = belfry_core::email::render(&n);
    for (k, v) in [
        ("Action", "SendEmail"),
        ("Version", "2010-12-01"),
        ("Source", "\"belfry\" <alerts@example.org>"),
        ("Destination.ToAddresses.member.1", "ops@example.org"),
        (
            "Destination.ToAddresses.member.2",
            "\"Dev\" <dev@example.org>",
        ),
        ("Destination.CcAddresses.member.1", "lead@example.org"),
        ("Destination.BccAddresses.member.1", "audit@example.org"),
        ("ReplyToAddresses.member.1", "help@example.org"),
        ("Message.Subject.Data", email.subject.as_str()),
        ("Message.Body.Text.Data", email.text.as_str()),
        ("Message.Body.Html.Data", email.html.as_str()),
        ("Message.Body.Html.Charset", "UTF-8"),
    ] {
        assert_eq!(field(&f, k), v, "{k}");
    }
    assert!(field(&f, "Message.Body.Text.Data").contains("exit code 2"));

    let o = crate::send_with(ch.as_ref(), &n, cx());
    assert!(
        matches!(&o, Outcome::Retry { reason, .. } if reason.contains("Throttling")),
        "{o:?}"
    );
    let o = crate::send_with(ch.as_ref(), &n, cx());
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("MessageRejected") && !reason.contains("S3CRET")),
        "{o:?}"
    );
}

#[test]
fn join_pushes_to_each_target_with_its_query_and_reads_the_verdict() {
    let key = "S3CRETfghijklmnopqrstuvwxyz01234";
    let device = "0123456789abcdef0123456789abcdef";
    let url = format!("join://{key}/{device}/chrome/Kitchen%20Tablet?priority=high");
    let rx = Receiver::start(vec![
        Reply::status(200).body(r#"{"success":true}"#),
        Reply::status(200).body(r#"{"success":true}"#),
        Reply::status(200).body(r#"{"success":true}"#),
        Reply::status(200).body(&format!(
            r#"{{"success":false,"errorMessage":"User Not Authenticated {key}"}}"#
        )),
    ]);
    let ch = parse(&url).unwrap();
    let cx = || {
        belfry_channels::Context::new(Duration::from_secs(5))
            .with_origin("https://joinjoaomgcd.appspot.com", &rx.url(""))
    };
    let n = notification(State::Failed, Reason::FirstRun);
    assert_eq!(crate::send_with(ch.as_ref(), &n, cx()), Outcome::Delivered);
    let reqs = rx.requests();
    let queries: Vec<Vec<(String, String)>> = reqs
        .iter()
        .map(|r| {
            assert_eq!(r.method, "POST");
            let (path, query) = r.target.split_once('?').unwrap();
            assert_eq!(path, "/_ah/api/messaging/v1/sendPush");
            form(query.as_bytes())
        })
        .collect();
    for q in &queries {
        assert_eq!(field(q, "apikey"), key);
        assert_eq!(field(q, "priority"), "1");
        assert!(field(q, "title").contains("nightly-backup: Failed"));
        assert!(field(q, "text").contains("exit code 2"));
    }
    assert_eq!(field(&queries[0], "deviceId"), device);
    assert_eq!(field(&queries[1], "deviceId"), "group.chrome");
    assert_eq!(field(&queries[2], "deviceNames"), "Kitchen Tablet");
    let o = crate::send_with(ch.as_ref(), &n, cx());
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("User Not Authenticated") && !reason.contains(key)),
        "{o:?}"
    );
}

const M365_TENANT: &str = "ab12cd34-0000-4000-8000-123456789abc";
const M365_SECRET: &str = "S3CRET~client.secret/value";

#[test]
fn microsoft_365_gets_an_app_token_once_and_sends_mail_through_graph() {
    let token = |t: &str| {
        Reply::status(200)
            .header("Content-Type", "application/json")
            .body(&format!(
                r#"{{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"{t}"}}"#
            ))
    };
    let rx = Receiver::start(vec![
        token("eyJ0.app.one"),
        Reply::status(202),
        Reply::status(202),
        Reply::status(401).body(r#"{"error":{"code":"InvalidAuthenticationToken"}}"#),
        token("eyJ0.app.two"),
        Reply::status(202),
    ]);
    let url = format!(
        "azure://alerts@contoso.com/{M365_TENANT}/app-client-id/{M365_SECRET}/ops@contoso.com\
         ?cc=Lead%20%3Clead@contoso.com%3E&savesent=no"
    );
    let ch = parse(&url).unwrap();
    let shown = format!("{} {ch:?}", ch.describe());
    assert!(!shown.contains("S3CRET"), "{shown}");
    let cx = || {
        belfry_channels::Context::new(Duration::from_secs(5))
            .with_origin("https://login.microsoftonline.com", &rx.url(""))
            .with_origin("https://graph.microsoft.com", &rx.url(""))
    };
    let n = notification(State::Failed, Reason::FirstRun);
    assert_eq!(crate::send_with(ch.as_ref(), &n, cx()), Outcome::Delivered);
    assert_eq!(crate::send_with(ch.as_ref(), &n, cx()), Outcome::Delivered);
    let o = crate::send_with(ch.as_ref(), &n, cx());
    assert!(
        matches!(&o, Outcome::Retry { reason, .. } if reason.contains("HTTP 401")),
        "{o:?}"
    );
    assert_eq!(crate::send_with(ch.as_ref(), &n, cx()), Outcome::Delivered);
    let reqs = rx.requests();
    let steps: Vec<(&str, &str)> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.target.as_str()))
        .collect();
    let login = format!("/{M365_TENANT}/oauth2/v2.0/token");
    let send = "/v1.0/users/alerts@contoso.com/sendMail";
    assert_eq!(
        steps,
        [
            ("POST", login.as_str()),
            ("POST", send),
            ("POST", send),
            ("POST", send),
            ("POST", login.as_str()),
            ("POST", send),
        ]
    );
    let f = form(&reqs[0].body);
    assert_eq!(field(&f, "grant_type"), "client_credentials");
    assert_eq!(field(&f, "client_id"), "app-client-id");
    assert_eq!(field(&f, "client_secret"), M365_SECRET);
    assert_eq!(field(&f, "scope"), "https://graph.microsoft.com/.default");
    let r = &reqs[1];
    assert_eq!(r.header("authorization").unwrap(), "Bearer eyJ0.app.one");
    assert_eq!(r.header("content-type").unwrap(), "application/json");
    let v = r.json();
    let email = belfry_core::email::render(&n);
    assert_eq!(v["message"]["subject"], email.subject.as_str());
    assert_eq!(v["message"]["body"]["contentType"], "HTML");
    assert_eq!(v["message"]["body"]["content"], email.html.as_str());
    assert_eq!(
        v["message"]["toRecipients"],
        serde_json::json!([{ "emailAddress": { "address": "ops@contoso.com" } }])
    );
    assert_eq!(
        v["message"]["ccRecipients"],
        serde_json::json!([{ "emailAddress": { "address": "lead@contoso.com", "name": "Lead" } }])
    );
    assert_eq!(v["saveToSentItems"], false);
    assert_eq!(
        reqs[5].header("authorization").unwrap(),
        "Bearer eyJ0.app.two",
        "a refused token is replaced"
    );
}

#[test]
fn microsoft_365_a_refused_client_secret_is_permanent_and_never_quoted() {
    let rx = Receiver::start(vec![Reply::status(401).body(&format!(
        r#"{{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided: {M365_SECRET}"}}"#
    ))]);
    let ch = parse(&format!(
        "o365://alerts@contoso.com/{M365_TENANT}/app-client-id/{M365_SECRET}"
    ))
    .unwrap();
    let cx = belfry_channels::Context::new(Duration::from_secs(5))
        .with_origin("https://login.microsoftonline.com", &rx.url(""));
    let o = crate::send_with(
        ch.as_ref(),
        &notification(State::Failed, Reason::FirstRun),
        cx,
    );
    assert!(
        matches!(&o, Outcome::Permanent { reason }
            if reason.contains("getting a token") && reason.contains("invalid_client") && !reason.contains("S3CRET")),
        "{o:?}"
    );
    assert_eq!(rx.requests().len(), 1, "no mail without a token");
}
