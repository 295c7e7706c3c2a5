//! Chat services belfry speaks itself: [`Matrix`] (`matrix://`, `matrixs://`), [`Webex`]
//! (`wxteams://`, `webex://`), [`NextcloudTalk`] (`nctalk://`, `nctalks://`), [`Line`]
//! (`line://`) and [`WhatsApp`] (`whatsapp://`).

mod line;
mod matrix;
mod matrix_server;
mod nctalk;
mod text;
mod webex;
mod whatsapp;

pub use line::Line;
pub use matrix::Matrix;
pub use nctalk::NextcloudTalk;
pub use webex::Webex;
pub use whatsapp::WhatsApp;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &[
    "matrix", "matrixs", "wxteams", "webex", "nctalk", "nctalks", "line", "whatsapp",
];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    match scheme {
        "wxteams" | "webex" => boxed(Webex::from_apprise(raw)),
        "nctalk" | "nctalks" => boxed(NextcloudTalk::from_apprise(raw)),
        "line" => boxed(Line::from_apprise(raw)),
        "whatsapp" => boxed(WhatsApp::from_apprise(raw)),
        _ => boxed(Matrix::from_apprise(raw)),
    }
}

/// The channel for a web address of a service of this family (a t2bot.io Matrix hook, a Webex
/// incoming webhook), or `None` when `raw` is not one.
pub(crate) fn parse_address(raw: &str) -> Option<Result<Box<dyn Channel>, UrlError>> {
    matrix::parse_address(raw)
        .map(boxed)
        .or_else(|| webex::parse_address(raw).map(boxed))
}
