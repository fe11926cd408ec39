//! Conversions from the store's views to formats other tools read.
//!
//! - [`otlp`]: a session's span tree as an OTLP/JSON `ExportTraceServiceRequest`.

pub mod archive;
pub mod asciicast;
pub mod encrypt;
pub mod otlp;
pub mod record_json;
