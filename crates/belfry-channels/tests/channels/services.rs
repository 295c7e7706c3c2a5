//! Every tocsin-backed service: the request it builds for a sample URL, sent to the receiver
//! where the service's address can be set, and checked as planned where it cannot.

use belfry_channels::{Method, Outcome, parse};
use belfry_core::{Reason, State};
use belfry_testkit::{Receiver, Reply};

use super::{
    field, form, header, json, notification, planned, problem, recovery, send, send_with, via,
};

/// Sends a problem through `url` (with `{addr}` replaced by the receiver's address) and returns
/// the one request the receiver got.
fn deliver(url: &str) -> belfry_testkit::Request {
    let rx = Receiver::start(vec![]);
    let url = url.replace("{addr}", &rx.addr().to_string());
    let ch = parse(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered, "{url}");
    let mut reqs = rx.requests();
    assert_eq!(reqs.len(), 1, "{url}");
    reqs.remove(0)
}

// --- services whose address is in the URL: sent to the receiver ---

#[test]
fn ntfy_publishes_to_a_self_hosted_server() {
    let r = deliver("ntfy://alice:s3cret@{addr}/backups");
    assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/"));
    assert_eq!(r.header("authorization"), Some("Basic YWxpY2U6czNjcmV0"));
    let v = r.json();
    assert_eq!(v["topic"], "backups");
    assert_eq!(v["title"], "🔴 nightly-backup: Failed");
    // A problem is sent at high priority when the URL chose none.
    assert_eq!(v["priority"], 4);
    let message = v["message"].as_str().unwrap();
    assert!(
        message.starts_with("exit code 2 after 1.5s on db1"),
        "{message}"
    );
    assert!(
        message.ends_with("<b>disk</b> full & sad"),
        "plain text: {message}"
    );

    let r = deliver("ntfy://{addr}/backups?priority=low&tags=disk");
    assert_eq!(r.header("x-priority"), Some("low"));
    assert_eq!(r.header("x-tags"), Some("disk"));
    assert!(
        r.json().get("priority").is_none(),
        "the URL's priority stands"
    );
}

#[test]
fn ntfy_markdown_is_rendered_when_the_url_asks_for_it() {
    let r = deliver("ntfy://{addr}/backups?format=markdown");
    assert_eq!(r.header("x-markdown"), Some("yes"));
    let message = r.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("```\nstarting"), "{message}");
}

#[test]
fn gotify_posts_a_message_with_its_app_token() {
    let r = deliver("gotify://{addr}/AbCdEf123?priority=high");
    assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/message"));
    assert_eq!(r.header("x-gotify-key"), Some("AbCdEf123"));
    let v = r.json();
    assert_eq!(v["title"], "🔴 nightly-backup: Failed");
    assert_eq!(v["priority"], 8);
    assert!(v["message"].as_str().unwrap().contains("run run-7"));
}

#[test]
fn mattermost_posts_markdown_to_its_webhook() {
    let r = deliver("mmost://{addr}/hooktoken123?to=ops");
    assert_eq!(r.target, "/hooks/hooktoken123");
    let v = r.json();
    assert_eq!(v["channel"], "ops");
    assert_eq!(v["username"], "belfry");
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with("**🔴 nightly-backup: Failed**\n"),
        "{text}"
    );
    assert!(
        text.ends_with("```\nstarting\n<b>disk</b> full & sad\n```"),
        "{text}"
    );
}

#[test]
fn rocketchat_posts_to_its_webhook() {
    let r = deliver("rocket://hookid/hooktoken@{addr}/#ops");
    assert_eq!(r.target, "/hooks/hookid/hooktoken");
    let v = r.json();
    assert_eq!(v["channel"], "#ops");
    let text = v["text"].as_str().unwrap();
    assert!(text.starts_with("*🔴 nightly-backup: Failed*\n"), "{text}");
    assert!(
        text.ends_with("```starting\n<b>disk</b> full & sad```"),
        "{text}"
    );
}

