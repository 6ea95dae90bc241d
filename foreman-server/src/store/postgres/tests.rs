//! PostgreSQL only: several replicas on one database.
