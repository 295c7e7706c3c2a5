#[belfry::watch(repeat_failures_after = "5 parsecs")]
fn job() -> Result<(), String> {
    Ok(())
}

#[belfry::watch(ok_heartbeat_after = "30")]
fn other() -> Result<(), String> {
    Ok(())
}

#[belfry::watch(repeat_failures_after = 10)]
fn third() -> Result<(), String> {
    Ok(())
}

fn main() {}
