//! Linking connmix-client must not break the rest of an application's HTTP and TLS stack.

/// reqwest features are unified across a whole program: a TLS feature without a crypto provider
/// would make every plain `reqwest::Client::new()` in the host application panic.
#[test]
fn host_application_can_still_build_a_plain_reqwest_client() {
    let client = reqwest::Client::builder().build();
    assert!(client.is_ok(), "{:?}", client.err());
}
