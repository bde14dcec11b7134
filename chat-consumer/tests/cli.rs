//! The `chat-consumer` binary as an operator uses it.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use connmix_mock::{MockConfig, MockEngine};

/// A fresh SQLite file URL in the temp directory, unique to this test.
fn temp_db(name: &str) -> (String, PathBuf) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let path = std::env::temp_dir().join(format!(
        "chat-consumer-{name}-{}-{nanos}.db",
        std::process::id()
    ));
    (format!("sqlite://{}?mode=rwc", path.display()), path)
}

fn cli(db: &str) -> Command {
    cli_hashing(db, "64", "1")
}

/// [`cli`] with new password hashes costing `memory_kib` and `iterations`.
fn cli_hashing(db: &str, memory_kib: &str, iterations: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat-consumer"));
    // dev serves its admin endpoints by default: on a free port here, as tests run at once.
    cmd.env_remove("CONNMIX_HOST")
        .env("CHAT_ADMIN_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .env("CHAT_ARGON2_MEMORY_KIB", memory_kib)
        .env("CHAT_ARGON2_ITERATIONS", iterations);
    cmd
}

/// Starts `cmd` quietly and waits until it consumes `engine`'s queue.
async fn start_consuming(cmd: Command, engine: &MockEngine) -> tokio::process::Child {
    let child = spawn_quiet(cmd);
    tokio::time::timeout(
        Duration::from_secs(20),
        engine.wait_for_consumers("chat", 1),
    )
    .await
    .expect("the consumer never consumed the queue");
    child
}

/// Starts `cmd` in the background with its output discarded.
fn spawn_quiet(cmd: Command) -> tokio::process::Child {
    tokio::process::Command::from(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Sends SIGTERM and returns the exit code.
#[cfg(unix)]
async fn terminate(child: &mut tokio::process::Child) -> Option<i32> {
    // The shell's builtin `kill`: no `unsafe` libc call, no dependence on procps.
    let pid = child.id().unwrap();
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .unwrap();
    assert!(killed.success());
    tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("no exit after SIGTERM")
        .unwrap()
        .code()
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn users_are_added_listed_and_given_new_passwords_without_showing_hashes() {
    let (db, path) = temp_db("users");
    let added = run(cli(&db).args([
        "users",
        "add",
        "user1",
        "--email",
        "u1@example.com",
        "--password",
        "123456",
    ]));
    assert!(added.status.success(), "{}", text(&added.stderr));

    let mut piped = cli(&db)
        .args([
            "users",
            "add",
            "user2",
            "--email",
            "u2@example.com",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    piped.stdin.take().unwrap().write_all(b"654321\n").unwrap();
    assert!(piped.wait().unwrap().success());

    let passwd = run(cli(&db).args(["users", "passwd", "user1", "--password", "abcdef"]));
    assert!(passwd.status.success(), "{}", text(&passwd.stderr));

    let list = run(cli(&db).args(["users", "list"]));
    let out = text(&list.stdout);
    assert!(list.status.success());
    assert!(
        out.contains("user1") && out.contains("u2@example.com"),
        "{out}"
    );
    assert!(!out.contains("$argon2") && !out.contains("123456"), "{out}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_duplicate_name_is_one_line_error_and_changes_nothing() {
    let (db, path) = temp_db("dup");
    let add = |email: &str| {
        run(cli(&db).args(["users", "add", "user1", "--email", email, "--password", "x"]))
    };
    assert!(add("first@example.com").status.success());
    let again = add("second@example.com");
    assert_eq!(again.status.code(), Some(1));
    let err = text(&again.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("already exists"), "{err}");
    let list = text(&run(cli(&db).args(["users", "list"])).stdout);
    assert!(list.contains("first@example.com") && !list.contains("second@example.com"));
    let _ = std::fs::remove_file(path);
}

#[test]
fn zero_threads_is_refused_by_name_before_anything_runs() {
    let (db, path) = temp_db("threads");
    let out = run(cli(&db).args(["--threads", "0", "migrate"]));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("--threads"), "{err}");
    assert!(!path.exists(), "nothing may be created: {}", path.display());
}

#[test]
fn migrate_prints_only_its_result() {
    let (db, path) = temp_db("migrate-quiet");
    // At the default log level, as an operator runs it.
    let out = run(cli(&db).env_remove("RUST_LOG").arg("migrate"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "migrations applied\n");
    assert_eq!(text(&out.stderr), "", "no migration progress on stderr");
    let _ = std::fs::remove_file(path);
}

#[test]
fn admin_commands_list_only_their_own_options() {
    for command in [
        &["migrate", "--help"][..],
        &["users", "--help"],
        &["users", "list", "--help"],
        &["users", "add", "--help"],
    ] {
        let out = run(cli("sqlite::memory:").args(command));
        assert!(out.status.success());
        let help = text(&out.stdout);
        assert!(help.contains("--database-url"), "{command:?}: {help}");
        for foreign in [
            "--host",
            "--api-user",
            "--engine-timeout-secs",
            "--queue",
            "--source",
            "--workers",
            "--threads",
            "--admin-addr",
        ] {
            assert!(
                !help.contains(foreign),
                "{command:?} lists {foreign}: {help}"
            );
        }
    }
    let list = text(&run(cli("sqlite::memory:").args(["users", "list", "--help"])).stdout);
    assert!(!list.contains("--argon2"), "listing hashes nothing: {list}");
    let add = text(&run(cli("sqlite::memory:").args(["users", "add", "--help"])).stdout);
    assert!(add.contains("--argon2-memory-kib"), "{add}");
    assert!(add.contains("CHAT_USER_PASSWORD"), "{add}");
}

#[test]
fn bad_or_unreachable_databases_fail_with_exit_code_1() {
    let missing =
        std::env::temp_dir().join(format!("chat-consumer-missing-{}.db", std::process::id()));
    let missing = format!("sqlite://{}", missing.display());
    let suggestion = format!("does not exist; to create it, add mode=rwc: {missing}?mode=rwc");
    for (url, expected) in [
        ("oracle://db/x", "bad database URL"),
        (
            "postgres://nobody:pw@127.0.0.1:1/x",
            "cannot open database postgres://nobody:***@127.0.0.1:1/x: 127.0.0.1:1 refused the \
             connection (is the server running and listening there?)",
        ),
        (
            "mysql://nobody:pw@no-such-host.invalid/x",
            "cannot resolve the host name `no-such-host.invalid`",
        ),
        (missing.as_str(), suggestion.as_str()),
    ] {
        let out = run(cli(url).args(["migrate", "--database-timeout-secs", "1"]));
        assert_eq!(out.status.code(), Some(1), "{url}");
        let err = text(&out.stderr);
        assert!(err.contains(expected), "{url}: {err}");
        assert!(!err.contains(":pw@"), "password leaked: {err}");
    }
}

#[test]
fn an_unreachable_engine_fails_with_exit_code_1() {
    let (db, path) = temp_db("noengine");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let out = run(cli(&db).args(["run", "--host", &host, "--engine-timeout-secs", "1"]));
    assert_eq!(out.status.code(), Some(1));
    let expected = format!(
        "cannot reach the engine at {host}: GET /version: connection refused (is it running? \
         `chat-consumer dev` or `connmix-mock` start one locally)"
    );
    assert!(
        text(&out.stderr).contains(&expected),
        "{}",
        text(&out.stderr)
    );

    let out = run(cli(&db).args([
        "run",
        "--host",
        "no-such-host.invalid",
        "--engine-timeout-secs",
        "1",
    ]));
    assert_eq!(out.status.code(), Some(1));
    let expected = "cannot reach the engine at no-such-host.invalid:6787: GET /version: cannot \
                    resolve the host name";
    assert!(
        text(&out.stderr).contains(expected),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("(check the host name in --host or CONNMIX_HOST)"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_malformed_email_is_refused_before_the_database_is_touched() {
    let (db, path) = temp_db("bademail");
    for (email, why) in [
        ("user1.example.com", "no @"),
        ("user1@localhost", "the domain after the @ needs a dot"),
        ("us er@example.com", "it contains a space"),
    ] {
        let out = run(cli(&db).args([
            "users",
            "add",
            "user1",
            "--email",
            email,
            "--password",
            "123456",
        ]));
        assert_eq!(out.status.code(), Some(1), "{email}");
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("invalid e-mail address `{email}`: {why}")),
            "{email}: {err}"
        );
    }
    assert!(!path.exists(), "the database was opened");
}

#[test]
fn json_logs_are_one_object_a_line_with_level_and_fields() {
    let (db, path) = temp_db("jsonlog");
    let host = format!("127.0.0.1:{}", closed_port());
    let out = run(cli(&db).env("RUST_LOG", "info").args([
        "run",
        "--log-format",
        "json",
        "--host",
        &host,
        "--engine-timeout-secs",
        "1",
    ]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for line in &lines {
        assert!(line["level"].is_string(), "{line}");
        assert!(line["fields"].is_object(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l["level"] == "INFO"
            && l["fields"]["addr"]
                .as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:"))),
        "the admin server's address is a field: {stderr}"
    );
    assert!(
        lines.iter().any(|l| l["level"] == "ERROR"
            && l["fields"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("cannot reach the engine"))),
        "the failure is a JSON line too: {stderr}"
    );
    let _ = std::fs::remove_file(path);
}

#[cfg(unix)]
#[tokio::test]
async fn run_consumes_until_sigterm_then_exits_0() {
    let engine = MockEngine::start(MockConfig::ephemeral()).await.unwrap();
    let (db, path) = temp_db("run");
    // Default subcommand: no `run` on the command line.
    let mut cmd = cli(&db);
    cmd.args(["--host", &engine.center_host(), "--drain-timeout-secs", "2"]);
    let mut child = start_consuming(cmd, &engine).await;
    assert_eq!(terminate(&mut child).await, Some(0));
    engine.shutdown().await;
    let _ = std::fs::remove_file(path);
}

#[cfg(unix)]
#[tokio::test]
async fn run_with_admin_addr_serves_metrics_and_probes() {
    use tokio::io::AsyncBufReadExt as _;
    let engine = MockEngine::start(MockConfig::ephemeral()).await.unwrap();
    let (db, path) = temp_db("admin");
    let mut cmd = tokio::process::Command::from(cli(&db));
    cmd.env("RUST_LOG", "info")
        .args([
            "run",
            "--log-format",
            "json",
            "--host",
            &engine.center_host(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    // The address the admin server bound (CHAT_ADMIN_ADDR asks for a free port) is logged.
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let line: serde_json::Value = serde_json::from_str(&line).unwrap();
            if let Some(addr) = line["fields"]["addr"].as_str() {
                return addr.to_owned();
            }
        }
        panic!("the consumer exited without serving the admin endpoints");
    })
    .await
    .expect("no admin server address logged");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    tokio::time::timeout(
        Duration::from_secs(20),
        engine.wait_for_consumers("chat", 1),
    )
    .await
    .expect("the consumer never consumed the queue");

    let get = |path: &str| {
        let url = format!("http://{addr}{path}");
        async move {
            let response = reqwest::get(url).await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await, (200, "ok".to_owned()));
    assert_eq!(get("/readyz").await, (200, "ok".to_owned()));
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("chat_events_total{op=\"auth\",outcome=\"ok\"} 0"),
        "{metrics}"
    );
    assert_eq!(terminate(&mut child).await, Some(0));
    engine.shutdown().await;
    let _ = std::fs::remove_file(path);
}

#[cfg(unix)]
#[tokio::test]
async fn a_drain_deadline_passed_with_a_login_in_hand_exits_2() {
    let engine = MockEngine::start(MockConfig::ephemeral()).await.unwrap();
    let (db, path) = temp_db("drain");
    // A login hashes for a while (64 MiB, 8 passes), and the drain allows no time at all.
    let mut cmd = cli_hashing(&db, "65536", "8");
    cmd.args(["--host", &engine.center_host(), "--drain-timeout-secs", "0"]);
    let mut child = start_consuming(cmd, &engine).await;
    let node = engine.node(0).unwrap();
    let mut browser = connmix_mock::browser::Browser::connect(node.chat_addr)
        .await
        .unwrap();
    browser
        .send(r#"{"op":"auth","args":["nobody","secret"]}"#)
        .await
        .unwrap();
    // The handshake event, then the login: both taken by the consumer.
    let taken = async {
        while engine.counters().delivered < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), taken)
        .await
        .expect("the consumer never took the login");
    assert_eq!(terminate(&mut child).await, Some(2));
    engine.shutdown().await;
    let _ = std::fs::remove_file(path);
}

/// `dev` on free ports, with `configure` adding to its command: the child, the page URL it
/// printed, and every line it printed up to that one.
#[cfg(unix)]
async fn start_dev(
    db: &str,
    configure: impl FnOnce(&mut tokio::process::Command),
) -> (tokio::process::Child, String, Vec<String>) {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let mut cmd = tokio::process::Command::from(cli(db));
    cmd.args([
        "dev",
        "--center-port",
        "0",
        "--api-port",
        "0",
        "--chat-port",
        "0",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .kill_on_drop(true);
    configure(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let url = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            printed.push(line.clone());
            if let Some(rest) = line.trim().strip_prefix("open ") {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("dev exited before printing a URL: {printed:?}");
    })
    .await
    .expect("dev never printed the page URL");
    // Keep reading: with its stdout closed, dev's next line would fail with a broken pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url, printed)
}

#[cfg(unix)]
#[tokio::test]
async fn dev_serves_the_chat_page_with_demo_users_and_stops_on_sigterm() {
    let (db, path) = temp_db("dev");
    let (mut child, url, printed) = start_dev(&db, |_| {}).await;
    assert!(
        printed
            .iter()
            .any(|l| l.contains("user1") && l.contains("demo only")),
        "the demo accounts are announced as demo-only: {printed:?}"
    );
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(
        page.contains(r#"id="login-form""#),
        "{url} is not the chat page"
    );
    // The admin endpoints are announced at the address they were bound to.
    let metrics = printed
        .iter()
        .find_map(|l| l.split_whitespace().find(|w| w.ends_with("/metrics,")))
        .unwrap_or_else(|| panic!("no metrics URL announced: {printed:?}"));
    let healthz = metrics.replace("/metrics,", "/healthz");
    let health = reqwest::get(&healthz).await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "{healthz}");

    let pid = child.id().unwrap();
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("no exit after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));

    // The demo users are in the database, once each.
    let listed = text(&run(cli(&db).args(["users", "list"])).stdout);
    let names: Vec<&str> = listed
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1))
        .collect();
    assert_eq!(names, ["user1", "user2"], "{listed}");
    let _ = std::fs::remove_file(path);
}

#[cfg(unix)]
// Two threads: the blocking `run` of the refused attempt must not stop the engine answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_uses_engine_credentials_from_the_environment() {
    let engine = MockEngine::start(MockConfig {
        credentials: Some(connmix_mock::Credentials::new("consumer", "pa55")),
        ..MockConfig::ephemeral()
    })
    .await
    .unwrap();
    let (db, path) = temp_db("credentials");

    // Wrong password: refused by the engine, reported, exit 1.
    let refused = run(cli(&db)
        .args([
            "--host",
            &engine.center_host(),
            "--engine-timeout-secs",
            "1",
        ])
        .env("CONNMIX_API_USER", "consumer")
        .env("CONNMIX_API_PASSWORD", "wrong"));
    assert_eq!(refused.status.code(), Some(1));
    let err = text(&refused.stderr);
    assert!(!err.contains("wrong"), "the password must not be printed");
    assert!(
        err.contains(&format!(
            "cannot reach the engine at {}: GET /version: HTTP 401 Unauthorized (the engine \
             wants other credentials: set --api-user and --api-password, or CONNMIX_API_USER \
             and CONNMIX_API_PASSWORD)",
            engine.center_host()
        )),
        "{err}"
    );

    let mut cmd = cli(&db);
    cmd.args(["--host", &engine.center_host()])
        .env("CONNMIX_API_USER", "consumer")
        .env("CONNMIX_API_PASSWORD", "pa55");
    // With the right credentials it consumes.
    let mut child = start_consuming(cmd, &engine).await;
    child.kill().await.unwrap();
    engine.shutdown().await;
    let _ = std::fs::remove_file(path);
}

#[test]
fn dev_on_a_taken_port_says_which_and_why_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (db, path) = temp_db("dev-taken");
    let out = run(cli(&db).args([
        "dev",
        "--center-port",
        &port,
        "--api-port",
        "0",
        "--chat-port",
        "0",
    ]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert_eq!(stderr.matches("in use").count(), 1, "{stderr}");
    let _ = std::fs::remove_file(path);
}

#[cfg(unix)]
#[tokio::test]
async fn no_secret_reaches_the_log_even_at_trace() {
    use base64::Engine as _;

    let (db, path) = temp_db("secrets");
    let log_path = path.with_extension("log");
    let log = std::fs::File::create(&log_path).unwrap();
    let (mut child, url, _) = start_dev(&db, |cmd| {
        cmd.args(["--api-user", "ops", "--api-password", "hunter2-api"])
            .env("RUST_LOG", "trace")
            .stderr(log);
    })
    .await;
    let chat: std::net::SocketAddr = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    let mut browser = connmix_mock::browser::Browser::connect(chat).await.unwrap();
    for password in ["wr0ng-s3cret", "123456"] {
        let frame = format!(r#"{{"op":"auth","args":["user1","{password}"]}}"#);
        browser.send(&frame).await.unwrap();
        let reply = browser.recv_json().await.unwrap();
        assert_eq!(reply["op"], "auth", "{reply}");
    }
    assert_eq!(terminate(&mut child).await, Some(0));

    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(logged.contains("TRACE"), "trace logging was on");
    let header = base64::engine::general_purpose::STANDARD.encode("ops:hunter2-api");
    for secret in ["wr0ng-s3cret", "hunter2-api", header.as_str()] {
        assert!(!logged.contains(secret), "the log shows {secret:?}");
    }
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(log_path);
}

#[cfg(unix)]
#[tokio::test]
async fn dev_keeps_serving_when_its_stdout_is_closed() {
    let (db, path) = temp_db("dev-closed-stdout");
    let center = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = tokio::process::Command::from(cli(&db))
        .args(["dev", "--center-port", &center.port().to_string()])
        .args(["--api-port", "0", "--chat-port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // As `dev | head -0` would: nobody reads what it prints.
    drop(child.stdout.take());
    let url = format!("http://{center}/version");
    let answered = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(response) = reqwest::get(&url).await {
                return response.status();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("dev stopped serving once its stdout was closed");
    assert!(answered.is_success());
    // Still alive after its banner was written into the closed pipe.
    assert!(child.try_wait().unwrap().is_none(), "dev exited");
    assert_eq!(terminate(&mut child).await, Some(0));
    let _ = std::fs::remove_file(path);
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn dev_on_a_redis_source_without_redis_says_so_and_what_to_do() {
    let (db, path) = temp_db("dev-noredis");
    let redis = format!("redis://:s3cret-redis@127.0.0.1:{}", closed_port());
    let out = run(cli(&db).args([
        "dev",
        "--source",
        "redis-stream",
        "--redis-url",
        &redis,
        "--center-port",
        "0",
        "--api-port",
        "0",
        "--chat-port",
        "0",
    ]));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("Redis is not reachable"), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains("--redis-url"), "the next step is named: {err}");
    assert!(!err.contains("s3cret-redis"), "password leaked: {err}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn run_on_a_redis_source_needs_a_redis_url() {
    let (db, path) = temp_db("run-nourl");
    let engine = format!("127.0.0.1:{}", closed_port());
    let out = run(cli(&db).env_remove("REDIS_URL").args([
        "run",
        "--host",
        &engine,
        "--source",
        "redis-list",
    ]));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("need a Redis URL"), "{err}");
    let _ = std::fs::remove_file(path);
}

#[cfg(unix)]
#[tokio::test]
async fn dev_runs_the_chat_through_a_redis_stream() {
    let Ok(redis) = std::env::var("CONNMIX_TEST_REDIS_URL") else {
        assert!(
            std::env::var("CONNMIX_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "CONNMIX_TEST_REDIS_URL not set but CONNMIX_REQUIRE_SERVICES=1"
        );
        eprintln!("skipped: CONNMIX_TEST_REDIS_URL not set");
        return;
    };
    let (db, path) = temp_db("dev-stream");
    let queue = format!("test:dev:{}", std::process::id());
    let (mut child, url, printed) = start_dev(&db, |cmd| {
        cmd.args(["--source", "redis-stream", "--redis-url", &redis])
            .args(["--queue", &queue]);
    })
    .await;
    assert!(
        printed.iter().any(|l| l.contains("Redis stream")),
        "{printed:?}"
    );
    let chat: std::net::SocketAddr = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    let mut browser = connmix_mock::browser::Browser::connect(chat).await.unwrap();
    browser
        .send(r#"{"op":"auth","args":["user1","123456"]}"#)
        .await
        .unwrap();
    let reply = browser.recv_json().await.unwrap();
    assert_eq!(reply["success"], true, "{reply}");
    browser.send(r#"{"op":"ping"}"#).await.unwrap();
    assert_eq!(browser.recv_json().await.unwrap()["op"], "pong");
    // The events went through the stream, and were acknowledged.
    let client = redis::Client::open(redis.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let len: usize = redis::cmd("XLEN")
        .arg(&queue)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        len >= 3,
        "handshake, auth and ping are in the stream: {len}"
    );
    assert_eq!(terminate(&mut child).await, Some(0));
    let _: () = redis::cmd("DEL")
        .arg(&queue)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _ = std::fs::remove_file(path);
}
