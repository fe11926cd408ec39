//! `GET /api/stream`: Server-Sent Events, one `record` event per sealed record (data: the
//! record as `ctrace cat --json` prints it; id: its offset), then one `session` event per
//! session those records changed (data: its row as in `/api/sessions`; no id, so it does not
//! move the resume point), with keep-alive comments.
//!
//! Each client has a cursor: the offset after `Last-Event-ID`, or after `?after=`, else the end
//! of the log. A client behind the live edge (a resume) reads the log itself from its cursor.
//! At the live edge, clients share one reader: after every compaction pass the [`hub`] reads
//! the new records once, renders them and the rows of the sessions they touch, and broadcasts
//! the batch; each client sends the part its filter keeps and whose offsets are at or after its
//! cursor. A client that missed batches (it lagged behind the broadcast queue, or connected
//! between a pass and its batch) reads the gap itself, so nobody loses or repeats a record.
//! Events go through a queue of [`super::ServeOptions::stream_queue`] events and
//! [`super::ServeOptions::stream_queue_bytes`] bytes (a larger event goes alone); a client
//! that leaves it full for [`super::ServeOptions::stream_send_timeout`] is dropped.
//!
//! Memory. One reader per pass, rather than one per client, is what keeps memory flat with
//! many clients: every read opens the views database (SQLite page cache) and decodes segments
//! (zstd contexts), and the allocator keeps each thread's high-water mark. Invariants: at most
//! [`super::ServeOptions::max_stream_clients`] clients at once (one more gets 503 with
//! `Retry-After`); every read, the hub's or a client's, stops after
//! [`super::ServeOptions::stream_batch`] records or [`super::ServeOptions::stream_batch_bytes`]
//! bytes of rendered records, whichever comes first (at least one record); so a client holds
//! at most one read and its queue, whatever the size of the records.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc};
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

/// Seconds a client refused for the client limit is told to wait (`Retry-After`).
const RETRY_AFTER_SECS: u64 = 5;

/// Stream clients connected now, in this process.
static CLIENTS: AtomicUsize = AtomicUsize::new(0);

/// A stream client counted in [`CLIENTS`] until it is dropped (when its feed ends).
#[derive(Debug)]
struct Client;

