//! `ctrace cost`: tokens and USD by session, day, week, month, model, project, agent, tool,
//! task or 5-hour block, from the views (brought up to date first).

use std::io::Write;

use clap::{Args, ValueEnum};

use super::UsageError;
use super::time::{now_ns, parse_time};
use crate::log::Store;
use crate::views::cost::{CostQuery, CostReport, GroupBy};
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
}

fn usd(cost: Option<f64>) -> String {
    cost.map_or_else(|| "unpriced".to_owned(), |c| format!("${c:.2}"))
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
    let by = GroupBy::from(args.by);
    let report = crate::views::cost::query(
        &db,
        &prices,
        &CostQuery {
            by,
            since,
            until,
            session,
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
        table.add_row(row(&m.key, model, &m.tokens, usd(m.cost)));
        if breakdown {
            for r in report.rows.iter().filter(|r| r.key == m.key) {
                table.add_row(row("", &r.model, &r.tokens, usd(r.cost_usd)));
            }
        }
        total.add(&m.tokens);
        match m.cost {
            Some(c) => priced += c,
            None => any_unpriced = true,
        }
    }
    let total_usd = if any_unpriced {
        format!("${priced:.2}+unpriced")
    } else {
        usd(Some(priced))
    };
    table.add_row(row("TOTAL", "", &total, total_usd));
    writeln!(out, "{}", super::table::render(&table))?;
    writeln!(out, "prices: {}", report.price_table)?;
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
