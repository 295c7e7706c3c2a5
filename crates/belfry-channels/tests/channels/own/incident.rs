//! Incident services (Splunk On-Call, …): the requests they plan for the real services, and
//! the same requests sent to a loopback receiver standing in for them
//! (`parse_with_api_base`, or `Context::with_origin` for Better Stack), with the service's
//! answers classified.

use base64::Engine as _;
use belfry_channels::{Channel, Message, Outcome, parse, parse_with_api_base};
use belfry_core::{Reason, State};
use belfry_testkit::{Receiver, Reply};

use crate::{notification, send, send_with, via};

fn plan(ch: &dyn Channel, n: &belfry_core::Notification) -> Vec<belfry_channels::HttpRequest> {
    ch.plan(&Message {
        notification: n,
        idempotency_key: "n-1:ops",
    })
    .expect("an HTTP channel plans its requests")
}

/// A problem, a recovery, and a still-OK heartbeat of `nightly-backup`.
fn problem() -> belfry_core::Notification {
    notification(State::Failed, Reason::FirstRun)
}

fn recovery() -> belfry_core::Notification {
    notification(State::Ok, Reason::Recovered { after: 1 })
}

/// Sends a problem then a recovery through `url` to a receiver answering 200 twice, and
/// returns the requests it recorded.
fn problem_then_recovery(url: &str) -> Vec<belfry_testkit::Request> {
    let rx = Receiver::start(vec![Reply::status(200), Reply::status(200)]);
    let ch = parse_with_api_base(url, &rx.url("")).unwrap();
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    assert_eq!(send(ch.as_ref(), &recovery()), Outcome::Delivered);
    rx.requests()
}

/// 2xx delivered, 4xx permanent (with the status and never `secret`), 429 and 5xx retried.
fn answers_are_classified(url: &str, secret: &str) {
    let rx = Receiver::start(vec![
        Reply::status(202),
        Reply::status(400).body(&format!(r#"{{"message":"bad key {secret}"}}"#)),
        Reply::status(429),
        Reply::status(503),
    ]);
    let ch = parse_with_api_base(url, &rx.url("")).unwrap();
    let n = problem();
    assert_eq!(send(ch.as_ref(), &n), Outcome::Delivered);
    let o = send(ch.as_ref(), &n);
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("400") && !reason.contains(secret)),
        "{o:?}"
    );
    assert!(matches!(send(ch.as_ref(), &n), Outcome::Retry { .. }));
    assert!(matches!(send(ch.as_ref(), &n), Outcome::Retry { .. }));
}

/// `url` is refused with an error containing `what` and not `secret`.
fn refused(url: &str, what: &str, secret: &str) {
    let e = parse(url).unwrap_err().to_string();
    assert!(e.contains(what), "{url}: {e}");
    assert!(!e.contains(secret), "{url}: {e}");
}

const SPLUNK_KEY: &str = "S3CRET-splunk_key";

#[test]
fn splunk_triggers_the_jobs_entity_on_a_problem_and_recovers_it() {
    let url = format!("splunk://ops_route@{SPLUNK_KEY}");
    let real = plan(parse(&url).unwrap().as_ref(), &problem());
    assert_eq!(
        real[0].url,
        format!(
            "https://alert.victorops.com/integrations/generic/20131114/alert/{SPLUNK_KEY}/ops_route"
        )
    );

    let reqs = problem_then_recovery(&url);
    let (open, close) = (&reqs[0], &reqs[1]);
    assert_eq!(open.method, "POST");
    assert_eq!(
        open.target,
        format!("/integrations/generic/20131114/alert/{SPLUNK_KEY}/ops_route")
    );
    assert_eq!(open.header("content-type").unwrap(), "application/json");
    let v = open.json();
    assert_eq!(v["message_type"], "CRITICAL");
    assert_eq!(v["entity_id"], "belfry/nightly-backup");
    assert_eq!(v["entity_display_name"], "nightly-backup: Failed");
    assert_eq!(v["monitoring_tool"], "belfry");
    assert_eq!(v["job"], "nightly-backup");
    assert_eq!(v["exit_code"], "2");
    assert_eq!(v["host_name"], "db1");
    assert_eq!(v["run_id"], "run-7");
    assert!(v["state_message"].as_str().is_some_and(|m| !m.is_empty()));
    let v = close.json();
    assert_eq!(v["message_type"], "RECOVERY");
    assert_eq!(v["entity_id"], "belfry/nightly-backup");

    // A fixed entity id and a mapping change what is sent, not where.
    let reqs = problem_then_recovery(&format!(
        "victorops://ops_route@{SPLUNK_KEY}/disk%20space/db01?:failure=warn&:success=ack"
    ));
    assert_eq!(reqs[0].json()["entity_id"], "disk space/db01");
    assert_eq!(reqs[0].json()["message_type"], "WARNING");
    assert_eq!(reqs[1].json()["message_type"], "ACKNOWLEDGEMENT");
}

