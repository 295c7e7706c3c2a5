//! What belfry knows about each service that tocsin plans for: its schemes, the shape of its
//! URL (for error messages), how its text is rendered and handed to tocsin, how its payload is
//! finished, and how its answers are judged.

use belfry_core::render::{Limit, Markup};

use super::classify;
use crate::Outcome;

/// How the headline (emoji and title) reaches the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Feed {
    /// The service shows a title of its own: the headline, cut to this many characters.
    Apart(usize),
    /// The service puts the title in front of the body itself (`title\r\nbody`): the body's
    /// limit leaves room for it.
    Merged,
    /// belfry writes the headline into the body, in bold, and gives no title (services whose
    /// own title formatting would not survive, or that have none).
    InBody,
    /// The title is the job's name, cut to this many characters (Zulip's topic, so that a
    /// job's messages stay together); the headline goes in the body.
    Topic(usize),
}

/// Changes belfry makes to the payload tocsin built, where tocsin's shape is not belfry's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    /// tocsin's payload as it is.
    None,
    /// The text is belfry's HTML: `parse_mode` is always HTML.
    Telegram,
    /// A coloured attachment with the details as fields.
    Slack,
    /// An embed in the state's colour, with the details as fields.
    Discord,
    /// An Adaptive Card with a coloured title, the details as facts and the output in a
    /// monospace font.
    Teams,
    /// Trigger on a problem, resolve otherwise, deduplicated per job; the details as custom
    /// details.
    PagerDuty,
    /// A higher priority for problems, unless the URL set one.
    Ntfy,
    /// belfry's name as the application.
    Prowl,
    /// belfry's name as the default user name.
    Mattermost,
}

/// One service.
#[derive(Debug)]
pub(crate) struct Profile {
    /// tocsin's name for it (`tocsin::Service::name`).
    pub name: &'static str,
    /// Its Apprise schemes; the first is the plain one.
    pub schemes: &'static [&'static str],
    /// Its name for people.
    pub label: &'static str,
    /// The shape of its URL.
    pub shape: &'static str,
    /// What to say when a token is missing or malformed, in place of the shape, where more
    /// can be said.
    pub token_hint: Option<&'static str>,
    /// The markup of its text.
    pub markup: Markup,
    /// Markdown instead when the URL says `format=markdown` (services where that switches the
    /// client's rendering on).
    pub markdown_opt_in: bool,
    /// The format tocsin is told the text is in.
    pub format: tocsin::Format,
    /// Where the headline goes.
    pub feed: Feed,
    /// The limit of the body, measured after rendering.
    pub limit: Limit,
    /// How many lines of a problem's output to show.
    pub tail_lines: usize,
    /// Payload changes.
    pub finish: Finish,
    /// How to judge an answer: status, `Retry-After`, body.
    pub classify: fn(u16, Option<&str>, &str) -> Outcome,
    /// The service's published rate limit, as sends a second and a burst; `None` where it
    /// states none (self-hosted servers).
    pub pace: Option<(f64, u32)>,
    /// The query options Apprise reads for the service, beyond the ones every service takes
    /// (`url_parse::APPRISE_GLOBAL_OPTIONS`): any other is refused. From Apprise 2.3's
    /// `template_args` and the keys its `parse_url` reads.
    pub options: &'static [&'static str],
    /// The key prefixes the service takes (`+` headers or details, `-` parameters, `:` payload
    /// fields or tokens).
    pub prefixes: &'static [char],
}

use tocsin::Format as F;

