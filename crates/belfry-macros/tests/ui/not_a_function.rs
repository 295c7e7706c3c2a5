#[belfry::watch]
struct Job;

#[belfry::watch]
const fn constant() -> Result<(), ()> {
    Ok(())
}

fn main() {}
