#!/usr/bin/env python3
"""Generate a large synthetic Claude Code data set for benchmarks.

Writes a tree shaped like a Claude Code config directory, with the line shapes of the real
transcripts and hook payloads in the shared corpus (field names, nesting, usage blocks,
tool_use / tool_result pairing, subagent transcripts, progress lines), and varied text:

    OUT/projects/<project>/<session>.jsonl                        main transcripts
    OUT/projects/<project>/<session>/subagents/agent-<id>.jsonl   subagent transcripts
    OUT/hooks/<session>.ndjson                                    hook payloads, one per line

`ctrace ingest OUT` turns it into a store; `CLAUDE_CONFIG_DIR=OUT ccusage session --offline`
reads the same transcripts. Every record (transcript line or hook payload) is one line, so
`--records N` gives N records. Output is deterministic for a given `--seed`.

Text comes from a pool of Zipf-distributed words (common words very often, rare words rarely,
some error messages, file paths, tool names and a little CJK text); each line takes a random
slice of the pool, so documents differ while word frequencies look like real logs.

Usage: python3 scripts/gen_corpus.py OUT_DIR [--records 1000000] [--seed 1]
Prints the number of records, files and raw bytes written.
"""

import argparse
import json
import os
import random
import sys
import uuid as uuidlib

MODELS = [
    ("claude-opus-4-6", 40),
    ("claude-sonnet-4-5-20250929", 30),
    ("claude-haiku-4-5-20251001", 20),
    ("claude-opus-4-1-20250805", 7),
    ("claude-sonnet-4-20250514", 3),
]
TOOLS = ["Bash", "Read", "Edit", "Write", "Grep", "Glob", "TodoWrite", "WebFetch", "Task"]
TOOL_WEIGHTS = [30, 25, 15, 5, 10, 5, 3, 2, 5]
COMMON = (
    "the a to of and in is it that for on with this as be file test run error function "
    "value not by line from return if we can use you are was build should will let me check "
    "now so need fix add update output code new at case type call set data result path "
    "warning failed passed module config cargo npm install import struct impl fn self mut "
    "string number list map key index offset segment record session tool user assistant"
).split()
ERRORS = [
    "error[E0308]: mismatched types",
    "Error: ENOENT: no such file or directory",
    "panicked at 'called `Option::unwrap()` on a `None` value'",
    "TypeError: Cannot read properties of undefined (reading 'map')",
    "FAILED tests/test_api.py::test_login - AssertionError",
    "fatal: not a git repository (or any of the parent directories): .git",
    "Permission denied (publickey).",
    "error: could not compile `app` due to 2 previous errors",
    "Traceback (most recent call last):",
    "segmentation fault (core dumped)",
]
CJK = [
    "修复构建错误", "测试失败了", "数据库连接超时", "ファイルが見つかりません",
    "テストを実行します", "빌드 오류를 수정했습니다", "검색 결과가 없습니다", "配置文件已更新",
]
SYLLABLES = (
    "ka ri to ne mo sa lu vi qua zen tor bel fa gri mon das pel kro nix ul ar eth iv om "
    "ux sy pra ste clo dri fen gol hap jun lek mav nor pos quil rin sef tav umb vex wol"
).split()


def make_vocab(rng, size):
    words = set()
    while len(words) < size:
        n = rng.choice((2, 2, 3, 3, 4))
        words.add("".join(rng.choice(SYLLABLES) for _ in range(n)))
    return sorted(words)


def make_pool(rng, n_words):
    """A long text of Zipf-distributed words with punctuation, paths and errors mixed in."""
    vocab = COMMON + make_vocab(rng, 20000)
    weights = [1.0 / (rank + 1) ** 1.05 for rank in range(len(vocab))]
    words = rng.choices(vocab, weights=weights, k=n_words)
    out = []
    for i, word in enumerate(words):
        r = rng.random()
        if r < 0.002:
            out.append(rng.choice(ERRORS))
        elif r < 0.003:
            out.append(rng.choice(CJK))
        elif r < 0.01:
            out.append("src/%s/%s.rs:%d" % (word, rng.choice(vocab), rng.randint(1, 900)))
        else:
            out.append(word)
        if i % 13 == 12:
            out.append("\n" if rng.random() < 0.3 else ".")
    return " ".join(out)


