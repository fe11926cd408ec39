//! Encrypted export archives (issue 14, "Encryption at rest"): `ctrace export --encrypt-to R` or
//! `--passphrase` writes an age file (age-encryption.org/v1) that wraps the archive, `ctrace
//! import` recognises it by its header and decrypts it with `--identity FILE` or
//! `CTRACE_PASSPHRASE`. A wrong key or passphrase, a changed or a cut file are refused naming the
//! file, the store is byte-identical afterwards, and no decrypted copy is left behind.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a failed setup step should fail the test"
)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;

use age::secrecy::ExposeSecret;
use common::{Sandbox, assert_success};
use ctrace::config::Config;
use ctrace::export::archive;
use ctrace::log::Store;
use ctrace::model::{Body, HookBody, Record, Source};

const T0: u64 = 1_760_000_000_000_000_000;
/// A string held by one record, that must not appear in an encrypted export.
const CANARY: &str = "ctrace-plaintext-canary-4711";

fn hook(ts: u64, session: &str, raw: &[u8]) -> Record {
    Record {
        ts,
        source: Source::Hook,
        session: Some(session.into()),
        body: Body::Hook(HookBody {
            event: Some("PostToolUse".into()),
            tool_name: Some("Bash".into()),
            tool_use_id: Some(format!("toolu_{ts}")),
            raw: raw.to_vec(),
            ..HookBody::default()
        }),
        redactions: 0,
    }
}

/// A store of 61 records whose archive spans several 64 KiB age chunks: one holds [`CANARY`],
/// the others pseudo-random hex that zstd cannot shrink much.
fn build_store(store: &Path) {
    let store = Store::open(store, Config::default()).unwrap();
    let canary = format!(r#"{{"tool_response":{{"stdout":"{CANARY}"}}}}"#);
    store.append(&hook(T0, "s1", canary.as_bytes())).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..60u64 {
        let mut noise = String::with_capacity(8192);
        for _ in 0..512 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            noise.push_str(&format!("{:016x}", state >> 1));
        }
        let raw = format!(r#"{{"n":{i},"noise":"{noise}"}}"#);
        let session = if i % 2 == 0 { "s1" } else { "s2" };
        store
            .append(&hook(T0 + 1_000_000 * (i + 1), session, raw.as_bytes()))
            .unwrap();
    }
    store.refresh().unwrap();
}

fn run_in(sandbox: &Sandbox, store: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = sandbox.command_in(store, args);
    command.env_remove("CTRACE_PASSPHRASE");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn ok_in(sandbox: &Sandbox, store: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let output = run_in(sandbox, store, args, env);
    assert_success(args, &output);
    output
}

/// `cat --json` lines without their offsets.
fn records_without_offsets(sandbox: &Sandbox, store: &Path) -> Vec<String> {
    let output = ok_in(sandbox, store, &["cat", "--json"], &[]);
    common::parse_cat(&output.stdout)
        .into_iter()
        .map(|r| {
            let mut value: serde_json::Value = serde_json::from_str(&r.line).unwrap();
            value.as_object_mut().unwrap().remove("offset");
            value.to_string()
        })
        .collect()
}

/// Every file of a store except the runtime log, with its bytes.
fn store_files(store: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in walkdir::WalkDir::new(store) {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(store)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if entry.file_type().is_file() && !rel.starts_with("logs") {
            files.insert(rel, std::fs::read(entry.path()).unwrap());
        }
    }
    files
}

/// A store holding one record of its own, so "unchanged" means something.
fn target_store(sandbox: &Sandbox, name: &str) -> PathBuf {
    let path = sandbox.path(name);
    let store = Store::open(&path, Config::default()).unwrap();
    store.append(&hook(T0 - 1, "other", b"{}")).unwrap();
    store.refresh().unwrap();
    path
}

/// A fresh X25519 key: writes it to `dir/name` as `age-keygen` does and returns the path and
/// the recipient.
fn age_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "# created: 2026-12-05T00:00:00Z\n# public key: {recipient}\n{}\n",
            identity.to_string().expose_secret()
        ),
    )
    .unwrap();
    (path, recipient)
}

