//! `sessionctl`: run the demo app, or operate a session store.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
        /// Store URL: `memory`.
        #[arg(long, default_value = "memory", env = "SESSION_STORE_URL")]
        store: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// Mark the cookie Secure (serve it behind HTTPS).
        #[arg(long)]
        secure: bool,
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
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
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
        } => demo(&store, listen, secure).await,
    }
}

async fn demo(url: &str, listen: SocketAddr, secure: bool) -> Result<(), BoxError> {
    let store = AnyStore::open(url).await?;
    let options = DemoOptions {
        secure,
        ..DemoOptions::default()
    };
    let router = app(store.shared(), &options)?;

    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    println!("session demo listening on http://{address}/");

    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
