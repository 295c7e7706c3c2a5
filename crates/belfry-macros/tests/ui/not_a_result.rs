#[belfry::watch]
fn count() -> u32 {
    1
}

#[belfry::watch]
fn nothing() {}

fn main() {}
