//! `ctrace demo`: the embedded main job. With no Claude Code and no corpus, it plays one agent
//! session through the real hook path: for each step it runs a real command, and pipes hook
//! payloads in Claude Code's format (`SessionStart`, `UserPromptSubmit`, `PreToolUse` /
//! `PostToolUse` / `PostToolUseFailure` with the command's real output and exit status,
//! `SubagentStart` / `SubagentStop` for a subagent, `Stop`, `SessionEnd`) into `ctrace hook`
//! subprocesses, while writing the session's transcript lines the way Claude Code does. The
//! session plays inside a real terminal recording (`ctrace record`, which runs `ctrace demo
//! --play` and links the session's hooks to the recording through `CTRACE_PTY_SESSION`). Then it
//! seals (which tails the transcript the `Stop` hook names), and shows what ctrace is for:
//! `sessions`, `show`, `search "error"`, `cost`, `tree`, `replay --no-timing` and `verify`;
//! `--serve` then starts the service and its dashboard on the demo store.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};

use crate::config::Config;
use crate::log::Store;

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Record into the store given by --store / CTRACE_HOME instead of a new demo store
    #[arg(long)]
    pub into_store: bool,
    /// Then serve the demo store (`ctrace serve`) and print the dashboard's URL; stop with Ctrl-C
    #[arg(long)]
    pub serve: bool,
    /// With --serve: address and port to listen on
    #[arg(long, value_name = "ADDR:PORT", default_value = crate::serve::DEFAULT_BIND, requires = "serve")]
    pub bind: std::net::SocketAddr,
    /// Play the agent session with this id into --store (what the demo runs inside its
    /// terminal recording)
    #[arg(long, hide = true, value_name = "ID")]
    pub play: Option<String>,
}

struct Session {
    exe: PathBuf,
    store: PathBuf,
    id: String,
    cwd: PathBuf,
    transcript: PathBuf,
    agent_transcript: PathBuf,
    last_uuid: Option<String>,
    counter: u64,
    hooks: u64,
}

/// Writes `text` to the terminal the session plays in, with at most `max_lines` lines of it.
fn say(prefix: &str, text: &str, max_lines: usize) {
    let mut lines = text.lines();
    for (i, line) in lines.by_ref().take(max_lines).enumerate() {
        println!("{}{line}", if i == 0 { prefix } else { "    " });
    }
    let rest = lines.count();
    if rest > 0 {
        println!("    … +{rest} lines");
    }
}

impl Session {
    fn hook(&mut self, payload: Value) -> anyhow::Result<()> {
        let mut child = Command::new(&self.exe)
            .arg("--store")
            .arg(&self.store)
            .arg("hook")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting `ctrace hook`")?;
        let bytes = serde_json::to_vec(&payload)?;
        child
            .stdin
            .take()
            .context("hook stdin")?
            .write_all(&bytes)?;
        let output = child.wait_with_output()?;
        anyhow::ensure!(
            output.status.success(),
            "ctrace hook exited with {}",
            output.status
        );
        anyhow::ensure!(output.stdout.is_empty(), "ctrace hook printed on stdout");
        self.hooks += 1;
        Ok(())
    }

    fn base(&self, event: &str) -> serde_json::Map<String, Value> {
        let mut map = serde_json::Map::new();
        map.insert("session_id".into(), json!(self.id));
        map.insert("transcript_path".into(), json!(self.transcript));
        map.insert("cwd".into(), json!(self.cwd));
        map.insert("permission_mode".into(), json!("default"));
        map.insert("hook_event_name".into(), json!(event));
        map
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!(
            "{prefix}{:016x}{:04}",
            crate::now_ns() & 0xffff_ffff_ffff,
            self.counter
        )
    }

