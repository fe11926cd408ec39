//! The in-memory aggregates of a batch: sessions, subagents, spans and usage rows, written
//! once at the end of the batch.

use hashbrown::HashMap;

use crate::model::Usage;

#[derive(Debug, Default)]
pub(super) struct SessionAgg {
    pub(super) project: Option<String>,
    pub(super) transcript_dir: Option<String>,
    /// First and last time of the records with a capture time, ns (`u64::MAX`, 0 when none).
    pub(super) first_ns: u64,
    pub(super) last_ns: u64,
    /// First and last time of the hook records timed only by their arrival
    /// (`model::HookBody::arrival_time`): the session's times when it has no other record.
    pub(super) arrival: Option<(u64, u64)>,
    pub(super) records: u64,
    pub(super) hook_records: u64,
    pub(super) transcript_records: u64,
    pub(super) malformed: u64,
    pub(super) ended_ns: Option<u64>,
}

/// A subagent's facts merged within a batch. Times are kept per source and merged only by
/// min/max, so the rows written do not depend on where batch boundaries fall.
#[derive(Debug, Default)]
pub(super) struct AgentAgg {
    /// First and last hook with this `agent_id` (the last is normally SubagentStop), ns.
    pub(super) hook: Option<(u64, u64)>,
    /// First and last transcript line of the subagent (its own lines, `agent_progress`), ns.
    pub(super) lines: Option<(u64, u64)>,
    pub(super) agent_type: Option<String>,
    pub(super) parent: Option<String>,
    pub(super) prompt_key: Option<String>,
    pub(super) offset: u64,
}

/// Widens a `(first, last)` range by `ts`.
pub(super) fn widen(range: &mut Option<(u64, u64)>, ts: u64) {
    *range = Some(match *range {
        Some((first, last)) => (first.min(ts), last.max(ts)),
        None => (ts, ts),
    });
}

/// A span's updates merged within a batch (same rules as the SQL upsert).
#[derive(Debug, Default, Clone)]
pub(super) struct SpanAgg {
    pub(super) kind: &'static str,
    pub(super) name: Option<String>,
    pub(super) agent_id: Option<String>,
    pub(super) agent_type: Option<String>,
    pub(super) parent: Option<String>,
    pub(super) hook_start: Option<u64>,
    pub(super) hook_end: Option<u64>,
    /// Times of hooks timed only by their arrival (`arrival_time`): the call's times only when
    /// neither hooks nor the transcript give them.
    pub(super) arrival_start: Option<u64>,
    pub(super) arrival_end: Option<u64>,
    pub(super) tx_start: Option<u64>,
    pub(super) tx_end: Option<u64>,
    pub(super) error: bool,
    pub(super) error_text: Option<String>,
    pub(super) detail: Option<String>,
    pub(super) prompt_key: Option<String>,
    pub(super) offset: u64,
}

impl SpanAgg {
    /// Start by a hook: captured, else arrival.
    pub(super) fn hook_started(&self) -> Option<u64> {
        self.hook_start.or(self.arrival_start)
    }

    /// Whether a hook (captured or arrival-timed) ended the call.
    pub(super) fn hook_ended(&self) -> bool {
        self.hook_end.is_some() || self.arrival_end.is_some()
    }
}

pub(super) fn keep<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// [`keep`] for a borrowed string: allocates only when the slot is empty.
pub(super) fn keep_str(slot: &mut Option<String>, value: Option<&str>) {
    if slot.is_none() {
        *slot = value.map(str::to_owned);
    }
}

pub(super) fn merge_min(slot: &mut Option<u64>, value: Option<u64>) {
    *slot = match (*slot, value) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
}

pub(super) fn merge_max(slot: &mut Option<u64>, value: Option<u64>) {
    *slot = match (*slot, value) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
}

/// One API response's usage, the best line of the batch so far.
#[derive(Debug, Clone)]
pub(super) struct UsageRow {
    pub(super) session: String,
    pub(super) ts: u64,
    pub(super) model: String,
    pub(super) usage: Usage,
    pub(super) sidechain: bool,
    pub(super) agent_id: Option<String>,
    pub(super) tool_name: Option<String>,
    pub(super) offset: u64,
}

/// One tool-span update (any field may be absent).
#[derive(Debug, Default)]
pub(super) struct SpanUpdate<'a> {
    pub(super) session: &'a str,
    pub(super) span_id: &'a str,
    pub(super) kind: &'static str,
    pub(super) name: Option<&'a str>,
    pub(super) agent_id: Option<&'a str>,
    pub(super) agent_type: Option<&'a str>,
    pub(super) parent: Option<&'a str>,
    pub(super) hook_start: Option<u64>,
    pub(super) hook_end: Option<u64>,
    /// Times of hooks timed only by their arrival (`arrival_time`): the call's times only when
    /// neither hooks nor the transcript give them.
    pub(super) arrival_start: Option<u64>,
    pub(super) arrival_end: Option<u64>,
    pub(super) tx_start: Option<u64>,
    pub(super) tx_end: Option<u64>,
    pub(super) error: bool,
    pub(super) error_text: Option<String>,
    pub(super) detail: Option<String>,
    pub(super) prompt_key: Option<String>,
    pub(super) offset: u64,
}

/// Per-batch aggregates keyed by (session, id), looked up with borrowed keys (no allocation
/// unless the entry is new).
#[derive(Debug)]
pub(super) struct PerSession<V> {
    pub(super) map: HashMap<String, HashMap<String, V>>,
}

impl<V> Default for PerSession<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
        }
    }
}

impl<V> PerSession<V> {
    pub(super) fn get(&self, session: &str, id: &str) -> Option<&V> {
        self.map.get(session)?.get(id)
    }

    pub(super) fn get_or_insert_with(
        &mut self,
        session: &str,
        id: &str,
        new: impl FnOnce() -> V,
    ) -> &mut V {
        self.map
            .entry_ref(session)
            .or_default()
            .entry_ref(id)
            .or_insert_with(new)
    }

    /// Empties the map into `(session, [(id, value)])` groups, sorted by session and then by
    /// id (key order, so B-tree inserts touch each page once), with no key copied.
    pub(super) fn drain_sorted(&mut self) -> Vec<(String, Vec<(String, V)>)> {
        let mut sessions: Vec<(String, Vec<(String, V)>)> = self
            .map
            .drain()
            .map(|(session, ids)| {
                let mut ids: Vec<(String, V)> = ids.into_iter().collect();
                ids.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                (session, ids)
            })
            .collect();
        sessions.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        sessions
    }
}
