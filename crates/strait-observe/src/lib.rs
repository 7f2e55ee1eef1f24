//! Strait's observability: access log records, line formats and a background log writer.
#![forbid(unsafe_code)]

pub mod format;
mod record;
mod time;
mod writer;

pub use record::{LogRecord, StreamRecord};
pub use writer::AccessLog;