    /// Appends one transcript line as Claude Code does (one JSON object per line).
    fn line(
        &mut self,
        path_is_agent: bool,
        mut line: serde_json::Map<String, Value>,
    ) -> anyhow::Result<()> {
        let uuid = self.next_id("u");
        line.insert("uuid".into(), json!(uuid));
        line.insert("parentUuid".into(), json!(self.last_uuid));
        line.insert("sessionId".into(), json!(self.id));
        line.insert("cwd".into(), json!(self.cwd));
        line.insert("version".into(), json!("2.1.72"));
        line.insert("isSidechain".into(), json!(path_is_agent));
        line.insert(
            "timestamp".into(),
            json!(super::time::format_ts(crate::now_ns())),
        );
        self.last_uuid = Some(uuid);
        let path = if path_is_agent {
            &self.agent_transcript
        } else {
            &self.transcript
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let mut bytes = serde_json::to_vec(&line)?;
        bytes.push(b'\n');
        file.write_all(&bytes)?;
        Ok(())
    }

    fn assistant(&mut self, agent: bool, content: Value, output_tokens: u64) -> anyhow::Result<()> {
        let mut line = serde_json::Map::new();
        line.insert("type".into(), json!("assistant"));
        line.insert("requestId".into(), json!(self.next_id("req_")));
        line.insert(
            "message".into(),
            json!({
                "id": self.next_id("msg_"),
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": content,
                "stop_reason": if content.as_array().is_some_and(|c| c.iter().any(|b| b["type"] == "tool_use")) { "tool_use" } else { "end_turn" },
                "usage": {"input_tokens": 12, "output_tokens": output_tokens, "cache_creation_input_tokens": 1800, "cache_read_input_tokens": 14000,
                          "cache_creation": {"ephemeral_5m_input_tokens": 1800, "ephemeral_1h_input_tokens": 0}}
            }),
        );
        if agent {
            line.insert("agentId".into(), json!(AGENT_ID));
        }
        self.line(agent, line)
    }

    /// Runs one real shell command as a Bash tool call: transcript tool_use, PreToolUse hook,
    /// the command, PostToolUse (or PostToolUseFailure) hook, transcript tool_result.
    fn bash(
        &mut self,
        command: &str,
        description: &str,
        agent: Option<&str>,
    ) -> anyhow::Result<()> {
        let tool_use_id = self.next_id("toolu_");
        let input = json!({"command": command, "description": description});
        self.assistant(
            agent.is_some(),
            json!([{"type": "tool_use", "id": tool_use_id, "name": "Bash", "input": input}]),
            40,
        )?;
        let mut pre = self.base("PreToolUse");
        pre.insert("tool_name".into(), json!("Bash"));
        pre.insert("tool_input".into(), input.clone());
        pre.insert("tool_use_id".into(), json!(tool_use_id));
        if let Some(agent) = agent {
            pre.insert("agent_id".into(), json!(agent));
            pre.insert("agent_type".into(), json!("Explore"));
        }
        self.hook(Value::Object(pre.clone()))?;
        println!("\n● Bash({command})");
        let started = Instant::now();
        let output = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&self.cwd)
            .output()
            .with_context(|| format!("running `{command}`"))?;
        let duration_ms = started.elapsed().as_millis() as u64;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let ok = output.status.success();
        if ok {
            say("  ⎿ ", &stdout, 4);
        } else {
            say(
                "  ⎿ error: ",
                &format!("exit code {}\n{stderr}", output.status.code().unwrap_or(-1)),
                4,
            );
        }
        let mut post = pre;
        post.insert("duration_ms".into(), json!(duration_ms));
        if ok {
            post.insert("hook_event_name".into(), json!("PostToolUse"));
            post.insert(
                "tool_response".into(),
                json!({"stdout": stdout, "stderr": stderr, "interrupted": false, "isImage": false}),
            );
        } else {
            post.insert("hook_event_name".into(), json!("PostToolUseFailure"));
            post.insert(
                "error".into(),
                json!(format!(
                    "Exit code {}\n{stderr}",
                    output.status.code().unwrap_or(-1)
                )),
            );
        }
        self.hook(Value::Object(post))?;
        let mut result = serde_json::Map::new();
        result.insert("type".into(), json!("user"));
        result.insert(
            "message".into(),
            json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use_id,
                   "content": if ok { stdout.clone() } else { stderr.clone() }, "is_error": !ok}]}),
        );
        result.insert(
            "toolUseResult".into(),
            json!({"stdout": stdout, "stderr": stderr}),
        );
        if agent.is_some() {
            result.insert("agentId".into(), json!(AGENT_ID));
        }
        self.line(agent.is_some(), result)
    }
}

