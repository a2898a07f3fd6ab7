//! `sessionctl` as a user runs it: the binary, its output and exit codes,
//! and the demo surviving a restart on a durable store.

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn sessionctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sessionctl"))
        .args(args)
        .output()
        .expect("run sessionctl")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// A demo process, killed on drop.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_demo(store: &str, port: u16) -> Demo {
    let child = Command::new(env!("CARGO_BIN_EXE_sessionctl"))
        .args([
            "demo",
            "--store",
            store,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start demo");
    let demo = Demo(child);

    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "demo did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    demo
}

async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let response = client.get(url).send().await.expect("request");
    response.json().await.expect("a JSON body")
}

#[test]
fn operations_on_sqlite_report_counts_and_a_missing_schema_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("ops.db").display());
    std::fs::File::create(dir.path().join("ops.db")).expect("empty file");

    let stats = sessionctl(&["stats", &url]);
    assert!(!stats.status.success());
    assert!(
        text(&stats).contains("run `sessionctl migrate"),
        "{}",
        text(&stats)
    );

    let migrate = sessionctl(&["migrate", &url]);
    assert!(migrate.status.success(), "{}", text(&migrate));
    assert!(
        sessionctl(&["migrate", &url]).status.success(),
        "not idempotent"
    );

    let stats = sessionctl(&["stats", &url]);
    assert_eq!(
        String::from_utf8_lossy(&stats.stdout),
        "live 0\nexpired 0\n"
    );
    let purge = sessionctl(&["purge-expired", &url]);
    assert!(text(&purge).contains("purged 0"), "{}", text(&purge));
    let revoke = sessionctl(&["revoke", "--principal", "alice", &url]);
    assert!(text(&revoke).contains("revoked 0"), "{}", text(&revoke));
}

#[test]
fn bad_urls_and_unreachable_servers_fail_with_a_message() {
    let unknown = sessionctl(&["stats", "mongodb://u:hunter2@127.0.0.1/x"]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown).contains("unknown store URL"),
        "{}",
        text(&unknown)
    );
    assert!(!text(&unknown).contains("hunter2"));

    let missing = sessionctl(&["stats", "sqlite:///nonexistent-dir/x.db"]);
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("cannot open the store"),
        "{}",
        text(&missing)
    );
    // SQLite's client ends its own text with its source's: said once.
    let said = text(&missing);
    assert_eq!(said.matches("unable to open").count(), 1, "{said}");

    let memory = sessionctl(&["stats", "memory"]);
    assert!(!memory.status.success());

    // The cause, once: not a timeout after the client's retries, and not
    // the client's text repeated as its own source's.
    let refused = sessionctl(&["stats", &format!("redis://127.0.0.1:{}", free_port())]);
    assert!(!refused.status.success());
    let said = text(&refused);
    assert_eq!(said.matches("refused").count(), 1, "{said}");
}

#[tokio::test]
async fn a_login_survives_a_restart_of_the_demo_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");

    let demo = start_demo(&url, port).await;
    let login = client
        .post(format!("{base}/login"))
        .form(&[("user", "alice")])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    drop(demo);

    let _demo = start_demo(&url, port).await;
    let me = get_json(&client, &format!("{base}/me")).await;
    assert_eq!(me, serde_json::json!({"user": "alice", "visits": 1}));

    let revoke = sessionctl(&["revoke", "--principal", "alice", &url]);
    assert!(text(&revoke).contains("revoked 1"), "{}", text(&revoke));
    let me = get_json(&client, &format!("{base}/me")).await;
    assert_eq!(me["user"], serde_json::Value::Null);
}
