//! Hostile archives (issue 14 items 3 and 8): member names that point outside the archive's
//! layout are refused, and a checksum-valid archive holding a record that does not decode is
//! refused by `import --verify-only` and `import`, leaving the store byte-identical.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a failed setup step should fail the test"
)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use common::{Sandbox, assert_success};
use ctrace::config::Config;
use ctrace::export::archive::{self, ArchiveError};
use ctrace::log::Store;
use ctrace::model::{Body, HookBody, Record, Source};
use sha2::{Digest, Sha256};

const T0: u64 = 1_760_000_000_000_000_000;

fn hook(ts: u64, session: &str) -> Record {
    Record {
        ts,
        source: Source::Hook,
        session: Some(session.into()),
        body: Body::Hook(HookBody {
            event: Some("PreToolUse".into()),
            raw: format!(r#"{{"hook_event_name":"PreToolUse","session_id":"{session}"}}"#)
                .into_bytes(),
            ..HookBody::default()
        }),
        redactions: 0,
    }
}

/// An archive exported from a store of a few records; returns its members in order.
fn exported_members(sandbox: &Sandbox) -> Vec<(Vec<u8>, Vec<u8>)> {
    let a = sandbox.path("a");
    let store = Store::open(&a, Config::default()).unwrap();
    for i in 0..5 {
        store.append(&hook(T0 + i, &format!("s{i}"))).unwrap();
    }
    store.refresh().unwrap();
    let file = sandbox.path("good.tar.zst");
    let output = sandbox
        .command_in(&a, &["export", "-o", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&["export"], &output);
    let bytes = zstd::decode_all(&std::fs::read(&file).unwrap()[..]).unwrap();
    let mut members = Vec::new();
    let mut tar = tar::Archive::new(&bytes[..]);
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path_bytes().into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        members.push((name, content));
    }
    members
}

/// Writes members with their names exactly as given (the tar crate's own path setter refuses
/// `..`, which is the point of the test).
fn write_raw(path: &Path, members: &[(Vec<u8>, Vec<u8>)]) {
    let file = std::fs::File::create(path).unwrap();
    let encoder = zstd::stream::write::Encoder::new(file, 3).unwrap();
    let mut tar = tar::Builder::new(encoder);
    for (name, content) in members {
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o600);
        let raw = &mut header.as_ustar_mut().unwrap().name;
        raw.fill(0);
        raw[..name.len()].copy_from_slice(name);
        header.set_cksum();
        tar.append(&header, &content[..]).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap().flush().unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Rewrites the manifest (and its checksum member) with `edit` applied.
fn edit_manifest(members: &mut [(Vec<u8>, Vec<u8>)], edit: impl FnOnce(&mut serde_json::Value)) {
    let at = members
        .iter()
        .position(|(n, _)| n == b"manifest.json")
        .unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&members[at].1).unwrap();
    edit(&mut manifest);
    let mut bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    bytes.push(b'\n');
    let sum = format!("{}\n", sha256_hex(&bytes));
    members[at].1 = bytes;
    members[at + 1].1 = sum.into_bytes();
}

/// Every file of a store except the runtime log, with its bytes.
fn store_files(store: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in walkdir::WalkDir::new(store) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(store).unwrap();
        let rel = rel.to_string_lossy().into_owned();
        if entry.file_type().is_file() && !rel.starts_with("logs") {
            files.insert(rel, std::fs::read(entry.path()).unwrap());
        }
    }
    files
}

/// A target store holding one record; returns it and its files.
fn target(sandbox: &Sandbox) -> (std::path::PathBuf, BTreeMap<String, Vec<u8>>) {
    let b = sandbox.path("b");
    let store = Store::open(&b, Config::default()).unwrap();
    store.append(&hook(T0 - 1, "other")).unwrap();
    store.refresh().unwrap();
    let files = store_files(&b);
    (b, files)
}