#[test]
fn splunk_answers_are_classified_and_bad_urls_refused_without_the_key() {
    answers_are_classified(&format!("splunk://ops_route@{SPLUNK_KEY}"), SPLUNK_KEY);
    refused(&format!("splunk://{SPLUNK_KEY}"), "routing key", SPLUNK_KEY);
    refused(
        &format!("splunk://ops_route@{SPLUNK_KEY}?action=page"),
        "action=\"page\"",
        SPLUNK_KEY,
    );
    refused(
        &format!("victorops://ops_route@{SPLUNK_KEY}?priority=high"),
        "unknown option \"priority\" for victorops://",
        SPLUNK_KEY,
    );
}

#[test]
fn splunk_rest_endpoint_address_is_sent_as_splunk_not_as_a_webhook() {
    let raw = format!(
        "https://alert.victorops.com/integrations/generic/20131114/alert/{SPLUNK_KEY}/ops_route"
    );
    let ch = parse(&raw).unwrap();
    assert_eq!(ch.scheme(), "splunk");
    assert!(!ch.describe().contains(SPLUNK_KEY), "{}", ch.describe());
    let req = &plan(ch.as_ref(), &problem())[0];
    assert_eq!(req.url, raw);
    let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(v["message_type"], "CRITICAL");
    refused(
        &format!("https://alert.victorops.com/integrations/generic/20131114/alert/{SPLUNK_KEY}"),
        "routing key",
        SPLUNK_KEY,
    );
}

const SQUADCAST_KEY: &str = "S3CRET_squadcast-key";

#[test]
fn squadcast_triggers_the_jobs_event_on_a_problem_and_resolves_it() {
    let url = format!("squadcast://{SQUADCAST_KEY}?priority=2&+team=storage");
    let real = plan(parse(&url).unwrap().as_ref(), &problem());
    assert_eq!(
        real[0].url,
        format!("https://api.squadcast.com/v2/incidents/api/{SQUADCAST_KEY}")
    );
    let eu = plan(
        parse(&format!("{url}&region=eu")).unwrap().as_ref(),
        &problem(),
    );
    assert_eq!(
        eu[0].url,
        format!("https://api.eu.squadcast.com/v2/incidents/api/{SQUADCAST_KEY}")
    );

    let reqs = problem_then_recovery(&url);
    let (open, close) = (&reqs[0], &reqs[1]);
    assert_eq!(open.method, "POST");
    assert_eq!(open.target, format!("/v2/incidents/api/{SQUADCAST_KEY}"));
    assert_eq!(open.header("content-type").unwrap(), "application/json");
    let v = open.json();
    assert_eq!(v["status"], "trigger");
    assert_eq!(v["event_id"], "belfry/nightly-backup");
    assert_eq!(v["message"], "nightly-backup: Failed");
    assert_eq!(v["priority"], "P2");
    assert_eq!(v["tags"]["job"], "nightly-backup");
    assert_eq!(v["tags"]["exit_code"], "2");
    assert_eq!(v["tags"]["host"], "db1");
    assert_eq!(v["tags"]["run_id"], "run-7");
    assert_eq!(v["tags"]["team"], "storage");
    assert!(v["description"].as_str().unwrap().contains("run-7"));
    let v = close.json();
    assert_eq!(v["status"], "resolve");
    assert_eq!(v["event_id"], "belfry/nightly-backup");

    let reqs = problem_then_recovery(&format!(
        "squadcast://{SQUADCAST_KEY}?dedup=backups&action=trigger"
    ));
    assert_eq!(reqs[0].json()["event_id"], "backups");
    assert_eq!(reqs[1].json()["status"], "trigger");
}

#[test]
fn squadcast_answers_are_classified_and_bad_urls_refused_without_the_key() {
    answers_are_classified(&format!("squadcast://{SQUADCAST_KEY}"), SQUADCAST_KEY);
    refused(
        &format!("squadcast://{SQUADCAST_KEY}?priority=urgent"),
        "priority=\"urgent\"",
        SQUADCAST_KEY,
    );
    refused(
        &format!("squadcast://{SQUADCAST_KEY}?region=asia"),
        "region",
        SQUADCAST_KEY,
    );
    refused(
        &format!("squadcast://{SQUADCAST_KEY}?routing_key=x"),
        "unknown option \"routing_key\" for squadcast://",
        SQUADCAST_KEY,
    );
}