#[test]
fn rocketchat_logs_in_posts_with_the_token_it_got_and_logs_out() {
    let rx = Receiver::start(vec![
        Reply::ok().body(r#"{"status":"success","data":{"userId":"U1","authToken":"T0K3N"}}"#),
        Reply::ok().body(r#"{"success":true}"#),
        // A failed logout does not undo the delivery.
        Reply::status(401),
    ]);
    let ch = parse(&format!("rocket://alice:pw@{}/#ops", rx.addr())).unwrap();
    assert_eq!(send(ch.as_ref(), &problem()), Outcome::Delivered);
    let reqs = rx.requests();
    let targets: Vec<&str> = reqs.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "/api/v1/login",
            "/api/v1/chat.postMessage",
            "/api/v1/logout"
        ]
    );
    assert_eq!(
        form(&reqs[0].body),
        [
            ("username".into(), "alice".into()),
            ("password".into(), "pw".into())
        ]
    );
    assert_eq!(reqs[1].header("x-auth-token"), Some("T0K3N"));
    assert_eq!(reqs[1].header("x-user-id"), Some("U1"));
    assert_eq!(reqs[1].json()["channel"], "#ops");
}

#[test]
fn home_assistant_creates_a_persistent_notification() {
    let r = deliver("hassio://{addr}/abcdef.ghijkl.mnopqr");
    assert_eq!(r.target, "/api/services/persistent_notification/create");
    assert_eq!(
        r.header("authorization"),
        Some("Bearer abcdef.ghijkl.mnopqr")
    );
    assert_eq!(r.json()["title"], "🔴 nightly-backup: Failed");
}

#[test]
fn signal_sends_through_the_rest_api() {
    let r = deliver("signal://{addr}/+12025550123/+12025550124");
    assert_eq!(r.target, "/v2/send");
    let v = r.json();
    assert_eq!(v["number"], "+12025550123");
    assert_eq!(v["recipients"], serde_json::json!(["+12025550124"]));
    // Signal has no title: the headline leads the message.
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("🔴 nightly-backup: Failed\r\nexit code 2")
    );
}

#[test]
fn bark_pushes_to_each_device() {
    let r = deliver("bark://{addr}/devicekey1");
    assert_eq!(r.target, "/push");
    let v = r.json();
    assert_eq!(v["device_key"], "devicekey1");
    assert_eq!(v["title"], "🔴 nightly-backup: Failed");
}

#[test]
fn the_xml_webhook_posts_apprises_envelope() {
    let r = deliver("xml://{addr}/hooks/xml?+X-Team=ops");
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/hooks/xml")
    );
    assert_eq!(r.header("content-type"), Some("application/xml"));
    assert_eq!(r.header("x-team"), Some("ops"));
    let body = String::from_utf8(r.body).unwrap();
    assert!(
        body.contains("<Subject>🔴 nightly-backup: Failed</Subject>"),
        "{body}"
    );
    assert!(
        body.contains("<MessageType>failure</MessageType>"),
        "{body}"
    );
    assert!(
        body.contains("&lt;b&gt;disk&lt;/b&gt; full &amp; sad"),
        "{body}"
    );
}

#[test]
fn the_form_webhook_posts_fields() {
    let r = deliver("form://bob:pw@{addr}/in?:extra=1&-source=belfry&method=put");
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("PUT", "/in?source=belfry")
    );
    assert_eq!(r.header("authorization"), Some("Basic Ym9iOnB3"));
    let f = form(&r.body);
    assert_eq!(field(&f, "title"), Some("🔴 nightly-backup: Failed"));
    assert_eq!(field(&f, "type"), Some("failure"));
    assert_eq!(field(&f, "extra"), Some("1"));
    assert!(field(&f, "message").unwrap().contains("exit code 2"));
}

// --- services with a fixed address: the planned request ---

#[test]
fn telegram_sends_html_to_each_chat() {
    let reqs = planned(
        "tgram://123456789:AAH-tok_en/-1001234/@ops_channel",
        &problem(),
    );
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(r.method, Method::Post);
        assert_eq!(
            r.url,
            "https://api.telegram.org/bot123456789:AAH-tok_en/sendMessage"
        );
        let v = json(r);
        assert_eq!(v["parse_mode"], "HTML");
        let text = v["text"].as_str().unwrap();
        assert!(
            text.starts_with("<b>🔴 nightly-backup: Failed</b>\n"),
            "{text}"
        );
        assert!(
            text.ends_with("&lt;b&gt;disk&lt;/b&gt; full &amp; sad</pre>"),
            "{text}"
        );
    }
    let chats: Vec<serde_json::Value> = reqs.iter().map(|r| json(r)["chat_id"].clone()).collect();
    assert!(chats.contains(&serde_json::json!(-1001234)));
    assert!(chats.contains(&serde_json::json!("@ops_channel")));
}

