//! `GET /api/sessions/{id}/records`: the session's records as `ctrace cat --json`, in offset
//! order (unsealed records, without an offset, last), a page at a time.
//!
//! A page ends at `limit` records or `max_bytes` bytes of rendered records (at most, and by
//! default, [`crate::serve::ServeOptions::max_page_bytes`]), whichever comes first, and holds at
//! least one record; `next_after` is the offset of its last record, so the next page continues
//! right after it. Invariants: records are read and rendered one at a time, so a page costs its
//! own size, not `limit` times the largest record; the unsealed records, which have no offset
//! to continue after, end a page together (when they do not all fit, the page stops before
//! them, unless it would be empty: then it holds those that fit and is the last).

use std::ops::ControlFlow;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{blocking, parse_limit, resolve, views};
use crate::log::Store;
use crate::log::read::TimeRange;
use crate::model::StoredRecord;
use crate::segments::Offset;
use crate::serve::{ApiError, AppState};
use crate::views::listing::for_each_sealed_record;

/// Query of `GET /api/sessions/{id}/records`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RecordsQuery {
    after: Option<String>,
    limit: Option<String>,
    /// Most bytes of rendered records in the page (at most, and by default,
    /// [`crate::serve::ServeOptions::max_page_bytes`]).
    max_bytes: Option<String>,
}

/// A page of records.
#[derive(Debug, Default, Serialize)]
pub(crate) struct RecordsPage {
    /// Records as `ctrace cat --json` prints them.
    records: Vec<Box<RawValue>>,
    /// Pass as `after` for the next page; `null` on the last page.
    next_after: Option<u64>,
    /// Bytes of `records`, rendered.
    #[serde(skip)]
    bytes: usize,
}

/// `GET /api/sessions/{id}/records` (see the module docs).
pub(crate) async fn records(
    State(state): State<AppState>,
    Path(wanted): Path<String>,
    Query(query): Query<RecordsQuery>,
) -> Result<Json<RecordsPage>, ApiError> {
    let limit = parse_limit(query.limit.as_deref(), 1000)?;
    let after = match query.after.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| ApiError::BadParam {
            param: "after",
            value: text.to_owned(),
            expected: "is not an offset",
        })?),
    };
    let most = state.options.max_page_bytes.max(1);
    let budget = match query.max_bytes.as_deref() {
        None => most,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ApiError::BadParam {
                param: "max_bytes",
                value: text.to_owned(),
                expected: "is not a number of bytes, 1 or more",
            })?
            .min(most),
    };
    blocking(&state, move |store| {
        RecordsPage::read(store, &wanted, after, limit, budget).map(Json)
    })
    .await
}

impl RecordsPage {
    /// The page of session `wanted` after `after`: at most `limit` records and `budget`
    /// bytes of them, at least one.
    fn read(
        store: &Store,
        wanted: &str,
        after: Option<u64>,
        limit: usize,
        budget: usize,
    ) -> Result<Self, ApiError> {
        let db = views(store)?;
        let id = resolve(db.as_ref(), store, wanted)?;
        let snapshot = store.snapshot()?;
        let mine = |stored: &StoredRecord| stored.record.session.as_deref() == Some(id.as_str());
        let mut page = Self::default();
        // The sealed records: the offset ranges the views keep for the session, past `after`
        // (only those are decoded).
        if let Some(db) = &db {
            let walk = for_each_sealed_record(db, &snapshot, &id, after, |stored| {
                Ok::<_, ApiError>(if page.push(&stored, limit, budget)? {
                    ControlFlow::Continue(())
                } else {
                    // The page is full: the next one starts after its last record.
                    ControlFlow::Break(())
                })
            })?;
            if walk.is_break() {
                return Ok(page);
            }
        }
        // The unsealed records: all of them, or none unless the page is empty.
        let (sealed, last_sealed) = (page.records.len(), page.next_after);
        let unsealed = snapshot
            .scan(Offset(u64::MAX), TimeRange::default(), true)
            .filter_map(Result::ok)
            .filter(|stored| mine(stored));
        for stored in unsealed {
            if !page.push(&stored, limit, budget)? {
                if sealed > 0 {
                    page.records.truncate(sealed);
                    page.next_after = last_sealed;
                    return Ok(page);
                }
                break;
            }
        }
        page.next_after = None;
        Ok(page)
    }

    /// Adds `stored` when it fits (`limit` records, `budget` bytes; the first always fits),
    /// moving `next_after` to it; `false` when it does not fit.
    fn push(
        &mut self,
        stored: &StoredRecord,
        limit: usize,
        budget: usize,
    ) -> Result<bool, ApiError> {
        let json = crate::export::record_json::record_json(stored)
            .and_then(RawValue::from_string)
            .map_err(|e| ApiError::Render {
                source: std::io::Error::other(e),
            })?;
        let len = json.get().len();
        if !self.records.is_empty() && (self.records.len() >= limit || self.bytes + len > budget) {
            return Ok(false);
        }
        self.bytes += len + 1;
        self.records.push(json);
        self.next_after = stored.offset.map(|o| o.0);
        Ok(true)
    }
}
