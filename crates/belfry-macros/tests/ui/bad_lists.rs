#[belfry::watch(channels = [])]
fn no_channels() -> Result<(), String> {
    Ok(())
}

#[belfry::watch(channels = ["ops", "ops"])]
fn twice() -> Result<(), String> {
    Ok(())
}

#[belfry::watch(errors = [])]
fn no_errors() -> Result<(), String> {
    Ok(())
}

#[belfry::watch(channels = "ops")]
fn not_a_list() -> Result<(), String> {
    Ok(())
}

fn main() {}
