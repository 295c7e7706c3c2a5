//! `belfry serve`: runs the ping server (`belfry-server`) until TERM or INT, then stops it
//! gracefully (requests in flight finish, the dispatcher gives back what it held) and exits 0.

use std::net::SocketAddr;

use belfry::Config;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::tell::warn;

/// Runs `belfry serve`.
pub fn serve(config: &Config, listen: Option<SocketAddr>) -> anyhow::Result<u8> {
    let home = belfry::home_dir()?;
    std::fs::create_dir_all(&home)?;
    let listen = listen.unwrap_or(config.server.listen);
    // Registered before the server starts, so that a TERM sent as soon as it listens is
    // not the default action (death) but a graceful stop.
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    let server = belfry_server::Server::start(config.clone(), &home, listen)?;
    let scheduled = config.jobs.values().filter(|j| j.expect.is_some()).count();
    warn(&format!(
        "serving on http://{} ({scheduled} job(s) with a schedule; ping keys: {})",
        server.addr(),
        if config.server.ping_key.is_some() {
            "/ping/<ping_key>/<job> and /ping/<uuid>"
        } else {
            "/ping/<uuid> only, no [server] ping_key"
        }
    ));
    let sig = signals.forever().next();
    warn(&format!(
        "stopping ({})",
        match sig {
            Some(SIGINT) => "INT",
            _ => "TERM",
        }
    ));
    server.stop();
    Ok(0)
}