/// Decrypted copies left in the commands' `TMPDIR`.
fn leftovers(sandbox: &Sandbox) -> Vec<String> {
    std::fs::read_dir(sandbox.tmp())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".ctrace-decrypted-"))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Issue 14 items 1 and 2: `export --encrypt-to` (two recipients) writes an age file without the
/// plaintext; age itself decrypts it to a normal archive; `import --verify-only` and `import`
/// with either identity give every record back.
#[test]
fn recipient_round_trip() {
    let sandbox = Sandbox::new();
    let a = sandbox.path("a");
    build_store(&a);
    let (key1, recipient1) = age_key(sandbox.root(), "key1.txt");
    let (key2, recipient2) = age_key(sandbox.root(), "key2.txt");
    let file = sandbox.path("all.tar.zst.age");
    let file_arg = file.to_str().unwrap();
    let export = [
        "export",
        "--encrypt-to",
        &recipient1,
        "--encrypt-to",
        &recipient2,
        "-o",
        file_arg,
    ];
    let output = ok_in(&sandbox, &a, &export, &[]);
    assert!(
        stderr(&output).contains("age-encrypted to 2 recipients"),
        "{}",
        stderr(&output)
    );
    let sealed = std::fs::read(&file).unwrap();
    assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
    assert!(sealed.len() > 3 * 65536, "want several age chunks");
    assert!(!contains(&sealed, CANARY.as_bytes()), "plaintext in export");
    assert!(
        !contains(&sealed, b"ctrace-archive"),
        "archive header in clear"
    );

    // age alone gives back a normal, verifying archive.
    let identity: age::x25519::Identity = std::fs::read_to_string(&key2)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .parse()
        .unwrap();
    let decryptor = age::Decryptor::new(&sealed[..]).unwrap();
    let mut plain = Vec::new();
    decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    let plain_file = sandbox.path("plain.tar.zst");
    std::fs::write(&plain_file, &plain).unwrap();
    let manifest = archive::verify(&plain_file, Box::new(|_| {})).unwrap();
    assert_eq!(manifest.records, 61);

    let verify = [
        "import",
        "--verify-only",
        "--identity",
        key1.to_str().unwrap(),
        file_arg,
    ];
    let out = ok_in(&sandbox, &sandbox.path("b"), &verify, &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok, 61 records"));

    let original = records_without_offsets(&sandbox, &a);
    for (store, key) in [("b", &key1), ("c", &key2)] {
        let store = sandbox.path(store);
        let import = [
            "import",
            "--json",
            "--identity",
            key.to_str().unwrap(),
            file_arg,
        ];
        let out = ok_in(&sandbox, &store, &import, &[]);
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["added"], 61);
        assert_eq!(records_without_offsets(&sandbox, &store), original);
    }
    assert!(
        records_without_offsets(&sandbox, &sandbox.path("b"))
            .iter()
            .any(|r| r.contains(CANARY))
    );
    assert_eq!(leftovers(&sandbox), Vec::<String>::new());
}

/// Issue 14 items 1 and 3: `--passphrase` with `CTRACE_PASSPHRASE`; import finds the passphrase
/// in the same variable, refuses a wrong one and says what is missing without it.
#[test]
fn passphrase_round_trip_via_env() {
    let sandbox = Sandbox::new();
    let a = sandbox.path("a");
    build_store(&a);
    let file = sandbox.path("all.age");
    let file_arg = file.to_str().unwrap();
    let env = [("CTRACE_PASSPHRASE", "correct horse battery staple")];
    ok_in(
        &sandbox,
        &a,
        &["export", "--passphrase", "-o", file_arg],
        &env,
    );
    let sealed = std::fs::read(&file).unwrap();
    assert!(sealed.starts_with(b"age-encryption.org/v1\n-> scrypt "));
    assert!(!contains(&sealed, CANARY.as_bytes()));

    let b = target_store(&sandbox, "b");
    let before = store_files(&b);
    let missing = run_in(&sandbox, &b, &["import", file_arg], &[]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("CTRACE_PASSPHRASE") && stderr(&missing).contains(file_arg),
        "{}",
        stderr(&missing)
    );
    let wrong = run_in(
        &sandbox,
        &b,
        &["import", file_arg],
        &[("CTRACE_PASSPHRASE", "wrong")],
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("wrong passphrase") && stderr(&wrong).contains(file_arg),
        "{}",
        stderr(&wrong)
    );
    assert_eq!(
        store_files(&b),
        before,
        "a refused import changed the store"
    );

    let out = ok_in(&sandbox, &b, &["import", "--json", file_arg], &env);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["added"], 61);
    assert_eq!(leftovers(&sandbox), Vec::<String>::new());
}

