//! A fresh database on the test PostgreSQL server, for the store's conformance suite and
//! the replica tests.
//!
//! `FOREMAN_TEST_PG_URL` names a role that may create databases: `scripts/test.sh` (the
//! README's test command) starts a throwaway cluster and sets it. Without it these tests
//! fail and say how to run them, rather than pass without having run.

/// Creates an empty database on the test server and returns its URL.
///
/// # Panics
///
/// When `FOREMAN_TEST_PG_URL` is unset or the server cannot create a database.
pub async fn fresh_database() -> String {
    let admin = std::env::var("FOREMAN_TEST_PG_URL").expect(
        "FOREMAN_TEST_PG_URL is not set: run the tests with scripts/test.sh (or prefix \
         the cargo command with scripts/with-postgres.sh), which starts a throwaway \
         PostgreSQL for them",
    );
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL server answers");
    let connection = tokio::spawn(connection);
    let name = format!("foreman_{}", ulid::Ulid::new()).to_lowercase();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("a test database can be created");
    drop(client);
    let _ = connection.await;
    let mut url = url::Url::parse(&admin).expect("FOREMAN_TEST_PG_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}