class Text:
    def __init__(self, rng):
        self.rng = rng
        self.pool = make_pool(rng, 3_000_000)

    def take(self, lo, hi):
        n = self.rng.randint(lo, hi)
        start = self.rng.randrange(0, len(self.pool) - n - 1)
        return self.pool[start:start + n]


class Gen:
    def __init__(self, out, records, seed):
        self.out = out
        self.target = records
        self.rng = random.Random(seed)
        self.text = Text(self.rng)
        self.records = 0
        self.bytes = 0
        self.files = 0
        self.ts_ms = 1_760_000_000_000  # 2025-10-09

    def uid(self):
        return str(uuidlib.UUID(int=self.rng.getrandbits(128), version=4))

    def short(self, prefix, n=24):
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789"
        return prefix + "".join(self.rng.choice(alphabet) for _ in range(n))

    def iso(self):
        ms = self.ts_ms
        secs, milli = divmod(ms, 1000)
        import time
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%03dZ" % milli

    def tick(self, lo=50, hi=4000):
        self.ts_ms += self.rng.randint(lo, hi)

    def emit(self, fh, obj):
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"
        data = line.encode("utf-8")
        fh.write(data)
        self.records += 1
        self.bytes += len(data)

    def usage(self):
        rng = self.rng
        c5 = rng.choice((0, 0, rng.randint(100, 20000)))
        c1 = rng.choice((0, 0, 0, rng.randint(100, 5000)))
        return {
            "input_tokens": rng.randint(1, 50),
            "cache_creation_input_tokens": c5 + c1,
            "cache_read_input_tokens": rng.randint(0, 120000),
            "cache_creation": {"ephemeral_5m_input_tokens": c5, "ephemeral_1h_input_tokens": c1},
            "output_tokens": rng.randint(1, 3000),
            "service_tier": "standard",
        }

    def session(self, project, cwd, budget):
        rng = self.rng
        sid = self.uid()
        pdir = os.path.join(self.out, "projects", project)
        os.makedirs(pdir, exist_ok=True)
        tpath = os.path.join(pdir, sid + ".jsonl")
        hooks = open(os.path.join(self.out, "hooks", sid + ".ndjson"), "wb")
        main = open(tpath, "wb")
        self.files += 2
        base = {"isSidechain": False, "userType": "external", "cwd": cwd, "sessionId": sid,
                "version": "2.1.39", "gitBranch": "main"}
        hook_base = {"session_id": sid, "transcript_path": tpath, "cwd": cwd}
        model = rng.choices([m for m, _ in MODELS], weights=[w for _, w in MODELS])[0]
        start = self.records
        self.emit(hooks, dict(hook_base, hook_event_name="SessionStart", source="startup",
                              permission_mode="default"))
        parent = None
        while self.records - start < budget and self.records < self.target:
            # One turn.
            self.tick(20_000, 600_000)
            prompt = self.text.take(40, 600)
            prompt_id = self.uid()
            self.emit(hooks, dict(hook_base, hook_event_name="UserPromptSubmit", prompt=prompt,
                                  prompt_id=prompt_id, permission_mode="default"))
            u = self.uid()
            self.emit(main, dict(base, parentUuid=parent, type="user", uuid=u,
                                 timestamp=self.iso(), promptId=prompt_id,
                                 message={"role": "user", "content": prompt}))
            parent = u
            for _ in range(rng.randint(1, 12)):
                if self.records - start >= budget:
                    break
                parent = self.tool_call(main, hooks, base, hook_base, parent, model, pdir, sid, cwd)
            # Final answer, sometimes split over two lines of one API response.
            self.tick()
            msg_id, req_id, usage = self.short("msg_01"), self.short("req_011C"), self.usage()
            for part in range(rng.choice((1, 1, 2))):
                u = self.uid()
                self.emit(main, dict(base, parentUuid=parent, type="assistant", uuid=u,
                                     timestamp=self.iso(), requestId=req_id,
                                     message={"model": model, "id": msg_id, "type": "message",
                                              "role": "assistant",
                                              "content": [{"type": "text",
                                                           "text": self.text.take(50, 1500)}],
                                              "stop_reason": "end_turn" if part else None,
                                              "usage": usage}))
                parent = u
            self.emit(hooks, dict(hook_base, hook_event_name="Stop", stop_hook_active=False))
            self.emit(main, dict(base, parentUuid=parent, type="system", subtype="turn_duration",
                                 durationMs=rng.randint(1000, 600000), uuid=self.uid(),
                                 timestamp=self.iso(), isMeta=False))
        self.emit(hooks, dict(hook_base, hook_event_name="SessionEnd", reason="other"))
        main.close()
        hooks.close()

    def tool_call(self, main, hooks, base, hook_base, parent, model, pdir, sid, cwd):
        rng = self.rng
        self.tick()
        tool = rng.choices(TOOLS, weights=TOOL_WEIGHTS)[0]
        tid = self.short("toolu_01")
        if tool == "Bash":
            tool_input = {"command": self.text.take(10, 120), "description": self.text.take(10, 60)}
        elif tool in ("Read", "Write", "Edit"):
            tool_input = {"file_path": "%s/src/%s.rs" % (cwd, self.text.take(4, 12).strip())}
            if tool != "Read":
                tool_input["content" if tool == "Write" else "new_string"] = self.text.take(50, 800)
        elif tool == "TodoWrite":
            tool_input = {"todos": [{"content": self.text.take(10, 60), "status": s,
                                     "activeForm": self.text.take(10, 40)}
                                    for s in ("completed", "in_progress", "pending")]}
        elif tool == "Task":
            tool_input = {"description": self.text.take(10, 40), "prompt": self.text.take(100, 800),
                          "subagent_type": rng.choice(("Explore", "general-purpose", "Plan"))}
        else:
            tool_input = {"pattern": self.text.take(3, 30)}
        msg_id, req_id = self.short("msg_01"), self.short("req_011C")
        u = self.uid()
        self.emit(main, dict(base, parentUuid=parent, type="assistant", uuid=u, timestamp=self.iso(),
                             requestId=req_id,
                             message={"model": model, "id": msg_id, "type": "message",
                                      "role": "assistant",
                                      "content": [{"type": "tool_use", "id": tid, "name": tool,
                                                   "input": tool_input}],
                                      "stop_reason": "tool_use", "usage": self.usage()}))
        parent = u
        self.emit(hooks, dict(hook_base, hook_event_name="PreToolUse", tool_name=tool,
                              tool_input=tool_input, tool_use_id=tid))
        agent_id = None
        if tool == "Task":
            agent_id = "a%07x" % rng.getrandbits(28)
            self.emit(hooks, dict(hook_base, hook_event_name="SubagentStart", agent_id=agent_id,
                                  agent_type=tool_input["subagent_type"]))
            self.subagent(pdir, sid, cwd, agent_id, tid, main, base, parent)
            self.emit(hooks, dict(hook_base, hook_event_name="SubagentStop", agent_id=agent_id,
                                  agent_type=tool_input["subagent_type"],
                                  agent_transcript_path=os.path.join(
                                      pdir, sid, "subagents", "agent-%s.jsonl" % agent_id),
                                  stop_hook_active=False))
        for _ in range(rng.choice((0, 1, 2, 3))):
            self.tick(10, 500)
            self.emit(main, dict(base, parentUuid=parent, type="progress", uuid=self.uid(),
                                 timestamp=self.iso(), toolUseID=tid, parentToolUseID=tid,
                                 data={"type": "bash_progress" if tool == "Bash" else "hook_progress",
                                       "output": self.text.take(20, 400),
                                       "hookEvent": "PostToolUse"}))
        self.tick()
        failed = rng.random() < 0.06
        output = self.text.take(100, 3300)
        if failed:
            output = rng.choice(ERRORS) + "\n" + output[:400]
            self.emit(hooks, dict(hook_base, hook_event_name="PostToolUseFailure", tool_name=tool,
                                  tool_input=tool_input, tool_use_id=tid, error=output[:200],
                                  is_interrupt=False))
        else:
            response = {"stdout": output, "stderr": "", "interrupted": False} if tool == "Bash" \
                else {"type": "text", "content": output[:500]}
            if agent_id:
                response["agentId"] = agent_id
            self.emit(hooks, dict(hook_base, hook_event_name="PostToolUse", tool_name=tool,
                                  tool_input=tool_input, tool_response=response, tool_use_id=tid))
        u = self.uid()
        line = dict(base, parentUuid=parent, type="user", uuid=u, timestamp=self.iso(),
                    message={"role": "user", "content": [{"tool_use_id": tid, "type": "tool_result",
                                                          "content": output, "is_error": failed}]})
        if agent_id:
            line["toolUseResult"] = {"agentId": agent_id, "status": "completed"}
        self.emit(main, line)
        return u

    def subagent(self, pdir, sid, cwd, agent_id, parent_tid, main, base, parent):
        rng = self.rng
        sdir = os.path.join(pdir, sid, "subagents")
        os.makedirs(sdir, exist_ok=True)
        model = rng.choice(("claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929"))
        sub = dict(base, isSidechain=True, agentId=agent_id)
        p = None
        with open(os.path.join(sdir, "agent-%s.jsonl" % agent_id), "wb") as fh:
            self.files += 1
            for _ in range(rng.randint(2, 8)):
                self.tick()
                tid = self.short("toolu_01")
                u = self.uid()
                self.emit(fh, dict(sub, parentUuid=p, type="assistant", uuid=u,
                                   timestamp=self.iso(), requestId=self.short("req_011C"),
                                   message={"model": model, "id": self.short("msg_01"),
                                            "type": "message", "role": "assistant",
                                            "content": [{"type": "tool_use", "id": tid,
                                                         "name": "Grep",
                                                         "input": {"pattern": self.text.take(3, 30)}}],
                                            "stop_reason": "tool_use", "usage": self.usage()}))
                p = self.uid()
                self.emit(fh, dict(sub, parentUuid=u, type="user", uuid=p, timestamp=self.iso(),
                                   message={"role": "user",
                                            "content": [{"tool_use_id": tid, "type": "tool_result",
                                                         "content": self.text.take(100, 2000)}]}))
                # The parent transcript sees the subagent's progress (usage copied, not billed).
                self.emit(main, dict(base, parentUuid=parent, type="progress", uuid=self.uid(),
                                     timestamp=self.iso(), toolUseID="agent_msg_" + tid,
                                     parentToolUseID=parent_tid,
                                     data={"type": "agent_progress", "agentId": agent_id,
                                           "prompt": "", "message": {"type": "assistant",
                                                                     "message": {"model": model,
                                                                                 "usage": self.usage()}}}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--session-records", type=int, default=2000,
                    help="approximate records per session (default 2000)")
    args = ap.parse_args()
    if os.path.exists(args.out) and os.listdir(args.out):
        sys.exit("gen_corpus: %s exists and is not empty" % args.out)
    os.makedirs(os.path.join(args.out, "hooks"), exist_ok=True)
    gen = Gen(args.out, args.records, args.seed)
    projects = ["-home-dev-%s" % gen.text.take(4, 10).strip().replace(" ", "-").replace("\n", "")
                for _ in range(20)]
    n = 0
    while gen.records < args.records:
        project = projects[n % len(projects)]
        cwd = "/home/dev/" + project.split("-", 3)[-1]
        budget = gen.rng.randint(args.session_records // 4, args.session_records * 7 // 4)
        gen.session(project, cwd, budget)
        gen.ts_ms += gen.rng.randint(60_000, 6 * 3_600_000)
        n += 1
    print("records %d  sessions %d  files %d  raw_bytes %d" % (gen.records, n, gen.files, gen.bytes))


if __name__ == "__main__":
    main()
