//! `ctrace cost`: tokens and USD by session, day, week, month, model, project, agent, tool,
//! task or 5-hour block, from the views (brought up to date first).

use std::io::Write;

use clap::{Args, ValueEnum};

use super::UsageError;
use super::time::{now_ns, parse_time};
use crate::log::Store;
use crate::views::cost::{CostQuery, CostReport, CostSource, GroupBy};
use crate::views::cost_rows::merge;
use crate::views::pricing::{PriceTable, TokenCounts};

/// Grouping of `ctrace cost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum By {
    /// Claude Code session
    Session,
    /// UTC day
    Day,
    /// UTC week (named by its Monday)
    Week,
    /// UTC month
    Month,
    /// Model
    Model,
    /// Project (working directory)
    Project,
    /// Agent type (`main` or the subagent type)
    Agent,
    /// First tool called by the response
    Tool,
    /// To-do or Beads issue in progress
    Task,
    /// 5-hour billing window
    Block,
}

impl From<By> for GroupBy {
    fn from(by: By) -> Self {
        match by {
            By::Session => GroupBy::Session,
            By::Day => GroupBy::Day,
            By::Week => GroupBy::Week,
            By::Month => GroupBy::Month,
            By::Model => GroupBy::Model,
            By::Project => GroupBy::Project,
            By::Agent => GroupBy::Agent,
            By::Tool => GroupBy::Tool,
            By::Task => GroupBy::Task,
            By::Block => GroupBy::Block,
        }
    }
}

/// `ctrace cost --source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// Transcript tokens times the price table (ccusage's method)
    Transcript,
    /// What Claude Code's telemetry reported per request (`api_request` events); requests
    /// without an event are left out of USD
    Telemetry,
    /// Telemetry where a request has it, the transcript's figure elsewhere
    Best,
}

impl From<Source> for CostSource {
    fn from(source: Source) -> Self {
        match source {
            Source::Transcript => CostSource::Transcript,
            Source::Telemetry => CostSource::Telemetry,
            Source::Best => CostSource::Best,
        }
    }
}

/// Arguments of `ctrace cost`.
#[derive(Debug, Args)]
pub struct CostArgs {
    /// Group rows by this key
    #[arg(long, value_enum, default_value = "session")]
    pub by: By,
    /// Only API responses at or after this time (2h, yesterday, 2026-01-31, RFC 3339)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only API responses at or before this time
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Only this session (id or unique prefix)
    #[arg(long, value_name = "S")]
    pub session: Option<String>,
    /// One row per model within each group
    #[arg(long)]
    pub breakdown: bool,
    /// Print a JSON array of rows
    #[arg(long)]
    pub json: bool,
    /// Where USD comes from (telemetry needs `ctrace serve` receiving Claude Code's OTLP:
    /// `ctrace install --telemetry`)
    #[arg(long, value_enum, default_value = "transcript")]
    pub source: Source,
    /// Per session and model: transcript figures next to telemetry's, the difference, and
    /// the requests present in one and missing in the other (sessions with telemetry, or
    /// --session)
    #[arg(long, conflicts_with_all = ["by", "breakdown", "since", "until", "source"])]
    pub reconcile: bool,
}

fn usd(cost: Option<f64>, source: CostSource) -> String {
    let none = match source {
        CostSource::Telemetry => "no telemetry",
        CostSource::Transcript | CostSource::Best => "unpriced",
    };
    cost.map_or_else(|| none.to_owned(), |c| format!("${c:.2}"))
}