/// The subagent of the demo session.
const AGENT_ID: &str = "a1b2c3d";

impl Session {
    /// `SessionStart`, the user's prompt as a hook and as a transcript line.
    fn start(&mut self, prompt: &str) -> anyhow::Result<()> {
        let mut start = self.base("SessionStart");
        start.insert("source".into(), json!("startup"));
        start.remove("permission_mode");
        self.hook(Value::Object(start))?;
        let mut submit = self.base("UserPromptSubmit");
        submit.insert("prompt".into(), json!(prompt));
        self.hook(Value::Object(submit))?;
        let mut user = serde_json::Map::new();
        user.insert("type".into(), json!("user"));
        user.insert("message".into(), json!({"role": "user", "content": prompt}));
        println!("> {prompt}");
        self.line(false, user)
    }

    /// A subagent: Task tool call, SubagentStart, its own tool call, SubagentStop.
    fn subagent(&mut self) -> anyhow::Result<()> {
        let task_id = self.next_id("toolu_");
        let task_input = json!({"description": "Survey the sources", "prompt": "List the Rust sources and their sizes", "subagent_type": "Explore"});
        self.assistant(
            false,
            json!([{"type": "tool_use", "id": task_id, "name": "Task", "input": task_input}]),
            60,
        )?;
        let mut pre = self.base("PreToolUse");
        pre.insert("tool_name".into(), json!("Task"));
        pre.insert("tool_input".into(), task_input);
        pre.insert("tool_use_id".into(), json!(task_id));
        self.hook(Value::Object(pre.clone()))?;
        let mut sub = self.base("SubagentStart");
        sub.insert("agent_id".into(), json!(AGENT_ID));
        sub.insert("agent_type".into(), json!("Explore"));
        self.hook(Value::Object(sub))?;
        println!("\n● Task(Survey the sources) — Explore subagent");
        self.bash(
            "find . -name '*.rs' -exec wc -c {} +",
            "Sizes of Rust sources",
            Some(AGENT_ID),
        )?;
        self.assistant(
            true,
            json!([{"type": "text", "text": "One Rust source: src/main.rs."}]),
            20,
        )?;
        let mut sub_stop = self.base("SubagentStop");
        sub_stop.insert("agent_id".into(), json!(AGENT_ID));
        sub_stop.insert("agent_type".into(), json!("Explore"));
        sub_stop.insert("stop_hook_active".into(), json!(false));
        sub_stop.insert("agent_transcript_path".into(), json!(self.agent_transcript));
        self.hook(Value::Object(sub_stop))?;
        let mut post = pre;
        post.insert("hook_event_name".into(), json!("PostToolUse"));
        post.insert("tool_response".into(), json!({"status": "completed", "agentId": AGENT_ID, "content": [{"type": "text", "text": "One Rust source: src/main.rs."}]}));
        self.hook(Value::Object(post))?;
        let mut result = serde_json::Map::new();
        result.insert("type".into(), json!("user"));
        result.insert("message".into(), json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": task_id, "content": "One Rust source: src/main.rs."}]}));
        result.insert(
            "toolUseResult".into(),
            json!({"agentId": AGENT_ID, "totalTokens": 15832}),
        );
        self.line(false, result)
    }

    /// The final answer, `Stop` and `SessionEnd`.
    fn finish(&mut self, answer: &str) -> anyhow::Result<()> {
        self.assistant(false, json!([{"type": "text", "text": answer}]), 120)?;
        println!();
        say("● ", answer, 10);
        let mut stop = self.base("Stop");
        stop.insert("stop_hook_active".into(), json!(false));
        stop.insert("last_assistant_message".into(), json!(answer));
        self.hook(Value::Object(stop))?;
        let mut end = self.base("SessionEnd");
        end.insert("reason".into(), json!("prompt_input_exit"));
        end.remove("permission_mode");
        self.hook(Value::Object(end))
    }
}

/// The store the demo records into: the given one with `--into-store`, else a new one in the
/// temporary directory.
fn demo_store_dir(root: &Path, args: &DemoArgs) -> anyhow::Result<PathBuf> {
    if args.into_store {
        return Ok(root.to_path_buf());
    }
    let dir = std::env::temp_dir().join(format!("ctrace-demo-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(dir)
}

/// Writes the tiny project the demo session works on.
fn write_project(project: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(project.join("src"))?;
    std::fs::write(
        project.join("src/main.rs"),
        "fn main() {\n    println!(\"hello from the demo project\");\n}\n",
    )?;
    std::fs::write(
        project.join("README.md"),
        "# demo-project\nA tiny project the ctrace demo works on.\n",
    )?;
    Ok(())
}

/// Prints `$ ctrace ARGS` before a step of the tour.
fn step(args: &str) {
    println!("\n$ ctrace {args}");
}

/// Shows what was recorded: `sessions`, `show`, `search "error"`, `cost`, `tree`,
/// `replay --no-timing` of the terminal recording, `verify`, and what to try next.
fn show_recorded(
    store: &Store,
    store_dir: &Path,
    id: &str,
    recording: Option<&str>,
) -> anyhow::Result<()> {
    step("sessions");
    super::sessions::run(store, &super::sessions::SessionsArgs { json: false })?;
    step(&format!("show {id}"));
    super::show::run(
        store,
        &super::show::ShowArgs {
            session: id.to_owned(),
            json: false,
        },
    )?;
    step("search error");
    super::search::run(
        store,
        &super::search::SearchArgs {
            query: "error".into(),
            session: None,
            source: None,
            event: None,
            tool: None,
            since: None,
            until: None,
            limit: 5,
            sort: super::search::SortArg::Time,
            json: false,
        },
    )?;
    step("cost");
    super::cost::run(
        store,
        &super::cost::CostArgs {
            by: super::cost::By::Session,
            since: None,
            until: None,
            session: None,
            breakdown: false,
            json: false,
            source: super::cost::Source::Transcript,
            reconcile: false,
        },
    )?;
    step(&format!("tree {id}"));
    super::tree::run(
        store,
        &super::tree::TreeArgs {
            session: id.to_owned(),
            json: false,
            mermaid: false,
        },
    )?;
    if let Some(recording) = recording {
        step(&format!("replay {recording} --no-timing"));
        std::io::stdout().flush()?;
        super::replay::run(
            store,
            &super::replay::ReplayArgs {
                session: recording.to_owned(),
                speed: 1.0,
                idle_limit: None,
                no_timing: true,
                from: None,
                to: None,
                at: None,
                events: false,
                json: false,
            },
        )?;
        println!();
    }
    step("verify");
    super::verify::run(store, &super::verify::VerifyArgs { json: false })?;
    let flag = format!("--store {}", store_dir.display());
    println!("\nTry next:");
    println!(
        "  ctrace {flag} serve                        # the dashboard at http://{}/",
        crate::serve::DEFAULT_BIND
    );
    println!("  ctrace {flag} cat --json --session {id} | head -3");
    println!("  ctrace ingest ~/.claude/projects          # your own Claude Code history");
    println!("  ctrace install --user                     # record every future hook event");
    Ok(())
}

/// Plays the agent session `id` into `store_dir` (the demo project and transcripts beside
/// it), printing what a terminal would show.
fn play(store_dir: &Path, id: &str) -> anyhow::Result<u64> {
    let project = store_dir.join("demo-project");
    write_project(&project)?;
    // Under the directory the transcript tailer accepts for the demo's store.
    let transcripts = store_dir
        .join(crate::ingest::bulk::transcript_path::DEMO_PROJECTS_DIR)
        .join("demo-project");
    std::fs::create_dir_all(transcripts.join(id).join("subagents"))?;
    let mut s = Session {
        exe: std::env::current_exe().context("finding the ctrace binary")?,
        store: store_dir.to_path_buf(),
        id: id.to_owned(),
        cwd: project,
        transcript: transcripts.join(format!("{id}.jsonl")),
        agent_transcript: transcripts
            .join(id)
            .join(format!("subagents/agent-{AGENT_ID}.jsonl")),
        last_uuid: None,
        counter: 0,
        hooks: 0,
    };
    s.start("Look around this project, check the toolchain, and tell me what is here.")?;
    s.bash("ls -la", "List the project files", None)?;
    s.bash(
        "uname -sr && sh -c 'echo shell: $0'",
        "Check the system",
        None,
    )?;
    s.bash("wc -l src/main.rs README.md", "Count lines", None)?;
    s.bash("cat Cargo.toml", "Read the manifest", None)?;
    s.subagent()?;
    s.finish(
        "This is a small Rust project with src/main.rs and a README. Reading Cargo.toml failed \
         with an error: there is no Cargo.toml yet, so it does not build with cargo.",
    )?;
    Ok(s.hooks)
}

/// Plays the session inside `ctrace record` (a real PTY recording named `demo terminal`); the
/// recording's session id, or `None` when no terminal could be opened (then the session is
/// played without one).
fn play_recorded(store: &Store, store_dir: &Path, id: &str) -> anyhow::Result<Option<String>> {
    let exe = std::env::current_exe().context("finding the ctrace binary")?;
    let output = Command::new(&exe)
        .arg("--store")
        .arg(store_dir)
        .args(["record", "-q", "--name", "demo terminal", "--"])
        .arg(&exe)
        .arg("--store")
        .arg(store_dir)
        .args(["demo", "--play", id])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("starting `ctrace record`")?;
    if !output.status.success() {
        eprintln!(
            "ctrace demo: the terminal recording failed ({}); playing the session without one",
            output.status
        );
        play(store_dir, id)?;
        return Ok(None);
    }
    super::refresh(store)?;
    let db = super::views_for_reading(store)?;
    let snapshot = store.snapshot()?;
    let recording = crate::views::listing::summary(&db, &snapshot, id, crate::now_ns())?
        .and_then(|row| row.linked_sessions.into_iter().next());
    Ok(recording)
}

/// Runs the demo (or, with `--play`, the session it records).
///
/// # Errors
/// When a command cannot be started or the store fails.
pub fn run(root: &Path, config: Config, args: &DemoArgs) -> anyhow::Result<i32> {
    if let Some(id) = &args.play {
        play(root, id)?;
        return Ok(0);
    }
    let store_dir = demo_store_dir(root, args)?;
    let store = Store::open(&store_dir, config)?;
    let id = format!(
        "demo-{:08x}-{:04x}",
        (crate::now_ns() / 1_000_000) & 0xffff_ffff,
        std::process::id() & 0xffff
    );
    println!("ctrace demo: playing one agent session through the real `ctrace hook` path,");
    println!("inside a terminal recording (`ctrace record`)");
    println!("  store:   {}", store_dir.display());
    println!("  project: {}\n", store_dir.join("demo-project").display());
    let recording = play_recorded(&store, &store_dir, &id)?;
    println!(
        "recorded the session's hooks through `ctrace hook`{}; sealing (this also tails the transcript the Stop hook names)",
        match &recording {
            Some(r) => format!(" and its terminal as {r}"),
            None => String::new(),
        }
    );
    show_recorded(&store, &store_dir, &id, recording.as_deref())?;
    if args.serve {
        let options = crate::serve::ServeOptions {
            bind: args.bind,
            // The demo store holds the demo only, not this user's own transcripts.
            transcripts: false,
            ..crate::serve::ServeOptions::default()
        };
        crate::serve::serve(store.clone(), options, |bound| {
            let url = bound
                .login_url
                .unwrap_or_else(|| format!("http://{}/", bound.addr));
            println!("\ndashboard: {url}   (Ctrl-C stops the service)");
            let _ = std::io::stdout().flush();
        })?;
    }
    Ok(0)
}
