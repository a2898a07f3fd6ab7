//! Cross-site sessions in a real browser: a front end on one site calls the
//! API on another with `fetch(..., { credentials: 'include' })`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them); without them the test fails and says so.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use sessionctl::demo::{app, DemoOptions};
use sessionctl::front::front_end;
use sessionctl::stores::AnyStore;
use tokio::net::TcpListener;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Driver {
    for path in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: install Debian's chromium and chromium-driver \
             (apt-get install -y chromium chromium-driver; .ci/run does this)"
        );
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();

    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver { child, port };

    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    driver
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    // Root needs --no-sandbox; the network flags stop Chromium from calling
    // home, which this machine's closed network refuses.
    let args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        &format!("--user-data-dir={}", profile.display()),
    ];
    let capabilities = json!({
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args }
    });
    let capabilities = capabilities.as_object().cloned().unwrap_or_default();

    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session")
}

/// Serves the API on 127.0.0.1 and the front end on a port that the
/// browser opens as `localhost`: two different sites.
async fn serve(cross_site: bool) -> (String, SocketAddr) {
    let api = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let front = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let api_address = api.local_addr().expect("address");
    let front_origin = format!("http://localhost:{}", front.local_addr().expect("a").port());

    let store = AnyStore::open("memory").await.expect("store");
    let options = DemoOptions {
        cross_site,
        cors_origin: Some(front_origin.clone()),
        ..DemoOptions::default()
    };
    let router = app(store.shared(), &options).expect("app");
    let page = front_end(&format!("http://{api_address}"));
    tokio::spawn(async move { axum::serve(api, router).await });
    tokio::spawn(async move { axum::serve(front, page).await });
    (front_origin, api_address)
}

/// Waits for the page to finish its calls and returns the user it shows.
async fn shown_user(client: &Client) -> String {
    let body = client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("body[data-ready='1']"))
        .await
        .expect("the page finished its API calls");
    body.attr("data-user")
        .await
        .expect("attr")
        .unwrap_or_default()
}

async fn log_in(client: &Client, user: &str) {
    let input = client.find(Locator::Id("user")).await.expect("input");
    input.send_keys(user).await.expect("type");
    let button = client
        .find(Locator::Css("#login button"))
        .await
        .expect("button");
    button.click().await.expect("click");
}

/// A browser on the front-end page of a fresh demo pair, still logged out.
struct Page {
    client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

async fn open_front_end(cross_site: bool) -> Page {
    let driver = start_driver().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let client = browser(&driver, profile.path()).await;
    let (front, _api) = serve(cross_site).await;

    client
        .goto(&format!("{front}/"))
        .await
        .expect("open front end");
    assert_eq!(shown_user(&client).await, "");
    Page {
        client,
        _driver: driver,
        _profile: profile,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cross_site_preset_keeps_a_fetch_session_across_sites() {
    let page = open_front_end(true).await;
    let client = &page.client;

    log_in(client, "alice").await;
    assert_eq!(shown_user(client).await, "alice");

    client.refresh().await.expect("reload");
    assert_eq!(
        shown_user(client).await,
        "alice",
        "the cookie did not come back"
    );

    let logout = client.find(Locator::Id("logout")).await.expect("logout");
    logout.click().await.expect("click");
    assert_eq!(shown_user(client).await, "");
    client.refresh().await.expect("reload");
    assert_eq!(shown_user(client).await, "");

    page.client.clone().close().await.expect("close browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_same_site_policy_does_not_send_the_cookie_cross_site() {
    let page = open_front_end(false).await;
    let client = &page.client;

    log_in(client, "alice").await;
    assert_eq!(shown_user(client).await, "", "a Lax cookie went cross-site");

    page.client.clone().close().await.expect("close browser");
}