/// Runs `ctrace cost`; returns the exit code.
///
/// # Errors
/// [`UsageError`] for a bad `--since`/`--until`; when the views cannot be updated or read.
pub fn run(store: &Store, args: &CostArgs) -> anyhow::Result<i32> {
    let now = now_ns();
    let since = args
        .since
        .as_deref()
        .map(|t| parse_time(t, now, "--since"))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|t| parse_time(t, now, "--until"))
        .transpose()?;
    super::refresh(store)?;
    let db = super::views_for_reading(store)?;
    let session = match &args.session {
        Some(prefix) => {
            let found = crate::views::tree::resolve_session(&db, prefix)?;
            match found.as_slice() {
                [one] => Some(one.clone()),
                [] => return Err(UsageError(format!("no session matches `{prefix}`")).into()),
                _ => {
                    return Err(UsageError(format!(
                        "`{prefix}` matches several sessions: {}",
                        found.join(", ")
                    ))
                    .into());
                }
            }
        }
        None => None,
    };
    let prices = PriceTable::new(&store.config().pricing);
    if args.reconcile {
        let report = crate::views::reconcile::reconcile(&db, &prices, session.as_deref())?;
        let mut out = std::io::stdout().lock();
        if args.json {
            serde_json::to_writer_pretty(&mut out, &report.rows)?;
            writeln!(out)?;
        } else {
            write_reconciliation(&mut out, &report)?;
        }
        return Ok(0);
    }
    let by = GroupBy::from(args.by);
    let report = crate::views::cost::query(
        &db,
        &prices,
        &CostQuery {
            by,
            since,
            until,
            session,
            source: args.source.into(),
        },
    )?;
    let mut out = std::io::stdout().lock();
    if args.json {
        write_json(&mut out, by, &report, args.breakdown)?;
    } else {
        write_table(&mut out, by, &report, args.breakdown)?;
    }
    Ok(0)
}

/// `--reconcile` as a table, then the requests each row names.
fn write_reconciliation(
    out: &mut impl Write,
    report: &crate::views::reconcile::Reconciliation,
) -> anyhow::Result<()> {
    if report.rows.is_empty() {
        writeln!(
            out,
            "no telemetry in the store: run `ctrace serve` and `ctrace install --telemetry`, \
             then use Claude Code"
        )?;
        return Ok(());
    }
    let columns = [
        "SESSION",
        "MODEL",
        "REQUESTS (TX/OTEL)",
        "TOKENS TX",
        "TOKENS OTEL",
        "USD TX",
        "USD OTEL",
        "DIFF",
        "ONLY TX",
        "ONLY OTEL",
        "DIFFER",
    ];
    let right: Vec<usize> = (2..columns.len()).collect();
    let mut table = super::table::plain(&columns, &right);
    let tokens = |s: &crate::views::reconcile::Side| {
        s.input_tokens + s.output_tokens + s.cache_creation_tokens + s.cache_read_tokens
    };
    let money = |usd: Option<f64>| usd.map_or_else(|| "-".to_owned(), |c| format!("${c:.4}"));
    for r in &report.rows {
        table.add_row(vec![
            r.session.clone(),
            r.model.clone(),
            format!("{}/{}", r.transcript.requests, r.telemetry.requests),
            tokens(&r.transcript).to_string(),
            tokens(&r.telemetry).to_string(),
            money(r.transcript.cost_usd),
            money(r.telemetry.cost_usd),
            r.difference_usd
                .map_or_else(|| "-".to_owned(), |d| format!("{d:+.4}")),
            r.missing_in_telemetry.to_string(),
            r.missing_in_transcript.to_string(),
            r.mismatched.to_string(),
        ]);
    }
    writeln!(out, "{}", super::table::render(&table))?;
    writeln!(out, "prices (transcript side): {}", report.price_table)?;
    for r in &report.rows {
        let name = format!("{} {}", r.session, r.model);
        if r.missing_in_telemetry > 0 {
            writeln!(
                out,
                "{name}: {} requests not in telemetry: {}",
                r.missing_in_telemetry,
                listed(&r.missing_in_telemetry_ids, r.missing_in_telemetry)
            )?;
        }
        if r.missing_in_transcript > 0 {
            writeln!(
                out,
                "{name}: {} requests not in transcripts: {}",
                r.missing_in_transcript,
                listed(&r.missing_in_transcript_ids, r.missing_in_transcript)
            )?;
        }
        for m in &r.mismatched_requests {
            writeln!(
                out,
                "{name}: {} differs: transcript {} telemetry {}{}",
                m.request_id,
                money(m.transcript_usd),
                money(m.telemetry_usd),
                if m.tokens_differ {
                    " (tokens differ)"
                } else {
                    ""
                }
            )?;
        }
    }
    Ok(())
}

