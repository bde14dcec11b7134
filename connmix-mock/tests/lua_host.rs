//! The Lua host: a user's own script, its `mix` API and what happens when the script is wrong,
//! as a browser and a consumer observe it.

mod common;

use common::{Consumer, TempScript};
use connmix_mock::browser::{Browser, BrowserErrorKind};
use connmix_mock::{MockConfig, MockEngine, MockErrorKind, ScriptConfig};
use connmix_protocol::{Call, ConnFunc};
use serde_json::{json, Value};

/// A test script: WebSocket framing from `protocols/websocket`, and an `on_message` that runs
/// the command named by each text frame and sends its answer back.
const SCRIPT: &str = r#"
local websocket = require("protocols/websocket")
require("prettyprint")

function init()
    mix.queue.new("small", 1)
end

function on_connect(conn)
    mix.queue.push("ids", { hello = true })
end

function protocol_input(buf, conn)
    return websocket.input(buf, conn, "/chat")
end

function protocol_decode(str, conn)
    return websocket.decode(conn)
end

function protocol_encode(str, conn)
    return websocket.encode(str)
end

local commands = {}

function commands.json(arg, conn)
    local value, err = mix.json_decode(arg)
    if err then return "error: " .. err end
    return (mix.json_encode(value))
end

function commands.hashes(arg)
    return table.concat({ mix.md5(arg), mix.sha1(arg), mix.base64_encode(arg),
        (mix.base64_decode(mix.base64_encode(arg))), #mix.md5_bin(arg), #mix.sha1_bin(arg),
        table.concat(mix.str_split("a,b,c", ","), "+"), mix.bytes_tostring({ 104, 105 }),
        bit.tohex(bit.bor(bit.lshift(1, 8), 15), 4), mix.server.option("path") }, " ")
end

function commands.wait(arg, conn)
    mix.queue.push("ids", { waiting = true })
    local value = conn:wait_context_value("k")
    return "released:" .. tostring(value)
end

function commands.small(arg)
    local n, err = mix.queue.push("small", arg)
    return tostring(n) .. " " .. tostring(err)
end

function commands.boom()
    error("boom on purpose")
end

function commands.badarg()
    mix.queue.push({}, "x")
end

function commands.loop()
    while true do end
end

function commands.context(arg, conn)
    conn:set_context_value("a", { 1, 2, { b = "c" } })
    return mix.json_encode(conn:context()) .. " " .. tostring(conn:context_value("a")[3].b)
end

function commands.redis(arg)
    local redis, err = mix.redis.connection("default")
    if err then return "error: " .. err end
    local _, err = redis:command("set", arg, "stored value")
    if err then return "error: " .. err end
    local value, err = redis:command("get", arg)
    redis:command("del", arg)
    return tostring(value) .. " " .. tostring(err)
end

function commands.http(arg)
    local resp, err = mix.http.request("GET", mix.server.option("center") .. "/version",
        { timeout = "5s", headers = { accept = "application/json" } })
    if err then return "error: " .. err end
    return resp.status_code .. " " .. resp.body
end

function commands.binary(arg, conn)
    return nil, conn:send(arg, "binary")
end

function on_message(frame, conn)
    local name, arg = string.match(frame.data, "^(%w+)%s?(.*)$")
    local command = commands[name]
    if not command then
        conn:send("echo:" .. frame.data)
        return
    end
    local answer = command(arg, conn)
    if answer then
        conn:send(answer)
    end
end
"#;

struct Setup {
    engine: MockEngine,
    _script: TempScript,
}

async fn start(name: &str, script: impl FnOnce(ScriptConfig) -> ScriptConfig) -> Setup {
    let file = TempScript::new(name, SCRIPT);
    let config = MockConfig {
        script: Some(script(ScriptConfig::new(&file.path))),
        ..MockConfig::ephemeral()
    };
    let engine = MockEngine::start(config).await.unwrap();
    Setup {
        engine,
        _script: file,
    }
}

async fn ask(browser: &mut Browser, command: &str) -> anyhow::Result<String> {
    browser.send(command).await?;
    Ok(browser.recv().await?)
}

