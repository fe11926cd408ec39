//! The SQL schema of `views/views.sqlite` (documented for users in `docs/views.md`).
//!
//! Times are ns since the Unix epoch (INTEGER); offsets are log offsets (records).

/// Schema version stored in `meta.schema_version`; a different stored version makes
/// `catch_up` rebuild the views.
pub(crate) const SCHEMA_VERSION: &str = "10";

/// Connection settings applied on every open.
pub(crate) const PRAGMAS: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = OFF;
PRAGMA temp_store = MEMORY;
PRAGMA cache_size = -262144;
";

/// The tables, created if missing (their secondary indexes are in [`INDEXES`]).
pub(crate) const TABLES: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    session            TEXT PRIMARY KEY,
    project            TEXT,
    transcript_dir     TEXT,
    first_ns           INTEGER NOT NULL,
    last_ns            INTEGER NOT NULL,
    records            INTEGER NOT NULL,
    hook_records       INTEGER NOT NULL,
    transcript_records INTEGER NOT NULL,
    malformed          INTEGER NOT NULL,
    ended_ns           INTEGER,
    turn_finished      INTEGER,
    pty_exited         INTEGER NOT NULL DEFAULT 0,
    timed              INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS session_sources (
    session TEXT NOT NULL,
    source      TEXT NOT NULL,
    records     INTEGER NOT NULL,
    last_ns     INTEGER NOT NULL,
    last_offset INTEGER NOT NULL,
    PRIMARY KEY (session, source)
) WITHOUT ROWID;
-- Records without a session per source (OTLP metrics without `session.id`, internal
-- records, ...): what `session_sources` holds for the records of sessions.
CREATE TABLE IF NOT EXISTS sessionless_sources (
    source      TEXT PRIMARY KEY,
    records     INTEGER NOT NULL,
    last_ns     INTEGER NOT NULL,
    last_offset INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_links (
    session     TEXT NOT NULL,
    pty_session TEXT NOT NULL,
    PRIMARY KEY (session, pty_session)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_ranges (
    session      TEXT NOT NULL,
    first_offset INTEGER NOT NULL,
    last_offset  INTEGER NOT NULL,
    PRIMARY KEY (session, first_offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS turns (
    session  TEXT NOT NULL,
    turn_id  TEXT NOT NULL,
    source   TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns   INTEGER,
    prompt   TEXT,
    offset   INTEGER NOT NULL,
    PRIMARY KEY (session, turn_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spans (
    session            TEXT NOT NULL,
    span_id            TEXT NOT NULL,
    kind               TEXT NOT NULL,
    name               TEXT,
    agent_id           TEXT,
    agent_type         TEXT,
    parent_tool_use_id TEXT,
    hook_start_ns      INTEGER,
    hook_end_ns        INTEGER,
    tx_start_ns        INTEGER,
    tx_end_ns          INTEGER,
    error              INTEGER NOT NULL DEFAULT 0,
    error_text         TEXT,
    detail             TEXT,
    prompt_key         TEXT,
    offset             INTEGER NOT NULL,
    arrival_start_ns   INTEGER,
    arrival_end_ns     INTEGER,
    PRIMARY KEY (session, span_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage (
    message_id               TEXT NOT NULL,
    request_id               TEXT NOT NULL,
    session                  TEXT,
    ts_ns                    INTEGER NOT NULL,
    day                      INTEGER NOT NULL,
    model                    TEXT NOT NULL,
    input_tokens             INTEGER NOT NULL,
    output_tokens            INTEGER NOT NULL,
    cache_creation_tokens    INTEGER NOT NULL,
    cache_creation_1h_tokens INTEGER NOT NULL,
    cache_read_tokens        INTEGER NOT NULL,
    total_tokens             INTEGER NOT NULL,
    sidechain                INTEGER NOT NULL,
    agent_id                 TEXT,
    tool_name                TEXT,
    offset                   INTEGER NOT NULL,
    PRIMARY KEY (message_id, request_id)
) WITHOUT ROWID;
-- `usage` summed per UTC day and model, kept by the triggers in `TRIGGERS` (`cost --by day`,
-- `week`, `month` and `model` without filters read it instead of every usage row).
CREATE TABLE IF NOT EXISTS usage_days (
    day                      INTEGER NOT NULL,
    model                    TEXT NOT NULL,
    input_tokens             INTEGER NOT NULL,
    output_tokens            INTEGER NOT NULL,
    cache_creation_tokens    INTEGER NOT NULL,
    cache_creation_1h_tokens INTEGER NOT NULL,
    cache_read_tokens        INTEGER NOT NULL,
    responses                INTEGER NOT NULL,
    first_ns                 INTEGER NOT NULL,
    last_ns                  INTEGER NOT NULL,
    PRIMARY KEY (day, model)
) WITHOUT ROWID;
-- Tool calls (`spans` of kind 'tool') and the failed ones per session and tool name ('' when
-- unnamed), kept by the triggers in `TRIGGERS` (the session list reads it instead of counting
-- every span).
CREATE TABLE IF NOT EXISTS session_tools (
    session TEXT NOT NULL,
    tool    TEXT NOT NULL,
    calls   INTEGER NOT NULL,
    errors  INTEGER NOT NULL,
    PRIMARY KEY (session, tool)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tasks (
    session    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    title      TEXT,
    status     TEXT NOT NULL,
    parent_id  TEXT,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL,
    offset     INTEGER,
    PRIMARY KEY (session, kind, task_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS task_events (
    session     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    tool_use_id TEXT NOT NULL,
    ts_ns       INTEGER NOT NULL,
    status      TEXT NOT NULL,
    PRIMARY KEY (session, kind, task_id, tool_use_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chains (
    session TEXT NOT NULL,
    uuid    TEXT NOT NULL,
    root    TEXT NOT NULL,
    PRIMARY KEY (session, uuid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS problems (
    offset  INTEGER,
    session TEXT,
    kind    TEXT NOT NULL,
    detail  TEXT
);
-- Claude Code's own telemetry: one row per OTLP log event (`otlp` records of signal logs),
-- with the attributes of its Monitoring documentation. `cost --reconcile` joins
-- `api_request` rows to `usage` by request id.
CREATE TABLE IF NOT EXISTS telemetry (
    offset                INTEGER PRIMARY KEY,
    session               TEXT NOT NULL,
    ts_ns                 INTEGER NOT NULL,
    event                 TEXT NOT NULL,
    sequence              INTEGER,
    prompt_id             TEXT,
    request_id            TEXT,
    tool_use_id           TEXT,
    tool_name             TEXT,
    model                 TEXT,
    cost_usd              REAL,
    duration_ms           INTEGER,
    input_tokens          INTEGER,
    output_tokens         INTEGER,
    cache_read_tokens     INTEGER,
    cache_creation_tokens INTEGER,
    success               INTEGER,
    status_code           INTEGER,
    attempt               INTEGER,
    error                 TEXT
);
";

/// The secondary indexes, created if missing. A rebuild creates them after the bulk load,
/// except `turns_by_start`, which the fold itself reads (ending turns).
pub(crate) const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS turns_by_start ON turns (session, start_ns);
CREATE INDEX IF NOT EXISTS telemetry_by_session ON telemetry (session, event, ts_ns);
CREATE INDEX IF NOT EXISTS telemetry_by_request ON telemetry (request_id) WHERE request_id IS NOT NULL;
-- Covering indexes: `cost --by day` and `--by session` read them in group order, no sort.
CREATE INDEX IF NOT EXISTS usage_by_day ON usage (day, model, ts_ns, input_tokens,
    output_tokens, cache_creation_tokens, cache_creation_1h_tokens, cache_read_tokens);
CREATE INDEX IF NOT EXISTS usage_by_session ON usage (session, model, ts_ns, input_tokens,
    output_tokens, cache_creation_tokens, cache_creation_1h_tokens, cache_read_tokens);
";

/// The triggers that keep `usage_days` equal to `usage` grouped by `(day, model)`: an insert
/// adds the row; an update of its day, model, time or tokens (a better line of the same
/// response) subtracts the old values and adds the new; a delete (`forget`) subtracts. First and
/// last times of a group a row left are re-read from `usage_by_day` (an index seek), so they
/// stay exact. The `session_tools` triggers keep the count of tool spans (and of failed ones)
/// per session and tool name the same way. A rebuild fills both tables with
/// [`FILL_AGGREGATES`] before creating the triggers.
pub(crate) const TRIGGERS: &str = "
CREATE TRIGGER IF NOT EXISTS session_tools_insert AFTER INSERT ON spans
    WHEN new.kind = 'tool' BEGIN
    INSERT INTO session_tools (session, tool, calls, errors)
    VALUES (new.session, coalesce(new.name, ''), 1, new.error != 0)
    ON CONFLICT (session, tool) DO UPDATE SET calls = calls + 1,
        errors = errors + excluded.errors;
END;
CREATE TRIGGER IF NOT EXISTS session_tools_update AFTER UPDATE OF session, kind, name, error
    ON spans
    WHEN (old.kind = 'tool' OR new.kind = 'tool')
        AND (old.session IS NOT new.session OR old.kind IS NOT new.kind
            OR old.name IS NOT new.name OR (old.error != 0) IS NOT (new.error != 0)) BEGIN
    UPDATE session_tools SET calls = calls - 1, errors = errors - (old.error != 0)
        WHERE old.kind = 'tool' AND session = old.session AND tool = coalesce(old.name, '');
    DELETE FROM session_tools
        WHERE old.kind = 'tool' AND session = old.session AND tool = coalesce(old.name, '')
            AND calls <= 0;
    INSERT INTO session_tools (session, tool, calls, errors)
    SELECT new.session, coalesce(new.name, ''), 1, new.error != 0 WHERE new.kind = 'tool'
    ON CONFLICT (session, tool) DO UPDATE SET calls = calls + 1,
        errors = errors + excluded.errors;
END;
CREATE TRIGGER IF NOT EXISTS session_tools_delete AFTER DELETE ON spans
    WHEN old.kind = 'tool' BEGIN
    UPDATE session_tools SET calls = calls - 1, errors = errors - (old.error != 0)
        WHERE session = old.session AND tool = coalesce(old.name, '');
    DELETE FROM session_tools
        WHERE session = old.session AND tool = coalesce(old.name, '') AND calls <= 0;
END;
CREATE TRIGGER IF NOT EXISTS usage_days_insert AFTER INSERT ON usage BEGIN
    INSERT INTO usage_days (day, model, input_tokens, output_tokens, cache_creation_tokens,
        cache_creation_1h_tokens, cache_read_tokens, responses, first_ns, last_ns)
    VALUES (new.day, new.model, new.input_tokens, new.output_tokens, new.cache_creation_tokens,
        new.cache_creation_1h_tokens, new.cache_read_tokens, 1, new.ts_ns, new.ts_ns)
    ON CONFLICT (day, model) DO UPDATE SET
        input_tokens = usage_days.input_tokens + excluded.input_tokens,
        output_tokens = usage_days.output_tokens + excluded.output_tokens,
        cache_creation_tokens = usage_days.cache_creation_tokens
            + excluded.cache_creation_tokens,
        cache_creation_1h_tokens = usage_days.cache_creation_1h_tokens
            + excluded.cache_creation_1h_tokens,
        cache_read_tokens = usage_days.cache_read_tokens + excluded.cache_read_tokens,
        responses = usage_days.responses + 1,
        first_ns = min(usage_days.first_ns, excluded.first_ns),
        last_ns = max(usage_days.last_ns, excluded.last_ns);
END;
CREATE TRIGGER IF NOT EXISTS usage_days_update AFTER UPDATE OF day, model, ts_ns, input_tokens,
    output_tokens, cache_creation_tokens, cache_creation_1h_tokens, cache_read_tokens ON usage
BEGIN
    UPDATE usage_days SET
        input_tokens = input_tokens - old.input_tokens,
        output_tokens = output_tokens - old.output_tokens,
        cache_creation_tokens = cache_creation_tokens - old.cache_creation_tokens,
        cache_creation_1h_tokens = cache_creation_1h_tokens - old.cache_creation_1h_tokens,
        cache_read_tokens = cache_read_tokens - old.cache_read_tokens,
        responses = responses - 1
    WHERE day = old.day AND model = old.model;
    DELETE FROM usage_days WHERE day = old.day AND model = old.model AND responses <= 0;
    INSERT INTO usage_days (day, model, input_tokens, output_tokens, cache_creation_tokens,
        cache_creation_1h_tokens, cache_read_tokens, responses, first_ns, last_ns)
    VALUES (new.day, new.model, new.input_tokens, new.output_tokens, new.cache_creation_tokens,
        new.cache_creation_1h_tokens, new.cache_read_tokens, 1, new.ts_ns, new.ts_ns)
    ON CONFLICT (day, model) DO UPDATE SET
        input_tokens = usage_days.input_tokens + excluded.input_tokens,
        output_tokens = usage_days.output_tokens + excluded.output_tokens,
        cache_creation_tokens = usage_days.cache_creation_tokens
            + excluded.cache_creation_tokens,
        cache_creation_1h_tokens = usage_days.cache_creation_1h_tokens
            + excluded.cache_creation_1h_tokens,
        cache_read_tokens = usage_days.cache_read_tokens + excluded.cache_read_tokens,
        responses = usage_days.responses + 1,
        first_ns = min(usage_days.first_ns, excluded.first_ns),
        last_ns = max(usage_days.last_ns, excluded.last_ns);
    UPDATE usage_days SET
        first_ns = (SELECT min(ts_ns) FROM usage WHERE day = old.day AND model = old.model),
        last_ns = (SELECT max(ts_ns) FROM usage WHERE day = old.day AND model = old.model)
    WHERE day = old.day AND model = old.model;
END;
CREATE TRIGGER IF NOT EXISTS usage_days_delete AFTER DELETE ON usage BEGIN
    UPDATE usage_days SET
        input_tokens = input_tokens - old.input_tokens,
        output_tokens = output_tokens - old.output_tokens,
        cache_creation_tokens = cache_creation_tokens - old.cache_creation_tokens,
        cache_creation_1h_tokens = cache_creation_1h_tokens - old.cache_creation_1h_tokens,
        cache_read_tokens = cache_read_tokens - old.cache_read_tokens,
        responses = responses - 1
    WHERE day = old.day AND model = old.model;
    DELETE FROM usage_days WHERE day = old.day AND model = old.model AND responses <= 0;
    UPDATE usage_days SET
        first_ns = (SELECT min(ts_ns) FROM usage WHERE day = old.day AND model = old.model),
        last_ns = (SELECT max(ts_ns) FROM usage WHERE day = old.day AND model = old.model)
    WHERE day = old.day AND model = old.model;
END;
";

/// Fills `usage_days` from `usage` and `session_tools` from `spans` (a rebuild, before
/// [`TRIGGERS`] exist).
pub(crate) const FILL_AGGREGATES: &str = "
DELETE FROM session_tools;
INSERT INTO session_tools (session, tool, calls, errors)
SELECT session, coalesce(name, ''), count(*), sum(error != 0) FROM spans WHERE kind = 'tool'
GROUP BY session, coalesce(name, '');
DELETE FROM usage_days;
INSERT INTO usage_days (day, model, input_tokens, output_tokens, cache_creation_tokens,
    cache_creation_1h_tokens, cache_read_tokens, responses, first_ns, last_ns)
SELECT day, model, sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens),
    sum(cache_creation_1h_tokens), sum(cache_read_tokens), count(*), min(ts_ns), max(ts_ns)
FROM usage GROUP BY day, model;
";

/// The index the fold reads while loading (created before the rows during a rebuild).
pub(crate) const FOLD_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS turns_by_start ON turns (session, start_ns);
";

/// Connection settings of a rebuild's fresh database file: no rollback journal, no fsync
/// until the end (the file is only renamed into place once complete and synced), one
/// connection, 512 MiB of page cache.
pub(crate) const BULK_PRAGMAS: &str = "
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA locking_mode = EXCLUSIVE;
PRAGMA foreign_keys = OFF;
PRAGMA temp_store = MEMORY;
PRAGMA cache_size = -524288;
";

/// Every table that holds rows of a session (for `forget`), with its session column.
pub(crate) const SESSION_TABLES: &[&str] = &[
    "sessions",
    "session_sources",
    "session_links",
    "session_ranges",
    "session_tools",
    "turns",
    "spans",
    "usage",
    "tasks",
    "task_events",
    "chains",
    "problems",
    "telemetry",
];
