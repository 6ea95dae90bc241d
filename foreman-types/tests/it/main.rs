//! foreman-types integration tests, one binary.

mod backoff;
mod jobs;
mod ndjson;
mod signatures;
mod wire_fuzz;
mod wire_round_trip;
