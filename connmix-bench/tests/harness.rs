//! The harness against a real contestant: right answers pass, wrong ones fail the run.

use std::time::Duration;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use connmix_bench::contestant::{self, Contestant, Kind};
use connmix_bench::harness::{Harness, NODES};
use connmix_bench::standin::Standin;
use connmix_bench::workload::{Answers, Population, VConn, ROOM_SIZE};
use connmix_protocol::ClientId;

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
        names: dir.join("unused-names"),
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

/// 40 logged-in connections on two nodes, as the harness lays them out, without a database.
fn population() -> Population {
    let senders = 40;
    let mut pop = Population {
        senders,
        rooms: vec![Vec::new(); senders / ROOM_SIZE],
        ..Population::default()
    };
    for i in 0..senders {
        pop.conns.push(VConn {
            node: i % NODES,
            // Client ids above 2^53, as the engine's are.
            client: ClientId((1 << 60) + i as u64),
            uid: Some(100 + i as u64),
            user: 100 + i as u64,
            name: format!("bench{i}"),
            room: i / ROOM_SIZE,
        });
        pop.rooms[i / ROOM_SIZE].push(i);
        if i % connmix_bench::workload::BROADCAST_EVERY == 0 {
            pop.broadcast.push(i);
        }
    }
    pop
}

/// The floor's programs, with a names file written from `names`.
fn floor_programs(dir: &Path, names: &[(u64, String)]) -> anyhow::Result<contestant::Programs> {
    std::fs::create_dir_all(dir)?;
    let names_file = dir.join("names.txt");
    connmix_bench::floor::write_names(&names_file, names.iter().map(|(u, n)| (*u, n.as_str())))?;
    Ok(contestant::Programs {
        bench: PathBuf::from(env!("CARGO_BIN_EXE_connmix-bench")),
        names: names_file,
        chat: dir.join("unused"),
        python: None,
        baseline: dir.join("unused.py"),
        database: dir.join("unused.sqlite"),
        logs: dir.to_path_buf(),
    })
}

/// Starts the floor against a stand-in owed `answers`, and pushes `events` events.
async fn floor_on_standin(
    test: &str,
    names: &[(u64, String)],
    answers: Answers,
    events: u64,
) -> anyhow::Result<(Standin, Contestant, PathBuf)> {
    let dir = std::env::temp_dir().join(format!("{test}-{}", std::process::id()));
    let programs = floor_programs(&dir, names)?;
    let standin = Standin::start(Arc::new(population()), answers, None)?;
    let mut floor = Contestant::spawn(Kind::Floor, &programs, &standin.center_host(), None, 0)?;
    if standin
        .wait_for_consumers(NODES, Duration::from_secs(10))
        .await
        .is_err()
    {
        floor.check_alive()?;
        anyhow::bail!("the floor did not consume on both nodes");
    }
    standin.allow(events);
    Ok((standin, floor, dir))
}

fn names_of(pop: &Population) -> Vec<(u64, String)> {
    pop.conns
        .iter()
        .filter_map(|c| c.uid.map(|uid| (uid, c.name.clone())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_makes_every_call_the_standin_is_owed_and_no_other() -> anyhow::Result<()> {
    let names = names_of(&population());
    let (standin, floor, dir) =
        floor_on_standin("standin-floor", &names, Answers::Chat, 3000).await?;
    let drained = standin.drained(Duration::from_secs(5)).await;
    floor.stop().await?;
    drained?;
    assert_eq!(standin.completed(), 3000, "every event answered in full");
    assert_eq!(standin.wrong_count(), 0);
    // Each event of the mix owes one or two calls: a publish or conn.call, then the answer.
    let per_event = standin.calls() as f64 / 3000.0;
    assert!(
        (1.5..2.0).contains(&per_event),
        "{per_event} calls per event"
    );
    standin.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_naming_the_wrong_sender_fails_against_the_standin() -> anyhow::Result<()> {
    // The floor takes `from` from its names file: give it other names than the population's.
    let names: Vec<(u64, String)> = names_of(&population())
        .into_iter()
        .map(|(uid, name)| (uid, format!("{name}x")))
        .collect();
    let (standin, floor, dir) =
        floor_on_standin("standin-wrong", &names, Answers::Chat, 200).await?;
    let drained = standin.drained(Duration::from_secs(2)).await;
    floor.stop().await?;
    let err = drained.expect_err("deliveries with the wrong name are not owed");
    assert!(err.to_string().contains("wrong calls"), "{err:#}");
    assert!(err.to_string().contains(r#"\"from\":\"bench"#), "{err:#}");
    standin.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_passes_the_mock_run_as_chat_consumer_would() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("floor-mock-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut harness = Harness::start(20, 0, &dir.join("users.sqlite"), None).await?;
    let programs = floor_programs(&dir, &names_of(&harness.pop))?;
    let center = harness.engine.center_host();
    let floor = Contestant::spawn(Kind::Floor, &programs, &center, None, 0)?;
    harness
        .wait_for_consumers(2, Duration::from_secs(10))
        .await?;
    harness
        .open_loop(Answers::Chat, 2000.0, Duration::from_millis(300), 0)
        .await?;
    let drained = harness.checker.drained(Duration::from_secs(5)).await;
    floor.stop().await?;
    drained?;
    assert_eq!(harness.checker.take_samples().len(), 600);
    harness.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
