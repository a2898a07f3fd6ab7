//! The conformance suite on one Redis node and on a Redis Cluster.
//!
//! Every case gets a store of its own under the key prefix `<namespace>:`
//! on the binary's shared server (see `integration_tests::redis`).

use integration_tests::redis;
use session_conformance::{async_trait, Harness};
use store_redis::RedisStore;

/// Stores on one node.
struct Node {
    url: String,
}

/// Stores on a cluster.
struct Cluster {
    urls: Vec<String>,
}

fn builder(namespace: &str) -> store_redis::RedisStoreBuilder {
    RedisStore::builder().key_prefix(format!("{namespace}:"))
}

#[async_trait]
impl Harness for Node {
    type Store = RedisStore;

    async fn store(&self, namespace: &str) -> RedisStore {
        builder(namespace)
            .connect(&self.url)
            .await
            .unwrap_or_else(|error| panic!("cannot connect to the test Redis: {error}"))
    }
}

#[async_trait]
impl Harness for Cluster {
    type Store = RedisStore;

    async fn store(&self, namespace: &str) -> RedisStore {
        builder(namespace)
            .connect_cluster(self.urls.clone())
            .await
            .unwrap_or_else(|error| panic!("cannot connect to the test cluster: {error}"))
    }
}

async fn node() -> Node {
    let url = tokio::task::spawn_blocking(|| redis::shared().url().to_owned())
        .await
        .expect("the shared Redis starts");
    Node { url }
}

async fn cluster() -> Cluster {
    let urls = tokio::task::spawn_blocking(|| redis::shared_cluster().urls().to_vec())
        .await
        .expect("the shared cluster starts");
    Cluster { urls }
}

mod single_node {
    session_conformance::suite!(super::node);
}

mod cluster {
    session_conformance::suite!(super::cluster);
}
