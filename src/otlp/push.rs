//! Sending OTLP/HTTP protobuf requests to a collector (`export --format otlp --endpoint`,
//! the service's `[forward]`), with the retry rules of the OTLP specification
//! (<https://opentelemetry.io/docs/specs/otlp/#retryable-response-codes>): 429, 502, 503 and
//! 504 and connection failures are retried with exponential backoff (honouring
//! `Retry-After`), any other non-2xx answer is final. Bodies are gzip-compressed.
//!
//! Records go out through [`Pusher::deliver`]: one request per signal, and a request the
//! collector refuses as too large (413, final by the specification) is split in two and each
//! half sent, down to single records; a record refused on its own is reported by offset, and
//! every other record of the batch is delivered once.

use std::io::Write;
use std::time::{Duration, Instant};

use prost::Message;

use super::batch::{self, Batch};
use super::{Signal, Status};
use crate::model::Record;

/// A collector's OTLP/HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Base URL (`http://collector:4318`): the signal's path (`/v1/logs`, ...) is appended, as
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is used by OpenTelemetry SDKs.
    pub url: String,
    /// Headers sent with every request (`Authorization`, tenant ids, ...).
    pub headers: Vec<(String, String)>,
    /// Time limit of one attempt (connect, send, answer).
    pub timeout: Duration,
}

impl Endpoint {
    /// An endpoint at `url` (checked: `http://` or `https://` and a host), without headers,
    /// with a 10 s attempt timeout.
    ///
    /// # Errors
    /// [`PushError::BadEndpoint`].
    pub fn new(url: &str) -> Result<Self, PushError> {
        let bad = |why: &str| PushError::BadEndpoint {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| bad("expected an http:// or https:// URL"))?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if url.contains(char::is_whitespace) {
            return Err(bad("contains whitespace"));
        }
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
        })
    }

    /// The URL of `signal`'s requests.
    pub fn signal_url(&self, signal: Signal) -> String {
        format!("{}/v1/{}", self.url, signal.as_str())
    }
}

/// Parses `K=V` header arguments.
///
/// # Errors
/// [`PushError::BadHeader`] for an argument without `=` or with an empty name.
pub fn parse_header(arg: &str) -> Result<(String, String), PushError> {
    match arg.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(PushError::BadHeader(arg.to_owned())),
    }
}

/// How long to keep retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First wait.
    pub initial: Duration,
    /// Longest wait between attempts.
    pub max: Duration,
    /// Give up once this much time has passed since the first attempt (`None`: never).
    pub max_elapsed: Option<Duration>,
}

impl Default for Backoff {
    /// 0.5 s doubling up to 30 s, for at most 5 minutes.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            max_elapsed: Some(Duration::from_secs(300)),
        }
    }
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The endpoint is not a usable URL.
    #[error("endpoint `{url}`: {why}")]
    BadEndpoint {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A `--header` argument is not `K=V`.
    #[error("header `{0}` is not NAME=VALUE")]
    BadHeader(String),
    /// The collector refused the request for good (a non-retryable status).
    #[error("{url} answered {status}: {message}")]
    Rejected {
        /// The request URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The answer's body (its `google.rpc.Status` message when it is one), shortened.
        message: String,
    },
    /// Retries ran out (or the caller stopped them) without a successful answer.
    #[error("{url}: gave up after {attempts} attempts: {last}")]
    GaveUp {
        /// The request URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
}

/// The outcome of a delivered request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Items the collector reported rejecting (`partial_success`), 0 when none.
    pub rejected: i64,
    /// Attempts it took (1 when the first one succeeded).
    pub attempts: u32,
}

/// Records the collector refused for good (a final status; not sent again).
#[derive(Debug)]
pub struct Refused {
    /// The signal of the refused request.
    pub signal: Signal,
    /// Offset of its first record.
    pub first: u64,
    /// Offset of its last record.
    pub last: u64,
    /// Records in it.
    pub records: u64,
    /// The refusal ([`PushError::Rejected`]).
    pub error: PushError,
}

/// What [`Pusher::deliver`] did with a batch of records.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Records the collector took.
    pub delivered: u64,
    /// Records left out: an `otlp` record of a signal not asked for, or one that no longer
    /// decodes (truncated).
    pub skipped: u64,
    /// Items the collector took but reported rejecting (`partial_success`).
    pub rejected_items: i64,
    /// Requests refused for good, with their records.
    pub refused: Vec<Refused>,
    /// Requests sent (a request split after a 413 counts each half).
    pub requests: u32,
}

