//! MQTT: [`Mqtt`] (`mqtt://`, `mqtts://` over TLS) publishes each notification to topics on a broker. `packet.rs`
//! writes and reads the few MQTT packets a publisher needs (3.1, 3.1.1 and 5.0).

mod packet;
mod publish;

pub use publish::Mqtt;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["mqtt", "mqtts"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(_scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    boxed(Mqtt::from_apprise(raw))
}
