//! Compile-time tests of `#[mtcp::main]` and `#[mtcp::test]` (trybuild).
//! Regenerate the expected `.stderr` files with `TRYBUILD=overwrite`, then
//! read them.

#[test]
fn entry_macros() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