#[test]
fn telegram_without_a_chat_writes_to_whoever_wrote_to_the_bot() {
    let rx = Receiver::start(vec![Reply::ok().body(
        r#"{"ok":true,"result":[{"update_id":1,"message":{"from":{"id":4242,"is_bot":false},"text":"/start"}}]}"#,
    )]);
    let ch = parse("tgram://123456789:AAHtoken").unwrap();
    let o = send_with(
        ch.as_ref(),
        &problem(),
        via("https://api.telegram.org", &rx),
    );
    assert_eq!(o, Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].target, "/bot123456789:AAHtoken/getUpdates");
    assert_eq!(reqs[1].target, "/bot123456789:AAHtoken/sendMessage");
    assert_eq!(reqs[1].json()["chat_id"], 4242);
}

#[test]
fn discord_gets_an_embed_in_the_states_colour_from_either_address() {
    for url in [
        "discord://123456789/tokenABCdef",
        "https://discord.com/api/webhooks/123456789/tokenABCdef",
    ] {
        let ch = parse(url).unwrap();
        assert_eq!(ch.scheme(), "discord");
        let reqs = planned(url, &problem());
        assert_eq!(reqs.len(), 1);
        assert_eq!(
            reqs[0].url,
            "https://discord.com/api/webhooks/123456789/tokenABCdef?wait=true"
        );
        let v = json(&reqs[0]);
        assert!(v.get("content").is_none());
        let e = &v["embeds"][0];
        assert_eq!(e["title"], "🔴 nightly-backup: Failed");
        assert_eq!(e["color"], 0xD50200);
        assert_eq!(e["footer"]["text"], "belfry · run run-7");
        assert_eq!(e["fields"][1]["name"], "Exit code");
        assert!(
            e["description"]
                .as_str()
                .unwrap()
                .contains("```\nstarting\n<b>disk</b> full & sad\n```")
        );
    }
    let v = json(&planned("discord://123456789/tokenABCdef", &recovery())[0]);
    assert_eq!(v["embeds"][0]["color"], 0x2EB886);
    assert_eq!(v["embeds"][0]["title"], "✅ nightly-backup: Recovered");
}

