//! The web addresses of services belfry does not speak (yet) but Apprise does. Apprise routes
//! such an address to its service; belfry would otherwise take it for a plain webhook and post
//! it belfry's JSON, which the service does not read, so the alert would be lost at the other
//! end while the delivery looked fine. These are refused instead, naming the service and
//! Apprise's scheme for it.

use crate::url_parse::UrlError;

/// One service's address: the host (or the end of it, when it starts with `.`), the start of
/// the path (lowercase; empty for any), the service's name and Apprise's scheme for it.
struct Foreign {
    host: &'static str,
    path: &'static str,
    label: &'static str,
    scheme: &'static str,
}

const fn f(
    host: &'static str,
    path: &'static str,
    label: &'static str,
    scheme: &'static str,
) -> Foreign {
    Foreign {
        host,
        path,
        label,
        scheme,
    }
}

/// From Apprise 2.3's `parse_native_url` of each service (its hosts and paths).
const FOREIGN: &[Foreign] = &[
    f("api.flock.com", "/hooks/", "Flock", "flock"),
    f(".ryver.com", "/application/webhook/", "Ryver", "ryver"),
    f("media.guilded.gg", "/webhooks/", "Guilded", "guilded"),
    f("guilded.gg", "/webhooks/", "Guilded", "guilded"),
    f("inbots.zoom.us", "/incoming/", "Zoom", "zoom"),
    f(
        "signals.firehydrant.com",
        "/v1/process/",
        "FireHydrant",
        "firehydrant",
    ),
    f("api.spike.sh", "/v1/alerts/", "Spike.sh", "spike"),
    f("api.lfg.gm", "/horn/", "LFG Alarm", "lfg"),
    f("cliq.zoho.com", "", "Zoho Cliq", "cliq"),
    f("cliq.zoho.eu", "", "Zoho Cliq", "cliq"),
    f("cliq.zoho.in", "", "Zoho Cliq", "cliq"),
    f("cliq.zohocloud.ca", "", "Zoho Cliq", "cliq"),
    f("www.kookapp.cn", "/api/", "KOOK", "kook"),
    f("api.fluxer.app", "", "Fluxer", "fluxers"),
    f("fluxer.app", "/webhooks/", "Fluxer", "fluxers"),
    f("api.46elks.com", "/a1/sms", "46elks", "46elks"),
    f("developer.lametric.com", "/api/", "LaMetric", "lametrics"),
    f("notica.us", "", "Notica", "noticas"),
    f("n.tkte.ch", "/h/", "Notifico", "notificos"),
    f("push.getnotifyapp.com", "", "NotifyApp", "notifyapp"),
    f("www.pushplus.plus", "", "PushPlus", "pushplus"),
    f("pushplus.plus", "", "PushPlus", "pushplus"),
    f("qmsg.zendee.cn", "/send/", "Qmsg (QQ)", "qq"),
    f("push.spug.dev", "/send/", "Spug Push", "spugpush"),
    f("www.stackfield.com", "/apiwh/", "Stackfield", "stackfield"),
    f("stackfield.com", "/apiwh/", "Stackfield", "stackfield"),
    f("api.wpush.cn", "/api/", "WPush", "wpush"),
    f("youlmk.com", "/k/", "Youlmk", "youlmk"),
    f("www.youlmk.com", "/k/", "Youlmk", "youlmk"),
];

/// The refusal of `raw` if it is the web address of a service belfry does not speak.
pub(crate) fn refuse(raw: &str) -> Option<UrlError> {
    let url = url::Url::parse(raw).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let path = url.path().to_ascii_lowercase();
    let hit = FOREIGN.iter().find(|s| {
        let host_matches = match s.host.strip_prefix('.') {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
            None => host == s.host,
        };
        host_matches && path.starts_with(s.path)
    })?;
    Some(UrlError::new(
        raw,
        format!(
            "this is a {} address, which Apprise sends to as {}://; belfry does not speak {} \
             yet, and posting it belfry's JSON would reach nobody. Use another channel, or a \
             relay that speaks it",
            hit.label, hit.scheme, hit.label
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_addresses_are_recognised_by_host_and_path() {
        for (raw, label) in [
            ("https://acme.ryver.com/application/webhook/TOKEN", "Ryver"),
            ("https://media.guilded.gg/webhooks/1234-ab/tok", "Guilded"),
        ] {
            let e = refuse(raw)
                .unwrap_or_else(|| panic!("{raw} passed"))
                .to_string();
            assert!(e.contains(label), "{raw}: {e}");
            assert!(
                !e.contains("TOKEN") && !e.contains("abcDEF123"),
                "a token in: {e}"
            );
        }
        for raw in [
            "https://example.com/v1/webhooks/incoming/x",
            "https://ryver.com/application/webhook/x",
            "https://evilryver.com/application/webhook/x",
            "not a url",
        ] {
            assert!(refuse(raw).is_none(), "{raw}");
        }
    }
}
