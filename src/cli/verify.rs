//! `ctrace verify`: check every byte of the store; exit 1 on damage.

use std::io::Write;

use clap::Args;

use crate::log::{Store, VerifyReport, verify};

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

/// Runs `verify`. Does not seal or change anything.
///
/// # Errors
/// I/O errors writing stdout.
pub fn run(store: &Store, args: &VerifyArgs) -> anyhow::Result<i32> {
    let mut report = verify(store);
    check_views(store, &mut report);
    check_index(store, &mut report);
    let mut out = std::io::stdout().lock();
    if args.json {
        write_json(&mut out, &report)?;
    } else {
        write_text(&mut out, &report)?;
    }
    Ok(if report.is_clean() { 0 } else { 1 })
}

/// Adds the views' check to `report`. The views are derived data: damage there is repaired
/// from the log (`compact --rebuild`).
fn check_views(store: &Store, report: &mut VerifyReport) {
    let views_file = crate::views::db_path(store.paths());
    match crate::views::check::check(store) {
        Ok(check) => {
            if !check.damage.is_empty() {
                for kind in check.damage {
                    report.damage.push(crate::log::Damage {
                        file: views_file.clone(),
                        position: None,
                        kind: format!("{kind} (run `ctrace compact --rebuild`)"),
                    });
                }
            } else if check.rows_compared > 0 {
                report.notes.push(format!(
                    "views: integrity_check ok, {} rows match a re-fold of the log",
                    check.rows_compared
                ));
            }
            report.notes.extend(check.notes);
        }
        Err(error) => report.notes.push(format!(
            "views not checked: {:#}",
            anyhow::Error::new(error)
        )),
    }
}

/// Adds the search index's check to `report`.
fn check_index(store: &Store, report: &mut VerifyReport) {
    let next = crate::log::load_manifest(store.paths())
        .map(|m| m.next_offset)
        .unwrap_or_default();
    let index_dir = crate::index::index_dir(store.paths());
    match crate::index::check(store.paths(), next) {
        Ok(Some(damage)) if damage.is_empty() => {
            report.notes.push(
                "index: checksums ok, checkpoint and documents agree with the log".to_owned(),
            );
        }
        Ok(Some(damage)) => {
            report
                .damage
                .extend(damage.into_iter().map(|kind| crate::log::Damage {
                    file: index_dir.clone(),
                    position: None,
                    kind: format!("{kind} (run `ctrace reindex`)"),
                }))
        }
        Ok(None) => {}
        Err(error) => report.notes.push(format!(
            "index not checked: {:#}",
            anyhow::Error::new(error)
        )),
    }
}

/// The report as one JSON object.
fn write_json(out: &mut impl Write, report: &VerifyReport) -> std::io::Result<()> {
    let damage: Vec<serde_json::Value> = report
        .damage
        .iter()
        .map(|d| {
            serde_json::json!({
                "file": d.file.display().to_string(),
                "position": d.position,
                "kind": d.kind,
            })
        })
        .collect();
    super::output::json_line(
        out,
        &serde_json::json!({
            "clean": report.is_clean(),
            "segments": report.segments,
            "blocks": report.blocks,
            "records": report.records,
            "inbox_files": report.inbox_files,
            "inbox_records": report.inbox_records,
            "damage": damage,
            "notes": report.notes,
        }),
    )
}

/// The report for a person: counts, notes, one line per damage, and a verdict.
fn write_text(out: &mut impl Write, report: &VerifyReport) -> std::io::Result<()> {
    writeln!(
        out,
        "checked {} segments, {} blocks, {} sealed records; {} inbox files with {} unsealed records",
        report.segments, report.blocks, report.records, report.inbox_files, report.inbox_records
    )?;
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
    for d in &report.damage {
        match d.position {
            Some(p) => writeln!(out, "DAMAGE {} at byte {p}: {}", d.file.display(), d.kind)?,
            None => writeln!(out, "DAMAGE {}: {}", d.file.display(), d.kind)?,
        }
    }
    writeln!(
        out,
        "{}",
        if report.is_clean() {
            "clean"
        } else {
            "damaged"
        }
    )
}
