//! What does not compile: a misspelt client type, a type that is not a service, a service name
//! the server would not accept, a method behind `#[cfg]`. Each case in `tests/compile-fail/` is checked against the
//! compiler's message beside it (`TRYBUILD=overwrite` rewrites them; read the diff).

#[test]
fn service_mistakes_do_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("compile-fail/*.rs");
}
