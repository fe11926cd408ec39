//! The SQL statements the folder prepares once per batch (schema in docs/views.md).

/// Prepared as `Folder::upsert_span`.
pub(super) const UPSERT_SPAN: &str =
    "INSERT INTO spans (session, span_id, kind, name, agent_id, agent_type,
                    parent_tool_use_id, hook_start_ns, hook_end_ns, tx_start_ns, tx_end_ns, error,
                    error_text, detail, prompt_key, offset, arrival_start_ns, arrival_end_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?16, ?15,
                    ?17, ?18)
                 ON CONFLICT (session, span_id) DO UPDATE SET
                    name = coalesce(spans.name, excluded.name),
                    agent_id = coalesce(spans.agent_id, excluded.agent_id),
                    agent_type = coalesce(spans.agent_type, excluded.agent_type),
                    parent_tool_use_id = coalesce(spans.parent_tool_use_id,
                        excluded.parent_tool_use_id),
                    hook_start_ns = coalesce(min(spans.hook_start_ns, excluded.hook_start_ns),
                        spans.hook_start_ns, excluded.hook_start_ns),
                    hook_end_ns = coalesce(max(spans.hook_end_ns, excluded.hook_end_ns),
                        spans.hook_end_ns, excluded.hook_end_ns),
                    arrival_start_ns = coalesce(
                        min(spans.arrival_start_ns, excluded.arrival_start_ns),
                        spans.arrival_start_ns, excluded.arrival_start_ns),
                    arrival_end_ns = coalesce(max(spans.arrival_end_ns, excluded.arrival_end_ns),
                        spans.arrival_end_ns, excluded.arrival_end_ns),
                    tx_start_ns = coalesce(min(spans.tx_start_ns, excluded.tx_start_ns),
                        spans.tx_start_ns, excluded.tx_start_ns),
                    tx_end_ns = coalesce(max(spans.tx_end_ns, excluded.tx_end_ns),
                        spans.tx_end_ns, excluded.tx_end_ns),
                    error = max(spans.error, excluded.error),
                    error_text = coalesce(spans.error_text, excluded.error_text),
                    detail = coalesce(spans.detail, excluded.detail),
                    prompt_key = coalesce(spans.prompt_key, excluded.prompt_key),
                    offset = min(spans.offset, excluded.offset)";

/// Prepared as `Folder::upsert_usage`.
pub(super) const UPSERT_USAGE: &str =
    "INSERT INTO usage (message_id, request_id, session, ts_ns, day, model,
                    input_tokens, output_tokens, cache_creation_tokens, cache_creation_1h_tokens,
                    cache_read_tokens, total_tokens, sidechain, agent_id, tool_name, offset)
                 VALUES (?1, ?2, ?3, ?4, ?4 / 86400000000000, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
                    ?13, ?14, ?15)
                 ON CONFLICT (message_id, request_id) DO UPDATE SET
                    session = excluded.session, ts_ns = excluded.ts_ns, day = excluded.day,
                    model = excluded.model,
                    input_tokens = excluded.input_tokens,
                    output_tokens = excluded.output_tokens,
                    cache_creation_tokens = excluded.cache_creation_tokens,
                    cache_creation_1h_tokens = excluded.cache_creation_1h_tokens,
                    cache_read_tokens = excluded.cache_read_tokens,
                    total_tokens = excluded.total_tokens, sidechain = excluded.sidechain,
                    agent_id = excluded.agent_id,
                    tool_name = coalesce(usage.tool_name, excluded.tool_name),
                    offset = excluded.offset
                 WHERE excluded.total_tokens > usage.total_tokens
                    OR (excluded.total_tokens = usage.total_tokens
                        AND usage.sidechain = 1 AND excluded.sidechain = 0)";

/// Prepared as `Folder::usage_tool`.
pub(super) const USAGE_TOOL: &str = "UPDATE usage SET tool_name = ?3
                 WHERE message_id = ?1 AND request_id = ?2 AND tool_name IS NULL";

/// Prepared as `Folder::upsert_turn`.
pub(super) const UPSERT_TURN: &str =
    "INSERT INTO turns (session, turn_id, source, start_ns, prompt, offset)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (session, turn_id) DO UPDATE SET
                    start_ns = min(turns.start_ns, excluded.start_ns),
                    prompt = coalesce(turns.prompt, excluded.prompt),
                    source = CASE WHEN turns.source = excluded.source THEN turns.source
                        ELSE 'both' END";

/// Prepared as `Folder::end_turn`.
pub(super) const END_TURN: &str = "UPDATE turns SET end_ns = coalesce(max(end_ns, ?3), ?3)
                 WHERE session = ?1 AND turn_id = (SELECT turn_id FROM turns
                    WHERE session = ?1 AND start_ns <= ?2 ORDER BY start_ns DESC LIMIT 1)";

/// Prepared as `Folder::problem`.
pub(super) const PROBLEM: &str =
    "INSERT INTO problems (offset, session, kind, detail) VALUES (?1, ?2, ?3, ?4)";

/// Prepared as `Folder::chain_get`.
pub(super) const CHAIN_GET: &str = "SELECT root FROM chains WHERE session = ?1 AND uuid = ?2";

/// Prepared as `Folder::chain_put`.
pub(super) const CHAIN_PUT: &str =
    "INSERT OR IGNORE INTO chains (session, uuid, root) VALUES (?1, ?2, ?3)";

/// Prepared as `Folder::task_event`.
pub(super) const TASK_EVENT: &str =
    "INSERT OR IGNORE INTO task_events (session, kind, task_id, tool_use_id, ts_ns,
                    status) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// Prepared as `Folder::upsert_task`.
pub(super) const UPSERT_TASK: &str =
    "INSERT INTO tasks (session, kind, task_id, title, status, parent_id, created_ns,
                    updated_ns, offset) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)
                 ON CONFLICT (session, kind, task_id) DO UPDATE SET
                    title = coalesce(excluded.title, tasks.title),
                    parent_id = coalesce(excluded.parent_id, tasks.parent_id),
                    status = CASE WHEN excluded.updated_ns >= tasks.updated_ns
                        THEN excluded.status ELSE tasks.status END,
                    created_ns = min(tasks.created_ns, excluded.created_ns),
                    updated_ns = max(tasks.updated_ns, excluded.updated_ns)";

/// Prepared as `Folder::telemetry`.
pub(super) const TELEMETRY: &str =
    "INSERT OR REPLACE INTO telemetry (offset, session, ts_ns, event, sequence, prompt_id,
                    request_id, tool_use_id, tool_name, model, cost_usd, duration_ms,
                    input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,
                    success, status_code, attempt, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18, ?19, ?20)";

/// Prepared as `Folder::span_detail`.
pub(super) const SPAN_DETAIL: &str =
    "SELECT name, detail FROM spans WHERE session = ?1 AND span_id = ?2";
