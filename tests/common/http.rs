//! A running `ctrace serve` and a plain HTTP/1.1 client over `TcpStream` for the service
//! tests. Every wait polls with a deadline; nothing sleeps for a fixed time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::Sandbox;

/// How long any wait on the service may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// A running `ctrace serve`; dropping it kills the process.
pub struct Server {
    child: Child,
    /// The address to connect to (loopback when the service is bound to `0.0.0.0`).
    pub addr: SocketAddr,
    /// The lines it printed on stderr after `listening on ...`.
    pub stderr: mpsc::Receiver<String>,
}

impl Server {
    /// `ctrace serve EXTRA` on `store` (any free port) with `sandbox`'s environment, hermetic:
    /// never this machine's own Claude Code transcripts.
    pub fn start(sandbox: &Sandbox, store: &Path, extra: &[&str]) -> Self {
        let mut args = vec!["serve", "--bind", "127.0.0.1:0", "--no-transcripts"];
        args.extend_from_slice(extra);
        Self::spawn(sandbox.command_in(store, &args))
    }

    /// Spawns `command` (a `ctrace ... serve ...`) and waits for its `listening on` line.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("serve printed no `listening on` line: {e}"));
        let mut addr: SocketAddr = line
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .parse()
            .unwrap();
        if addr.ip().is_unspecified() {
            addr.set_ip([127, 0, 0, 1].into());
        }
        Self {
            child,
            addr,
            stderr: rx,
        }
    }

    /// The next line on stderr (within the deadline).
    pub fn next_line(&self) -> String {
        self.stderr
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("serve printed no further line: {e}"))
    }

    /// One request to this server (see [`request`]).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        request(self.addr, method, path, headers, body)
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// `GET path` as JSON, asserting 200.
    pub fn json(&self, path: &str) -> serde_json::Value {
        self.json_with(path, &[])
    }

    /// `GET path` with `headers`, as JSON, asserting 200.
    pub fn json_with(&self, path: &str, headers: &[(&str, &str)]) -> serde_json::Value {
        let response = self.request("GET", path, headers, b"");
        assert_eq!(response.status, 200, "GET {path}: {}", response.text());
        serde_json::from_slice(&response.body).unwrap()
    }

    /// `POST /ingest/hook` with `body` as JSON.
    pub fn post_hook(&self, body: &[u8]) -> Response {
        self.request(
            "POST",
            "/ingest/hook",
            &[("Content-Type", "application/json")],
            body,
        )
    }

    /// Polls `/api/health` until at least `at_least` records are sealed and every one is
    /// folded and indexed (the index only once it exists: `search`, `reindex` or the service
    /// create it).
    pub fn wait_caught_up(&self, at_least: u64) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let health = self.json("/api/health");
            let next = health["next_offset"].as_u64().unwrap();
            if next >= at_least
                && health["unsealed_records"] == 0
                && health["views_checkpoint"].as_u64() == Some(next)
                && (health["index_checkpoint"].is_null()
                    || health["index_checkpoint"].as_u64() == Some(next))
            {
                return;
            }
            assert!(Instant::now() < deadline, "not caught up: {health}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and returns the exit code (waits with a deadline).
    pub fn terminate(mut self) -> Option<i32> {
        // `kill(1)`: the crate forbids `unsafe`, which `libc::kill` needs.
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "serve did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls `check` on `GET path` until it returns true; fails after the deadline with the
    /// last body and what the service printed.
    pub fn wait_for(&self, path: &str, check: impl FnMut(&serde_json::Value) -> bool) {
        self.wait_for_or(path, check, String::new);
    }

    /// As [`Server::wait_for`], and the failure also shows `context()` (e.g. the runtime log).
    pub fn wait_for_or(
        &self,
        path: &str,
        mut check: impl FnMut(&serde_json::Value) -> bool,
        context: impl FnOnce() -> String,
    ) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let value = self.json(path);
            if check(&value) {
                return;
            }
            if Instant::now() >= deadline {
                let printed: Vec<String> = self.stderr.try_iter().collect();
                panic!(
                    "GET {path} never matched: {value}\nthe service printed:\n{}\n{}",
                    printed.join("\n"),
                    context()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status, head lines, body (dechunked).
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header lines, as sent.
    pub head: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    /// The `error` member of a JSON error body.
    pub fn error(&self) -> String {
        let value: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {}", self.text()));
        value["error"].as_str().unwrap().to_owned()
    }
}

/// One HTTP/1.1 request with `Connection: close`; `Host: <addr>` unless `headers` has a
/// `Host`. The response is read to its end.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Response { status, head, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