#[test]
fn squadcast_webhook_address_is_sent_as_squadcast_not_as_a_webhook() {
    let raw = format!("https://api.eu.squadcast.com/v2/incidents/api/{SQUADCAST_KEY}");
    let ch = parse(&raw).unwrap();
    assert_eq!(ch.scheme(), "squadcast");
    assert!(!ch.describe().contains(SQUADCAST_KEY), "{}", ch.describe());
    let req = &plan(ch.as_ref(), &problem())[0];
    assert_eq!(req.url, raw);
    let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(v["status"], "trigger");
}

const INCIDENTIO_TOKEN: &str = "S3CRET-incidentio.token";

#[test]
fn incidentio_fires_the_jobs_alert_on_a_problem_and_resolves_it() {
    let url = format!(
        "incidentio://01ABCSOURCE/{INCIDENTIO_TOKEN}?click=https://ci.example/job&+team=storage"
    );
    let real = plan(parse(&url).unwrap().as_ref(), &problem());
    assert_eq!(
        real[0].url,
        "https://api.incident.io/v2/alert_events/http/01ABCSOURCE"
    );

    let reqs = problem_then_recovery(&url);
    let (open, close) = (&reqs[0], &reqs[1]);
    assert_eq!(open.method, "POST");
    assert_eq!(open.target, "/v2/alert_events/http/01ABCSOURCE");
    assert_eq!(
        open.header("authorization").unwrap(),
        format!("Bearer {INCIDENTIO_TOKEN}")
    );
    assert_eq!(open.header("content-type").unwrap(), "application/json");
    let v = open.json();
    assert_eq!(v["status"], "firing");
    assert_eq!(v["deduplication_key"], "belfry/nightly-backup");
    assert_eq!(v["title"], "nightly-backup: Failed");
    assert_eq!(v["source_url"], "https://ci.example/job");
    assert_eq!(v["metadata"]["job"], "nightly-backup");
    assert_eq!(v["metadata"]["exit_code"], "2");
    assert_eq!(v["metadata"]["host"], "db1");
    assert_eq!(v["metadata"]["run_id"], "run-7");
    assert_eq!(v["metadata"]["team"], "storage");
    assert!(v["description"].as_str().unwrap().contains("run-7"));
    let v = close.json();
    assert_eq!(v["status"], "resolved");
    assert_eq!(v["deduplication_key"], "belfry/nightly-backup");

    let reqs = problem_then_recovery(&format!(
        "incidentio://01ABCSOURCE/{INCIDENTIO_TOKEN}?dedup=backups&action=resolve"
    ));
    assert_eq!(reqs[0].json()["deduplication_key"], "backups");
    assert_eq!(reqs[0].json()["status"], "resolved");
}

#[test]
fn incidentio_answers_are_classified_and_bad_urls_refused_without_the_token() {
    answers_are_classified(
        &format!("incidentio://01ABCSOURCE/{INCIDENTIO_TOKEN}"),
        INCIDENTIO_TOKEN,
    );
    refused(
        &format!("incidentio://01ABCSOURCE/{INCIDENTIO_TOKEN}?action=page"),
        "action=\"page\"",
        INCIDENTIO_TOKEN,
    );
    refused(
        &format!("incidentio://01ABCSOURCE/{INCIDENTIO_TOKEN}?priority=high"),
        "unknown option \"priority\" for incidentio://",
        INCIDENTIO_TOKEN,
    );
    refused(
        "incidentio://01ABCSOURCE",
        "token is missing",
        INCIDENTIO_TOKEN,
    );
}

#[test]
fn incidentio_alert_source_address_is_sent_as_incidentio_not_as_a_webhook() {
    let raw = format!(
        "https://api.incident.io/v2/alert_events/http/01ABCSOURCE?token={INCIDENTIO_TOKEN}"
    );
    let ch = parse(&raw).unwrap();
    assert_eq!(ch.scheme(), "incidentio");
    assert!(
        !ch.describe().contains(INCIDENTIO_TOKEN),
        "{}",
        ch.describe()
    );
    let req = &plan(ch.as_ref(), &problem())[0];
    assert_eq!(
        req.url,
        "https://api.incident.io/v2/alert_events/http/01ABCSOURCE"
    );
    refused(
        "https://api.incident.io/v2/alert_events/http/01ABCSOURCE",
        "token",
        INCIDENTIO_TOKEN,
    );
}

