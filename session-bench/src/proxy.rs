//! A loopback TCP proxy that counts request/response round trips.
//!
//! A client that waits for each answer before it sends again (one task,
//! one operation at a time) makes one round trip each time the traffic
//! turns from "client talking" to "server answering". Counting those
//! turns counts round trips whatever the protocol, so the same proxy
//! checks Redis and PostgreSQL, and shows the pool's health-check pings
//! as well as the store's own statements.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Forwards `127.0.0.1:<port>` to a server and counts round trips.
///
/// Dropping it stops the proxy and closes every connection through it.
#[derive(Debug)]
pub struct CountingProxy {
    addr: SocketAddr,
    turns: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound.
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let turns = Arc::new(AtomicU64::new(0));

        let counter = Arc::clone(&turns);
        let accept = tokio::spawn(async move {
            // Dropping the set when this task is aborted ends every
            // connection's forwarding.
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                connections.spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        forward(client, server, counter).await;
                    }
                });
            }
        });

        Ok(Self {
            addr,
            turns,
            accept,
        })
    }

    /// The address to connect to instead of the server's.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Round trips so far, over every connection.
    #[must_use]
    pub fn round_trips(&self) -> u64 {
        self.turns.load(Ordering::SeqCst)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies both ways until either side closes.
async fn forward(client: TcpStream, server: TcpStream, turns: Arc<AtomicU64>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();

    // True while the client has spoken since the server last answered.
    let client_spoke = Arc::new(AtomicBool::new(false));

    let up = copy(client_read, server_write, Arc::clone(&client_spoke), None);
    let down = copy(server_read, client_write, client_spoke, Some(turns));
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// Copies one direction. Upstream (`turns` is `None`) marks that the
/// client spoke *before* forwarding, so the answer can never be seen
/// first; downstream counts a turn on the first answer after that.
async fn copy(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    client_spoke: Arc<AtomicBool>,
    turns: Option<Arc<AtomicU64>>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };

        match &turns {
            None => client_spoke.store(true, Ordering::SeqCst),
            Some(turns) => {
                if client_spoke.swap(false, Ordering::SeqCst) {
                    turns.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server that answers each message once.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 64];
            while let Ok(n) = stream.read(&mut buffer).await {
                if n == 0 || stream.write_all(&buffer[..n]).await.is_err() {
                    return;
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn counts_one_round_trip_per_request_and_answer() {
        let proxy = CountingProxy::start(echo_server().await).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut answer = [0u8; 4];

        for _ in 0..5 {
            client.write_all(b"ping").await.unwrap();
            client.read_exact(&mut answer).await.unwrap();
        }

        assert_eq!(&answer, b"ping");
        assert_eq!(proxy.round_trips(), 5);
    }
}
