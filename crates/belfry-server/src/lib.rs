//! `belfry serve`: a ping server compatible with healthchecks.io's ping API, which marks jobs
//! late when they go silent past their schedule and alerts through belfry's rules and outbox.
//!
//! One process, five kinds of thread, and no store call on the HTTP runtime:
//!
//! - **HTTP** (axum on a tokio runtime): reads a ping (`ping.rs`), hands it to the writer and
//!   answers once the writer has committed it;
//! - **the writer** (`writer.rs`): owns a store handle and records the pings queued, in
//!   groups, one transaction per group;
//! - **the sweeper** (`sweeper.rs`): marks late the jobs whose deadline passed, each with its
//!   alert in one transaction, and wakes the dispatcher;
//! - **the dispatcher** (`belfry::internal::Dispatcher`, endless mode): sends the outbox;
//! - **the API's thread** (`api.rs`): owns the store handle the management API reads and
//!   writes with; its handlers send it their store calls.
//!
//! Tests start it in-process on port 0:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let home = std::env::temp_dir().join("belfry-serve-doc");
//! std::fs::create_dir_all(&home)?;
//! let config = belfry::Config::parse("[jobs.backup]\nperiod = \"1d\"\n", "example")?;
//! let server = belfry_server::Server::start(config, &home, "127.0.0.1:0".parse()?)?;
//! println!("ping http://{}/ping/<uuid>", server.addr());
//! server.stop();
//! # Ok(())
//! # }
//! ```

pub mod actions;
pub mod api;
mod checkpointer;
mod cors;
mod http;
mod limits;
mod log;
mod metrics;
pub mod ping;
mod server;
mod sweeper;
mod web;
mod writer;

pub use limits::{BODY_TIMEOUT, MAX_BODY};
pub use metrics::Metrics;
pub use server::{DRAIN_TIMEOUT, HEADER_TIMEOUT, Running, Server, StartError};
pub use sweeper::POLL;
pub use web::hash_password;
pub use writer::GROUP;