/// Every service, in the order of the README.
pub(crate) static PROFILES: &[Profile] = &[
    Profile {
        name: "telegram",
        schemes: &["tgram"],
        label: "Telegram",
        shape: "tgram://BOT_TOKEN/CHAT_ID[/CHAT_ID…]",
        token_hint: Some(
            "the bot token is missing or malformed: tgram://BOT_TOKEN/CHAT_ID, where a bot \
             token looks like 123456789:AAH… (digits, a colon, then letters, digits, _ and -)",
        ),
        markup: Markup::Html,
        markdown_opt_in: false,
        format: F::Html,
        feed: Feed::InBody,
        // 4096 after entity parsing; the tags counted here make this a safe bound.
        limit: Limit::chars(4000),
        tail_lines: 30,
        finish: Finish::Telegram,
        classify: classify::telegram,
        // Telegram asks bots for at most one message a second in a chat.
        pace: Some((1.0, 3)),
        options: &[
            "album", "content", "detect", "image", "mdv", "preview", "silent", "template",
            "thread", "to", "topic",
        ],
        prefixes: &[':'],
    },
    Profile {
        name: "discord",
        schemes: &["discord"],
        label: "Discord",
        shape: "discord://WEBHOOK_ID/WEBHOOK_TOKEN, or the https://discord.com/api/webhooks/… \
                address",
        token_hint: None,
        markup: Markup::Markdown,
        markdown_opt_in: false,
        format: F::Markdown,
        feed: Feed::Apart(256),
        // An embed's description takes 4096, and the whole embed 6000.
        limit: Limit::chars(3500),
        tail_lines: 20,
        finish: Finish::Discord,
        classify: classify::discord,
        // Discord takes about 30 messages a minute in a channel.
        pace: Some((0.5, 5)),
        options: &[
            "avatar",
            "avatar_url",
            "batch",
            "botname",
            "fields",
            "flags",
            "footer",
            "footer_logo",
            "href",
            "image",
            "ping",
            "template",
            "thread",
            "tts",
            "url",
        ],
        prefixes: &[':'],
    },
    Profile {
        name: "slack",
        schemes: &["slack"],
        label: "Slack",
        shape: "slack://TokenA/TokenB/TokenC[/#channel…], slack://xoxb-BOT-TOKEN/#channel, or \
                the https://hooks.slack.com/services/… address",
        token_hint: Some(
            "a Slack webhook needs three tokens (slack://TokenA/TokenB/TokenC[/#channel…], \
             letters and digits), a bot its token (slack://xoxb-…/#channel)",
        ),
        markup: Markup::SlackMrkdwn,
        markdown_opt_in: false,
        format: F::Markdown,
        feed: Feed::Apart(256),
        // Slack shows about 3,000 characters of an attachment before "Show more".
        limit: Limit::chars(3000),
        tail_lines: 15,
        finish: Finish::Slack,
        classify: classify::slack,
        // Slack allows about one message a second per webhook, with short bursts.
        pace: Some((1.0, 3)),
        options: &[
            "blocks",
            "footer",
            "image",
            "mode",
            "template",
            "timestamp",
            "to",
            "token",
        ],
        prefixes: &[':'],
    },
    Profile {
        name: "mattermost",
        schemes: &["mmost", "mmosts"],
        label: "Mattermost",
        shape: "mmost://HOST[:PORT][/PATH]/WEBHOOK_TOKEN[?to=channel]",
        token_hint: None,
        markup: Markup::Markdown,
        markdown_opt_in: false,
        format: F::Text,
        feed: Feed::InBody,
        limit: Limit::chars(4000),
        tail_lines: 20,
        finish: Finish::Mattermost,
        classify: classify::default,
        pace: None,
        options: &[
            "botname", "channel", "channels", "icon_url", "image", "mode", "team", "to",
        ],
        prefixes: &[],
    },
    Profile {
        name: "rocketchat",
        schemes: &["rocket", "rockets"],
        label: "Rocket.Chat",
        shape: "rocket://WEBHOOK_ID/WEBHOOK_TOKEN@HOST[:PORT][/#channel…] or \
                rocket://USER:PASSWORD@HOST[:PORT]/#channel",
        // Rocket.Chat's bold is `*…*`, and it has no backslash escapes.
        token_hint: None,
        markup: Markup::Basic,
        markdown_opt_in: false,
        format: F::Markdown,
        feed: Feed::InBody,
        limit: Limit::chars(4000),
        tail_lines: 20,
        finish: Finish::None,
        classify: classify::rocketchat,
        pace: None,
        options: &["avatar", "mode", "to", "webhook"],
        prefixes: &[],
    },
    Profile {
        name: "workflows",
        schemes: &["workflows", "workflow"],
        label: "Microsoft Teams (workflow)",
        shape: "workflows://HOST[:PORT]/WORKFLOW_ID/SIGNATURE, or the workflow's https:// \
                address",
        // The card's text blocks are rebuilt by belfry; their markdown is a small subset.
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: false,
        format: F::Markdown,
        feed: Feed::Apart(256),
        limit: Limit::chars(3000),
        tail_lines: 20,
        finish: Finish::Teams,
        classify: classify::default,
        // Teams and Power Automate throttle webhooks at a few a second.
        pace: Some((1.0, 4)),
        options: &[
            "api-version",
            "id",
            "image",
            "pa",
            "powerautomate",
            "route",
            "routeid",
            "sig",
            "signature",
            "template",
            "ver",
            "workflow",
            "wrap",
        ],
        prefixes: &[':'],
    },
    Profile {
        name: "gchat",
        schemes: &["gchat"],
        label: "Google Chat",
        shape: "gchat://WORKSPACE/WEBHOOK_KEY/WEBHOOK_TOKEN, or the \
                https://chat.googleapis.com/v1/spaces/… address",
        token_hint: None,
        markup: Markup::Basic,
        markdown_opt_in: false,
        format: F::Markdown,
        feed: Feed::InBody,
        limit: Limit::chars(4000),
        tail_lines: 20,
        finish: Finish::None,
        classify: classify::default,
        // Google Chat takes 60 messages a minute per space.
        pace: Some((1.0, 3)),
        options: &["key", "thread", "threadkey", "token", "workspace"],
        prefixes: &[],
    },
    Profile {
        name: "zulip",
        schemes: &["zulip"],
        label: "Zulip",
        shape: "zulip://BOT@ORGANIZATION[.HOST]/TOKEN[/STREAM…] (a token of 32 letters and digits)",
        token_hint: None,
        markup: Markup::Markdown,
        markdown_opt_in: false,
        format: F::Text,
        // Zulip's topics are at most 60 characters.
        feed: Feed::Topic(60),
        limit: Limit::chars(9000),
        tail_lines: 30,
        finish: Finish::None,
        classify: classify::zulip,
        pace: None,
        options: &["to", "token"],
        prefixes: &[],
    },
    Profile {
        name: "ntfy",
        schemes: &["ntfy", "ntfys"],
        label: "ntfy",
        shape: "ntfy://TOPIC or ntfys://[USER:PASSWORD@]HOST[:PORT]/TOPIC",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: true,
        format: F::Text,
        feed: Feed::Apart(250),
        // ntfy turns a message of more than 4096 bytes into an attachment.
        limit: Limit::bytes(3800),
        tail_lines: 15,
        finish: Finish::Ntfy,
        classify: classify::default,
        pace: None,
        options: &[
            "actions",
            "attach",
            "auth",
            "avatar_url",
            "click",
            "delay",
            "email",
            "filename",
            "image",
            "mode",
            "priority",
            "tags",
            "to",
            "token",
            "xtags",
        ],
        prefixes: &[],
    },
    Profile {
        name: "gotify",
        schemes: &["gotify", "gotifys"],
        label: "Gotify",
        shape: "gotify://HOST[:PORT][/PATH]/APP_TOKEN",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: true,
        format: F::Text,
        feed: Feed::Apart(250),
        limit: Limit::chars(8000),
        tail_lines: 30,
        finish: Finish::None,
        classify: classify::default,
        pace: None,
        options: &["priority"],
        prefixes: &[],
    },
    Profile {
        name: "pushover",
        schemes: &["pover"],
        label: "Pushover",
        shape: "pover://USER_KEY@APP_TOKEN[/DEVICE…]",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: false,
        format: F::Text,
        feed: Feed::Apart(250),
        limit: Limit::chars(1024),
        tail_lines: 10,
        finish: Finish::None,
        classify: classify::pushover,
        pace: None,
        options: &[
            "e2ee",
            "expire",
            "interval",
            "key",
            "priority",
            "sound",
            "to",
            "url",
            "url_title",
        ],
        prefixes: &[],
    },
    Profile {
        name: "pushbullet",
        schemes: &["pbul"],
        label: "Pushbullet",
        shape: "pbul://ACCESS_TOKEN[/DEVICE|#CHANNEL|EMAIL…]",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: false,
        format: F::Text,
        feed: Feed::Apart(250),
        limit: Limit::chars(4000),
        tail_lines: 15,
        finish: Finish::None,
        classify: classify::default,
        pace: None,
        options: &["to"],
        prefixes: &[],
    },
    Profile {
        name: "prowl",
        schemes: &["prowl"],
        label: "Prowl",
        shape: "prowl://API_KEY[/PROVIDER_KEY] (keys of 40 letters and digits)",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: false,
        format: F::Text,
        feed: Feed::Apart(1024),
        limit: Limit::chars(9000),
        tail_lines: 20,
        finish: Finish::Prowl,
        classify: classify::prowl,
        pace: None,
        options: &["priority"],
        prefixes: &[],
    },
    Profile {
        name: "pagerduty",
        schemes: &["pagerduty"],
        label: "PagerDuty",
        shape: "pagerduty://INTEGRATION_KEY@API_KEY[/SOURCE[/COMPONENT]]",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: false,
        format: F::Text,
        feed: Feed::Apart(256),
        // The summary is at most 1024 characters; the rest goes in the custom details.
        limit: Limit::chars(1024),
        tail_lines: 0,
        finish: Finish::PagerDuty,
        classify: classify::default,
        // The Events API takes about 120 events a minute per integration.
        pace: Some((2.0, 10)),
        options: &[
            "action",
            "apikey",
            "class",
            "click",
            "component",
            "dedup",
            "group",
            "image",
            "integrationkey",
            "region",
            "severity",
            "source",
        ],
        prefixes: &['+'],
    },
    Profile {
        name: "signal",
        schemes: &["signal", "signals"],
        label: "Signal (signal-cli-rest-api)",
        shape: "signal://[USER:PASSWORD@]HOST[:PORT]/FROM_NUMBER[/TO_NUMBER|@GROUP…]",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: false,
        format: F::Text,
        feed: Feed::Merged,
        limit: Limit::chars(2000),
        tail_lines: 15,
        finish: Finish::None,
        classify: classify::default,
        pace: None,
        options: &["batch", "from", "status", "to"],
        prefixes: &[],
    },
    Profile {
        name: "homeassistant",
        schemes: &["hassio", "hassios"],
        label: "Home Assistant",
        shape: "hassio://HOST[:PORT]/ACCESS_TOKEN[/SERVICE…]",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: false,
        format: F::Text,
        feed: Feed::Apart(250),
        limit: Limit::chars(4000),
        tail_lines: 20,
        finish: Finish::None,
        classify: classify::default,
        pace: None,
        options: &["accesstoken", "batch", "nid", "prefix", "to", "token"],
        prefixes: &[],
    },
    Profile {
        name: "ifttt",
        schemes: &["ifttt"],
        label: "IFTTT",
        shape: "ifttt://WEBHOOK_ID@EVENT[/EVENT…]",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: false,
        format: F::Text,
        feed: Feed::Apart(250),
        limit: Limit::chars(2000),
        tail_lines: 10,
        finish: Finish::None,
        classify: classify::default,
        pace: None,
        options: &["to"],
        prefixes: &['+', '-'],
    },
    Profile {
        name: "bark",
        schemes: &["bark", "barks"],
        label: "Bark",
        shape: "bark://HOST[:PORT]/DEVICE_KEY[/DEVICE_KEY…]",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: false,
        format: F::Text,
        feed: Feed::Apart(250),
        // An Apple push carries 4 KiB in all.
        limit: Limit::bytes(2000),
        tail_lines: 10,
        finish: Finish::None,
        classify: classify::bark,
        pace: None,
        options: &[
            "action", "archive", "badge", "call", "category", "click", "copy", "delete", "group",
            "icon", "id", "image", "key", "level", "sound", "subtitle", "to", "ttl", "volume",
        ],
        prefixes: &[],
    },
    Profile {
        name: "dingtalk",
        schemes: &["dingtalk"],
        label: "DingTalk",
        shape: "dingtalk://[SECRET@]TOKEN[/PHONE…]",
        token_hint: Some(
            "the robot's access token is missing or malformed: dingtalk://[SECRET@]TOKEN, where \
             the token and the signing secret are letters and digits",
        ),
        markup: Markup::Plain,
        markdown_opt_in: true,
        format: F::Text,
        feed: Feed::Apart(250),
        // A robot's message carries at most 20,000 bytes.
        limit: Limit::bytes(18_000),
        tail_lines: 20,
        finish: Finish::None,
        classify: classify::errcode,
        // A robot may send 20 messages a minute.
        pace: Some((0.33, 5)),
        options: &["secret", "to", "token"],
        prefixes: &[],
    },
    Profile {
        name: "feishu",
        schemes: &["feishu"],
        label: "Feishu",
        shape: "feishu://TOKEN",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: false,
        format: F::Text,
        feed: Feed::Merged,
        // A custom bot's request body is at most 20 KB.
        limit: Limit::bytes(18_000),
        tail_lines: 20,
        finish: Finish::None,
        classify: classify::feishu,
        // A custom bot may send 100 messages a minute and 5 a second.
        pace: Some((1.6, 5)),
        options: &["token"],
        prefixes: &[],
    },
    Profile {
        name: "lark",
        schemes: &["lark"],
        label: "Lark",
        shape: "lark://TOKEN, or the https://open.larksuite.com/open-apis/bot/v2/hook/… address",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: false,
        format: F::Text,
        feed: Feed::Merged,
        limit: Limit::bytes(18_000),
        tail_lines: 20,
        finish: Finish::None,
        classify: classify::feishu,
        pace: Some((1.6, 5)),
        options: &["token"],
        prefixes: &[],
    },
    Profile {
        name: "wecombot",
        schemes: &["wecombot"],
        label: "WeCom group robot",
        shape: "wecombot://KEY, or the https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=… \
                address",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: false,
        format: F::Text,
        feed: Feed::Merged,
        // A text message's content is at most 2,048 bytes.
        limit: Limit::bytes(2000),
        tail_lines: 10,
        finish: Finish::None,
        classify: classify::errcode,
        // A robot may send 20 messages a minute.
        pace: Some((0.33, 5)),
        options: &["key"],
        prefixes: &[],
    },
    Profile {
        name: "serverchan",
        schemes: &["schan"],
        label: "ServerChan",
        shape: "schan://SENDKEY",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: false,
        format: F::Text,
        feed: Feed::Apart(250),
        limit: Limit::chars(4000),
        tail_lines: 20,
        finish: Finish::None,
        classify: classify::serverchan,
        pace: None,
        options: &[],
        prefixes: &[],
    },
    Profile {
        name: "xml",
        schemes: &["xml", "xmls"],
        label: "XML webhook",
        shape: "xml://HOST[:PORT][/PATH]",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: false,
        format: F::Text,
        feed: Feed::Apart(256),
        limit: Limit::chars(30_000),
        tail_lines: 200,
        finish: Finish::None,
        classify: classify::default,
        pace: None,
        options: &["method"],
        prefixes: &['+', '-', ':'],
    },
    Profile {
        name: "form",
        schemes: &["form", "forms"],
        label: "form webhook",
        shape: "form://HOST[:PORT][/PATH]",
        token_hint: None,
        markup: Markup::Plain,
        markdown_opt_in: false,
        format: F::Text,
        feed: Feed::Apart(256),
        limit: Limit::chars(30_000),
        tail_lines: 200,
        finish: Finish::None,
        classify: classify::default,
        pace: None,
        options: &["attach-as", "method"],
        prefixes: &['+', '-', ':'],
    },
];

/// The profile of a scheme (lowercase), if tocsin plans for it.
pub(crate) fn by_scheme(scheme: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.schemes.contains(&scheme))
}

/// The profile of one of tocsin's service names.
pub(crate) fn by_name(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_names_are_unique() {
        let mut schemes: Vec<&str> = PROFILES.iter().flat_map(|p| p.schemes).copied().collect();
        let n = schemes.len();
        schemes.sort_unstable();
        schemes.dedup();
        assert_eq!(schemes.len(), n);
        for p in PROFILES {
            assert_eq!(by_name(p.name).map(|q| q.label), Some(p.label));
        }
    }
}
