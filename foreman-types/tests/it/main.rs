//! foreman-types integration tests, one binary.

mod jobs;
mod ndjson;
mod signatures;
mod wire_fuzz;
mod wire_round_trip;
