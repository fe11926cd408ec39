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
//!
//! A batch ends at `[forward] batch` records or `max_batch_bytes` bytes (at least one record),
//! so a batch of large records (hook payloads with big tool outputs) stays under what a
//! receiver takes; one the collector still refuses as too large (413) is halved and sent again
//! ([`super::push::Pusher::deliver`]), and only a record refused on its own is dropped, with
//! an error naming its offset.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::batch::{self, Batch};
use super::push::{Backoff, Endpoint, PushError, Pusher};
use crate::config::forward::ForwardConfig;
use crate::log::read::TimeRange;
use crate::log::{LogError, Store};
use crate::model::StoredRecord;
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
        /// Records in the batch (delivered or dropped; not those of signals not forwarded).
        records: u64,
        /// Records the collector refused for good, and items it reported rejecting (dropped,
        /// with an error in the log).
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
        // The batch: `batch` records, or `max_batch_bytes` of those forwarded (at least one).
        let mut pending: Vec<StoredRecord> = Vec::new();
        let (mut next, mut bytes) = (from, 0u64);
        for stored in snapshot.scan(Offset(from), TimeRange::default(), false) {
            let stored = stored?;
            let Some(offset) = stored.offset else { break };
            next = offset.0 + 1;
            if self
                .config
                .signals
                .contains(&batch::signal_of(&stored.record))
            {
                bytes += batch::approx_bytes(&stored.record);
            }
            pending.push(stored);
            if pending.len() >= self.config.batch || bytes >= self.config.max_batch_bytes {
                break;
            }
        }
        drop(snapshot);
        if next == self.checkpoint.next_offset {
            return Ok(Step::Idle);
        }
        let records: Vec<(u64, &crate::model::Record)> = pending
            .iter()
            .filter_map(|stored| Some((stored.offset?.0, &stored.record)))
            .collect();
        let delivery = match self.pusher.deliver(
            &Batch::for_store(&self.store),
            &records,
            &self.config.signals,
            &self.backoff,
            stop,
        ) {
            Ok(delivery) => delivery,
            Err(PushError::GaveUp { .. }) => return Ok(Step::Stopped),
            Err(other) => return Err(other.into()),
        };
        for refused in &delivery.refused {
            // Refused for good: retrying would stop forwarding forever.
            tracing::error!(
                signal = refused.signal.as_str(),
                first_offset = refused.first,
                last_offset = refused.last,
                records = refused.records,
                error = %refused.error,
                "forward: the collector refused records; dropped"
            );
        }
        let dropped =
            delivery.refused_records() + u64::try_from(delivery.rejected_items).unwrap_or(0);
        let records = delivery.delivered + delivery.refused_records();
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
