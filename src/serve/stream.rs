//! `GET /api/stream`: Server-Sent Events, one `record` event per sealed record (data: the
//! record as `ctrace cat --json` prints it; id: its offset), then one `session` event per
//! session those records changed (data: its row as in `/api/sessions`; no id, so it does not
//! move the resume point), with keep-alive comments.
//!
//! Each client has its own task that reads the log from the client's cursor (the offset after
//! `Last-Event-ID`, or after `?after=`, else the end of the log) and is woken after every
//! compaction pass, so a reconnecting client loses nothing and receives nothing twice. Events
//! go through a queue of [`super::ServeOptions::stream_queue`] events; a client that leaves
//! it full for [`super::ServeOptions::stream_send_timeout`] is dropped.

use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::{ApiError, AppState};
use crate::log::Store;
use crate::log::read::TimeRange;
use crate::model::Source;
use crate::segments::Offset;

/// Query of `GET /api/stream`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct StreamQuery {
    session: Option<String>,
    source: Option<String>,
    after: Option<String>,
}

/// Which records a client wants.
#[derive(Debug, Clone)]
struct Filter {
    session: Option<String>,
    source: Option<Source>,
}

/// One step of reading the log for a client.
struct Batch {
    events: Vec<Event>,
    /// The cursor after this batch.
    next: u64,
    /// Whether the log may hold more after `next`.
    more: bool,
}

/// `GET /api/stream`.
pub(crate) async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let source = super::search::parse_source(query.source.as_deref())?;
    let resume = match headers.get("last-event-id") {
        Some(value) => Some(("Last-Event-ID", value.to_str().unwrap_or("").to_owned())),
        None => query.after.map(|after| ("after", after)),
    };
    let cursor = match resume {
        Some((param, text)) => {
            let id = text.parse::<u64>().map_err(|_| ApiError::BadParam {
                param,
                value: text.clone(),
                expected: "is not a record offset",
            })?;
            id.saturating_add(1)
        }
        None => {
            let store = state.store.clone();
            tokio::task::spawn_blocking(move || {
                store.snapshot().map(|s| s.manifest().next_offset.0)
            })
            .await??
        }
    };
    let filter = Filter {
        session: query.session,
        source,
    };
    let (tx, rx) = mpsc::channel(state.options.stream_queue.max(1));
    tokio::spawn(feed(state, cursor, filter, tx));
    let events = ReceiverStream::new(rx).map(Ok::<Event, Infallible>);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Sends the client every record from `cursor` on, then waits for the next pass; returns when
/// the client goes away, is too slow, or the service stops.
async fn feed(state: AppState, mut cursor: u64, filter: Filter, tx: mpsc::Sender<Event>) {
    let mut passes = state.passes.clone();
    let mut shutdown = state.shutdown.clone();
    let options = &state.options;
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        passes.borrow_and_update();
        loop {
            let (store, f, batch_size) =
                (state.store.clone(), filter.clone(), options.stream_batch);
            let read =
                tokio::task::spawn_blocking(move || read_batch(&store, cursor, batch_size, &f));
            let batch = match read.await {
                Ok(Ok(batch)) => batch,
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, cursor, "stream: reading the log failed");
                    break;
                }
                Err(_) => return,
            };
            for event in batch.events {
                tokio::select! {
                    sent = tokio::time::timeout(options.stream_send_timeout, tx.send(event)) => {
                        match sent {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return,
                            Err(_) => {
                                tracing::warn!(cursor, "stream: client too slow, dropped");
                                return;
                            }
                        }
                    }
                    _ = shutdown.changed() => return,
                }
            }
            cursor = batch.next;
            if !batch.more {
                break;
            }
        }
        tokio::select! {
            changed = passes.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
            () = tx.closed() => return,
        }
    }
}

/// Reads up to `batch_size` sealed records from `cursor` and turns those `filter` keeps into
/// events.
fn read_batch(
    store: &Store,
    cursor: u64,
    batch_size: usize,
    filter: &Filter,
) -> Result<Batch, crate::log::LogError> {
    let snapshot = store.snapshot()?;
    let mut events = Vec::new();
    let mut sessions = std::collections::BTreeSet::new();
    let mut next = cursor;
    let mut scanned = 0;
    for stored in snapshot.scan(Offset(cursor), TimeRange::default(), false) {
        let stored = stored?;
        let Some(offset) = stored.offset else { break };
        scanned += 1;
        next = offset.0 + 1;
        let record = &stored.record;
        let wanted = filter.source.is_none_or(|s| s == record.source)
            && filter
                .session
                .as_deref()
                .is_none_or(|s| record.session.as_deref() == Some(s));
        if wanted {
            if let Some(session) = &record.session {
                sessions.insert(session.clone());
            }
            match crate::export::record_json::record_json(&stored) {
                Ok(json) => events.push(
                    Event::default()
                        .event("record")
                        .id(offset.0.to_string())
                        .data(json),
                ),
                Err(error) => tracing::warn!(%error, offset = offset.0, "stream: record skipped"),
            }
        }
        if scanned == batch_size {
            break;
        }
    }
    if !sessions.is_empty() {
        session_events(store, &snapshot, &sessions, &mut events);
    }
    Ok(Batch {
        events,
        next,
        more: scanned == batch_size,
    })
}

/// Appends a `session` event with the current row of each of `sessions` (a session whose row
/// cannot be read is logged and left out: its records were sent).
fn session_events(
    store: &Store,
    snapshot: &crate::log::Snapshot,
    sessions: &std::collections::BTreeSet<String>,
    events: &mut Vec<Event>,
) {
    let db = match crate::views::ViewsDb::open_existing(store.paths()) {
        Ok(Some(db)) => db,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, "stream: views not readable, no session events");
            return;
        }
    };
    let now = crate::now_ns();
    for session in sessions {
        match crate::views::listing::summary(&db, snapshot, session, now) {
            Ok(Some(row)) => match serde_json::to_string(&row) {
                Ok(json) => events.push(Event::default().event("session").data(json)),
                Err(error) => tracing::warn!(%error, session, "stream: session row skipped"),
            },
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, session, "stream: session row skipped"),
        }
    }
}