const SIGNL4_SECRET: &str = "S3CRET-signl4-team";

#[test]
fn signl4_raises_the_jobs_alert_on_a_problem_and_resolves_it() {
    let url = format!("signl4://{SIGNL4_SECRET}?service=Backups&alerting_scenario=single_ack");
    let real = plan(parse(&url).unwrap().as_ref(), &problem());
    assert_eq!(
        real[0].url,
        format!("https://connect.signl4.com/webhook/{SIGNL4_SECRET}/")
    );

    let reqs = problem_then_recovery(&url);
    let (open, close) = (&reqs[0], &reqs[1]);
    assert_eq!(open.method, "POST");
    assert_eq!(open.target, format!("/webhook/{SIGNL4_SECRET}/"));
    assert_eq!(open.header("content-type").unwrap(), "application/json");
    let v = open.json();
    assert_eq!(v["X-S4-Status"], "new");
    assert_eq!(v["X-S4-ExternalID"], "belfry/nightly-backup");
    assert_eq!(v["X-S4-Service"], "Backups");
    assert_eq!(v["X-S4-AlertingScenario"], "single_ack");
    assert_eq!(v["X-S4-SourceSystem"], "belfry");
    assert_eq!(v["title"], "nightly-backup: Failed");
    assert_eq!(v["job"], "nightly-backup");
    assert_eq!(v["exit_code"], "2");
    assert_eq!(v["host"], "db1");
    assert_eq!(v["run_id"], "run-7");
    assert!(v["body"].as_str().unwrap().contains("run-7"));
    let v = close.json();
    assert_eq!(v["X-S4-Status"], "resolved");
    assert_eq!(v["X-S4-ExternalID"], "belfry/nightly-backup");

    let reqs = problem_then_recovery(&format!(
        "signl4://{SIGNL4_SECRET}?external_id=backups&action=trigger"
    ));
    assert_eq!(reqs[1].json()["X-S4-ExternalID"], "backups");
    assert_eq!(reqs[1].json()["X-S4-Status"], "new");
}

#[test]
fn signl4_answers_are_classified_and_bad_urls_refused_without_the_secret() {
    answers_are_classified(&format!("signl4://{SIGNL4_SECRET}"), SIGNL4_SECRET);
    refused(
        &format!("signl4://{SIGNL4_SECRET}?status=open"),
        "status=\"open\"",
        SIGNL4_SECRET,
    );
    refused(
        &format!("signl4://{SIGNL4_SECRET}?region=eu"),
        "unknown option \"region\" for signl4://",
        SIGNL4_SECRET,
    );
    assert_eq!(
        parse(&format!("signl4://{SIGNL4_SECRET}"))
            .unwrap()
            .describe(),
        "signl4://***"
    );
}

const PAGERTREE_ID: &str = "int_S3CRET0pt";

#[test]
fn pagertree_creates_the_jobs_alert_on_a_problem_and_resolves_it() {
    let url = format!(
        "pagertree://{PAGERTREE_ID}?urgency=high&tags=backup,db&-runbook=r1&+X-Team=ops&:source=cron"
    );
    let real = plan(parse(&url).unwrap().as_ref(), &problem());
    assert_eq!(
        real[0].url,
        format!("https://api.pagertree.com/integration/{PAGERTREE_ID}")
    );

    let reqs = problem_then_recovery(&url);
    let (open, close) = (&reqs[0], &reqs[1]);
    assert_eq!(open.method, "POST");
    assert_eq!(open.target, format!("/integration/{PAGERTREE_ID}"));
    assert_eq!(open.header("content-type").unwrap(), "application/json");
    assert_eq!(open.header("x-team").unwrap(), "ops");
    let v = open.json();
    assert_eq!(v["event_type"], "create");
    assert_eq!(v["id"], "belfry/nightly-backup");
    assert_eq!(v["title"], "nightly-backup: Failed");
    assert_eq!(v["urgency"], "high");
    assert_eq!(v["tags"], serde_json::json!(["backup", "db"]));
    assert_eq!(v["source"], "cron");
    assert_eq!(v["meta"]["job"], "nightly-backup");
    assert_eq!(v["meta"]["exit_code"], "2");
    assert_eq!(v["meta"]["host"], "db1");
    assert_eq!(v["meta"]["run_id"], "run-7");
    assert_eq!(v["meta"]["runbook"], "r1");
    assert!(v["description"].as_str().unwrap().contains("run-7"));
    let v = close.json();
    assert_eq!(v["event_type"], "resolve");
    assert_eq!(v["id"], "belfry/nightly-backup");
    assert!(v.get("title").is_none(), "{v}");

    let reqs = problem_then_recovery(&format!(
        "pagertree://{PAGERTREE_ID}?tid=backups&action=acknowledge"
    ));
    assert_eq!(reqs[0].json()["id"], "backups");
    assert_eq!(reqs[0].json()["event_type"], "acknowledge");
}

