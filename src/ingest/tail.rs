//! Tailing the transcripts that hooks name, for the compactor's refresh
//! ([`crate::compactor::Tailer`]).

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::Ingester;
use crate::compactor::{ConsumerError, Tailer};
use crate::log::{SealReport, StoreLock};

/// Appends the lines written to transcripts since their MANIFEST cursors and seals them, as
/// `ctrace ingest` would for those files (missing files are logged and skipped).
#[derive(Debug, Clone, Copy, Default)]
pub struct TranscriptTailer;

impl Tailer for TranscriptTailer {
    fn tail(
        &self,
        lock: &mut StoreLock<'_>,
        transcripts: &BTreeSet<PathBuf>,
    ) -> Result<(u64, Vec<SealReport>), ConsumerError> {
        let mut ingester = Ingester::new(lock)?;
        ingester.tail_transcripts(transcripts)?;
        let (summary, seals) = ingester.finish()?;
        Ok((summary.records, seals))
    }
}