fn assert_refused(sandbox: &Sandbox, store: &Path, file: &Path, needle: &str) {
    for verify_only in [true, false] {
        let mut args = vec!["import", file.to_str().unwrap()];
        if verify_only {
            args.push("--verify-only");
        }
        let output = sandbox.command_in(store, &args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

/// Issue 14 item 8: `../x`, `records/../../x`, absolute, backslash and foreign names are
/// refused by name, in the tar stream and in the manifest.
#[test]
fn member_names_outside_the_layout_are_refused() {
    let sandbox = Sandbox::new();
    let members = exported_members(&sandbox);
    let (b, before) = target(&sandbox);
    let chunk = members
        .iter()
        .position(|(n, _)| n.starts_with(b"records/"))
        .unwrap();
    let bad = sandbox.path("bad.tar.zst");
    for name in [
        "../x",
        "records/../../x",
        "/etc/passwd",
        "records/./00000000.bin",
        "records//00000000.bin",
        "records\\00000000.bin",
        "other/00000000.bin",
        "records/abc.bin",
    ] {
        let mut renamed = members.clone();
        renamed[chunk].0 = name.as_bytes().to_vec();
        edit_manifest(&mut renamed, |m| {
            m["members"][chunk]["name"] = name.into();
        });
        write_raw(&bad, &renamed);
        let error = archive::verify(&bad, Box::new(|_| {})).unwrap_err();
        assert!(
            matches!(error, ArchiveError::BadMemberName { ref member, .. } if member == name),
            "{name}: {error:?}"
        );
        assert_refused(&sandbox, &b, &bad, "refused");
    }
    // Only the manifest names the bad path; the tar member keeps its good name.
    let mut listed = members.clone();
    edit_manifest(&mut listed, |m| {
        m["members"][chunk]["name"] = "records/../../x".into();
    });
    write_raw(&bad, &listed);
    let error = archive::verify(&bad, Box::new(|_| {})).unwrap_err();
    assert!(
        matches!(error, ArchiveError::BadMemberName { .. }),
        "{error:?}"
    );
    // The unmodified members still import through the same path.
    write_raw(&bad, &members);
    archive::verify(&bad, Box::new(|_| {})).unwrap();
    assert_eq!(
        store_files(&b),
        before,
        "a refused import changed the store"
    );
}

/// Issue 14 item 3: a chunk whose record bytes are not a record encoding, with every checksum
/// fixed up, is refused naming the member and the record; the store is unchanged.
#[test]
fn undecodable_record_is_refused_before_import() {
    let sandbox = Sandbox::new();
    let mut members = exported_members(&sandbox);
    let (b, before) = target(&sandbox);
    let chunk = members
        .iter()
        .position(|(n, _)| n.starts_with(b"records/"))
        .unwrap();
    // Chunk layout: u32 LE length, then the record; garble the second record's bytes.
    let content = &mut members[chunk].1;
    let first = u32::from_le_bytes(content[..4].try_into().unwrap()) as usize;
    let second_at = 4 + first;
    let second = u32::from_le_bytes(content[second_at..second_at + 4].try_into().unwrap());
    for byte in &mut content[second_at + 4..second_at + 4 + second as usize] {
        *byte = 0xc1; // never valid MessagePack
    }
    let sum = sha256_hex(content);
    edit_manifest(&mut members, |m| {
        m["members"][chunk]["sha256"] = sum.into();
    });
    let bad = sandbox.path("undecodable.tar.zst");
    write_raw(&bad, &members);
    let error = archive::verify(&bad, Box::new(|_| {})).unwrap_err();
    assert!(
        matches!(error, ArchiveError::BadRecord { index: 1, .. }),
        "{error:?}"
    );
    assert_refused(&sandbox, &b, &bad, "does not decode");
    assert_eq!(
        store_files(&b),
        before,
        "a refused import changed the store"
    );
    let output = sandbox.command_in(&b, &["cat"]).output().unwrap();
    assert_success(&["cat"], &output);
}