#[test]
fn pagertree_answers_are_classified_and_bad_urls_refused_without_the_id() {
    answers_are_classified(&format!("pagertree://{PAGERTREE_ID}"), PAGERTREE_ID);
    refused(
        &format!("pagertree://{PAGERTREE_ID}?urgency=urgent"),
        "urgency=\"urgent\"",
        PAGERTREE_ID,
    );
    refused(
        &format!("pagertree://{PAGERTREE_ID}?action=page"),
        "action=\"page\"",
        PAGERTREE_ID,
    );
    refused("pagertree://S3CRET", "integration id", "S3CRET");
    assert_eq!(
        parse(&format!("pagertree://{PAGERTREE_ID}"))
            .unwrap()
            .describe(),
        "pagertree://***"
    );
}

const GOALERT_KEY: &str = "5ec2e7a1-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const GOALERT_KEY2: &str = "6ec2e7a1-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// A `goalert://` URL for the server `rx` stands in for, under `/oncall/`.
fn goalert_url(rx: &Receiver, rest: &str) -> String {
    let hostport = rx
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    format!("goalert://{hostport}/oncall/{rest}")
}

#[test]
fn goalert_raises_the_jobs_alert_on_a_problem_and_closes_it_with_every_key() {
    let rx = Receiver::start(vec![Reply::status(200); 4]);
    let url = goalert_url(
        &rx,
        &format!("{GOALERT_KEY}?to={GOALERT_KEY2}&+team=storage"),
    );
    let ch = parse(&url).unwrap();
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    assert_eq!(send(ch.as_ref(), &recovery()), Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 4);
    for (r, key) in reqs
        .iter()
        .zip([GOALERT_KEY, GOALERT_KEY2, GOALERT_KEY, GOALERT_KEY2])
    {
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/oncall/api/v2/generic/incoming");
        assert_eq!(r.header("authorization").unwrap(), format!("Bearer {key}"));
        assert_eq!(r.header("content-type").unwrap(), "application/json");
    }
    let v = reqs[0].json();
    assert_eq!(v["summary"], "nightly-backup: Failed");
    assert_eq!(v["dedup"], "belfry/nightly-backup");
    assert!(v.get("action").is_none(), "{v}");
    assert_eq!(v["meta"]["job"], "nightly-backup");
    assert_eq!(v["meta"]["exit_code"], "2");
    assert_eq!(v["meta"]["host"], "db1");
    assert_eq!(v["meta"]["run_id"], "run-7");
    assert_eq!(v["meta"]["team"], "storage");
    assert!(v["details"].as_str().unwrap().contains("run-7"));
    let v = reqs[2].json();
    assert_eq!(v["action"], "close");
    assert_eq!(v["dedup"], "belfry/nightly-backup");
}

#[test]
fn goalert_answers_are_classified_and_bad_urls_refused_without_the_key() {
    let rx = Receiver::start(vec![
        Reply::status(204),
        Reply::status(401).body(&format!("bad key {GOALERT_KEY}")),
        Reply::status(429),
        Reply::status(503),
    ]);
    let ch = parse(&goalert_url(&rx, GOALERT_KEY)).unwrap();
    assert!(!ch.describe().contains(GOALERT_KEY), "{}", ch.describe());
    let n = problem();
    assert_eq!(send(ch.as_ref(), &n), Outcome::Delivered);
    let o = send(ch.as_ref(), &n);
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("401") && !reason.contains(GOALERT_KEY)),
        "{o:?}"
    );
    assert!(matches!(send(ch.as_ref(), &n), Outcome::Retry { .. }));
    assert!(matches!(send(ch.as_ref(), &n), Outcome::Retry { .. }));
    refused(
        &format!("goalert://goalert.example.com/{GOALERT_KEY}?action=page"),
        "action=\"page\"",
        GOALERT_KEY,
    );
    refused(
        &format!("goalerts://goalert.example.com/{GOALERT_KEY}?to=nokey"),
        "not an integration key",
        GOALERT_KEY,
    );
}

const ILERT_KEY: &str = "il1api-S3CRET_key";

