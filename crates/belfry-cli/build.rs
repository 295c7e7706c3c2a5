//! Links the `belfry` binary as a position-dependent executable on Linux with glibc.
//!
//! `belfry run` is started once per job run, so its start-up is part of every job's cost. A
//! position-independent executable makes the dynamic loader apply one relocation per pointer
//! in the binary's read-only data at every start (about 27,000 here, over 110 pages copied on
//! write); linked at a fixed address, the binary needs none of that. The code is still
//! compiled position-independent, so only the final link changes. What is given up is address
//! randomisation of the executable itself (libraries and stacks stay randomised): see
//! docs/decisions.md and BENCHMARKS.md for the trade and its measurement.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" && std::env::var_os("BELFRY_PIE").is_none() {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-env-changed=BELFRY_PIE");
}
