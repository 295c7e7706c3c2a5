//! A task with retries, a time limit and state handlers, as Prefect's tasks have them.
//!
//! ```sh
//! cargo run -p belfry --example task_retries
//! ```
#![allow(clippy::print_stdout)]

use std::time::Duration;

use belfry::{State, Task, handler, only_states};

/// Two tasks: one that succeeds on its third attempt, one whose failure a handler turns into a skip.
pub fn main() {
    let _guard = belfry::init();

    let mut attempts = 0;
    let result = Task::new("nightly-load")
        .retries(3)
        .retry_delay(Duration::from_millis(200))
        .timeout(Duration::from_secs(5))
        // Every change, in order: Running → Retrying → Running → … → Ok.
        .on_state_change(|job: &str, old: &State, new: &State| {
            println!("{job}: {} → {}", old.name(), new.name());
        })
        // Only when a retry is scheduled.
        .on_state_change(handler(
            only_states(["retrying"]),
            |job: &str, _: &State, new: &State| {
                if let State::Retrying { attempt, next_at } = new {
                    println!("{job}: attempt {attempt} at {next_at}");
                }
            },
        ))
        .on_failure(|job: &str, state: &State| println!("{job} gave up: {}", state.label()))
        .run(|| {
            attempts += 1;
            if attempts < 3 {
                Err(format!("database busy (attempt {attempts})"))
            } else {
                Ok(1_000)
            }
        });
    println!("loaded: {result:?}");

    // A handler may replace a state, as Prefect's do: here a failure of an optional step is
    // recorded as skipped instead.
    let optional = Task::new("optional-cleanup")
        .on_state_change(|_: &str, _: &State, new: &State| {
            (*new == State::Failed).then_some(State::Skipped)
        })
        .run(|| Err::<(), _>("nothing to clean"));
    println!(
        "optional step: {:?}",
        optional.map_err(|e| e.state().name())
    );
}
