//! The harness against a real contestant: right answers pass, wrong ones fail the run.

use std::time::Duration;

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