impl Delivery {
    /// Records refused for good.
    pub fn refused_records(&self) -> u64 {
        self.refused.iter().map(|r| r.records).sum()
    }
}

/// A client for one endpoint.
#[derive(Debug)]
pub struct Pusher {
    agent: ureq::Agent,
    endpoint: Endpoint,
}

/// The `partial_success` of any `Export*ServiceResponse`: field 1, a message whose field 1 is
/// the rejected count and field 2 the error message (the same layout for the three signals).
#[derive(Clone, PartialEq, prost::Message)]
struct Response {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<PartialSuccess>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PartialSuccess {
    #[prost(int64, tag = "1")]
    rejected: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

impl Pusher {
    /// A client of `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(endpoint.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("ctrace/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self { agent, endpoint }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `request` (an `Export*ServiceRequest` of `signal`, protobuf-encoded) and retries
    /// as the module docs say; `stop` is polled between attempts and ends the retries when it
    /// returns `true`.
    ///
    /// # Errors
    /// [`PushError::Rejected`] for a final refusal, [`PushError::GaveUp`] when retries ran out
    /// or were stopped.
    pub fn send(
        &self,
        signal: Signal,
        request: &[u8],
        backoff: &Backoff,
        stop: &dyn Fn() -> bool,
    ) -> Result<Delivered, PushError> {
        let url = self.endpoint.signal_url(signal);
        let body = gzip(request);
        let started = Instant::now();
        let mut wait = backoff.initial;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let (last, retry_after) = match self.attempt(&url, &body) {
                Ok(Attempt::Delivered(rejected)) => {
                    return Ok(Delivered { rejected, attempts });
                }
                Ok(Attempt::Retry { why, retry_after }) => (why, retry_after),
                Err(error) => return Err(error),
            };
            let pause = retry_after.unwrap_or(wait).min(backoff.max.max(wait));
            let out_of_time = backoff
                .max_elapsed
                .is_some_and(|limit| started.elapsed() + pause > limit);
            if out_of_time || stop() {
                return Err(PushError::GaveUp {
                    url,
                    attempts,
                    last,
                });
            }
            tracing::debug!(%url, attempts, error = %last, ?pause, "OTLP push: retrying");
            // Sleep in slices so `stop` is noticed.
            let until = Instant::now() + pause;
            while Instant::now() < until {
                if stop() {
                    return Err(PushError::GaveUp {
                        url,
                        attempts,
                        last,
                    });
                }
                std::thread::sleep((until - Instant::now()).min(Duration::from_millis(100)));
            }
            wait = (wait * 2).min(backoff.max);
        }
    }

    /// Sends `records` (each with its offset, in offset order) as one request per signal
    /// among `signals` (logs, then metrics, then traces), built on `empty` (a batch naming the
    /// store). A request refused with 413 or 400 is split in two and both halves sent, down to
    /// single records; a request whose records are refused ([`refuses_records`]: a single
    /// record's 400/413, a 415, a 422) is reported in [`Delivery::refused`] and the rest still
    /// sent.
    ///
    /// # Errors
    /// [`PushError::GaveUp`] when retries ran out or `stop` ended them; [`PushError::Rejected`]
    /// for any other final status (401, 403, 404, 500, ...: the endpoint or its credentials
    /// are wrong, not the records). Requests answered before stay delivered: the caller sends
    /// the batch again, at least once.
    pub fn deliver(
        &self,
        empty: &Batch,
        records: &[(u64, &Record)],
        signals: &[Signal],
        backoff: &Backoff,
        stop: &dyn Fn() -> bool,
    ) -> Result<Delivery, PushError> {
        let mut delivery = Delivery::default();
        for signal in [Signal::Logs, Signal::Metrics, Signal::Traces] {
            let part: Vec<(u64, &Record)> = records
                .iter()
                .filter(|(_, record)| batch::signal_of(record) == signal)
                .copied()
                .collect();
            if !signals.contains(&signal) {
                delivery.skipped += part.len() as u64;
            } else if !part.is_empty() {
                self.deliver_part(empty, signal, &part, backoff, stop, &mut delivery)?;
            }
        }
        Ok(delivery)
    }

