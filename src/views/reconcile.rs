//! `ctrace cost --reconcile`: per session and model, the tokens and USD computed from
//! transcripts (the `usage` rows, priced by the price table) next to what Claude Code's own
//! telemetry reported (the `api_request` rows of `telemetry`), the difference, and the
//! requests found in one source and not the other.
//!
//! Requests are matched by request id (the transcript's `requestId`, the event's
//! `request_id`). Sessions are those with telemetry (a session without any telemetry would
//! list every request as missing from it), or the one asked for.

use std::collections::{BTreeMap, HashMap};

use rusqlite::params;
use serde::Serialize;

use super::pricing::{PriceTable, TokenCounts};
use super::{SqlContext, ViewsDb, ViewsError};

/// How many request ids a row names in each list (the counts are always whole).
pub const LISTED_REQUESTS: usize = 20;

/// The figures of one side of a [`ReconcileRow`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Side {
    /// API requests.
    pub requests: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cache writes (all TTLs).
    pub cache_creation_tokens: u64,
    /// Cache reads.
    pub cache_read_tokens: u64,
    /// USD: computed for transcripts (`None` when the model has no price), reported for
    /// telemetry (`None` when no event carried `cost_usd`).
    pub cost_usd: Option<f64>,
}

/// A request whose figures differ between the sources.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    /// The request id.
    pub request_id: String,
    /// Computed from the transcript, USD.
    pub transcript_usd: Option<f64>,
    /// Reported by telemetry, USD.
    pub telemetry_usd: Option<f64>,
    /// Whether the token counts differ (input, output, cache writes or reads).
    pub tokens_differ: bool,
}

/// One session and model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReconcileRow {
    /// The session.
    pub session: String,
    /// The model.
    pub model: String,
    /// From transcripts.
    pub transcript: Side,
    /// From telemetry.
    pub telemetry: Side,
    /// Telemetry USD minus transcript USD (`None` when either is unknown).
    pub difference_usd: Option<f64>,
    /// Requests in transcripts and not in telemetry: how many, and the first ids.
    pub missing_in_telemetry: u64,
    /// The first [`LISTED_REQUESTS`] of them.
    pub missing_in_telemetry_ids: Vec<String>,
    /// Requests in telemetry and not in transcripts (telemetry events without a request id
    /// count here too, as `(no request id)`).
    pub missing_in_transcript: u64,
    /// The first [`LISTED_REQUESTS`] of them.
    pub missing_in_transcript_ids: Vec<String>,
    /// Requests in both whose USD differs by more than 1e-6 or whose tokens differ.
    pub mismatched: u64,
    /// The first [`LISTED_REQUESTS`] of them.
    pub mismatched_requests: Vec<Mismatch>,
}

/// The reconciliation of a store.
#[derive(Debug, Clone, Serialize)]
pub struct Reconciliation {
    /// Rows by session, then model.
    pub rows: Vec<ReconcileRow>,
    /// The price table the transcript side was priced with.
    pub price_table: String,
}

#[derive(Debug, Clone)]
struct Request {
    model: String,
    tokens: TokenCounts,
    usd: Option<f64>,
}

/// Reconciles the sessions with telemetry, or only `session` (an exact id).
///
/// # Errors
/// [`ViewsError::Sqlite`].
pub fn reconcile(
    db: &ViewsDb,
    prices: &PriceTable,
    session: Option<&str>,
) -> Result<Reconciliation, ViewsError> {
    let sessions: Vec<String> = match session {
        Some(s) => vec![s.to_owned()],
        None => {
            let mut stmt = db
                .conn()
                .prepare("SELECT DISTINCT session FROM telemetry WHERE event = 'api_request'")
                .sql(db.path(), "listing sessions with telemetry")?;
            stmt.query_map([], |row| row.get(0))
                .sql(db.path(), "listing sessions with telemetry")?
                .collect::<Result<_, _>>()
                .sql(db.path(), "listing sessions with telemetry")?
        }
    };
    let mut rows = Vec::new();
    for session in sessions {
        rows.extend(reconcile_session(db, prices, &session)?);
    }
    Ok(Reconciliation {
        rows,
        price_table: prices.version(),
    })
}

