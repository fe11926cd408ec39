//! `ctrace serve`'s security (issue 16, security item): the `Host` allow-list, the `Origin`
//! check on POST, the hook's content type, and the access token required on a non-loopback
//! address (bearer header, or the cookie the login link sets), kept private in
//! `<store>/serve.token`. The built binary on a temp store, driven with a plain `TcpStream`
//! client; no test sleeps for a fixed time.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::Sandbox;
use common::http::Server;

const HOOK: &[u8] = br#"{"hook_event_name":"UserPromptSubmit","session_id":"sec-1","prompt":"hi"}"#;

fn serve(sandbox: &Sandbox, bind: &str, extra: &[&str]) -> Server {
    let mut args = vec!["serve", "--bind", bind, "--no-transcripts"];
    args.extend_from_slice(extra);
    Server::spawn(sandbox.command(&args))
}

fn json_ct() -> (&'static str, &'static str) {
    ("Content-Type", "application/json")
}

/// Issue 16, security item: a `Host` other than localhost, 127.0.0.1, [::1] (with the port)
/// or the bound address is refused with a JSON 403 (DNS rebinding); no response allows
/// cross-origin reads.
#[test]
fn a_foreign_host_header_is_refused() {
    let sandbox = Sandbox::new();
    let server = serve(&sandbox, "127.0.0.1:0", &["--no-watch"]);
    let port = server.addr.port();
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "localhost:1",
    ] {
        let response = server.request("GET", "/api/health", &[("Host", host)], b"");
        assert_eq!(response.status, 403, "Host {host}: {}", response.text());
        assert!(!response.error().is_empty());
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let response = server.request("GET", "/api/health", &[("Host", &host)], b"");
        assert_eq!(response.status, 200, "Host {host}: {}", response.text());
        assert_eq!(response.header("access-control-allow-origin"), None);
    }
}

/// Issue 16, security item: a POST with an `Origin` that is not an allowed host is refused
/// (403); no `Origin` (curl, Claude Code's HTTP hooks) or the service's own is accepted.
#[test]
fn a_post_from_a_foreign_origin_is_refused() {
    let sandbox = Sandbox::new();
    let server = serve(&sandbox, "127.0.0.1:0", &["--no-watch"]);
    let own = format!("http://localhost:{}", server.addr.port());
    for origin in ["http://evil.example", "null", "http://localhost:1"] {
        let response = server.request(
            "POST",
            "/ingest/hook",
            &[json_ct(), ("Origin", origin)],
            HOOK,
        );
        assert_eq!(response.status, 403, "Origin {origin}: {}", response.text());
        assert!(!response.error().is_empty());
    }
    let response = server.request("POST", "/ingest/hook", &[json_ct(), ("Origin", &own)], HOOK);
    assert_eq!(response.status, 200, "{}", response.text());
    let response = server.request("POST", "/ingest/hook", &[json_ct()], HOOK);
    assert_eq!(response.status, 200, "{}", response.text());
    // A GET may carry any Origin: the answer has no CORS header, so a browser hides it.
    let response = server.request(
        "GET",
        "/api/health",
        &[("Origin", "http://evil.example")],
        b"",
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("access-control-allow-origin"), None);
}

/// Issue 16, security item: `POST /ingest/hook` takes only `Content-Type: application/json`
/// (what Claude Code's HTTP hooks send); anything else is 415 with a JSON error.
#[test]
fn the_hook_needs_a_json_content_type() {
    let sandbox = Sandbox::new();
    let server = serve(&sandbox, "127.0.0.1:0", &["--no-watch"]);
    for headers in [
        vec![("Content-Type", "text/plain")],
        vec![("Content-Type", "application/x-www-form-urlencoded")],
        vec![],
    ] {
        let response = server.request("POST", "/ingest/hook", &headers, HOOK);
        assert_eq!(response.status, 415, "{headers:?}: {}", response.text());
        assert!(!response.error().is_empty());
    }
    let response = server.request(
        "POST",
        "/ingest/hook",
        &[("Content-Type", "Application/JSON; charset=utf-8")],
        HOOK,
    );
    assert_eq!(response.status, 200, "{}", response.text());
}

