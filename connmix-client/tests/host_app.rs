//! Linking connmix-client with its default features must not break the rest of an
//! application's HTTP and TLS stack. Without `reqwest-provider` it does, by design: such a
//! program installs a process-wide provider first (see the feature in Cargo.toml).
#![cfg(feature = "reqwest-provider")]

/// reqwest features are unified across a whole program: a TLS feature without a crypto provider
/// would make every plain `reqwest::Client::new()` in the host application panic.
#[test]
fn host_application_can_still_build_a_plain_reqwest_client() {
    let client = reqwest::Client::builder().build();
    assert!(client.is_ok(), "{:?}", client.err());
}
