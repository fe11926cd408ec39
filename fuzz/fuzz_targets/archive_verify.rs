//! The archive reader of `ctrace import` (`export::archive::verify`: zstd, tar, header,
//! manifest, checksums, member names, chunk framing, record decoding) on arbitrary bytes:
//! errors only, no panic, no unbounded allocation; an archive it accepts holds only records
//! that decode, in the counts its manifest gives.
//!
//! Three kinds of input, by prefix:
//! - none: the bytes are the archive file (`.tar.zst`);
//! - `TAR`: the bytes are the uncompressed tar stream, compressed here;
//! - `FIX`: the bytes are the uncompressed tar stream, whose manifest is brought in line with
//!   the members after mutation (each member's size, SHA-256 and record count, the record
//!   total, then `manifest.json.sha256`), so that mutated chunks get past the checksums to the
//!   chunk framing and the record decoder.
#![no_main]

use std::io::Read;
use std::path::PathBuf;

use ctrace::export::archive::{
    CHUNK_DIR, MANIFEST_MEMBER, MANIFEST_SUM_MEMBER, sha256_hex, split_chunk, verify,
};
use ctrace::log::Record;
use libfuzzer_sys::fuzz_target;

/// Largest uncompressed input handled (bytes): keeps runs fast.
const MAX_FUZZ_BYTES: usize = 4 << 20;

/// The members of a tar stream, as (name, content); `None` when it does not parse.
fn members(tar_bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        let name = entry.path().ok()?.to_string_lossy().into_owned();
        if entry.size() > MAX_FUZZ_BYTES as u64 {
            return None;
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content).ok()?;
        out.push((name, content));
    }
    Some(out)
}

/// The tar stream with the manifest fixed up (see the module docs); `None` when the input is
/// not a tar stream with a JSON manifest.
fn fix(tar_bytes: &[u8]) -> Option<Vec<u8>> {
    let mut members = members(tar_bytes)?;
    let at = members
        .iter()
        .position(|(name, _)| name == MANIFEST_MEMBER)?;
    let mut manifest: serde_json::Value = serde_json::from_slice(&members[at].1).ok()?;
    let mut total = 0u64;
    if let Some(entries) = manifest.get_mut("members").and_then(|m| m.as_array_mut()) {
        for (entry, (name, content)) in entries.iter_mut().zip(&members[..at]) {
            let Some(entry) = entry.as_object_mut() else {
                continue;
            };
            entry.insert("name".into(), name.clone().into());
            entry.insert("bytes".into(), (content.len() as u64).into());
            entry.insert("sha256".into(), sha256_hex(content).into());
            if name.starts_with(CHUNK_DIR)
                && let Ok(records) = split_chunk(name, content)
            {
                entry.insert("records".into(), (records.len() as u64).into());
                total += records.len() as u64;
            }
        }
    }
    if let Some(object) = manifest.as_object_mut() {
        object.insert("records".into(), total.into());
    }
    let manifest = serde_json::to_vec(&manifest).ok()?;
    let sum = format!("{}\n", sha256_hex(&manifest)).into_bytes();
    members[at].1 = manifest;
    match members.get_mut(at + 1) {
        Some((name, content)) if name == MANIFEST_SUM_MEMBER => *content = sum,
        _ => members.insert(at + 1, (MANIFEST_SUM_MEMBER.to_owned(), sum)),
    }
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in &members {
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o600);
        // Names the tar crate refuses to write (`..`, absolute) are written raw.
        if header.set_path(name).is_err() {
            let raw = name.as_bytes();
            let n = raw.len().min(99);
            header.as_old_mut().name[..n].copy_from_slice(&raw[..n]);
        }
        header.set_cksum();
        builder.append(&header, content.as_slice()).ok()?;
    }
    builder.into_inner().ok()
}

/// A file for this process's inputs (the reader takes a path).
fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!(
        "ctrace-fuzz-archive-{}.tar.zst",
        std::process::id()
    ))
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_FUZZ_BYTES {
        return;
    }
    let file = if let Some(rest) = data.strip_prefix(b"TAR") {
        zstd::bulk::compress(rest, 1).unwrap()
    } else if let Some(rest) = data.strip_prefix(b"FIX") {
        let tar_bytes = fix(rest).unwrap_or_else(|| rest.to_vec());
        zstd::bulk::compress(&tar_bytes, 1).unwrap()
    } else {
        data.to_vec()
    };
    let path = scratch();
    std::fs::write(&path, &file).unwrap();
    let verified = verify(&path, Box::new(|_| {}));
    if let Ok(manifest) = verified {
        // Accepted: every chunk splits and every record decodes, in the manifest's counts.
        let tar_bytes = zstd::stream::decode_all(file.as_slice()).unwrap();
        let members = members(&tar_bytes).expect("an accepted archive is a tar stream");
        let mut total = 0u64;
        for (name, content) in &members {
            if name.starts_with(CHUNK_DIR) {
                let records = split_chunk(name, content).expect("accepted chunks split");
                for bytes in &records {
                    assert!(Record::decode(bytes).is_ok(), "accepted record decodes");
                }
                total += records.len() as u64;
            }
        }
        assert_eq!(total, manifest.records);
    }
});
