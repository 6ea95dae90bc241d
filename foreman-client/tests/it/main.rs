//! Integration tests of the SDK: one binary, one module per area.

mod helpers;
mod jobs;
mod models;
mod ollama;
mod streams;
mod through_foreman;
mod webhooks;