#[test]
fn ilert_raises_the_jobs_alert_on_a_problem_and_resolves_it() {
    let url = format!(
        "ilert://{ILERT_KEY}?priority=high&route=ops&click=https://ci.example/job&+team=storage"
    );
    let real = plan(parse(&url).unwrap().as_ref(), &problem());
    assert_eq!(real[0].url, "https://api.ilert.com/api/events");

    let reqs = problem_then_recovery(&url);
    let (open, close) = (&reqs[0], &reqs[1]);
    assert_eq!(open.method, "POST");
    assert_eq!(open.target, "/api/events");
    assert_eq!(open.header("content-type").unwrap(), "application/json");
    let v = open.json();
    assert_eq!(v["integrationKey"], ILERT_KEY);
    assert_eq!(v["eventType"], "ALERT");
    assert_eq!(v["alertKey"], "belfry/nightly-backup");
    assert_eq!(v["summary"], "nightly-backup: Failed");
    assert_eq!(v["priority"], "HIGH");
    assert_eq!(v["routingKey"], "ops");
    assert_eq!(
        v["links"],
        serde_json::json!([{"href": "https://ci.example/job"}])
    );
    assert_eq!(v["labels"], serde_json::json!({"team": "storage"}));
    assert_eq!(v["customDetails"]["job"], "nightly-backup");
    assert_eq!(v["customDetails"]["exit_code"], "2");
    assert_eq!(v["customDetails"]["host"], "db1");
    assert_eq!(v["customDetails"]["run_id"], "run-7");
    assert!(v["details"].as_str().unwrap().contains("run-7"));
    let v = close.json();
    assert_eq!(v["eventType"], "RESOLVE");
    assert_eq!(v["alertKey"], "belfry/nightly-backup");
}

#[test]
fn ilert_answers_are_classified_and_bad_urls_refused_without_the_key() {
    answers_are_classified(&format!("ilert://{ILERT_KEY}"), ILERT_KEY);
    refused(
        &format!("ilert://{ILERT_KEY}?priority=urgent"),
        "priority=\"urgent\"",
        ILERT_KEY,
    );
    refused(
        &format!("ilert://{ILERT_KEY}?action=page"),
        "action=\"page\"",
        ILERT_KEY,
    );
    assert_eq!(
        parse(&format!("ilert://{ILERT_KEY}")).unwrap().describe(),
        "ilert://***"
    );
}

const XMATTERS_KEY: &str = "S3CRET-xmatters-key";

