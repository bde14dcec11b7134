//! Headless Chromium driven over WebDriver (Debian packages `chromium` and `chromium-driver`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use fantoccini::{Client, ClientBuilder};
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running chromedriver; killed on drop.
pub struct Chromedriver {
    port: u16,
    _child: Child,
    profiles: Vec<tempfile::TempDir>,
}

impl Chromedriver {
    /// Why the browser cannot run here, if it cannot.
    pub fn unavailable() -> Option<String> {
        for path in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(path).exists() {
                return Some(format!(
                    "{path} is missing (apt-get install chromium chromium-driver)"
                ));
            }
        }
        None
    }

    /// Starts chromedriver on a free loopback port and waits until it answers.
    pub async fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting chromedriver")?;
        let driver = Self {
            port,
            _child: child,
            profiles: Vec::new(),
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(driver);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("chromedriver did not listen on port {port} within 10 s")
    }

    /// Opens a new headless browser window with its own empty profile.
    pub async fn session(&mut self) -> anyhow::Result<Client> {
        let profile = tempfile::tempdir().context("browser profile directory")?;
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1000,800".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        self.profiles.push(profile);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({ "binary": CHROMIUM, "args": args }),
        );
        // The workspace links more than one rustls crypto backend, so rustls cannot pick one
        // by itself; the WebDriver link is plain HTTP on loopback anyway.
        let _ = rustls::crypto::ring::default_provider().install_default();
        ClientBuilder::rustls()
            .context("WebDriver client")?
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .context("opening a Chromium session")
    }
}

/// Where screenshots go: `target/e2e-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-screenshots")
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
