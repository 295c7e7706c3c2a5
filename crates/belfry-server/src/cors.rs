//! The CORS headers that let a browser's script call the server: the ping API's and the
//! management API's, each with its methods, request headers and how long a preflight holds.

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// What a browser is allowed, for one kind of request.
pub(crate) struct Allow {
    /// `Access-Control-Allow-Methods`.
    pub methods: &'static str,
    /// `Access-Control-Allow-Headers`.
    pub headers: &'static str,
    /// `Access-Control-Max-Age`, in seconds.
    pub max_age: &'static str,
}

impl Allow {
    /// Puts the headers on `r`, any origin allowed.
    pub(crate) fn apply(&self, r: &mut Response) {
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(self.methods),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(self.headers),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(self.max_age),
        );
    }
}
