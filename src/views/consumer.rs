//! The views as a consumer of the log ([`crate::compactor::Consumer`]): the compactor folds new
//! records into them on every pass; removals from the log leave their aggregates (cost, tokens,
//! durations of removed records stay counted; `docs/retention.md`).

use std::path::PathBuf;

use crate::compactor::consumer::{CatchUp, Consumer, ConsumerError, ConsumerReport};
use crate::log::Store;
use crate::segments::Offset;

/// The SQLite views (`<store>/views/views.sqlite`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Views;

impl Consumer for Views {
    fn name(&self) -> &'static str {
        "views"
    }

    fn maintained(&self, _store: &Store) -> bool {
        true
    }

    fn checkpoint(&self, store: &Store) -> Result<Option<Offset>, ConsumerError> {
        Ok(super::applied_offset(store.paths())?)
    }

    fn catch_up(&self, store: &Store, how: &CatchUp<'_>) -> Result<ConsumerReport, ConsumerError> {
        let report = if how.rebuild {
            super::rebuild(store)
        } else {
            super::catch_up(store)
        }?;
        Ok(ConsumerReport {
            applied_records: report.applied_records,
            checkpoint: report.applied,
            unreadable_records: report.unreadable_records,
            elapsed: report.elapsed,
        })
    }

    fn removal_marker_dir(&self, _store: &Store) -> Option<PathBuf> {
        None
    }

    fn remove_offsets(&self, _store: &Store, _offsets: &[Offset]) -> Result<u64, ConsumerError> {
        Ok(0)
    }

    fn forget_session(&self, store: &Store, session: &str) -> Result<u64, ConsumerError> {
        Ok(super::forget_session(store.paths(), session)?)
    }
}
