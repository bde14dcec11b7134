//! The `connmix-mock` binary: options, start-up output, errors and signals.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_connmix-mock");

#[test]
fn bad_options_exit_with_status_2_and_a_message() {
    for args in [
        &["--nodes", "0"][..],
        &["--dialect", "ancient"],
        &["--api-port", "not-a-port"],
        &["--api-user", "admin"],
    ] {
        let out = Command::new(BIN)
            .args(args)
            .env_remove("CONNMIX_API_PASSWORD")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?} explains itself");
    }
}

#[test]
fn a_port_in_use_fails_with_one_line_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(BIN)
        .args([
            "--center-port",
            &port,
            "--api-port",
            "0",
            "--chat-port",
            "0",
        ])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert_eq!(
        stderr.matches("in use").count(),
        1,
        "says why, once: {stderr}"
    );
}

#[cfg(unix)]
#[test]
fn prints_every_listener_and_stops_cleanly_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["--center-port", "0", "--api-port", "0", "--chat-port", "0"])
        .args(["--nodes", "2"])
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let printed: Vec<String> = (0..3).map(|_| lines.next().unwrap().unwrap()).collect();
    assert!(
        printed[0].starts_with("center  http://127.0.0.1:"),
        "{printed:?}"
    );
    assert!(printed[1].contains("/ws/v1") && printed[1].contains("/chat"));
    assert!(printed[2].starts_with("node 2"), "{printed:?}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_script_with_a_syntax_error_is_refused_naming_file_and_line() {
    let dir = std::env::temp_dir().join(format!("connmix-mock-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("entry.lua");
    std::fs::write(
        &script,
        "function on_message(msg, conn)\n  local x = = 1\nend\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--center-port", "0", "--api-port", "0", "--chat-port", "0"])
        .arg("--script")
        .arg(&script)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("entry.lua:2:"),
        "names file and line: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn redis_without_a_script_is_a_usage_error() {
    let out = Command::new(BIN)
        .args(["--redis", "default=redis://127.0.0.1:6379"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
