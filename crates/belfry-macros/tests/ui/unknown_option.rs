#[belfry::watch(repeat_after = "10m")]
fn job() -> Result<(), String> {
    Ok(())
}

fn main() {}
