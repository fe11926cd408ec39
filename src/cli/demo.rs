//! `ctrace demo`: the embedded main job. With no Claude Code and no corpus, it plays one agent
//! session through the real hook path: for each step it runs a real command, and pipes hook
//! payloads in Claude Code's format (`SessionStart`, `UserPromptSubmit`, `PreToolUse` /
//! `PostToolUse` / `PostToolUseFailure` with the command's real output and exit status,
//! `SubagentStart` / `SubagentStop` for a subagent, `Stop`, `SessionEnd`) into `ctrace hook`
//! subprocesses, while writing the session's transcript lines the way Claude Code does. Then it
//! seals (which tails the transcript the `Stop` hook names), and shows `sessions` and `show`.

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

/// Shows what was recorded: `sessions`, `show`, `verify`, and what to try next.
fn show_recorded(store: &Store, store_dir: &Path, id: &str) -> anyhow::Result<()> {
    println!("$ ctrace sessions");
    super::sessions::run(store, &super::sessions::SessionsArgs { json: false })?;
    println!("\n$ ctrace show {id}");
    super::show::run(
        store,
        &super::show::ShowArgs {
            session: id.to_owned(),
            json: false,
        },
    )?;
    println!("\n$ ctrace verify");
    super::verify::run(store, &super::verify::VerifyArgs { json: false })?;
    let flag = format!("--store {}", store_dir.display());
    println!("\nTry next:");
    println!("  ctrace {flag} cat --json --session {id} | head -3");
    println!("  ctrace {flag} stats");
    println!("  ctrace ingest ~/.claude/projects          # your own Claude Code history");
    println!("  ctrace install --user                     # record every future hook event");
    Ok(())
}

/// Runs the demo.
///
/// # Errors
/// When a command cannot be started or the store fails.
pub fn run(root: &Path, config: Config, args: &DemoArgs) -> anyhow::Result<i32> {
    let store_dir = demo_store_dir(root, args)?;
    let store = Store::open(&store_dir, config)?;
    let project = store_dir.join("demo-project");
    write_project(&project)?;
    let transcripts = store_dir.join("demo-claude/projects/demo-project");
    let id = format!(
        "demo-{:08x}-{:04x}",
        (crate::now_ns() / 1_000_000) & 0xffff_ffff,
        std::process::id() & 0xffff
    );
    std::fs::create_dir_all(transcripts.join(&id).join("subagents"))?;
    let mut s = Session {
        exe: std::env::current_exe().context("finding the ctrace binary")?,
        store: store_dir.clone(),
        id: id.clone(),
        cwd: project.clone(),
        transcript: transcripts.join(format!("{id}.jsonl")),
        agent_transcript: transcripts
            .join(&id)
            .join(format!("subagents/agent-{AGENT_ID}.jsonl")),
        last_uuid: None,
        counter: 0,
        hooks: 0,
    };
    println!("ctrace demo: playing one agent session through the real `ctrace hook` path");
    println!("  store:   {}", store_dir.display());
    println!("  project: {}\n", project.display());

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
        "This is a small Rust project with src/main.rs and a README; there is no Cargo.toml yet.",
    )?;

    println!(
        "recorded {} hook payloads through `ctrace hook`; sealing (this also tails the transcript the Stop hook names)\n",
        s.hooks
    );
    show_recorded(&store, &store_dir, &id)?;
    Ok(0)
}
