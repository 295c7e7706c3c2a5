//! Chat services belfry speaks itself: [`Matrix`] (`matrix://`, `matrixs://`).

mod matrix;
mod matrix_server;
mod text;

pub use matrix::Matrix;

use crate::channel::{Channel, boxed};
use crate::url_parse::UrlError;

/// The schemes of this family.
pub(crate) const SCHEMES: &[&str] = &["matrix", "matrixs"];

/// The channel for `raw`, whose lowercase scheme is one of [`SCHEMES`].
pub(crate) fn parse(_scheme: &str, raw: &str) -> Result<Box<dyn Channel>, UrlError> {
    boxed(Matrix::from_apprise(raw))
}

/// The channel for a web address of a service of this family (a t2bot.io Matrix hook), or
/// `None` when `raw` is not one.
pub(crate) fn parse_address(raw: &str) -> Option<Result<Box<dyn Channel>, UrlError>> {
    matrix::parse_address(raw).map(boxed)
}
