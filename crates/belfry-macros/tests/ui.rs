//! `#[belfry::watch]` used wrongly: each case is a compile error that says what is wrong and
//! points at it (the expected messages are the `.stderr` files beside the cases).

#[test]
fn misuse_of_watch_is_a_compile_error_that_says_what_is_wrong() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
