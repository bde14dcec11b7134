//! The harness against a real contestant: right answers pass, wrong ones fail the run.

use std::time::Duration;

use connmix_bench::contestant::{self, Contestant, Kind};
use connmix_bench::harness::Harness;
use connmix_bench::workload::Answers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_passes_as_the_ceiling_and_fails_as_a_chat_consumer() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("connmix-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut harness = Harness::start(20, 0, &dir.join("users.sqlite"), None).await?;
    let center = harness.engine.center_host();
    let echo = tokio::spawn(async move { connmix_bench::echo::run(&center, "chat").await });
    harness
        .wait_for_consumers(2, Duration::from_secs(10))
        .await?;

    harness
        .open_loop(Answers::Echo, 2000.0, Duration::from_millis(300), 0)
        .await?;
    harness.checker.drained(Duration::from_secs(5)).await?;
    assert_eq!(
        harness.checker.take_samples().len(),
        600,
        "every event answered once"
    );

    // The same consumer judged as a chat consumer: its echoes are not the owed replies.
    harness
        .open_loop(Answers::Chat, 2000.0, Duration::from_millis(100), 0)
        .await?;
    let err = harness
        .checker
        .drained(Duration::from_secs(2))
        .await
        .expect_err("echoes are not chat replies");
    assert!(err.to_string().contains("wrong replies"), "{err:#}");

    echo.abort();
    harness.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Skips a test whose tool is missing, or fails it when CI requires every service.
fn skip(test: &str, why: &str) {
    if std::env::var("CONNMIX_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!("{test}: {why}, and CONNMIX_REQUIRE_SERVICES=1 requires it");
    }
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_baseline_answers_the_mix_as_chat_consumer_would() -> anyhow::Result<()> {
    const TEST: &str = "the_python_baseline_answers_the_mix_as_chat_consumer_would";
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    // The venv is kept between runs; the first one installs the pinned requirements from PyPI.
    let python = match contestant::python_env(
        &tmp.join("baseline-venv"),
        &crate_dir.join("baseline/requirements.txt"),
    )
    .await
    {
        Ok(python) => python,
        Err(err) => {
            skip(
                TEST,
                &format!("no Python environment for the baseline: {err:#}"),
            );
            return Ok(());
        }
    };
    let dir = tmp.join(format!("baseline-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let database = dir.join("users.sqlite");
    let mut harness = Harness::start(20, 0, &database, None).await?;
    let programs = contestant::Programs {
        bench: std::env::current_exe()?,
        chat: dir.join("unused"),
        python: Some(python),
        baseline: crate_dir.join("baseline/consumer.py"),
        database,
        logs: dir.clone(),
    };
    let center = harness.engine.center_host();
    let mut baseline = Contestant::spawn(Kind::Baseline, &programs, &center, None, 0)?;
    if harness
        .wait_for_consumers(2, Duration::from_secs(30))
        .await
        .is_err()
    {
        baseline.check_alive()?;
        anyhow::bail!("the baseline did not start consuming");
    }

    // Every op of the mix, texts with quotes, backslashes and non-ASCII, deliveries to rooms,
    // users and broadcast: each reply checked.
    harness
        .open_loop(Answers::Chat, 1000.0, Duration::from_millis(500), 0)
        .await?;
    let drained = harness.checker.drained(Duration::from_secs(5)).await;
    baseline.stop().await?;
    drained?;
    assert_eq!(harness.checker.take_samples().len(), 500);
    harness.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
