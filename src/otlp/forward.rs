//! Forwarding: every sealed record, in offset order, pushed to a collector as OTLP
//! ([`super::batch`], [`super::push`]), with a checkpoint so a restart resends nothing
//! already acknowledged and skips nothing (`docs/export.md`, "Forwarding").
//!
//! The checkpoint `<store>/forward.checkpoint` (JSON: `endpoint`, `next_offset`) is replaced
//! atomically after the collector acknowledged a batch. Delivery is at least once: a crash
//! between the acknowledgement and the checkpoint sends that batch again, and every item
//! carries `ctrace.offset` for the receiver to deduplicate by. A checkpoint written for another
//! endpoint is not used (the new endpoint gets the whole log). Records that retention removed
//! before they were forwarded are skipped with a warning.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::batch::Batch;
use super::push::{Backoff, Endpoint, PushError, Pusher};
use crate::config::forward::ForwardConfig;
use crate::log::read::TimeRange;
use crate::log::{LogError, Store};
use crate::segments::Offset;

/// File name of the checkpoint in the store.
pub const CHECKPOINT_FILE: &str = "forward.checkpoint";

/// Where forwarding has got to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The endpoint it is for.
    pub endpoint: String,
    /// The first offset not yet acknowledged.
    pub next_offset: u64,
}

/// Why forwarding stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// Reading the log failed.
    #[error("reading the log")]
    Log(#[from] LogError),
    /// The checkpoint could not be read or written.
    #[error("the forward checkpoint {path}")]
    Checkpoint {
        /// Its path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The endpoint or a header is not usable.
    #[error(transparent)]
    Push(#[from] PushError),
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing new to send.
    Idle,
    /// A batch was delivered (or refused for good and logged) and the checkpoint moved.
    Forwarded {
        /// Records in the batch.
        records: u64,
        /// Records the collector refused for good (dropped, with an error in the log).
        dropped: u64,
        /// The checkpoint now.
        next_offset: u64,
    },
    /// Retries were stopped (the service is stopping); the checkpoint did not move.
    Stopped,
}

/// A forwarder for one store and `[forward]` table.
#[derive(Debug)]
pub struct Forwarder {
    store: Store,
    config: ForwardConfig,
    pusher: Pusher,
    checkpoint: Checkpoint,
    backoff: Backoff,
}

fn checkpoint_path(store: &Store) -> PathBuf {
    store.paths().root.join(CHECKPOINT_FILE)
}

impl Forwarder {
    /// A forwarder of `store` to `config`'s endpoint, resuming from the checkpoint; `None`
    /// when `config` has no endpoint. Retries never give up on their own (`backoff` with no
    /// `max_elapsed` keeps the record order: a batch is delivered before the next is read).
    ///
    /// # Errors
    /// [`ForwardError::Push`] for a bad endpoint, [`ForwardError::Checkpoint`] for an
    /// unreadable checkpoint (a damaged one is reported, not guessed at).
    pub fn new(store: Store, config: ForwardConfig) -> Result<Option<Self>, ForwardError> {
        let Some(url) = config.endpoint.clone() else {
            return Ok(None);
        };
        let mut endpoint = Endpoint::new(&url)?;
        endpoint.headers = config
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        endpoint.timeout = config.timeout;
        let path = checkpoint_path(&store);
        let checkpoint = match read_checkpoint(&path)? {
            Some(checkpoint) if checkpoint.endpoint == endpoint.url => checkpoint,
            Some(other) => {
                tracing::warn!(
                    previous = %other.endpoint,
                    endpoint = %endpoint.url,
                    "forward: the checkpoint is for another endpoint; forwarding the whole log"
                );
                Checkpoint {
                    endpoint: endpoint.url.clone(),
                    next_offset: 0,
                }
            }
            None => Checkpoint {
                endpoint: endpoint.url.clone(),
                next_offset: 0,
            },
        };
        Ok(Some(Self {
            store,
            config,
            pusher: Pusher::new(endpoint),
            checkpoint,
            backoff: Backoff {
                max_elapsed: None,
                ..Backoff::default()
            },
        }))
    }

    /// Overrides the retry timing (tests use short waits).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Reads the next batch of sealed records after the checkpoint and delivers it; `stop`
    /// ends retries early.
    ///
    /// # Errors
    /// [`ForwardError::Log`] when the log cannot be read, [`ForwardError::Checkpoint`] when
    /// the checkpoint cannot be written (the batch was delivered and will be sent again).
    pub fn step(&mut self, stop: &dyn Fn() -> bool) -> Result<Step, ForwardError> {
        let snapshot = self.store.snapshot()?;
        let mut from = self.checkpoint.next_offset;
        if let Some(first) = snapshot.first_sealed_offset()
            && first.0 > from
        {
            tracing::warn!(
                skipped = first.0 - from,
                "forward: records removed by retention before they were forwarded"
            );
            from = first.0;
        }
        let mut batch = Batch::for_store(&self.store);
        let mut next = from;
        for stored in snapshot.scan(Offset(from), TimeRange::default(), false) {
            let stored = stored?;
            let Some(offset) = stored.offset else { break };
            batch.push(offset.0, &stored.record, &self.config.signals);
            next = offset.0 + 1;
            if batch.records + batch.skipped >= self.config.batch as u64 {
                break;
            }
        }
        drop(snapshot);
        if next == self.checkpoint.next_offset {
            return Ok(Step::Idle);
        }
        let records = batch.records;
        let mut dropped = 0;
        for (signal, body) in batch.into_requests() {
            match self.pusher.send(signal, &body, &self.backoff, stop) {
                Ok(delivered) => {
                    dropped += u64::try_from(delivered.rejected).unwrap_or(0);
                }
                Err(PushError::Rejected {
                    url,
                    status,
                    message,
                }) => {
                    // Refused for good: retrying would stop forwarding forever.
                    tracing::error!(%url, status, %message, from, next,
                        "forward: the collector refused a batch; dropped");
                    dropped += records;
                }
                Err(PushError::GaveUp { .. }) => return Ok(Step::Stopped),
                Err(other) => return Err(other.into()),
            }
        }
        self.checkpoint.next_offset = next;
        write_checkpoint(&checkpoint_path(&self.store), &self.checkpoint)?;
        Ok(Step::Forwarded {
            records,
            dropped,
            next_offset: next,
        })
    }
}

/// The forwarding of `store` as its `[forward]` table and checkpoint say (`next_offset` 0
/// before the first acknowledged batch, or when the checkpoint is for another endpoint);
/// `None` when nothing is forwarded.
pub fn status(store: &Store) -> Option<Checkpoint> {
    let url = store.config().forward.endpoint.as_deref()?;
    let endpoint = url.trim_end_matches('/').to_owned();
    let next_offset = read_checkpoint(&checkpoint_path(store))
        .ok()
        .flatten()
        .filter(|c| c.endpoint == endpoint)
        .map_or(0, |c| c.next_offset);
    Some(Checkpoint {
        endpoint,
        next_offset,
    })
}

fn read_checkpoint(path: &Path) -> Result<Option<Checkpoint>, ForwardError> {
    let err = |source| ForwardError::Checkpoint {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(e)),
    }
}

fn write_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<(), ForwardError> {
    let bytes = serde_json::to_vec(checkpoint).unwrap_or_default();
    crate::fs::write_atomic(
        path,
        &bytes,
        &crate::fs::Replace {
            prefix: "forward.checkpoint.",
            ..crate::fs::Replace::default()
        },
    )
    .map_err(|source| ForwardError::Checkpoint {
        path: path.to_path_buf(),
        source,
    })
}
