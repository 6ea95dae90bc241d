//! A database that cannot be reached, or drops its connections.

use super::*;

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://postgres@127.0.0.1:{port}/foreman");
    let err = PgStore::open(&url, options(10)).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn connections_the_database_drops_are_unavailable_and_replaced_by_the_pool() {
    let [replica] = &replicas().await;
    add(&replica.store, job("a:latest", Origin::Async)).await;
    // Every pooled connection is dropped by the server, as when PostgreSQL restarts.
    let admin = fresh_admin().await;
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&replica.database().await],
        )
        .await
        .unwrap();
    // Each failing call costs the pool one dead connection, so it runs out of them.
    let mut errors = Vec::new();
    let mut recovered = false;
    for _ in 0..=16 {
        match replica.store.counts_by_state().await {
            Ok(_) => {
                recovered = true;
                break;
            }
            Err(err) => errors.push(err),
        }
    }
    assert!(recovered, "the pool connects again by itself");
    for err in &errors {
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
}

/// A connection to the test server's maintenance database, outside any store.
async fn fresh_admin() -> tokio_postgres::Client {
    let url = std::env::var("FOREMAN_TEST_PG_URL").expect("FOREMAN_TEST_PG_URL");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("the test server answers");
    tokio::spawn(connection);
    client
}

impl Replica {
    /// The name of the replica's database.
    async fn database(&self) -> String {
        let client = self.pg.client().await.expect("a connection");
        client
            .query_one("SELECT current_database()::TEXT", &[])
            .await
            .unwrap()
            .get(0)
    }
}
