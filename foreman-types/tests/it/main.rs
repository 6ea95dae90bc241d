//! foreman-types integration tests, one binary.

mod jobs;
mod signatures;
mod wire_fuzz;
mod wire_round_trip;
