//! Support for the end-to-end tests: services that a test needs and may not have.
//!
//! Each test that needs something outside the workspace (a browser, a database server) asks for
//! it here. Without it the test prints one `skipped: ...` line and passes, unless
//! `CONNMIX_REQUIRE_SERVICES=1` (set by CI), where a missing service fails the test.

#![deny(missing_docs)]

pub mod browser;

/// True when missing services must fail tests instead of skipping them.
pub fn services_required() -> bool {
    std::env::var("CONNMIX_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Reports a missing service: a skip line, or a panic when services are required.
pub fn skip(test: &str, why: &str) {
    if services_required() {
        panic!("{test}: {why}, and CONNMIX_REQUIRE_SERVICES=1 requires it");
    }
    // Straight to the process's stderr: cargo test hides what passing tests print with
    // `eprintln!`, and a skip must be seen.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
}
