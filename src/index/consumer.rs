//! The full-text index as a consumer of the log ([`crate::compactor::Consumer`]): maintained
//! once it exists; the documents of records the log drops are deleted, under the compactor's
//! intent marker `<store>/index/PENDING_DELETES`.

use std::path::PathBuf;

use crate::compactor::consumer::{CatchUp, Consumer, ConsumerError, ConsumerReport};
use crate::log::Store;
use crate::segments::Offset;

/// The tantivy index (`<store>/index/`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Index;

impl Consumer for Index {
    fn name(&self) -> &'static str {
        "index"
    }

    fn maintained(&self, store: &Store) -> bool {
        super::exists(store.paths())
    }

    fn checkpoint(&self, store: &Store) -> Result<Option<Offset>, ConsumerError> {
        Ok(super::applied_offset(store.paths())?)
    }

    fn catch_up(&self, store: &Store, how: &CatchUp<'_>) -> Result<ConsumerReport, ConsumerError> {
        let options = super::CatchUpOptions {
            wait_for_writer: how.writer_wait,
            on_wait: how.on_wait,
            ..super::CatchUpOptions::default()
        };
        let report = if how.rebuild {
            super::rebuild(store, &options)
        } else {
            super::catch_up_with(store, &options)
        }?;
        Ok(ConsumerReport {
            applied_records: report.indexed,
            checkpoint: report.applied,
            unreadable_records: report.unreadable,
            elapsed: report.elapsed,
        })
    }

    fn removal_marker_dir(&self, store: &Store) -> Option<PathBuf> {
        Some(super::index_dir(store.paths()))
    }

    fn remove_offsets(&self, store: &Store, offsets: &[Offset]) -> Result<u64, ConsumerError> {
        Ok(super::delete_offsets(store.paths(), offsets)?)
    }

    fn forget_session(&self, store: &Store, session: &str) -> Result<u64, ConsumerError> {
        Ok(super::forget_session(store.paths(), session)?)
    }
}
