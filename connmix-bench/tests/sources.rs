//! chat-consumer on each queue source against the stand-in: every call owed is made, Redis is
//! left as it was found.

use std::path::PathBuf;
use std::time::Duration;

use connmix_bench::contestant::Programs;
use connmix_bench::cost::{self, Source};
use connmix_bench::harness::Harness;
use connmix_bench::run::Cores;

/// The Redis of the tests, or why there is none (then the test skips, or fails when CI
/// requires every service).
fn redis_url(test: &str) -> Option<String> {
    match std::env::var("CONNMIX_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !std::env::var("CONNMIX_REQUIRE_SERVICES").is_ok_and(|v| v == "1"),
                "{test}: CONNMIX_TEST_REDIS_URL is not set, and CONNMIX_REQUIRE_SERVICES=1 requires it"
            );
            eprintln!("skipped: {test}: set CONNMIX_TEST_REDIS_URL to run it");
            None
        }
    }
}

/// A debug chat-consumer beside this test's target directory, built if need be.
fn chat_consumer() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> -> target/<profile>
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or_else(|| anyhow::anyhow!("no target directory above {}", exe.display()))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "--quiet", "-p", "chat-consumer"]);
    if profile.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    anyhow::ensure!(build.status()?.success(), "building chat-consumer failed");
    Ok(profile.join("chat-consumer"))
}

fn keys(url: &str, pattern: &str) -> anyhow::Result<Vec<String>> {
    let mut conn = redis::Client::open(url)?.get_connection()?;
    Ok(redis::cmd("KEYS").arg(pattern).query(&mut conn)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_source_answers_the_whole_mix_and_leaves_redis_clean() -> anyhow::Result<()> {
    const TEST: &str = "every_source_answers_the_whole_mix_and_leaves_redis_clean";
    let Some(url) = redis_url(TEST) else {
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("connmix-bench-sources-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let database = dir.join("users.sqlite");
    let harness = Harness::start(20, 0, &database, None).await?;
    let programs = Programs {
        bench: std::env::current_exe()?,
        names: dir.join("unused-names"),
        chat: chat_consumer()?,
        python: None,
        baseline: dir.join("unused.py"),
        database,
        logs: dir.clone(),
    };
    let cores = Cores {
        engine: None,
        contestant: None,
    };
    let pattern = format!("connmix-bench:{}:*", std::process::id());
    for source in Source::ALL {
        // A wrong or missing call fails the measurement (the stand-in checks each one).
        let cost = cost::source(
            source,
            &url,
            &programs,
            &harness.pop,
            cores,
            Duration::from_millis(200),
            Duration::from_millis(500),
        )
        .await
        .map_err(|e| e.context(source.label()))?;
        assert!(
            cost.events_per_s > 0.0,
            "{}: nothing answered",
            source.label()
        );
        // Each event of the mix owes one or two calls: a publish or conn.call, then the answer.
        assert!(
            (1.5..2.0).contains(&cost.calls_per_event),
            "{}: {} calls per event",
            source.label(),
            cost.calls_per_event
        );
        assert_eq!(
            cost.redis_cpu_us_per_event.is_some(),
            source != Source::Engine && redis_is_local(&url),
            "{}: Redis's CPU is read exactly when Redis is used and local",
            source.label()
        );
        assert_eq!(
            keys(&url, &pattern)?,
            Vec::<String>::new(),
            "{}: keys left on Redis",
            source.label()
        );
    }
    harness.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn redis_is_local(url: &str) -> bool {
    url.contains("127.0.0.1") || url.contains("localhost")
}
