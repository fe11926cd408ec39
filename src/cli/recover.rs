//! `ctrace recover`: rebuild a lost, corrupt or rolled-back MANIFEST from the segments' own
//! footers and block indexes. Dry run unless `--apply`; never deletes anything.

use std::io::Write;

use clap::Args;

use crate::log::Store;
use crate::log::recover::{RecoverPlan, recover_manifest};

/// Arguments of `recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Write the rebuilt MANIFEST (default: print what would be written)
    #[arg(long)]
    pub apply: bool,
    /// Print the plan as JSON
    #[arg(long)]
    pub json: bool,
}

/// Runs `recover`. Exit 0 when the MANIFEST matches the segments or was rewritten; 1 when a
/// dry run found a MANIFEST to rewrite, or segment files do not open.
///
/// # Errors
/// Lock, `segments/` or commit failures; I/O errors writing stdout.
pub fn run(store: &Store, args: &RecoverArgs) -> anyhow::Result<i32> {
    let plan = recover_manifest(store, args.apply)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        write_json(&mut out, &plan)?;
    } else {
        write_text(&mut out, &plan)?;
    }
    let pending = plan.differs && !plan.applied;
    Ok(i32::from(pending || !plan.rebuilt.unreadable.is_empty()))
}

/// The plan as one JSON object.
fn write_json(out: &mut impl Write, plan: &RecoverPlan) -> anyhow::Result<()> {
    let manifest = &plan.rebuilt.manifest;
    let segments: Vec<serde_json::Value> = manifest
        .segments
        .iter()
        .map(|s| {
            serde_json::json!({
                "file": s.file, "first_offset": s.id.0, "end_offset": s.end().0,
                "records": s.record_count, "bytes": s.file_bytes,
            })
        })
        .collect();
    let unreadable: Vec<serde_json::Value> = plan
        .rebuilt
        .unreadable
        .iter()
        .map(|(file, why)| serde_json::json!({"file": file, "error": why}))
        .collect();
    super::output::json_line(
        out,
        &serde_json::json!({
            "problem": plan.problem,
            "differs": plan.differs,
            "applied": plan.applied,
            "segments": segments,
            "next_offset": manifest.next_offset.0,
            "generation": manifest.generation,
            "cursors": manifest.cursors.len(),
            "superseded": plan.rebuilt.superseded,
            "unreadable": unreadable,
            "undecodable_offsets": plan.rebuilt.undecodable.iter().map(|o| o.0).collect::<Vec<_>>(),
            "damaged": plan.rebuilt.damaged.iter().map(|(file, ranges)| serde_json::json!({
                "file": file,
                "skipped": ranges.iter().map(|(a, b)| [a.0, b.0]).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    )?;
    Ok(())
}

/// The plan for a person: what the MANIFEST gets, and every file left out or salvaged.
fn write_text(out: &mut impl Write, plan: &RecoverPlan) -> anyhow::Result<()> {
    let manifest = &plan.rebuilt.manifest;
    if let Some(problem) = &plan.problem {
        writeln!(out, "MANIFEST as it is: {problem}")?;
    }
    if !plan.differs {
        writeln!(
            out,
            "MANIFEST matches the segments ({} segments, next offset {}); nothing to do",
            manifest.segments.len(),
            manifest.next_offset.0
        )?;
    } else {
        write_changes(out, plan)?;
    }
    for file in &plan.rebuilt.superseded {
        writeln!(out, "superseded (a newer copy is listed): {file}")?;
    }
    for (file, ranges) in &plan.rebuilt.damaged {
        let ranges: Vec<String> = ranges
            .iter()
            .map(|(a, b)| format!("{}..{}", a.0, b.0))
            .collect();
        let verb = if plan.applied {
            "salvaged"
        } else {
            "would salvage"
        };
        writeln!(
            out,
            "{verb} {file}: its intact blocks into a new segment, without offsets {} (the damaged file goes to quarantine/)",
            ranges.join(", ")
        )?;
    }
    for (file, why) in &plan.rebuilt.unreadable {
        writeln!(out, "left out, does not open: {file}: {why}")?;
    }
    for offset in &plan.rebuilt.undecodable {
        writeln!(
            out,
            "record at offset {} does not decode as a record (kept as it is; `ctrace verify` reports it)",
            offset.0
        )?;
    }
    if plan.differs && !plan.applied {
        writeln!(out, "dry run: run `ctrace recover --apply` to write it")?;
    }
    Ok(())
}

/// The MANIFEST that is (or would be) written: its figures and the segments new to it.
fn write_changes(out: &mut impl Write, plan: &RecoverPlan) -> anyhow::Result<()> {
    let manifest = &plan.rebuilt.manifest;
    let verb = if plan.applied { "wrote" } else { "would write" };
    writeln!(
        out,
        "{verb} a MANIFEST of {} segments, next offset {}, generation {}, {} ingest cursors:",
        manifest.segments.len(),
        manifest.next_offset.0,
        manifest.generation,
        manifest.cursors.len()
    )?;
    let known: std::collections::BTreeSet<&str> = plan
        .previous
        .iter()
        .flat_map(|m| m.segments.iter().map(|s| s.file.as_str()))
        .collect();
    let unchanged = manifest
        .segments
        .iter()
        .filter(|s| known.contains(s.file.as_str()))
        .count();
    if unchanged > 0 {
        writeln!(
            out,
            "  ({unchanged} segments as the MANIFEST lists them now)"
        )?;
    }
    for s in manifest
        .segments
        .iter()
        .filter(|s| !known.contains(s.file.as_str()))
    {
        writeln!(
            out,
            "  {}  offsets {}..{}  {} records",
            s.file,
            s.id.0,
            s.end().0,
            s.record_count
        )?;
    }
    Ok(())
}
