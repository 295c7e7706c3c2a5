#[belfry::watch]
fn count() -> u32 {
    1
}

#[belfry::watch]
fn nothing() {}

#[belfry::watch]
fn pair() -> (u32, &'static str) {
    (1, "one")
}

#[belfry::watch]
fn maybe() -> Option<u32> {
    Some(1)
}

// A named type may be an alias of `Result`: the compiler, not the macro, says it is not one.
type Count = Vec<u32>;

#[belfry::watch]
async fn counted() -> Count {
    vec![1]
}

fn main() {}