impl Client {
    /// Counts one more client, unless `max` are connected already.
    fn admit(max: usize) -> Option<Self> {
        CLIENTS
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        CLIENTS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An event and its size, bytes (what it holds of the client's queue).
struct Outgoing {
    event: Event,
    bytes: usize,
}

impl Outgoing {
    fn new(event: Event, data_bytes: usize) -> Self {
        Self {
            event,
            bytes: data_bytes + 64,
        }
    }
}

/// A client's queue: events, each with its share of the queue's bytes (given back once the
/// event is taken to be sent).
struct Queue {
    tx: mpsc::Sender<(Event, OwnedSemaphorePermit)>,
    bytes: Arc<Semaphore>,
    /// [`super::ServeOptions::stream_queue_bytes`].
    limit: usize,
}

/// One step of reading the log for a client.
struct Batch {
    events: Vec<Outgoing>,
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
) -> Result<Response, ApiError> {
    let source = super::search::parse_source(query.source.as_deref())?;
    let max = state.options.max_stream_clients;
    let Some(client) = Client::admit(max) else {
        tracing::warn!(max, "stream client refused: too many clients");
        return Ok(super::hook::retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("{max} stream clients are connected, the most this service serves"),
            RETRY_AFTER_SECS,
        ));
    };
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
    // A unique prefix of a known session follows that session; an id not seen yet is followed
    // as given (a client may subscribe before the session's first record).
    let session = match query.session {
        None => None,
        Some(wanted) => {
            let store = state.store.clone();
            let found = tokio::task::spawn_blocking(move || {
                let db = super::api::views(&store)?;
                match super::api::resolve(db.as_ref(), &store, &wanted) {
                    Err(ApiError::UnknownSession { .. }) => Ok(wanted),
                    other => other,
                }
            })
            .await??;
            Some(found)
        }
    };
    let filter = Filter { session, source };
    let (tx, rx) = mpsc::channel(state.options.stream_queue.max(1));
    let limit = state
        .options
        .stream_queue_bytes
        .clamp(1, Semaphore::MAX_PERMITS);
    let queue = Queue {
        tx,
        bytes: Arc::new(Semaphore::new(limit)),
        limit,
    };
    tokio::spawn(async move {
        feed(state, cursor, filter, queue).await;
        drop(client);
    });
    // The event's bytes go back to the queue as it is taken to be written.
    let events = ReceiverStream::new(rx).map(|(event, _permit)| Ok::<Event, Infallible>(event));
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// What the [`hub`] broadcasts after a pass: the records it read, rendered once for every
/// client.
#[derive(Debug)]
pub(crate) struct LiveBatch {
    /// Offset of the first record read.
    from: u64,
    /// The offset after the last record read.
    next: u64,
    records: Vec<LiveRecord>,
    /// Each session the records touch: its row as JSON (as in `/api/sessions`).
    sessions: BTreeMap<String, String>,
}

/// One record of a [`LiveBatch`].
#[derive(Debug)]
struct LiveRecord {
    offset: u64,
    source: Source,
    session: Option<String>,
    /// As `ctrace cat --json` prints it.
    json: String,
}

impl Filter {
    fn keeps(&self, source: Source, session: Option<&str>) -> bool {
        self.source.is_none_or(|s| s == source)
            && self.session.as_deref().is_none_or(|s| session == Some(s))
    }
}

/// The shared reader: after every compaction pass, while any client listens, reads the records
/// sealed since its last read (batches of [`super::ServeOptions::stream_batch`]) and sends
/// them to `live`. Without listeners it only moves its cursor to the end of the log. Returns
/// when the service stops.
pub(crate) async fn hub(
    store: crate::log::Store,
    mut passes: tokio::sync::watch::Receiver<u64>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    live: broadcast::Sender<Arc<LiveBatch>>,
    batch_size: usize,
    batch_bytes: usize,
) {
    let mut cursor: Option<u64> = None;
    loop {
        loop {
            let listening = live.receiver_count() > 0;
            let (store, start) = (store.clone(), cursor);
            let read = tokio::task::spawn_blocking(move || {
                let end = store.snapshot()?.manifest().next_offset.0;
                match start {
                    Some(start) if listening && start < end => {
                        read_live(&store, start, batch_size, batch_bytes).map(|b| (Some(b), end))
                    }
                    _ => Ok((None, end)),
                }
            });
            let (batch, end) = match read.await {
                Ok(Ok(read)) => read,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "stream: reading the log failed");
                    break;
                }
                Err(_) => return,
            };
            let Some(batch) = batch else {
                cursor = Some(end);
                break;
            };
            cursor = Some(batch.next);
            let more = batch.next < end;
            // No receiver left is not an error: the next pass starts from the end.
            let _ = live.send(Arc::new(batch));
            if !more {
                break;
            }
        }
        tokio::select! {
            changed = passes.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

/// Reads up to `batch_size` sealed records, or `batch_bytes` bytes of them rendered (at least
/// one), from `cursor`, unfiltered, for the [`hub`].
fn read_live(
    store: &Store,
    cursor: u64,
    batch_size: usize,
    batch_bytes: usize,
) -> Result<LiveBatch, crate::log::LogError> {
    let snapshot = store.snapshot()?;
    let mut records = Vec::new();
    let mut touched = BTreeSet::new();
    let mut next = cursor;
    let mut bytes = 0;
    for stored in snapshot
        .scan(Offset(cursor), TimeRange::default(), false)
        .take(batch_size.max(1))
    {
        if bytes >= batch_bytes {
            break;
        }
        let stored = stored?;
        let Some(offset) = stored.offset else { break };
        next = offset.0 + 1;
        match crate::export::record_json::record_json(&stored) {
            Ok(json) => {
                let record = &stored.record;
                if let Some(session) = &record.session {
                    touched.insert(session.clone());
                }
                bytes += json.len();
                records.push(LiveRecord {
                    offset: offset.0,
                    source: record.source,
                    session: record.session.clone(),
                    json,
                });
            }
            Err(error) => tracing::warn!(%error, offset = offset.0, "stream: record skipped"),
        }
    }
    let sessions = session_rows(store, &snapshot, &touched);
    Ok(LiveBatch {
        from: cursor,
        next,
        records,
        sessions,
    })
}

/// Sends the client every record from `cursor` on: first what it is behind by, read from the
/// log, then the [`hub`]'s batches (reading any gap between them itself). Returns when the
/// client goes away, is too slow, or the service stops.
async fn feed(state: AppState, mut cursor: u64, filter: Filter, queue: Queue) {
    // Subscribed before catching up: a batch broadcast meanwhile is queued, not missed.
    let mut live = state.live.subscribe();
    let mut shutdown = state.shutdown.clone();
    if *shutdown.borrow_and_update() {
        return;
    }
    let Some(next) = catch_up(&state, cursor, &filter, &queue, &mut shutdown).await else {
        return;
    };
    cursor = next;
    loop {
        let batch = tokio::select! {
            batch = live.recv() => batch,
            _ = shutdown.changed() => return,
            () = queue.tx.closed() => return,
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(missed, cursor, "stream: client lagged; reading the log");
                let Some(next) = catch_up(&state, cursor, &filter, &queue, &mut shutdown).await
                else {
                    return;
                };
                cursor = next;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if batch.next <= cursor {
            continue;
        }
        if batch.from > cursor {
            let Some(next) = catch_up(&state, cursor, &filter, &queue, &mut shutdown).await else {
                return;
            };
            cursor = next;
            if batch.next <= cursor {
                continue;
            }
        }
        let mut sessions = BTreeSet::new();
        let mut events = Vec::new();
        for record in batch.records.iter().filter(|r| r.offset >= cursor) {
            if !filter.keeps(record.source, record.session.as_deref()) {
                continue;
            }
            if let Some(session) = &record.session {
                sessions.insert(session.as_str());
            }
            events.push(Outgoing::new(
                Event::default()
                    .event("record")
                    .id(record.offset.to_string())
                    .data(&record.json),
                record.json.len(),
            ));
        }
        for session in sessions {
            if let Some(row) = batch.sessions.get(session) {
                events.push(Outgoing::new(
                    Event::default().event("session").data(row),
                    row.len(),
                ));
            }
        }
        if !send_all(&state, events, cursor, &queue, &mut shutdown).await {
            return;
        }
        cursor = batch.next;
    }
}

/// Reads and sends the client everything from `cursor` to the end of the log; the cursor after
/// it, or `None` when the client is gone (or the service stops).
async fn catch_up(
    state: &AppState,
    mut cursor: u64,
    filter: &Filter,
    queue: &Queue,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<u64> {
    loop {
        let (store, f) = (state.store.clone(), filter.clone());
        let (batch_size, batch_bytes) =
            (state.options.stream_batch, state.options.stream_batch_bytes);
        let read = tokio::task::spawn_blocking(move || {
            read_batch(&store, cursor, batch_size, batch_bytes, &f)
        });
        let batch = match read.await {
            Ok(Ok(batch)) => batch,
            Ok(Err(error)) => {
                tracing::warn!(error = %error, cursor, "stream: reading the log failed");
                return Some(cursor);
            }
            Err(_) => return None,
        };
        if !send_all(state, batch.events, cursor, queue, shutdown).await {
            return None;
        }
        cursor = batch.next;
        if !batch.more {
            return Some(cursor);
        }
    }
}

/// Queues `events` for the client; `false` when it went away, stayed too slow for
/// [`super::ServeOptions::stream_send_timeout`], or the service stops.
async fn send_all(
    state: &AppState,
    events: Vec<Outgoing>,
    cursor: u64,
    queue: &Queue,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    for Outgoing { event, bytes } in events {
        // An event larger than the queue takes all of it: it is queued alone.
        let share = u32::try_from(bytes.min(queue.limit)).unwrap_or(u32::MAX);
        let send = async {
            let permit = Arc::clone(&queue.bytes)
                .acquire_many_owned(share)
                .await
                .map_err(|_| ())?;
            queue.tx.send((event, permit)).await.map_err(|_| ())
        };
        tokio::select! {
            sent = tokio::time::timeout(state.options.stream_send_timeout, send) => {
                match sent {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return false,
                    Err(_) => {
                        tracing::warn!(cursor, "stream: client too slow, dropped");
                        return false;
                    }
                }
            }
            _ = shutdown.changed() => return false,
        }
    }
    true
}

/// Reads up to `batch_size` sealed records from `cursor`, or fewer once `batch_bytes` bytes of
/// them are rendered (at least one), and turns those `filter` keeps into events.
fn read_batch(
    store: &Store,
    cursor: u64,
    batch_size: usize,
    batch_bytes: usize,
    filter: &Filter,
) -> Result<Batch, crate::log::LogError> {
    let snapshot = store.snapshot()?;
    let mut events = Vec::new();
    let mut sessions = BTreeSet::new();
    let mut next = cursor;
    let mut scanned = 0;
    let mut bytes = 0;
    let mut more = false;
    for stored in snapshot.scan(Offset(cursor), TimeRange::default(), false) {
        let stored = stored?;
        let Some(offset) = stored.offset else { break };
        scanned += 1;
        next = offset.0 + 1;
        let record = &stored.record;
        if filter.keeps(record.source, record.session.as_deref()) {
            if let Some(session) = &record.session {
                sessions.insert(session.clone());
            }
            match crate::export::record_json::record_json(&stored) {
                Ok(json) => {
                    bytes += json.len();
                    let len = json.len();
                    events.push(Outgoing::new(
                        Event::default()
                            .event("record")
                            .id(offset.0.to_string())
                            .data(json),
                        len,
                    ));
                }
                Err(error) => tracing::warn!(%error, offset = offset.0, "stream: record skipped"),
            }
        }
        if scanned >= batch_size || bytes >= batch_bytes {
            more = true;
            break;
        }
    }
    for row in session_rows(store, &snapshot, &sessions).into_values() {
        let len = row.len();
        events.push(Outgoing::new(
            Event::default().event("session").data(row),
            len,
        ));
    }
    Ok(Batch { events, next, more })
}

/// The current row (as JSON) of each of `sessions`; a session whose row cannot be read is
/// logged and left out (its records are sent all the same).
fn session_rows(
    store: &Store,
    snapshot: &crate::log::Snapshot,
    sessions: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    let mut rows = BTreeMap::new();
    if sessions.is_empty() {
        return rows;
    }
    let db = match crate::views::ViewsDb::open_existing(store.paths()) {
        Ok(Some(db)) => db,
        Ok(None) => return rows,
        Err(error) => {
            tracing::warn!(%error, "stream: views not readable, no session events");
            return rows;
        }
    };
    let now = crate::now_ns();
    for session in sessions {
        match crate::views::listing::summary(&db, snapshot, session, now) {
            Ok(Some(row)) => match serde_json::to_string(&row) {
                Ok(json) => {
                    rows.insert(session.clone(), json);
                }
                Err(error) => tracing::warn!(%error, session, "stream: session row skipped"),
            },
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, session, "stream: session row skipped"),
        }
    }
    rows
}
