struct Opaque;

#[belfry::watch]
fn job() -> Result<(), Opaque> {
    Err(Opaque)
}

fn main() {}
