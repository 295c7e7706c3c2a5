//! The limits a request is read within, shared by the ping API and the management API.

use std::time::Duration;

/// How long a client may take to send a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request body read (the kept part is `[server] ping_body_limit`): a longer one
/// is refused with 413.
pub const MAX_BODY: usize = 1024 * 1024;