#[tokio::test]
async fn json_round_trips_nested_tables_and_arrays() -> anyhow::Result<()> {
    let setup = start("json", |s| s).await;
    let mut browser = Browser::connect(setup.engine.node(0).unwrap().chat_addr).await?;
    let value =
        json!({"a": [1, 2.5, {"b": [true, false, "x", []]}], "c": {"d": {"e": "f"}}, "n": -3});
    let back: Value = serde_json::from_str(&ask(&mut browser, &format!("json {value}")).await?)?;
    assert_eq!(back, value);
    let err = ask(&mut browser, "json {not json").await?;
    assert!(err.starts_with("error: "), "{err}");
    setup.engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn hashes_encodings_bit_and_server_options() -> anyhow::Result<()> {
    let setup = start("hashes", |s| s).await;
    let mut browser = Browser::connect(setup.engine.node(0).unwrap().chat_addr).await?;
    let got = ask(&mut browser, "hashes abc").await?;
    let want = [
        "900150983cd24fb0d6963f7d28e17f72",
        "a9993e364706816aba3e25717850c26c9cd0d89d",
        "YWJj",
        "abc",
        "16",
        "20",
        "a+b+c",
        "hi",
        "010f",
        "/chat",
    ]
    .join(" ");
    assert_eq!(got, want);
    setup.engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn context_values_keep_their_json_shape() -> anyhow::Result<()> {
    let setup = start("context", |s| s).await;
    let mut browser = Browser::connect(setup.engine.node(0).unwrap().chat_addr).await?;
    let got = ask(&mut browser, "context").await?;
    let (context, b) = got.rsplit_once(' ').unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(context)?,
        json!({"a": [1, 2, {"b": "c"}]})
    );
    assert_eq!(b, "c");
    setup.engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn wait_context_value_holds_later_frames_until_a_consumer_sets_the_key() -> anyhow::Result<()>
{
    let setup = start("wait", |s| s).await;
    let node = setup.engine.node(0).unwrap();
    let mut consumer = Consumer::popping(node.api_addr, "ids").await?;
    let mut browser = Browser::connect(node.chat_addr).await?;
    let client = consumer.next_message().await?.client;
    browser.send("wait").await?;
    for i in 0..5 {
        browser.send(&format!("frame {i}")).await?;
    }
    // The consumer answers what the script pushed, as in a login; a set before the frame was
    // handled would not count.
    let waiting = consumer.next_message().await?;
    assert_eq!(waiting.data, json!({"waiting": true}));
    // Another key does not release it.
    let set = |key: &str, value: Value| Call::ConnCall {
        client,
        func: ConnFunc::SetContextValue {
            key: key.into(),
            value,
        },
    };
    consumer.ok(set("other", json!(1))).await?;
    consumer.ok(set("k", json!(7))).await?;
    // The wait's answer comes first: the frames after it were held, and kept their order.
    assert_eq!(browser.recv().await?, "released:7");
    for i in 0..5 {
        assert_eq!(browser.recv().await?, format!("echo:frame {i}"));
    }
    setup.engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_full_queue_fails_the_push_with_an_error() -> anyhow::Result<()> {
    let setup = start("small", |s| s).await;
    let mut browser = Browser::connect(setup.engine.node(0).unwrap().chat_addr).await?;
    assert_eq!(ask(&mut browser, "small one").await?, "1 nil");
    assert_eq!(
        ask(&mut browser, "small two").await?,
        "nil the queue is full"
    );
    setup.engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn binary_sends_are_binary_frames() -> anyhow::Result<()> {
    let setup = start("binary", |s| s).await;
    let mut browser = Browser::connect(setup.engine.node(0).unwrap().chat_addr).await?;
    browser.send("binary bytes").await?;
    assert_eq!(
        browser.recv_payload().await?,
        connmix_protocol::Payload::Binary(b"bytes".to_vec())
    );
    setup.engine.shutdown().await;
    Ok(())
}

/// Each bad command ends its own connection only: a second browser is answered afterwards.
async fn only_that_connection_ends(name: &str, command: &str) -> anyhow::Result<()> {
    let setup = start(name, |s| s.with_instruction_limit(1_000_000)).await;
    let node = setup.engine.node(0).unwrap();
    let mut bad = Browser::connect(node.chat_addr).await?;
    let mut good = Browser::connect(node.chat_addr).await?;
    assert_eq!(ask(&mut good, "before").await?, "echo:before");
    bad.send(command).await?;
    bad.closed().await?;
    assert_eq!(ask(&mut good, "after").await?, "echo:after");
    let mut later = Browser::connect(node.chat_addr).await?;
    assert_eq!(ask(&mut later, "new").await?, "echo:new");
    setup.engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_runtime_error_in_on_message_ends_only_that_connection() -> anyhow::Result<()> {
    only_that_connection_ends("boom", "boom").await
}

#[tokio::test]
async fn a_call_with_wrong_argument_types_ends_only_that_connection() -> anyhow::Result<()> {
    only_that_connection_ends("badarg", "badarg").await
}

#[tokio::test]
async fn an_endless_loop_is_stopped_by_the_instruction_limit() -> anyhow::Result<()> {
    only_that_connection_ends("loop", "loop").await
}

#[tokio::test]
async fn a_syntax_error_refuses_the_start_naming_file_and_line() -> anyhow::Result<()> {
    let file = TempScript::new("syntax", "function on_message(msg, conn)\n  if then\nend\n");
    let config = MockConfig {
        script: Some(ScriptConfig::new(&file.path)),
        ..MockConfig::ephemeral()
    };
    let err = MockEngine::start(config).await.unwrap_err();
    assert_eq!(err.kind(), MockErrorKind::Script);
    assert!(err.to_string().contains("entry.lua:2:"), "{err}");
    Ok(())
}

#[tokio::test]
async fn an_error_in_init_refuses_the_start() -> anyhow::Result<()> {
    let file = TempScript::new("init", "function init()\n  error('no config')\nend\n");
    let config = MockConfig {
        script: Some(ScriptConfig::new(&file.path)),
        ..MockConfig::ephemeral()
    };
    let err = MockEngine::start(config).await.unwrap_err();
    assert!(err.to_string().contains("entry.lua:2: no config"), "{err}");
    Ok(())
}

#[tokio::test]
async fn another_path_is_refused_with_404() -> anyhow::Result<()> {
    let setup = start("path", |s| s).await;
    let node = setup.engine.node(0).unwrap();
    let err = Browser::connect_url(&format!("ws://{}/other", node.chat_addr))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), BrowserErrorKind::Connect);
    assert!(err.to_string().contains("404"), "{err}");
    setup.engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn http_requests_reach_a_real_server() -> anyhow::Result<()> {
    let target = MockEngine::start(MockConfig::ephemeral()).await?;
    let center = format!("http://{}", target.center_addr());
    let setup = start("http", |s| ScriptConfig {
        options: vec![("center".into(), center)],
        ..s
    })
    .await;
    let mut browser = Browser::connect(setup.engine.node(0).unwrap().chat_addr).await?;
    assert_eq!(ask(&mut browser, "http").await?, r#"200 {"apis":["v1"]}"#);
    setup.engine.shutdown().await;
    target.shutdown().await;
    Ok(())
}

/// The Redis server of `CONNMIX_TEST_REDIS_URL`, or `None` after saying why the test is
/// skipped; with `CONNMIX_REQUIRE_SERVICES=1` a missing URL fails the test instead.
fn redis_url() -> Option<String> {
    match std::env::var("CONNMIX_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let required = std::env::var("CONNMIX_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "CONNMIX_TEST_REDIS_URL not set but CONNMIX_REQUIRE_SERVICES=1"
            );
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "skipped: CONNMIX_TEST_REDIS_URL not set");
            None
        }
    }
}

#[tokio::test]
async fn redis_commands_run_against_a_real_redis() -> anyhow::Result<()> {
    let Some(url) = redis_url() else {
        return Ok(());
    };
    let setup = start("redis", |s| s.with_redis("default", url)).await;
    let mut browser = Browser::connect(setup.engine.node(0).unwrap().chat_addr).await?;
    let key = format!("connmix-mock-test-{}", std::process::id());
    let got = ask(&mut browser, &format!("redis {key}")).await?;
    // An unreachable Redis answers "error: ...", which fails here with its reason.
    assert_eq!(got, "stored value nil");
    setup.engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_killed_node_stops_its_script_and_a_restart_runs_it_afresh() -> anyhow::Result<()> {
    let setup = start("restart", |s| s).await;
    let node = setup.engine.node(0).unwrap();
    let mut waiting = Browser::connect(node.chat_addr).await?;
    waiting.send("wait").await?;
    let mut small = Browser::connect(node.chat_addr).await?;
    assert_eq!(ask(&mut small, "small one").await?, "1 nil");
    // Kill waits for the VM to end; a connection held in wait_context_value must not stop it.
    tokio::time::timeout(common::WAIT, setup.engine.kill_node(&node.id)).await?;
    waiting.closed().await?;
    small.closed().await?;
    setup.engine.restart_node(&node.id).await?;
    let mut browser = Browser::connect(node.chat_addr).await?;
    // The queues were lost with the node and init() made them again.
    assert_eq!(ask(&mut browser, "small again").await?, "1 nil");
    tokio::time::timeout(common::WAIT, setup.engine.shutdown()).await?;
    Ok(())
}

/// The shape of the docs' `socket` protocol example (`configuration-protocols.md`): no conn
/// arguments, `input(buf, on_handshake)`, `decode(str)`, `send_text(data)`, and a client id
/// concatenated into a log line.
const DOCS_SHAPE: &str = r#"
require("utils.prettyprint")
local websocket = require("protocols.websocket")

function on_connect(client_id)
    mix.log(mix.DEBUG, "on_connect client_id: " .. client_id)
end

function on_handshake(client_id, headers, server)
end

function on_close(client_id, err)
end

function protocol_input(buf)
    return websocket.input(buf, on_handshake)
end

function protocol_decode(str)
    return websocket.decode(str)
end

function protocol_encode(str)
    return websocket.encode(str)
end

function on_message(msg)
    print(msg)
    websocket.send_text("Hello,World!")
end
"#;

#[tokio::test]
async fn the_docs_socket_example_shape_runs_unchanged() -> anyhow::Result<()> {
    let file = TempScript::new("docs", DOCS_SHAPE);
    let engine = MockEngine::start(MockConfig {
        script: Some(ScriptConfig::new(&file.path)),
        ..MockConfig::ephemeral()
    })
    .await?;
    let mut browser = Browser::connect(engine.node(0).unwrap().chat_addr).await?;
    assert_eq!(ask(&mut browser, "hi").await?, "Hello,World!");
    assert_eq!(ask(&mut browser, "again").await?, "Hello,World!");
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_length_beyond_a_cleared_buffer_ends_the_connection_not_the_node() -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let file = TempScript::new(
        "clear",
        r#"
function protocol_input(buf, conn)
    if buf:tostring() == "ping" then return 4 end
    conn:clear_buffer()
    return buf:length()
end
function protocol_decode(str, conn) return str end
function protocol_encode(str, conn) return str end
function on_message(msg, conn) conn:send("pong") end
"#,
    );
    let engine = MockEngine::start(MockConfig {
        script: Some(ScriptConfig::new(&file.path)),
        ..MockConfig::ephemeral()
    })
    .await?;
    let addr = engine.node(0).unwrap().chat_addr;
    let mut bad = tokio::net::TcpStream::connect(addr).await?;
    bad.write_all(b"hello").await?;
    let mut rest = Vec::new();
    tokio::time::timeout(common::WAIT, bad.read_to_end(&mut rest)).await??;
    assert!(rest.is_empty(), "closed without an answer");
    // A raw protocol of the script's own still works on a new connection.
    let mut good = tokio::net::TcpStream::connect(addr).await?;
    good.write_all(b"ping").await?;
    let mut answer = [0u8; 4];
    tokio::time::timeout(common::WAIT, good.read_exact(&mut answer)).await??;
    assert_eq!(&answer, b"pong");
    engine.shutdown().await;
    Ok(())
}
