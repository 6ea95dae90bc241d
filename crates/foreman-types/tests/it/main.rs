//! foreman-types integration tests, one binary.

mod signatures;
mod wire_fuzz;
