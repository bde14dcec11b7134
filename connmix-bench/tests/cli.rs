//! Bad options are refused before anything starts.

use std::process::Command;

fn bench(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_connmix-bench"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_durations_and_empty_traffic_are_refused_with_the_option_named() {
    let dir = std::env::temp_dir().join(format!("connmix-bench-cli-{}", std::process::id()));
    let out = dir.to_str().unwrap();
    for (args, says) in [
        (
            vec!["--seconds", "0"],
            "--seconds must be a positive number",
        ),
        (
            vec!["--seconds", "NaN"],
            "--seconds must be a positive number",
        ),
        (
            vec!["--connections", "0"],
            "--connections must be at least 1",
        ),
        (
            vec!["--soak", "0"],
            "--soak must be a positive number of minutes",
        ),
        (
            vec!["--soak", "inf"],
            "--soak must be a positive number of minutes",
        ),
    ] {
        let mut args = args;
        args.extend(["--out", out]);
        let (ok, stderr) = bench(&args);
        assert!(!ok, "{args:?} must fail");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!dir.exists(), "{args:?} created {out}");
    }
}

#[test]
fn sources_without_redis_say_where_it_was_looked_for_before_starting_anything() {
    let dir = std::env::temp_dir().join(format!("connmix-bench-cli-redis-{}", std::process::id()));
    let out = dir.to_str().unwrap();
    let (ok, stderr) = bench(&[
        "--sources",
        "--redis-url",
        "redis://user:secret@127.0.0.1:1",
        "--out",
        out,
    ]);
    assert!(!ok, "--sources without Redis must fail");
    assert!(
        stderr.contains("Redis is not reachable at redis://***@127.0.0.1:1"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("secret"),
        "the password is shown: {stderr}"
    );
    assert!(!dir.exists(), "{out} was created");
}