/// Issue 16, security item: on a non-loopback address the service starts only with a token
/// (made 0600 in `<store>/serve.token`, the same across restarts); without it or with a wrong
/// one every API request is 401, with it 200; the page itself needs none; the login link sets
/// an HttpOnly, SameSite=Strict cookie that is accepted like the bearer header.
#[test]
fn a_non_loopback_bind_requires_the_token() {
    let sandbox = Sandbox::new();
    let server = serve(&sandbox, "0.0.0.0:0", &["--no-watch"]);
    let path = sandbox.store().join("serve.token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let token = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    assert_eq!(token.len(), 64);

    let no_token = server.request("GET", "/api/health", &[], b"");
    assert_eq!(no_token.status, 401, "{}", no_token.text());
    assert!(!no_token.error().is_empty());
    let wrong = format!("Bearer {}", "0".repeat(64));
    let response = server.request("GET", "/api/health", &[("Authorization", &wrong)], b"");
    assert_eq!(response.status, 401);
    let hook = server.request("POST", "/ingest/hook", &[json_ct()], HOOK);
    assert_eq!(hook.status, 401, "the hook target needs the token too");
    let bearer = format!("Bearer {token}");
    let response = server.request("GET", "/api/health", &[("Authorization", &bearer)], b"");
    assert_eq!(response.status, 200, "{}", response.text());
    let hook = server.request(
        "POST",
        "/ingest/hook",
        &[json_ct(), ("Authorization", &bearer)],
        HOOK,
    );
    assert_eq!(hook.status, 200, "{}", hook.text());
    // The page and its assets need no token (whatever they answer).
    for page in ["/", "/assets/app.js"] {
        assert_ne!(server.request("GET", page, &[], b"").status, 401, "{page}");
    }

    // The login link, printed after `listening on`.
    let line = server.next_line();
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no login link in {line:?}"));
    let login = &url[url.find("/login").unwrap()..];
    assert!(login.ends_with(&token), "{login}");
    let bad = server.request("GET", "/login?token=nope", &[], b"");
    assert_eq!(bad.status, 401);
    assert_eq!(bad.header("set-cookie"), None);
    let response = server.request("GET", login, &[], b"");
    assert_eq!(response.status, 303, "{}", response.text());
    assert_eq!(response.header("location").as_deref(), Some("/"));
    let cookie = response.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().unwrap();
    let response = server.request(
        "GET",
        "/api/health",
        &[("Cookie", &format!("theme=dark; {pair}"))],
        b"",
    );
    assert_eq!(response.status, 200, "{}", response.text());
    drop(server);

    // A restart reuses the token.
    let server = serve(&sandbox, "0.0.0.0:0", &["--no-watch"]);
    let response = server.request("GET", "/api/health", &[("Authorization", &bearer)], b"");
    assert_eq!(response.status, 200, "{}", response.text());
}

/// Issue 16, security item: on loopback no token is needed unless `--token` asks for one.
#[test]
fn token_flag_requires_it_on_loopback() {
    let sandbox = Sandbox::new();
    let open = serve(&sandbox, "127.0.0.1:0", &["--no-watch"]);
    assert_eq!(open.request("GET", "/api/health", &[], b"").status, 200);
    assert!(!sandbox.store().join("serve.token").exists());
    drop(open);
    let server = serve(&sandbox, "127.0.0.1:0", &["--no-watch", "--token"]);
    assert_eq!(server.request("GET", "/api/health", &[], b"").status, 401);
    let token = std::fs::read_to_string(sandbox.store().join("serve.token")).unwrap();
    let bearer = format!("Bearer {}", token.trim());
    let response = server.request("GET", "/api/health", &[("Authorization", &bearer)], b"");
    assert_eq!(response.status, 200);
}

/// Issue 16, security item: a `serve.token` that is a symlink, or that group or others may
/// read, is refused: the service does not start.
#[test]
fn an_unsafe_token_file_is_refused() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    std::fs::create_dir_all(&store).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o700)).unwrap();
    let elsewhere = sandbox.path("token-elsewhere");
    std::fs::write(&elsewhere, format!("{}\n", "a".repeat(64))).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = store.join("serve.token");
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    let refused = |what: &str| {
        let output = sandbox.run(&["serve", "--bind", "0.0.0.0:0", "--no-watch"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{what}: {stderr}");
        assert!(!stderr.contains("listening on"), "{what}: {stderr}");
        assert!(stderr.contains("serve.token"), "{what}: {stderr}");
    };
    refused("symlink");
    std::fs::remove_file(&path).unwrap();
    std::fs::copy(&elsewhere, &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    refused("mode 0644");
}
