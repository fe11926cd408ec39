//! The SQL schema of `views/views.sqlite` (documented for users in `docs/views.md`).
//!
//! Times are ns since the Unix epoch (INTEGER); offsets are log offsets (records).

/// Schema version stored in `meta.schema_version`; a different stored version makes
/// `catch_up` rebuild the views.
pub const SCHEMA_VERSION: &str = "2";

/// Connection settings applied on every open.
pub const PRAGMAS: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = OFF;
PRAGMA temp_store = MEMORY;
PRAGMA cache_size = -262144;
";

/// The tables, created if missing (their secondary indexes are in [`INDEXES`]).
pub const TABLES: &str = "
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
    ended_ns           INTEGER
);
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
";

/// The secondary indexes, created if missing. A rebuild creates them after the bulk load,
/// except `turns_by_start`, which the fold itself reads (ending turns).
pub const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS turns_by_start ON turns (session, start_ns);
-- Covering indexes: `cost --by day` and `--by session` read them in group order, no sort.
CREATE INDEX IF NOT EXISTS usage_by_day ON usage (day, model, ts_ns, input_tokens,
    output_tokens, cache_creation_tokens, cache_creation_1h_tokens, cache_read_tokens);
CREATE INDEX IF NOT EXISTS usage_by_session ON usage (session, model, ts_ns, input_tokens,
    output_tokens, cache_creation_tokens, cache_creation_1h_tokens, cache_read_tokens);
";

/// The index the fold reads while loading (created before the rows during a rebuild).
pub const FOLD_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS turns_by_start ON turns (session, start_ns);
";

/// Connection settings of a rebuild's fresh database file: no rollback journal, no fsync
/// until the end (the file is only renamed into place once complete and synced), one
/// connection, 512 MiB of page cache.
pub const BULK_PRAGMAS: &str = "
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA locking_mode = EXCLUSIVE;
PRAGMA foreign_keys = OFF;
PRAGMA temp_store = MEMORY;
PRAGMA cache_size = -524288;
";

/// Every table that holds rows of a session (for `forget`), with its session column.
pub const SESSION_TABLES: &[&str] = &[
    "sessions",
    "turns",
    "spans",
    "usage",
    "tasks",
    "task_events",
    "chains",
    "problems",
];