fn listed(ids: &[String], count: u64) -> String {
    let more = count.saturating_sub(ids.len() as u64);
    if more > 0 {
        format!("{} and {more} more", ids.join(", "))
    } else {
        ids.join(", ")
    }
}

fn write_json(
    out: &mut impl Write,
    by: GroupBy,
    report: &CostReport,
    breakdown: bool,
) -> anyhow::Result<()> {
    let rows = crate::views::cost_rows::json_rows(by, report, breakdown);
    serde_json::to_writer_pretty(&mut *out, &rows)?;
    writeln!(out)?;
    Ok(())
}

fn write_table(
    out: &mut impl Write,
    by: GroupBy,
    report: &CostReport,
    breakdown: bool,
) -> anyhow::Result<()> {
    let header = by.key_name().to_uppercase();
    // Grouped by model, the key is the model: no second model column.
    let with_model = !matches!(by, GroupBy::Model);
    let mut columns = vec![header.as_str()];
    if with_model {
        columns.push("MODEL");
    }
    columns.extend(["INPUT", "OUTPUT", "CACHE WRITE", "CACHE READ", "USD"]);
    let first_number = columns.len() - 5;
    let right: Vec<usize> = (first_number..columns.len()).collect();
    let mut table = super::table::plain(&columns, &right);
    let row = |key: &str, model: &str, tokens: &TokenCounts, usd: String| {
        let mut cells = vec![key.to_owned()];
        if with_model {
            cells.push(model.to_owned());
        }
        cells.extend([
            tokens.input.to_string(),
            tokens.output.to_string(),
            tokens.cache_creation.to_string(),
            tokens.cache_read.to_string(),
            usd,
        ]);
        cells
    };
    let mut total = TokenCounts::default();
    let mut priced = 0.0;
    let mut any_unpriced = false;
    for m in merge(&report.rows) {
        let models = match m.models.as_slice() {
            [one] => one.clone(),
            [first, rest @ ..] => format!("{first} +{}", rest.len()),
            [] => String::new(),
        };
        let model = if breakdown { "" } else { models.as_str() };
        table.add_row(row(&m.key, model, &m.tokens, usd(m.cost, report.source)));
        if breakdown {
            for r in report.rows.iter().filter(|r| r.key == m.key) {
                table.add_row(row("", &r.model, &r.tokens, usd(r.cost_usd, report.source)));
            }
        }
        total.add(&m.tokens);
        match m.cost {
            Some(c) => priced += c,
            None => any_unpriced = true,
        }
    }
    let total_usd = if any_unpriced {
        let none = usd(None, report.source);
        format!("${priced:.2}+{none}")
    } else {
        usd(Some(priced), report.source)
    };
    table.add_row(row("TOTAL", "", &total, total_usd));
    writeln!(out, "{}", super::table::render(&table))?;
    match report.source {
        CostSource::Transcript => writeln!(out, "prices: {}", report.price_table)?,
        CostSource::Telemetry => writeln!(
            out,
            "USD as Claude Code's telemetry reported it; {} responses without telemetry are not counted",
            report.without_telemetry
        )?,
        CostSource::Best => writeln!(
            out,
            "USD as telemetry reported it where it has the response, else computed with prices: {}",
            report.price_table
        )?,
    }
    if !report.unpriced.is_empty() {
        let list: Vec<String> = report
            .unpriced
            .iter()
            .map(|(model, tokens)| format!("{model} ({tokens} tokens)"))
            .collect();
        writeln!(
            out,
            "unpriced models (not counted in USD; add them under [pricing.models] in config.toml): {}",
            list.join(", ")
        )?;
    }
    if !report.problems.is_empty() {
        let list: Vec<String> = report
            .problems
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        writeln!(
            out,
            "input problems (rows kept in the views' problems table): {}",
            list.join(", ")
        )?;
    }
    Ok(())
}
