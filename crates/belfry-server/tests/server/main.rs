//! belfry-server's tests, over real HTTP on loopback against a server started in-process
//! (or, for signals, a real `belfry serve` child process), with a temporary state directory.

mod api;
mod bad_input;
mod clients;
mod dashboard;
mod late;
mod ping_table;
mod replicas;
mod support;
mod upkeep;