/// Issue 14 item 2: another key is refused naming the file, no key says `--identity` is
/// missing, and the store is unchanged.
#[test]
fn wrong_or_missing_identity_is_refused() {
    let sandbox = Sandbox::new();
    let a = sandbox.path("a");
    build_store(&a);
    let (_, recipient) = age_key(sandbox.root(), "right.txt");
    let (wrong_key, _) = age_key(sandbox.root(), "wrong.txt");
    let file = sandbox.path("all.tar.zst.age");
    let file_arg = file.to_str().unwrap();
    ok_in(
        &sandbox,
        &a,
        &["export", "--encrypt-to", &recipient, "-o", file_arg],
        &[],
    );
    let b = target_store(&sandbox, "b");
    let before = store_files(&b);

    let none = run_in(&sandbox, &b, &["import", file_arg], &[]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).contains("--identity") && stderr(&none).contains(file_arg),
        "{}",
        stderr(&none)
    );
    let wrong_arg = wrong_key.to_str().unwrap();
    for args in [
        vec!["import", "--identity", wrong_arg, file_arg],
        vec!["import", "--verify-only", "--identity", wrong_arg, file_arg],
    ] {
        let out = run_in(&sandbox, &b, &args, &[]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("none of the identities given can decrypt")
                && stderr(&out).contains(file_arg),
            "{}",
            stderr(&out)
        );
    }
    // A passphrase for a file encrypted to keys is refused as such.
    let out = run_in(
        &sandbox,
        &b,
        &["import", file_arg],
        &[("CTRACE_PASSPHRASE", "x")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        store_files(&b),
        before,
        "a refused import changed the store"
    );
    assert_eq!(leftovers(&sandbox), Vec::<String>::new());
}

/// Issue 14 item 2: a flipped byte anywhere (header, first, middle and last chunk) and a cut
/// file are refused naming the file; the store is unchanged and no decrypted copy remains.
#[test]
fn tampered_or_truncated_ciphertext_is_refused() {
    let sandbox = Sandbox::new();
    let a = sandbox.path("a");
    build_store(&a);
    let (key, recipient) = age_key(sandbox.root(), "key.txt");
    let key_arg = key.to_str().unwrap();
    let file = sandbox.path("all.tar.zst.age");
    ok_in(
        &sandbox,
        &a,
        &[
            "export",
            "--encrypt-to",
            &recipient,
            "-o",
            file.to_str().unwrap(),
        ],
        &[],
    );
    let sealed = std::fs::read(&file).unwrap();
    let b = target_store(&sandbox, "b");
    let before = store_files(&b);
    let bad = sandbox.path("bad.age");
    let bad_arg = bad.to_str().unwrap();
    let len = sealed.len();
    let header_end = contains_at(&sealed, b"\n---").unwrap();
    // A flip in a recipient stanza makes the file key unreadable: that is "not for these
    // identities" to age, which cannot tell it from a file for someone else.
    let flips = [
        header_end - 5,
        header_end + 20,
        header_end + 70_000,
        len / 2,
        len - 1,
    ];
    let cuts = [len - 1, len - 17, len / 2, header_end + 10, 30];
    let damaged = flips
        .iter()
        .map(|&at| {
            let mut bytes = sealed.clone();
            bytes[at] ^= 0x20;
            (format!("flip at {at}"), bytes)
        })
        .chain(
            cuts.iter()
                .map(|&cut| (format!("cut at {cut}"), sealed[..cut].to_vec())),
        );
    for (what, bytes) in damaged {
        std::fs::write(&bad, &bytes).unwrap();
        let out = run_in(
            &sandbox,
            &b,
            &["import", "--identity", key_arg, bad_arg],
            &[],
        );
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        let message = stderr(&out);
        assert!(
            message.contains(bad_arg)
                && (message.contains("damaged")
                    || message.contains("truncated")
                    || message.contains("changed")
                    || message.contains("none of the identities given")),
            "{what}: {message}"
        );
    }
    assert_eq!(
        store_files(&b),
        before,
        "a refused import changed the store"
    );
    assert_eq!(leftovers(&sandbox), Vec::<String>::new());
    // The undamaged file still imports.
    ok_in(
        &sandbox,
        &b,
        &["import", "--identity", key_arg, file.to_str().unwrap()],
        &[],
    );
}