    /// Sends `part` (records of `signal`) as one request, halving it on 413.
    fn deliver_part(
        &self,
        empty: &Batch,
        signal: Signal,
        part: &[(u64, &Record)],
        backoff: &Backoff,
        stop: &dyn Fn() -> bool,
        delivery: &mut Delivery,
    ) -> Result<(), PushError> {
        let mut batch = empty.clone();
        for (offset, record) in part {
            batch.push(*offset, record, &[signal]);
        }
        let (records, skipped) = (batch.records, batch.skipped);
        let Some((_, body)) = batch.into_requests().into_iter().next() else {
            delivery.skipped += skipped;
            return Ok(());
        };
        delivery.requests += 1;
        match self.send(signal, &body, backoff, stop) {
            Ok(delivered) => {
                delivery.delivered += records;
                delivery.skipped += skipped;
                delivery.rejected_items += delivered.rejected;
                Ok(())
            }
            // Each half counts its own skipped records.
            Err(PushError::Rejected { status, .. })
                if part.len() > 1 && matches!(status, 400 | 413) =>
            {
                drop(body);
                let (first, second) = part.split_at(part.len() / 2);
                self.deliver_part(empty, signal, first, backoff, stop, delivery)?;
                self.deliver_part(empty, signal, second, backoff, stop, delivery)
            }
            // The records themselves are refused (bad content, too large, a media type it
            // does not take): drop them, named. Any other final status (401, 403, 404, 500,
            // ...) says the endpoint or its credentials are wrong, not the records: the caller
            // gets the error and keeps them.
            Err(error @ PushError::Rejected { status, .. }) if refuses_records(status) => {
                delivery.skipped += skipped;
                delivery.refused.push(Refused {
                    signal,
                    first: part.first().map_or(0, |(offset, _)| *offset),
                    last: part.last().map_or(0, |(offset, _)| *offset),
                    records,
                    error,
                });
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    fn attempt(&self, url: &str, body: &[u8]) -> Result<Attempt, PushError> {
        let mut request = self
            .agent
            .post(url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "gzip");
        for (name, value) in &self.endpoint.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut response = match request.send(body) {
            Ok(response) => response,
            Err(error) => {
                return Ok(Attempt::Retry {
                    why: error.to_string(),
                    retry_after: None,
                });
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let answer = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .unwrap_or_default();
        if (200..300).contains(&status) {
            let rejected = Response::decode(&answer[..])
                .ok()
                .and_then(|r| r.partial_success)
                .map_or(0, |p| {
                    if p.rejected > 0 {
                        tracing::warn!(url, rejected = p.rejected, message = %p.error_message,
                            "OTLP push: the collector rejected items");
                    }
                    p.rejected
                });
            return Ok(Attempt::Delivered(rejected));
        }
        let message = Status::decode(&answer[..])
            .ok()
            .map(|s| s.message)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(&answer);
                text.chars().take(300).collect()
            });
        if matches!(status, 429 | 502 | 503 | 504) {
            Ok(Attempt::Retry {
                why: format!("HTTP {status}: {message}"),
                retry_after,
            })
        } else {
            Err(PushError::Rejected {
                url: url.to_owned(),
                status,
                message,
            })
        }
    }
}

/// Whether a final status refuses the records of a request (so they can only be dropped),
/// rather than the request's destination or credentials: 400, 413, 415, 422.
pub fn refuses_records(status: u16) -> bool {
    matches!(status, 400 | 413 | 415 | 422)
}

enum Attempt {
    Delivered(i64),
    Retry {
        why: String,
        retry_after: Option<Duration>,
    },
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_headers_are_checked() {
        assert!(Endpoint::new("http://localhost:4318").is_ok());
        assert_eq!(
            Endpoint::new("https://otel.example.com/")
                .unwrap()
                .signal_url(Signal::Traces),
            "https://otel.example.com/v1/traces"
        );
        for bad in ["localhost:4318", "ftp://x", "http://", "http:// x"] {
            assert!(Endpoint::new(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_header("Authorization=Bearer a=b").unwrap(),
            ("Authorization".into(), "Bearer a=b".into())
        );
        assert!(parse_header("novalue").is_err());
        assert!(parse_header("=x").is_err());
    }
}
