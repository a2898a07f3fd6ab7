//! The connection a store talks through: one node or a cluster.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::error::Error;

/// The scheme of a cluster URL:
/// `redis+cluster://[user:password@]host:port,host:port[/?options]`.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// A cheap, cloneable handle on the store's connection(s).
#[derive(Clone)]
pub(crate) enum Connection {
    /// One node through the connection manager, which reconnects by itself.
    Node(ConnectionManager),
    /// A cluster; the cluster connection reconnects and follows slot moves.
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client's own Debug may show the URL, password included.
        match self {
            Self::Node(_) => f.write_str("Node"),
            #[cfg(feature = "cluster")]
            Self::Cluster(_) => f.write_str("Cluster"),
        }
    }
}

impl Connection {
    /// Whether each principal set may live on another node than the
    /// records, so that scripts cannot touch both.
    pub(crate) fn is_cluster(&self) -> bool {
        match self {
            Self::Node(_) => false,
            #[cfg(feature = "cluster")]
            Self::Cluster(_) => true,
        }
    }

    /// Connects to the node or cluster named by `url`.
    pub(crate) async fn open(url: &str, timeouts: Timeouts) -> Result<Self, Error> {
        if url.starts_with(CLUSTER_SCHEME) {
            return Self::open_cluster(cluster_nodes(url)?, timeouts).await;
        }

        let client = redis::Client::open(url).map_err(|source| Error::Connect { source })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(Some(timeouts.response));
        let manager = ConnectionManager::new_with_config(client.clone(), config);

        let mut manager = match bounded(timeouts.connect, manager).await {
            Err(Error::ConnectTimeout { after }) => return Err(why_not(&client, after).await),
            connected => connected?,
        };

        // A server that wants a password still takes the connection, and
        // then answers NOAUTH to every command: ask once, so that startup
        // fails instead of every request. Any other answer is for the
        // requests to meet (an ACL may refuse PING itself).
        let ping = redis::cmd("PING");
        let answer = tokio::time::timeout(timeouts.response, ping.query_async::<()>(&mut manager));
        if let Ok(Err(source)) = answer.await {
            if is_login_refused(&source) {
                return Err(Error::Connect { source });
            }
        }
        Ok(Self::Node(manager))
    }

    /// Connects to a cluster through any of `nodes`.
    #[cfg(feature = "cluster")]
    pub(crate) async fn open_cluster(
        nodes: Vec<String>,
        timeouts: Timeouts,
    ) -> Result<Self, Error> {
        let client = redis::cluster::ClusterClient::builder(nodes)
            .connection_timeout(timeouts.connect)
            .response_timeout(timeouts.response)
            .build()
            .map_err(|source| Error::Connect { source })?;

        let connection = bounded(timeouts.connect, client.get_async_connection()).await?;
        Ok(Self::Cluster(connection))
    }

    /// Without the feature a cluster URL is refused, not misread as a node.
    #[cfg(not(feature = "cluster"))]
    pub(crate) async fn open_cluster(
        nodes: Vec<String>,
        timeouts: Timeouts,
    ) -> Result<Self, Error> {
        let _ = (nodes, timeouts);
        Err(Error::ClusterDisabled)
    }
}

/// How long connecting, and then each reply, may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) response: Duration,
}

/// Waits for a first connection, at most `after`.
async fn bounded<T>(
    after: Duration,
    connecting: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, Error> {
    match tokio::time::timeout(after, connecting).await {
        Ok(connected) => connected.map_err(|source| Error::Connect { source }),
        Err(_) => Err(Error::ConnectTimeout { after }),
    }
}

/// Whether the server refused the connection's login, or wants one.
fn is_login_refused(error: &redis::RedisError) -> bool {
    error.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS"))
}

/// Why a node took longer than `after` to connect: the connection
/// manager retries a refused connection, or a failed login, until the
/// timeout, and keeps the cause to itself. One more try, at most a
/// second, finds it; a server that does not answer at all is a timeout.
async fn why_not(client: &redis::Client, after: Duration) -> Error {
    let limit = after.min(Duration::from_secs(1));
    let config = redis::AsyncConnectionConfig::new().set_connection_timeout(Some(limit));
    let once = client.get_multiplexed_async_connection_with_config(&config);

    match tokio::time::timeout(limit, once).await {
        Ok(Err(source)) if !source.is_timeout() => Error::Connect { source },
        _ => Error::ConnectTimeout { after },
    }
}

/// The node URLs a cluster URL lists, each with the URL's credentials
/// and options.
pub(crate) fn cluster_nodes(url: &str) -> Result<Vec<String>, Error> {
    let invalid = |reason| Error::InvalidClusterUrl { reason };
    let rest = url
        .strip_prefix(CLUSTER_SCHEME)
        .ok_or(invalid("it does not start with redis+cluster://"))?;

    // Everything after the host list (database, query) applies to each node.
    let (authority, options) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let (credentials, hosts) = match authority.rfind('@') {
        Some(at) => authority.split_at(at + 1),
        None => ("", authority),
    };

    let nodes: Vec<String> = hosts
        .split(',')
        .map(|host| format!("redis://{credentials}{host}{options}"))
        .collect();
    if hosts.split(',').any(str::is_empty) {
        return Err(invalid("it lists an empty node"));
    }
    Ok(nodes)
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(manager) => manager.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
            Self::Cluster(cluster) => cluster.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(manager) => manager.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "cluster")]
            Self::Cluster(cluster) => cluster.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(manager) => manager.get_db(),
            #[cfg(feature = "cluster")]
            Self::Cluster(cluster) => cluster.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_url_lists_its_nodes_with_shared_options() {
        let url = "redis+cluster://app:s%40cret@h1:7000,h2:7001/?protocol=resp3";

        let nodes = cluster_nodes(url).expect("valid");

        assert_eq!(
            nodes,
            [
                "redis://app:s%40cret@h1:7000/?protocol=resp3",
                "redis://app:s%40cret@h2:7001/?protocol=resp3",
            ]
        );
        assert_eq!(
            cluster_nodes("redis+cluster://h:1").expect("valid"),
            ["redis://h:1"]
        );
    }

    #[test]
    fn malformed_cluster_urls_are_refused() {
        for url in [
            "redis://h:1",
            "redis+cluster://",
            "redis+cluster://h:1,,h:2",
            "redis+cluster://a@/x",
        ] {
            let error = cluster_nodes(url).expect_err(url);

            assert!(matches!(error, Error::InvalidClusterUrl { .. }), "{url}");
        }
    }
}
