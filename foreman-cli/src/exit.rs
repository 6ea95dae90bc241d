//! Exit codes: 0 success, 1 the job or the server failed, 2 usage or configuration.

use std::fmt;
use std::process::ExitCode;

/// A command that did not succeed, with the line to print and the code to exit with.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    /// Exit 2: the command line or the configuration is wrong.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// Exit 1: the server, the job or the network failed.
    pub(crate) fn server(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<foreman_client::Error> for Failure {
    fn from(err: foreman_client::Error) -> Self {
        use foreman_client::Error;
        match &err {
            Error::Api {
                status: 401 | 403, ..
            } => Failure::usage(format!("{err} (check FOREMAN_AUTH_TOKEN or --token)")),
            Error::Http(inner) if inner.is_connect() => Failure::server(format!(
                "cannot reach foreman: {err} (is `foreman serve` running, and FOREMAN_URL right?)"
            )),
            _ => Failure::server(err.to_string()),
        }
    }
}
