//! One error type for the whole runtime. Every failure reachable from the public API is a value of
//! [`Error`]; none is a panic (in wasm a panic aborts the instance and every session with it).

use std::fmt;

/// What went wrong, with enough context to find the culprit (node, input, tensor name).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The bytes are not a well-formed model/tensor file (truncated, corrupt, bad protobuf/JSON).
    #[error("format error: {0}")]
    Format(String),
    /// The model uses an operator (or an operator option) this runtime does not implement.
    #[error("unsupported operator {op} in node '{node}'{}", detail_suffix(.detail))]
    UnsupportedOp { op: String, node: String, detail: String },
    /// A tensor has the wrong shape, size or element type for where it is used.
    #[error("shape error: {0}")]
    Shape(String),
    /// The model is well formed but something about it cannot be run (missing weights, cycles...).
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// A caller-supplied argument is wrong (count of inputs, unknown session, bad option...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A state snapshot belongs to another model (fingerprint or cell layout differ).
    #[error("state mismatch: {0}")]
    StateMismatch(String),
    /// A state snapshot is damaged (bad magic, version, length or checksum).
    #[error("corrupt state: {0}")]
    CorruptState(String),
    /// The requested backend is not available in this build or on this machine.
    #[error("backend unavailable: {0}")]
    BackendUnavailable(String),
    /// Reading a file (model, external data) failed.
    #[error("i/o error: {0}")]
    Io(String),
    /// The call (or load) would need more memory than the budget allows
    /// ([`crate::LoadOptions::max_memory_bytes`]), or an allocation failed: refused before
    /// anything was allocated, and every session is as it was.
    #[error("resource error: {0}")]
    Resource(String),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl Error {
    /// A stable machine-readable code for each kind (used by the JS layer as `error.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Format(_) => "format",
            Error::UnsupportedOp { .. } => "unsupported_op",
            Error::Shape(_) => "shape",
            Error::InvalidModel(_) => "invalid_model",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::StateMismatch(_) => "state_mismatch",
            Error::CorruptState(_) => "corrupt_state",
            Error::BackendUnavailable(_) => "backend_unavailable",
            Error::Io(_) => "io",
            Error::Resource(_) => "resource",
        }
    }

    pub(crate) fn shape(args: fmt::Arguments<'_>) -> Self {
        Error::Shape(args.to_string())
    }

    pub(crate) fn unsupported(op: &str, node: &str, detail: impl Into<String>) -> Self {
        Error::UnsupportedOp { op: op.to_string(), node: node.to_string(), detail: detail.into() }
    }

    /// Prefix the message with where it happened (e.g. the node being executed).
    pub fn context(self, ctx: &str) -> Self {
        match self {
            Error::Format(m) => Error::Format(format!("{ctx}: {m}")),
            Error::Shape(m) => Error::Shape(format!("{ctx}: {m}")),
            Error::InvalidModel(m) => Error::InvalidModel(format!("{ctx}: {m}")),
            Error::InvalidArgument(m) => Error::InvalidArgument(format!("{ctx}: {m}")),
            Error::Resource(m) => Error::Resource(format!("{ctx}: {m}")),
            other => other,
        }
    }
}

/// Shorthand for `Err(Error::Shape(format!(...)))`.
macro_rules! shape_err {
    ($($arg:tt)*) => { Err($crate::error::Error::shape(format_args!($($arg)*))) };
}
pub(crate) use shape_err;

pub type Result<T, E = Error> = std::result::Result<T, E>;