#[test]
fn slack_bots_post_with_their_token_and_look_users_up_by_email() {
    let reqs = planned("slack://xoxb-1234-5678-abcdef/#ops", &problem());
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].url, "https://slack.com/api/chat.postMessage");
    assert_eq!(
        header(&reqs[0], "authorization"),
        Some("Bearer xoxb-1234-5678-abcdef")
    );
    let v = json(&reqs[0]);
    assert_eq!(v["channel"], "#ops");
    assert_eq!(v["attachments"][0]["color"], "#D50200");

    let rx = Receiver::start(vec![
        Reply::ok().body(r#"{"ok":true,"user":{"id":"U0ADA"}}"#),
        Reply::ok().body(r#"{"ok":true,"channel":"D1","ts":"1.2"}"#),
    ]);
    let ch = parse("slack://xoxb-1234-5678-abcdef/ada@example.com").unwrap();
    let o = send_with(ch.as_ref(), &problem(), via("https://slack.com", &rx));
    assert_eq!(o, Outcome::Delivered);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(
        reqs[0].target,
        "/api/users.lookupByEmail?email=ada%40example.com"
    );
    assert_eq!(reqs[1].target, "/api/chat.postMessage");
    assert_eq!(reqs[1].json()["channel"], "U0ADA");
}

#[test]
fn slack_webhook_addresses_and_apprise_urls_are_one_mechanism() {
    let a = planned("slack://T1ABC/B2DEF/xyz789", &problem());
    let b = planned(
        "https://hooks.slack.com/services/T1ABC/B2DEF/xyz789",
        &problem(),
    );
    assert_eq!(a, b);
    assert_eq!(
        a[0].url,
        "https://hooks.slack.com/services/T1ABC/B2DEF/xyz789"
    );
    // A Slack workflow webhook gets text.
    let w = planned("https://hooks.slack.com/triggers/T1ABC/123/abc", &problem());
    assert_eq!(w[0].url, "https://hooks.slack.com/triggers/T1ABC/123/abc");
    assert!(
        json(&w[0])["text"]
            .as_str()
            .unwrap()
            .starts_with("🔴 nightly-backup: Failed: ")
    );
}

#[test]
fn teams_workflows_get_an_adaptive_card_from_the_address_teams_shows() {
    let addr = "https://prod-00.westus.logic.azure.com:443/workflows/abc123/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=SiGnAtUrE";
    let ch = parse(addr).unwrap();
    assert_eq!(ch.scheme(), "workflows");
    assert_eq!(
        ch.describe(),
        "https://prod-00.westus.logic.azure.com:443/…"
    );
    for url in [
        addr,
        "workflows://prod-00.westus.logic.azure.com:443/abc123/SiGnAtUrE",
    ] {
        let reqs = planned(url, &problem());
        assert_eq!(reqs.len(), 1, "{url}");
        let r = &reqs[0];
        assert!(
            r.url.starts_with(
                "https://prod-00.westus.logic.azure.com:443/workflows/abc123/triggers/manual/paths/invoke?"
            ),
            "{}",
            r.url
        );
        assert!(r.url.contains("sig=SiGnAtUrE"));
        let card = &json(r)["attachments"][0]["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        let body = card["body"].as_array().unwrap();
        assert_eq!(body[0]["text"], "🔴 nightly-backup: Failed");
        assert_eq!(body[0]["color"], "attention");
        assert_eq!(body[2]["type"], "FactSet");
        let last = body.last().unwrap();
        assert_eq!(last["fontType"], "Monospace");
        assert_eq!(last["text"], "<b>disk</b> full & sad");
    }
}

#[test]
fn google_chat_gets_its_own_bold_and_code_block() {
    let r = &planned("gchat://SPACE1/KEY2/TOKEN3", &problem())[0];
    assert_eq!(
        r.url,
        "https://chat.googleapis.com/v1/spaces/SPACE1/messages?token=TOKEN3&key=KEY2"
    );
    let text = json(r)["text"].as_str().unwrap().to_owned();
    assert!(text.starts_with("*🔴 nightly-backup: Failed*\n"), "{text}");
    assert!(text.contains("```starting"), "{text}");
}

#[test]
fn zulip_keeps_a_jobs_messages_in_one_topic() {
    let token = "a".repeat(32);
    let r = &planned(&format!("zulip://belfry-bot@myorg/{token}/ops"), &problem())[0];
    assert_eq!(r.url, "https://myorg.zulipchat.com/api/v1/messages");
    let f = form(&r.body);
    assert_eq!(field(&f, "type"), Some("stream"));
    assert_eq!(field(&f, "to"), Some("ops"));
    assert_eq!(field(&f, "subject"), Some("nightly-backup"));
    assert!(
        field(&f, "content")
            .unwrap()
            .starts_with("**🔴 nightly-backup: Failed**")
    );
}

#[test]
fn pushover_pushbullet_prowl_and_ifttt_get_title_and_text() {
    let r = &planned("pover://USERKEY123@APPTOKEN456/phone", &problem())[0];
    assert_eq!(r.url, "https://api.pushover.net/1/messages.json");
    let f = form(&r.body);
    assert_eq!(field(&f, "user"), Some("USERKEY123"));
    assert_eq!(field(&f, "token"), Some("APPTOKEN456"));
    assert_eq!(field(&f, "device"), Some("phone"));
    assert_eq!(field(&f, "title"), Some("🔴 nightly-backup: Failed"));

    let r = &planned("pbul://o.accesstoken123", &problem())[0];
    assert_eq!(r.url, "https://api.pushbullet.com/v2/pushes");
    let v = json(r);
    assert_eq!(
        (v["type"].as_str(), v["title"].as_str()),
        (Some("note"), Some("🔴 nightly-backup: Failed"))
    );

    let key = "0123456789abcdef0123456789abcdef01234567";
    let r = &planned(&format!("prowl://{key}"), &problem())[0];
    assert_eq!(r.url, "https://api.prowlapp.com/publicapi/add");
    let f = form(&r.body);
    assert_eq!(field(&f, "apikey"), Some(key));
    assert_eq!(field(&f, "application"), Some("belfry"));
    assert_eq!(field(&f, "event"), Some("🔴 nightly-backup: Failed"));

    let r = &planned("ifttt://webhookid123@backup_failed", &problem())[0];
    assert_eq!(
        r.url,
        "https://maker.ifttt.com/trigger/backup_failed/with/key/webhookid123"
    );
    let v = json(r);
    assert_eq!(v["value1"], "🔴 nightly-backup: Failed");
    assert_eq!(v["value3"], "failure");
}

#[test]
fn pagerduty_triggers_on_a_problem_and_resolves_the_same_incident_on_recovery() {
    let url = "pagerduty://integrationkey1@apikey2/backups?+team=ops";
    let t = &planned(url, &problem())[0];
    assert_eq!(t.url, "https://events.pagerduty.com/v2/enqueue");
    assert_eq!(header(t, "authorization"), Some("Token token=apikey2"));
    let v = json(t);
    assert_eq!(v["routing_key"], "integrationkey1");
    assert_eq!(v["event_action"], "trigger");
    assert_eq!(v["dedup_key"], "belfry/nightly-backup");
    let p = &v["payload"];
    assert_eq!(p["severity"], "critical");
    assert_eq!(p["source"], "backups");
    assert_eq!(
        p["summary"],
        "🔴 nightly-backup: Failed — exit code 2 after 1.5s on db1; first run of this job"
    );
    assert_eq!(p["custom_details"]["team"], "ops");
    assert_eq!(p["custom_details"]["exit_code"], 2);
    assert_eq!(p["custom_details"]["run_id"], "run-7");

    let r = json(&planned(url, &recovery())[0]);
    assert_eq!(r["event_action"], "resolve");
    assert_eq!(r["dedup_key"], "belfry/nightly-backup");
    assert_eq!(r["routing_key"], "integrationkey1");
    assert!(r.get("payload").is_none());

    // Without a source in the URL, the host the job ran on.
    let v = json(&planned("pagerduty://integrationkey1@apikey2", &problem())[0]);
    assert_eq!(v["payload"]["source"], "db1");
    let eu = &planned("pagerduty://integrationkey1@apikey2?region=eu", &problem())[0];
    assert_eq!(eu.url, "https://events.eu.pagerduty.com/v2/enqueue");
}

#[test]
fn pagerduty_action_and_dedup_from_the_url_are_honoured_and_a_bad_action_refused() {
    let base = "pagerduty://integrationkey1@apikey2";
    let action = |url: &str, n: &belfry_core::Notification| {
        let v = json(&planned(url, n)[0]);
        (
            v["event_action"].as_str().unwrap().to_owned(),
            v["dedup_key"].as_str().unwrap().to_owned(),
        )
    };
    let job = "belfry/nightly-backup".to_owned();
    assert_eq!(
        action(&format!("{base}?action=map"), &recovery()),
        ("resolve".into(), job.clone())
    );
    assert_eq!(
        action(&format!("{base}?action=trigger"), &recovery()),
        ("trigger".into(), job.clone())
    );
    assert_eq!(
        action(&format!("{base}?action=r"), &problem()),
        ("resolve".into(), job)
    );
    assert_eq!(
        action(&format!("{base}?dedup=db-incident"), &problem()),
        ("trigger".into(), "db-incident".into())
    );
    assert_eq!(
        action(&format!("{base}?dedup=db-incident"), &recovery()),
        ("resolve".into(), "db-incident".into())
    );
    let e = parse(&format!("{base}?action=explode"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("action=\"explode\" is not trigger, map or resolve"),
        "{e}"
    );
}

// --- rendering limits, after rendering ---

#[test]
fn long_output_is_cut_to_each_services_limit_without_splitting_a_character() {
    let mut n = notification(State::Failed, Reason::FirstRun);
    let line = "é🦀 <tag> & `tick` *star* _under_ ".repeat(4);
    n.output_tail = Some((0..2000).map(|i| format!("{i} {line}\n")).collect());
    let count = |s: &str| s.chars().count();

    let t = json(&planned("tgram://123456789:AAHtoken/42", &n)[0]);
    let text = t["text"].as_str().unwrap();
    assert!(count(text) <= 4096, "{}", count(text));
    assert!(
        text.contains("<pre>…") && text.ends_with("</pre>"),
        "the end is kept"
    );
    assert!(text.contains("1999 é🦀"), "the last line is there");

    let d = json(&planned("discord://1/token", &n)[0]);
    let e = &d["embeds"][0];
    let description = e["description"].as_str().unwrap();
    assert!(count(description) <= 4096);
    let total: usize = count(e["title"].as_str().unwrap())
        + count(description)
        + count(e["footer"]["text"].as_str().unwrap())
        + e["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| count(f["name"].as_str().unwrap()) + count(f["value"].as_str().unwrap()))
            .sum::<usize>();
    assert!(total <= 6000, "{total}");
    assert_eq!(
        description.matches("```").count(),
        2,
        "the log's fences are broken"
    );

    let m = json(&planned("ntfy://topic1", &n)[0]);
    assert!(
        m["message"].as_str().unwrap().len() <= 4096,
        "ntfy counts bytes"
    );

    let p = form(&planned("pover://USERKEY123@APPTOKEN456", &n)[0].body);
    assert!(count(field(&p, "message").unwrap()) <= 1024);
    assert!(count(field(&p, "title").unwrap()) <= 250);

    let s = json(&planned("slack://T1/B2/C3", &n)[0]);
    assert!(count(s["attachments"][0]["text"].as_str().unwrap()) <= 3000);

    let pd = json(&planned("pagerduty://i@a", &n)[0]);
    assert!(count(pd["payload"]["summary"].as_str().unwrap()) <= 1024);
}

#[test]
fn a_late_job_is_amber_and_a_heartbeat_blue() {
    let late = notification(State::Late, Reason::FirstRun);
    let v = json(&planned("discord://1/token", &late)[0]);
    assert_eq!(v["embeds"][0]["color"], 0xE8A317);
    assert!(v["embeds"][0]["title"].as_str().unwrap().starts_with("⏰"));
    let ok = notification(State::Ok, Reason::FirstRun);
    let v = json(&planned("slack://T1/B2/C3", &ok)[0]);
    assert_eq!(v["attachments"][0]["color"], "#439FE0");
    // No output for a success.
    assert!(
        !v["attachments"][0]["text"]
            .as_str()
            .unwrap()
            .contains("disk")
    );
}

#[test]
fn the_web_addresses_services_show_are_recognised_and_others_get_belfrys_json() {
    for (addr, scheme) in [
        (
            "https://hooks.slack.com/services/T1ABC/B2DEF/xyz789",
            "slack",
        ),
        ("https://discordapp.com/api/webhooks/123/abc", "discord"),
        ("https://mattermost.example.com/hooks/abc123", "mmost"),
        ("https://ntfy.sh/alerts", "ntfy"),
        ("https://maker.ifttt.com/use/KEY123/backup_failed", "ifttt"),
        (
            "https://chat.googleapis.com/v1/spaces/AAA/messages?key=K&token=T",
            "gchat",
        ),
        ("https://example.com/hooks/abc123", "https"),
        ("http://127.0.0.1:8080/workflows", "http"),
    ] {
        let ch = parse(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
        assert_eq!(ch.scheme(), scheme, "{addr}");
    }
    let e = parse("https://discord.com/api/webhooks/not-a-number/abc")
        .unwrap_err()
        .to_string();
    assert!(e.contains("looks like a Discord address"), "{e}");
}

fn by_hand(t: belfry_core::MessageType, title: &str, body: &str) -> belfry_core::Notification {
    belfry_core::Notification::adhoc(
        "a-1".into(),
        belfry_core::Adhoc {
            job: "send".into(),
            title: title.into(),
            body: body.into(),
            message_type: t,
            host: Some("db1".into()),
            reason: "sent",
            reason_text: "sent by hand".into(),
            attachments: vec![belfry_core::Attachment::new(
                "/var/log/backup.log",
                b"line 1\nline 2\n".to_vec(),
            )],
        },
        belfry_core::Timestamp::from_millis(1_800_000_000_000),
    )
}

#[test]
fn messages_sent_by_hand_keep_their_type_and_carry_their_files() {
    use belfry_core::MessageType;
    let warning = by_hand(MessageType::Warning, "Disk", "85% full");
    let v = json(&planned("discord://1/token", &warning)[0]);
    assert_eq!(v["embeds"][0]["title"], "⚠️ Disk");
    assert_eq!(v["embeds"][0]["color"], 0xE8A317);
    // The file follows the message, as Discord takes files.
    let reqs = planned("discord://1/token", &warning);
    assert_eq!(reqs.len(), 2);
    let upload = String::from_utf8_lossy(&reqs[1].body).into_owned();
    assert!(
        header(&reqs[1], "content-type")
            .unwrap()
            .starts_with("multipart/form-data"),
        "{:?}",
        reqs[1].headers
    );
    assert!(upload.contains("filename=\"backup.log\"") && upload.contains("line 2"));

    let untitled = by_hand(MessageType::Failure, "", "the body alone");
    let v = json(&planned("discord://1/token", &untitled)[0]);
    assert!(v["embeds"][0].get("title").is_none(), "no empty title");
    assert_eq!(v["embeds"][0]["description"], "the body alone");

    // PagerDuty pages on a warning, at warning severity.
    let v = json(&planned("pagerduty://i@a", &warning)[0]);
    assert_eq!(v["event_action"], "trigger");
    assert_eq!(v["payload"]["severity"], "warning");
    assert_eq!(v["payload"]["summary"], "⚠️ Disk — 85% full");
}

#[test]
fn a_self_hosted_ntfy_gets_the_file_and_the_text_with_it() {
    let rx = Receiver::start(vec![]);
    let ch = parse(&format!("ntfy://{}/backups", rx.addr())).unwrap();
    let n = by_hand(belfry_core::MessageType::Info, "Report", "attached");
    assert_eq!(send(ch.as_ref(), &n), Outcome::Delivered);
    let r = &rx.requests()[0];
    assert!(r.target.starts_with("/backups?"), "{}", r.target);
    assert!(r.target.contains("filename=backup.log"), "{}", r.target);
    assert!(
        r.target.contains("title=%F0%9F%9F%A2+Report"),
        "{}",
        r.target
    );
    assert_eq!(r.body, b"line 1\nline 2\n");
}

#[test]
fn services_with_published_limits_are_paced() {
    use belfry_channels::Pace;
    let pace = |url: &str| parse(url).unwrap().pace();
    assert_eq!(pace("slack://T1/B2/C3"), Pace::limited(1.0, 3));
    assert_eq!(pace("tgram://1:a/2"), Pace::limited(1.0, 3));
    assert_eq!(pace("discord://1/token"), Pace::limited(0.5, 5));
    assert_eq!(pace("gotify://h.example.com/tok"), Pace::default());
}

// --- the Chinese chat robots and ServerChan: sent to the receiver standing in for the service ---

/// Sends `n` through `url` to a receiver standing in for `origin`, which answers `reply`.
fn deliver_via(
    url: &str,
    origin: &str,
    reply: Reply,
    n: &belfry_core::Notification,
) -> (Outcome, belfry_testkit::Request) {
    let rx = Receiver::start(vec![reply]);
    let ch = parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let o = send_with(ch.as_ref(), n, via(origin, &rx));
    let mut reqs = rx.requests();
    assert_eq!(reqs.len(), 1, "{url}");
    (o, reqs.remove(0))
}

#[test]
fn dingtalk_posts_to_its_robot_signed_and_mentioning_phones() {
    let ok = || Reply::ok().body(r#"{"errcode":0,"errmsg":"ok"}"#);
    let (o, r) = deliver_via(
        "dingtalk://SeCrEt123@tokenABC123/13800000000",
        "https://oapi.dingtalk.com",
        ok(),
        &problem(),
    );
    assert_eq!(o, Outcome::Delivered);
    assert!(
        r.target
            .starts_with("/robot/send?access_token=tokenABC123&timestamp="),
        "{}",
        r.target
    );
    assert!(r.target.contains("&sign="), "signed: {}", r.target);
    let v = r.json();
    assert_eq!(v["msgtype"], "text");
    assert_eq!(v["at"]["atMobiles"], serde_json::json!(["13800000000"]));
    let text = v["text"]["content"].as_str().unwrap();
    assert!(text.starts_with("🔴 nightly-backup: Failed\r\n"), "{text}");
    assert!(text.contains("exit code 2"), "{text}");

    let (_, r) = deliver_via(
        "dingtalk://tokenABC123?format=markdown",
        "https://oapi.dingtalk.com",
        ok(),
        &problem(),
    );
    assert_eq!(r.json()["msgtype"], "markdown");

    // Sending too fast is retried after a minute; a bad token is permanent.
    let (o, _) = deliver_via(
        "dingtalk://tokenABC123",
        "https://oapi.dingtalk.com",
        Reply::ok().body(r#"{"errcode":130101,"errmsg":"send too fast"}"#),
        &problem(),
    );
    assert!(
        matches!(&o, Outcome::Retry { after: Some(a), reason } if a.as_secs() == 60 && reason.contains("too fast")),
        "{o:?}"
    );
    let (o, _) = deliver_via(
        "dingtalk://tokenABC123",
        "https://oapi.dingtalk.com",
        Reply::ok().body(r#"{"errcode":300001,"errmsg":"token is not exist"}"#),
        &problem(),
    );
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("300001")),
        "{o:?}"
    );
}

#[test]
fn feishu_and_lark_post_text_to_their_bots_from_either_address() {
    let ok = || Reply::ok().body(r#"{"code":0,"msg":"success","data":{}}"#);
    let (o, r) = deliver_via(
        "feishu://hookTOKEN-1",
        "https://open.feishu.cn",
        ok(),
        &problem(),
    );
    assert_eq!(o, Outcome::Delivered);
    assert_eq!(r.target, "/open-apis/bot/v2/hook/hookTOKEN-1/");
    let v = r.json();
    assert_eq!(v["msg_type"], "text");
    let text = v["content"]["text"].as_str().unwrap();
    assert!(text.starts_with("🔴 nightly-backup: Failed"), "{text}");

    for url in [
        "lark://hookTOKEN-2",
        "https://open.larksuite.com/open-apis/bot/v2/hook/hookTOKEN-2",
    ] {
        let (o, r) = deliver_via(url, "https://open.larksuite.com", ok(), &recovery());
        assert_eq!(o, Outcome::Delivered, "{url}");
        assert_eq!(r.target, "/open-apis/bot/v2/hook/hookTOKEN-2", "{url}");
        assert_eq!(parse(url).unwrap().scheme(), "lark");
    }
    let (o, _) = deliver_via(
        "lark://hookTOKEN-2",
        "https://open.larksuite.com",
        Reply::ok().body(r#"{"code":11232,"msg":"frequency limited"}"#),
        &problem(),
    );
    assert!(matches!(&o, Outcome::Retry { .. }), "{o:?}");
    let (o, _) = deliver_via(
        "feishu://hookTOKEN-1",
        "https://open.feishu.cn",
        Reply::ok().body(r#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#),
        &problem(),
    );
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("19021")),
        "{o:?}"
    );
}

#[test]
fn wecom_robots_get_text_within_their_2048_bytes() {
    let ok = || Reply::ok().body(r#"{"errcode":0,"errmsg":"ok"}"#);
    for url in [
        "wecombot://robotKEY-9",
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=robotKEY-9",
    ] {
        let (o, r) = deliver_via(url, "https://qyapi.weixin.qq.com", ok(), &problem());
        assert_eq!(o, Outcome::Delivered, "{url}");
        assert_eq!(r.target, "/cgi-bin/webhook/send?key=robotKEY-9", "{url}");
        let v = r.json();
        assert_eq!(v["msgtype"], "text");
        let text = v["text"]["content"].as_str().unwrap();
        assert!(text.len() <= 2048, "{} bytes", text.len());
        assert!(text.contains("nightly-backup"), "{text}");
    }
    let (o, _) = deliver_via(
        "wecombot://robotKEY-9",
        "https://qyapi.weixin.qq.com",
        Reply::ok().body(r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#),
        &problem(),
    );
    assert!(matches!(&o, Outcome::Retry { .. }), "{o:?}");
}

#[test]
fn serverchan_posts_a_title_and_text_with_its_sendkey() {
    let (o, r) = deliver_via(
        "schan://SCT12345abc",
        "https://sctapi.ftqq.com",
        Reply::ok().body(r#"{"code":0,"message":"","data":{"pushid":"1"}}"#),
        &problem(),
    );
    assert_eq!(o, Outcome::Delivered);
    assert_eq!(r.target, "/SCT12345abc.send");
    let f = form(&r.body);
    assert_eq!(field(&f, "title"), Some("🔴 nightly-backup: Failed"));
    assert!(field(&f, "desp").unwrap().contains("exit code 2"));
    let (o, _) = deliver_via(
        "schan://SCT12345abc",
        "https://sctapi.ftqq.com",
        Reply::ok().body(r#"{"code":40001,"message":"bad pushkey"}"#),
        &problem(),
    );
    assert!(
        matches!(&o, Outcome::Permanent { reason } if reason.contains("bad pushkey")),
        "{o:?}"
    );
}

#[test]
fn service_addresses_apprise_does_not_read_are_refused_with_the_url_to_use() {
    for (address, says) in [
        (
            "https://open.feishu.cn/open-apis/bot/v2/hook/abc",
            "feishu://TOKEN",
        ),
        (
            "https://oapi.dingtalk.com/robot/send?access_token=abc",
            "dingtalk://",
        ),
        ("https://sctapi.ftqq.com/SCT123.send", "schan://SENDKEY"),
    ] {
        let e = parse(address).unwrap_err().to_string();
        assert!(e.contains(says), "{address}: {e}");
        assert!(
            !e.contains("abc") && !e.contains("SCT123"),
            "a token in the error: {e}"
        );
    }
}