fn reconcile_session(
    db: &ViewsDb,
    prices: &PriceTable,
    session: &str,
) -> Result<Vec<ReconcileRow>, ViewsError> {
    let path = db.path();
    let n = |v: Option<i64>| v.map_or(0, |v| u64::try_from(v).unwrap_or(0));
    // Transcript side: usage rows summed per request.
    let mut transcript: BTreeMap<String, Request> = BTreeMap::new();
    let mut stmt = db
        .conn()
        .prepare(
            "SELECT request_id, model, input_tokens, output_tokens, cache_creation_tokens,
                cache_creation_1h_tokens, cache_read_tokens
             FROM usage WHERE session = ?1 ORDER BY ts_ns",
        )
        .sql(path, "reading usage for reconciliation")?;
    let usage = stmt
        .query_map(params![session], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                TokenCounts {
                    input: n(row.get(2)?),
                    output: n(row.get(3)?),
                    cache_creation: n(row.get(4)?),
                    cache_creation_1h: n(row.get(5)?),
                    cache_read: n(row.get(6)?),
                },
            ))
        })
        .sql(path, "reading usage for reconciliation")?;
    for item in usage {
        let (request_id, model, tokens) = item.sql(path, "reading usage for reconciliation")?;
        let entry = transcript.entry(request_id).or_insert_with(|| Request {
            model,
            tokens: TokenCounts::default(),
            usd: None,
        });
        entry.tokens.add(&tokens);
    }
    for request in transcript.values_mut() {
        request.usd = prices.cost(&request.model, &request.tokens);
    }
    // Telemetry side: api_request events (the last one of a request id wins; a request is
    // reported once).
    let mut telemetry: BTreeMap<String, Request> = BTreeMap::new();
    let mut no_id: HashMap<String, Vec<Request>> = HashMap::new();
    let mut stmt = db
        .conn()
        .prepare(
            "SELECT request_id, coalesce(model, '(unknown)'), input_tokens, output_tokens,
                cache_creation_tokens, cache_read_tokens, cost_usd
             FROM telemetry WHERE session = ?1 AND event = 'api_request' ORDER BY offset",
        )
        .sql(path, "reading telemetry for reconciliation")?;
    let events = stmt
        .query_map(params![session], |row| {
            Ok((
                row.get::<_, Option<String>>(0)?,
                Request {
                    model: row.get(1)?,
                    tokens: TokenCounts {
                        input: n(row.get(2)?),
                        output: n(row.get(3)?),
                        cache_creation: n(row.get(4)?),
                        cache_creation_1h: 0,
                        cache_read: n(row.get(5)?),
                    },
                    usd: row.get(6)?,
                },
            ))
        })
        .sql(path, "reading telemetry for reconciliation")?;
    for item in events {
        let (request_id, request) = item.sql(path, "reading telemetry for reconciliation")?;
        match request_id {
            Some(id) => {
                telemetry.insert(id, request);
            }
            None => no_id
                .entry(request.model.clone())
                .or_default()
                .push(request),
        }
    }
    let mut by_model: BTreeMap<String, ReconcileRow> = BTreeMap::new();
    for (id, t) in &transcript {
        let r = entry(&mut by_model, session, &t.model);
        add(&mut r.transcript, t, true);
        match telemetry.get(id) {
            None => {
                r.missing_in_telemetry += 1;
                push_listed(&mut r.missing_in_telemetry_ids, id.clone());
            }
            Some(reported) => {
                let tokens_differ = reported.tokens.input != t.tokens.input
                    || reported.tokens.output != t.tokens.output
                    || reported.tokens.cache_creation != t.tokens.cache_creation
                    || reported.tokens.cache_read != t.tokens.cache_read;
                let usd_differs = match (reported.usd, t.usd) {
                    (Some(a), Some(b)) => (a - b).abs() > 1e-6,
                    (None, None) => false,
                    _ => true,
                };
                if tokens_differ || usd_differs {
                    r.mismatched += 1;
                    if r.mismatched_requests.len() < LISTED_REQUESTS {
                        r.mismatched_requests.push(Mismatch {
                            request_id: id.clone(),
                            transcript_usd: t.usd,
                            telemetry_usd: reported.usd,
                            tokens_differ,
                        });
                    }
                }
            }
        }
    }
    for (id, reported) in &telemetry {
        // Counted under the transcript's model when the request is in both (the same request
        // under two names would split the row otherwise).
        let model = transcript
            .get(id)
            .map_or(reported.model.as_str(), |t| t.model.as_str());
        let r = entry(&mut by_model, session, model);
        add(&mut r.telemetry, reported, false);
        if !transcript.contains_key(id) {
            r.missing_in_transcript += 1;
            push_listed(&mut r.missing_in_transcript_ids, id.clone());
        }
    }
    for (model, requests) in &no_id {
        let r = entry(&mut by_model, session, model);
        for reported in requests {
            add(&mut r.telemetry, reported, false);
            r.missing_in_transcript += 1;
            push_listed(
                &mut r.missing_in_transcript_ids,
                "(no request id)".to_owned(),
            );
        }
    }
    Ok(by_model
        .into_values()
        .map(|mut r| {
            r.difference_usd = match (r.telemetry.cost_usd, r.transcript.cost_usd) {
                (Some(a), Some(b)) => Some(a - b),
                _ => None,
            };
            r
        })
        .collect())
}

fn entry<'a>(
    rows: &'a mut BTreeMap<String, ReconcileRow>,
    session: &str,
    model: &str,
) -> &'a mut ReconcileRow {
    rows.entry(model.to_owned())
        .or_insert_with(|| ReconcileRow {
            session: session.to_owned(),
            model: model.to_owned(),
            transcript: Side::default(),
            telemetry: Side::default(),
            difference_usd: None,
            missing_in_telemetry: 0,
            missing_in_telemetry_ids: Vec::new(),
            missing_in_transcript: 0,
            missing_in_transcript_ids: Vec::new(),
            mismatched: 0,
            mismatched_requests: Vec::new(),
        })
}

/// Adds a request to a side. The transcript side's USD is unknown as soon as one request's
/// model has no price; the telemetry side's is the sum of what was reported (known once any
/// request reported one).
fn add(side: &mut Side, request: &Request, transcript: bool) {
    let first = side.requests == 0;
    side.requests += 1;
    side.input_tokens += request.tokens.input;
    side.output_tokens += request.tokens.output;
    side.cache_creation_tokens += request.tokens.cache_creation;
    side.cache_read_tokens += request.tokens.cache_read;
    side.cost_usd = match (transcript, first, side.cost_usd, request.usd) {
        (true, true, _, usd) => usd,
        (true, false, Some(sum), Some(usd)) => Some(sum + usd),
        (true, false, _, _) => None,
        (false, _, sum, usd) => match (sum, usd) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        },
    };
}

fn push_listed(list: &mut Vec<String>, id: String) {
    if list.len() < LISTED_REQUESTS {
        list.push(id);
    }
}