#[test]
fn xmatters_starts_the_flow_with_the_jobs_incident_key_and_status() {
    let url = format!("xmatters://{XMATTERS_KEY}@acme/f00d-1/ada?to=ops");
    let real = plan(parse(&url).unwrap().as_ref(), &problem());
    assert_eq!(
        real[0].url,
        format!(
            "https://acme.xmatters.com/api/integration/1/functions/f00d-1/triggers?apiKey={XMATTERS_KEY}"
        )
    );

    let reqs = problem_then_recovery(&url);
    let (open, close) = (&reqs[0], &reqs[1]);
    assert_eq!(open.method, "POST");
    assert_eq!(
        open.target,
        format!("/api/integration/1/functions/f00d-1/triggers?apiKey={XMATTERS_KEY}")
    );
    assert_eq!(open.header("content-type").unwrap(), "application/json");
    let v = open.json();
    assert_eq!(v["summary"], "nightly-backup: Failed");
    assert_eq!(v["recipients"], "ada,ops");
    assert_eq!(v["incident_key"], "belfry/nightly-backup");
    assert_eq!(v["status"], "open");
    assert_eq!(v["job"], "nightly-backup");
    assert_eq!(v["exit_code"], "2");
    assert_eq!(v["host"], "db1");
    assert_eq!(v["run_id"], "run-7");
    assert!(v["message"].as_str().unwrap().contains("run-7"));
    assert_eq!(close.json()["status"], "resolved");
    assert_eq!(close.json()["incident_key"], "belfry/nightly-backup");

    // A user name and password go as basic authentication, not in the address.
    let reqs = problem_then_recovery("xmatters://ops:S3CRET-pw@acme/f00d-1");
    assert_eq!(
        reqs[0].target,
        "/api/integration/1/functions/f00d-1/triggers"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("ops:S3CRET-pw");
    assert_eq!(
        reqs[0].header("authorization").unwrap(),
        format!("Basic {basic}")
    );
}

#[test]
fn xmatters_answers_are_classified_and_bad_urls_refused_without_the_key() {
    answers_are_classified(
        &format!("xmatters://{XMATTERS_KEY}@acme/f00d-1"),
        XMATTERS_KEY,
    );
    refused(
        &format!("xmatters://{XMATTERS_KEY}@acme"),
        "integration id",
        XMATTERS_KEY,
    );
    refused(
        &format!("xmatters://{XMATTERS_KEY}@acme/f00d-1?action=close"),
        "unknown option \"action\" for xmatters://",
        XMATTERS_KEY,
    );
}

#[test]
fn xmatters_trigger_address_is_sent_as_xmatters_not_as_a_webhook() {
    let raw = format!(
        "https://acme.xmatters.com/api/integration/1/functions/f00d-1/triggers?apiKey={XMATTERS_KEY}"
    );
    let ch = parse(&raw).unwrap();
    assert_eq!(ch.scheme(), "xmatters");
    assert!(!ch.describe().contains(XMATTERS_KEY), "{}", ch.describe());
    assert_eq!(plan(ch.as_ref(), &problem())[0].url, raw);
}

const BETTERSTACK_TOKEN: &str = "S3CRETbetterstackTok";

/// A page of Better Stack's listing of open incidents: `(id, name)`, and whether more follow.
fn open_incidents(incidents: &[(&str, &str)], more: bool) -> Reply {
    let data: Vec<serde_json::Value> = incidents
        .iter()
        .map(|(id, name)| {
            serde_json::json!({
                "id": id,
                "type": "incident",
                "attributes": {"name": name, "cause": "x", "resolved_at": null}
            })
        })
        .collect();
    let next = more.then_some("https://uptime.betterstack.com/api/v3/incidents?page=2");
    Reply::status(200).body(
        &serde_json::json!({"data": data, "pagination": {"first": null, "next": next}}).to_string(),
    )
}

fn betterstack_send(url: &str, n: &belfry_core::Notification, rx: &Receiver) -> Outcome {
    let ch = parse(url).unwrap();
    send_with(ch.as_ref(), n, via("https://uptime.betterstack.com", rx))
}

#[test]
fn betterstack_opens_an_incident_named_after_the_job_unless_one_is_open() {
    let url = format!(
        "betterstack://{BETTERSTACK_TOKEN}?requester=ops@example.org&team=Platform&policy=981\
         &team_wait=120&call=no&critical_alert=yes"
    );
    let real = plan(parse(&url).unwrap().as_ref(), &problem());
    assert_eq!(
        real[0].url,
        "https://uptime.betterstack.com/api/v3/incidents?resolved=false&per_page=50&team_name=Platform"
    );
    assert_eq!(
        real[1].url,
        "https://uptime.betterstack.com/api/v3/incidents"
    );

    let rx = Receiver::start(vec![
        open_incidents(&[("12", "belfry/other-job")], false),
        Reply::status(201).body(r#"{"data":{"id":"13","type":"incident"}}"#),
    ]);
    assert_eq!(betterstack_send(&url, &problem(), &rx), Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    let (list, create) = (&reqs[0], &reqs[1]);
    assert_eq!(list.method, "GET");
    assert_eq!(
        list.target,
        "/api/v3/incidents?resolved=false&per_page=50&team_name=Platform"
    );
    for r in [list, create] {
        assert_eq!(
            r.header("authorization").unwrap(),
            format!("Bearer {BETTERSTACK_TOKEN}")
        );
    }
    assert_eq!(create.method, "POST");
    assert_eq!(create.target, "/api/v3/incidents");
    assert_eq!(create.header("content-type").unwrap(), "application/json");
    let v = create.json();
    assert_eq!(v["name"], "belfry/nightly-backup");
    assert_eq!(v["summary"], "nightly-backup: Failed");
    assert!(v["description"].as_str().unwrap().contains("run-7"));
    assert_eq!(v["requester_email"], "ops@example.org");
    assert_eq!(v["team_name"], "Platform");
    assert_eq!(v["policy_id"], "981");
    assert_eq!(v["team_wait"], 120);
    assert_eq!(v["call"], false);
    assert_eq!(v["critical_alert"], true);
    assert!(
        v.get("sms").is_none(),
        "unset flags are Better Stack's: {v}"
    );

    // The job's incident is open: the problem is folded into it, nothing is created.
    let rx = Receiver::start(vec![open_incidents(
        &[("12", "belfry/nightly-backup")],
        false,
    )]);
    assert_eq!(betterstack_send(&url, &problem(), &rx), Outcome::Delivered);
    assert_eq!(rx.requests().len(), 1);
}

#[test]
fn betterstack_resolves_every_open_incident_of_the_jobs_name_on_recovery() {
    let url = format!("betterstack://{BETTERSTACK_TOKEN}");
    assert_eq!(plan(parse(&url).unwrap().as_ref(), &recovery()).len(), 1);
    let rx = Receiver::start(vec![
        open_incidents(
            &[("77", "belfry/nightly-backup"), ("12", "belfry/other-job")],
            true,
        ),
        open_incidents(&[("78", "belfry/nightly-backup")], false),
        Reply::status(200).body(r#"{"data":{"id":"77"}}"#),
        // Resolved by someone in between: what was wanted.
        Reply::status(409).body(r#"{"errors":"Incident already resolved"}"#),
    ]);
    assert_eq!(betterstack_send(&url, &recovery(), &rx), Outcome::Delivered);
    let reqs = rx.requests();
    let seen: Vec<(&str, &str)> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.target.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", "/api/v3/incidents?resolved=false&per_page=50"),
            ("GET", "/api/v3/incidents?resolved=false&per_page=50&page=2"),
            ("POST", "/api/v3/incidents/77/resolve"),
            ("POST", "/api/v3/incidents/78/resolve"),
        ]
    );
    assert_eq!(reqs[2].json(), serde_json::json!({"resolved_by": "belfry"}));

    // Nothing open: nothing to close, and nothing else is sent.
    let rx = Receiver::start(vec![open_incidents(&[], false)]);
    assert_eq!(betterstack_send(&url, &recovery(), &rx), Outcome::Delivered);
    assert_eq!(rx.requests().len(), 1);

    // dedup= names the incident; action=trigger opens it whatever the notification says.
    let rx = Receiver::start(vec![open_incidents(&[], false), Reply::status(201)]);
    let fixed = format!("{url}?dedup=backups&action=trigger");
    assert_eq!(
        betterstack_send(&fixed, &recovery(), &rx),
        Outcome::Delivered
    );
    assert_eq!(rx.requests()[1].json()["name"], "backups");
}

#[test]
fn betterstack_answers_are_classified_at_each_step_without_the_token() {
    let url = format!("betterstack://{BETTERSTACK_TOKEN}");
    let rx = Receiver::start(vec![
        Reply::status(429).header("Retry-After", "30"),
        Reply::status(503),
        Reply::status(401).body(&format!(r#"{{"errors":"Invalid token {BETTERSTACK_TOKEN}"}}"#)),
        open_incidents(&[], false),
        Reply::status(422).body(&format!(
            r#"{{"errors":{{"requester_email":["is not a member of the team"]}},"token":"{BETTERSTACK_TOKEN}"}}"#
        )),
        open_incidents(&[("5", "belfry/nightly-backup")], false),
        Reply::status(500),
    ]);
    let o = betterstack_send(&url, &problem(), &rx);
    assert!(
        matches!(&o, Outcome::Retry { after: Some(d), reason } if d.as_secs() == 30 && reason.contains("listing the open incidents")),
        "{o:?}"
    );
    assert!(matches!(
        betterstack_send(&url, &problem(), &rx),
        Outcome::Retry { .. }
    ));
    let o = betterstack_send(&url, &problem(), &rx);
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("401") && !reason.contains(BETTERSTACK_TOKEN)),
        "{o:?}"
    );
    let o = betterstack_send(&url, &problem(), &rx);
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("creating the incident") && reason.contains("not a member") && !reason.contains(BETTERSTACK_TOKEN)),
        "{o:?}"
    );
    let o = betterstack_send(&url, &recovery(), &rx);
    assert!(
        matches!(&o, Outcome::Retry { reason, .. } if reason.contains("resolving incident 5")),
        "{o:?}"
    );
}

#[test]
fn betterstack_urls_are_refused_without_the_token() {
    refused("betterstack://", "API token is missing", BETTERSTACK_TOKEN);
    refused(
        &format!("betterstack://{BETTERSTACK_TOKEN}?requester=ops"),
        "requester=\"ops\"",
        BETTERSTACK_TOKEN,
    );
    refused(
        &format!("betterstack://{BETTERSTACK_TOKEN}?sms=often"),
        "sms=\"often\"",
        BETTERSTACK_TOKEN,
    );
    refused(
        &format!("betterstack://{BETTERSTACK_TOKEN}?email=ops@example.org"),
        "email=\"ops@example.org\" is neither yes nor no",
        BETTERSTACK_TOKEN,
    );
    refused(
        &format!("betterstack://{BETTERSTACK_TOKEN}?severity=high"),
        "unknown option \"severity\" for betterstack://",
        BETTERSTACK_TOKEN,
    );
}
