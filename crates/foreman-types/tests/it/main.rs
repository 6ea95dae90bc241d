//! foreman-types integration tests, one binary.

mod signatures;
