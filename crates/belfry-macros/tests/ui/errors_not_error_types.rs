#[belfry::watch(errors = [u32])]
fn job() -> Result<(), std::io::Error> {
    Ok(())
}

#[belfry::watch(errors = [std::io::Error, String])]
fn boxed() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Ok(())
}

fn main() {}
