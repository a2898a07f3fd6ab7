//! `sessionctl`: run the demo app, or operate a session store.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use session_core::time::OffsetDateTime;
use sessionctl::demo::{app, DemoOptions};
use sessionctl::stores::AnyStore;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(version, about = "Session demo app and store operations")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the demo app: a login form, /login, /logout and /me.
    Demo {
        /// Store URL: `memory`, `sqlite://PATH`, `postgres://...`,
        /// `redis://...`. Durable stores are migrated on start.
        #[arg(long, default_value = "memory", env = "SESSION_STORE_URL")]
        store: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// Mark the cookie Secure (serve it behind HTTPS).
        #[arg(long)]
        secure: bool,
        /// Also serve a front-end page on another site that calls the API
        /// with credentials; the cookie uses the cross-site preset.
        #[arg(long)]
        cross_site: bool,
        /// Where the front end of --cross-site listens; it is opened as
        /// http://localhost:PORT, another site than the API's 127.0.0.1.
        #[arg(long, default_value = "127.0.0.1:5173")]
        front_listen: SocketAddr,
    },
    /// Create or update the store's schema (idempotent).
    Migrate {
        /// Store URL.
        url: String,
    },
    /// Delete expired sessions and print how many went.
    PurgeExpired {
        /// Store URL.
        url: String,
    },
    /// Print the live and expired session counts.
    Stats {
        /// Store URL.
        url: String,
    },
    /// Delete every session of one user ("log out everywhere").
    Revoke {
        /// The principal (user id) whose sessions go.
        #[arg(long)]
        principal: String,
        /// Store URL.
        url: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            let mut said = error.to_string();
            let mut source = error.source();
            while let Some(cause) = source {
                // Some client errors repeat their source's text as theirs,
                // whole or as their ending.
                let text = cause.to_string();
                if !said.ends_with(&text) {
                    eprintln!("  caused by: {text}");
                }
                said = text;
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

type BoxError = Box<dyn std::error::Error>;

async fn run(cli: Cli) -> Result<(), BoxError> {
    match cli.command {
        Command::Demo {
            store,
            listen,
            secure,
            cross_site,
            front_listen,
        } => {
            let front = cross_site.then_some(front_listen);
            demo(&store, listen, secure, front).await
        }
        Command::Migrate { url } => {
            let store = AnyStore::open(&url).await?;
            let kind = store.kind();
            match store.migrate().await? {
                Some(ran) => println!("migrated {kind} store: {ran} migration(s) applied"),
                None => println!("migrated {kind} store: schema is current"),
            }
            Ok(())
        }
        Command::PurgeExpired { url } => {
            let store = ready(&url).await?;
            let removed = store.purge_expired(OffsetDateTime::now_utc()).await?;
            println!("purged {removed} expired session(s)");
            Ok(())
        }
        Command::Stats { url } => {
            let store = ready(&url).await?;
            let counts = store.stats(OffsetDateTime::now_utc()).await?;
            println!("live {}\nexpired {}", counts.live, counts.expired);
            Ok(())
        }
        Command::Revoke { principal, url } => {
            let store = ready(&url).await?;
            let revoked = store.revoke(&principal, OffsetDateTime::now_utc()).await?;
            println!("revoked {revoked} session(s)");
            Ok(())
        }
    }
}

/// Opens a store whose schema must already exist.
async fn ready(url: &str) -> Result<AnyStore, BoxError> {
    let store = AnyStore::open_existing(url).await?;
    store.check_schema(url).await?;
    Ok(store)
}

async fn demo(
    url: &str,
    listen: SocketAddr,
    secure: bool,
    front: Option<SocketAddr>,
) -> Result<(), BoxError> {
    let store = AnyStore::open(url).await?;
    store.migrate().await?;

    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let front = match front {
        Some(front) => Some(tokio::net::TcpListener::bind(front).await?),
        None => None,
    };
    let front_origin = match &front {
        Some(front) => Some(format!("http://localhost:{}", front.local_addr()?.port())),
        None => None,
    };

    let options = DemoOptions {
        secure,
        cross_site: front.is_some(),
        cors_origin: front_origin.clone(),
        ..DemoOptions::default()
    };
    let router = app(store.shared(), &options)?;
    println!("session demo listening on http://{address}/");

    if let (Some(front), Some(origin)) = (front, front_origin) {
        let api = format!("http://{address}");
        let page = sessionctl::front::front_end(&api);
        println!("front end on another site: open {origin}/");
        tokio::spawn(async move { axum::serve(front, page).await });
    }

    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