fn contains_at(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Issue 14 item 1: bad recipients, `--encrypt-to` with `--passphrase`, encryption of a
/// non-archive format, and `--passphrase` without a passphrase are usage errors that write
/// nothing.
#[test]
fn bad_encryption_arguments_are_refused() {
    let sandbox = Sandbox::new();
    let a = sandbox.path("a");
    build_store(&a);
    let (key, recipient) = age_key(sandbox.root(), "key.txt");
    let secret = std::fs::read_to_string(&key)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let file = sandbox.path("out.age");
    let file_arg = file.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--encrypt-to", "age1nope"], "not an age recipient"),
        (vec!["--encrypt-to", &secret], "secret key"),
        (
            vec!["--encrypt-to", &recipient, "--passphrase"],
            "cannot be used with",
        ),
        (
            vec!["--encrypt-to", &recipient, "--format", "jsonl"],
            "archive format only",
        ),
        (vec!["--passphrase"], "CTRACE_PASSPHRASE"),
        (vec!["--passphrase", "hunter2"], "unexpected argument"),
    ];
    for (extra, want) in cases {
        let mut args = vec!["export", "-o", file_arg];
        args.extend(&extra);
        let out = run_in(&sandbox, &a, &args, &[]);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{extra:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains(&secret[20..]), "secret key echoed");
        assert!(!file.exists(), "{extra:?} wrote {file_arg}");
    }
}

/// Issue 14, "Encrypted exports": an SSH ed25519 public key as `--encrypt-to` and its private
/// key (OpenSSH format, as `ssh-keygen` writes it, no passphrase) as `--identity` round-trip
/// every record; another SSH key is refused and the store stays unchanged.
#[test]
fn ssh_key_round_trip() {
    let sandbox = Sandbox::new();
    let a = sandbox.path("a");
    build_store(&a);
    let keygen = |name: &str| {
        let path = sandbox.path(name);
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "ctrace-test", "-f"])
            .arg(&path)
            .status()
            .expect("ssh-keygen (package openssh-client) runs");
        assert!(status.success());
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        (path, public.trim().to_owned())
    };
    let (private, public) = keygen("id_ed25519");
    let (other, _) = keygen("other_ed25519");
    let file = sandbox.path("ssh.tar.zst.age");
    let file_arg = file.to_str().unwrap();
    ok_in(
        &sandbox,
        &a,
        &["export", "--encrypt-to", &public, "-o", file_arg],
        &[],
    );
    assert!(!contains(&std::fs::read(&file).unwrap(), CANARY.as_bytes()));

    let b = target_store(&sandbox, "b");
    let before = store_files(&b);
    let refused = run_in(
        &sandbox,
        &b,
        &["import", "--identity", other.to_str().unwrap(), file_arg],
        &[],
    );
    assert!(!refused.status.success(), "a foreign SSH key decrypts");
    assert_eq!(
        store_files(&b),
        before,
        "a refused import changed the store"
    );

    let c = sandbox.path("c");
    let out = ok_in(
        &sandbox,
        &c,
        &[
            "import",
            "--json",
            "--identity",
            private.to_str().unwrap(),
            file_arg,
        ],
        &[],
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["added"], 61);
    assert_eq!(
        records_without_offsets(&sandbox, &c),
        records_without_offsets(&sandbox, &a)
    );
    assert_eq!(leftovers(&sandbox), Vec::<String>::new());
}
