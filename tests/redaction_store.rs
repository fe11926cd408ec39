//! Redaction end to end (issue 6): secrets in hook payloads (inbox and spool), ingested
//! transcripts, an imported asciicast with a key split across two output events, and a PTY
//! recording whose output splits a key across two writes, never reach any file under the store
//! (segments decompressed, inbox, spool, runtime logs) or the fallback spool.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers"
)]

mod common;

use std::path::{Path, PathBuf};

use common::Sandbox;

fn alnum(n: usize, seed: &str) -> String {
    seed.chars().cycle().take(n).collect()
}

/// Every regular file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Asserts no needle occurs in any file under `dirs` (sealed segments decompressed too).
/// Returns the number of files checked.
fn assert_absent(dirs: &[PathBuf], needles: &[String]) -> usize {
    let mut checked = 0;
    for dir in dirs {
        for path in files(dir) {
            let mut contents = vec![std::fs::read(&path).unwrap()];
            if path.extension().is_some_and(|e| e == "seg") {
                contents.push(zstd::stream::decode_all(contents[0].as_slice()).unwrap());
            }
            for bytes in &contents {
                for needle in needles {
                    assert!(
                        memchr::memmem::find(bytes, needle.as_bytes()).is_none(),
                        "{needle} found in {}",
                        path.display()
                    );
                }
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn no_secret_reaches_any_file_under_the_store() {
    let sandbox = Sandbox::new();
    let ant = format!("sk-ant-api03-{}", alnum(60, "Q7wE9rT1yU3iO5pA"));
    let oai = format!("sk-proj-{}", alnum(48, "Zx8Cv6Bn4Mm2Lk0J"));
    let gh = format!("ghp_{}", alnum(36, "Hg5Fd3Sa1Pq9Wr7T"));
    let aws = "AKIAQWERTYUIOPASDFGH".to_owned();
    let password = "correct-horse-battery-staple".to_owned();
    let bearer = alnum(40, "Yt6Re4Wq2Ui8Op0K");
    let key_body = alnum(64, "Mn3Bv5Cx7Zl9Kj1H");
    let pty_key = format!("sk-ant-api03-{}", alnum(60, "Pp4Oo6Ii8Uu0Yy2T"));
    let cast_key = format!("ghp_{}", alnum(40, "Gg1Hh3Jj5Kk7Ll9M"));
    // Distinctive pieces: any of them in a file means (part of) a secret leaked.
    let needles: Vec<String> = [&ant, &oai, &gh, &aws, &password, &bearer, &key_body]
        .iter()
        .map(|s| s[s.len() - 16..].to_owned())
        .chain([
            pty_key[pty_key.len() - 30..].to_owned(),
            pty_key[13..30].to_owned(),
        ])
        .chain([
            cast_key[cast_key.len() - 20..].to_owned(),
            cast_key[4..20].to_owned(),
        ])
        .collect();

    // Hook payloads, one per secret kind.
    let command = format!(
        "export OPENAI_API_KEY={oai} && curl -H \"Authorization: Bearer {bearer}\" --user x:y \
         https://{gh}@github.com && echo password={password}"
    );
    let payload = serde_json::json!({
        "session_id": "sec-1",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": command},
        "env": {"ANTHROPIC_API_KEY": ant, "AWS_ACCESS_KEY_ID": aws},
        "key": format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{key_body}\n-----END OPENSSH PRIVATE KEY-----\n"),
    });
    let payload = serde_json::to_vec(&payload).unwrap();
    sandbox.hook(&payload);
    // The same payload while the inbox is not writable: it goes to spool/.
    sandbox.ok(&["stats"]);
    let inbox = sandbox.store().join("inbox");
    let aside = sandbox.store().join("inbox.aside");
    std::fs::rename(&inbox, &aside).unwrap();
    std::fs::write(&inbox, b"").unwrap();
    sandbox.hook(&payload);
    let spool = sandbox.store().join("spool");
    assert_eq!(files(&spool).len(), 1, "the payload was spooled");
    assert_absent(std::slice::from_ref(&spool), &needles);
    std::fs::remove_file(&inbox).unwrap();
    std::fs::rename(&aside, &inbox).unwrap();

    // A transcript with secrets in a tool result.
    let line = serde_json::json!({
        "type": "user",
        "uuid": "u1",
        "sessionId": "sec-2",
        "timestamp": "2026-01-01T00:00:00Z",
        "message": {"role": "user", "content": [{"type": "tool_result", "content": format!("ANTHROPIC_API_KEY={ant}\nGITHUB_TOKEN={gh}\n")}]},
    });
    let transcript = sandbox.path("t.jsonl");
    std::fs::write(&transcript, format!("{line}\n")).unwrap();
    // An asciicast whose output splits a token across two events.
    let cut = 10;
    let cast = format!(
        "{{\"version\": 2, \"width\": 80, \"height\": 24, \"timestamp\": 1767225600}}\n\
         [0.1, \"o\", \"$ cat token\\r\\n{}\"]\n[0.2, \"o\", \"{}\\r\\n$ \"]\n",
        &cast_key[..cut],
        &cast_key[cut..]
    );
    let cast_path = sandbox.path("session.cast");
    std::fs::write(&cast_path, cast).unwrap();
    let summary = sandbox.ingest(&[&transcript, &cast_path]);
    assert_eq!(summary.files, 2);

    // A PTY recording whose output splits a key across two writes.
    let out = sandbox
        .command(&[
            "record",
            "-q",
            "--",
            "sh",
            "-c",
            "printf '%s' \"$A\"; sleep 0.3; printf '%s\\n' \"$B\"",
        ])
        .env("A", &pty_key[..20])
        .env("B", &pty_key[20..])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The child's own output reaches the terminal unredacted (only the store is redacted).
    assert!(String::from_utf8_lossy(&out.stdout).contains(&pty_key));

    // Seal everything and look at every file.
    let stats = sandbox.ok_stdout(&["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_str(stats.trim()).unwrap();
    // Seven in each of the two hook payloads, two in the transcript, one in the cast, one in
    // the recording.
    let expected: u64 = 2 * 7 + 2 + 1 + 1;
    assert!(stats["redactions"].as_u64().unwrap() >= expected, "{stats}");
    sandbox.ok(&["verify"]);
    let checked = assert_absent(&[sandbox.store(), sandbox.tmp()], &needles);
    assert!(checked >= 4, "{checked} files");
    // The replacements are there, and the stored hook payload is still valid JSON.
    let records = sandbox.cat(&[]);
    let hook = records
        .iter()
        .find(|r| r.session.as_deref() == Some("sec-1"))
        .unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&hook.raw).unwrap();
    assert_eq!(
        stored["env"]["ANTHROPIC_API_KEY"],
        "[REDACTED:anthropic_api_key]"
    );
    let pty: Vec<u8> = records
        .iter()
        .filter(|r| r.source == "pty")
        .flat_map(|r| r.raw.clone())
        .collect();
    let pty = String::from_utf8_lossy(&pty);
    assert!(pty.contains("[REDACTED:anthropic_api_key]"), "{pty}");
    assert!(pty.contains("[REDACTED:github_token]"), "{pty}");
}
