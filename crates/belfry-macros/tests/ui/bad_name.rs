#[belfry::watch(name = "")]
fn job() -> Result<(), String> {
    Ok(())
}

#[belfry::watch(name = "a", name = "b")]
fn twice() -> Result<(), String> {
    Ok(())
}

fn main() {}
