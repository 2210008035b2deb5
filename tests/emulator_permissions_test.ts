/**
 * Every emulated source starts with the permissions the README and `deno task cli` document, on
 * every runtime (on Deno in child processes given exactly those flags), and a directory that
 * cannot be written is refused with a hint that is true; a permission the runtime refuses (Deno
 * without `--allow-write`, `--allow-env`, `--allow-net`; Node's permission model) is one line
 * naming the flag, from `serve()`, from a handler and from `azmi emulate` (issue 17, section 4).
 * Failure rehearsal is in tests/emulator_rehearsal_test.ts.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { EXIT_CODES } from "../src/cli.ts";
import { ALL_SOURCES, readClaims } from "../src/emulator/mod.ts";
import { EmulatorPermissionError, permissionError } from "../src/emulator/permission.ts";
import { run } from "./helpers/cli.ts";
import { blockOf, startEmulate } from "./helpers/emulate.ts";
import { VAULT, withRealTempDir } from "./helpers/emulator.ts";
import { testClient } from "./helpers/fake.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CLI = join(ROOT, "src", "cli.ts");

interface DenoView {
  execPath(): string;
  Command: new (command: string, options: {
    args: string[];
    cwd?: string;
    env?: Record<string, string>;
    stdout?: "piped";
    stderr?: "piped";
    stdin?: "null";
  }) => {
    spawn(): {
      stdout: ReadableStream<Uint8Array>;
      stderr: ReadableStream<Uint8Array>;
      status: Promise<{ code: number; signal: string | null }>;
      kill(signal?: string): void;
    };
    output(): Promise<{ code: number; stdout: Uint8Array; stderr: Uint8Array }>;
  };
}
const Deno = (globalThis as { Deno?: DenoView }).Deno;
const onDeno = Deno !== undefined;
const denoOnly = onDeno ? false : "Deno's permissions only";

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/** A running child: its output so far, a promise of a line, and a way to stop it. */
interface Child {
  out(): string;
  err(): string;
  /** Resolves once stdout holds `text` (rejects when the child exits first, or after 30 s). */
  waitFor(text: string): Promise<void>;
  /** Sends SIGTERM (SIGKILL after 10 s) and resolves with the exit code. */
  stop(): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

/**
 * Starts `args` with this runtime: on Deno with exactly `flags` (Deno.Command, not
 * node:child_process, whose Deno layer passes this process's permissions on), elsewhere as
 * `node|bun args`.
 */
function startChild(flags: readonly string[], args: readonly string[]): Child {
  let out = "";
  let err = "";
  const watchers: { text: string; resolve: () => void }[] = [];
  const check = () => {
    for (const watcher of [...watchers]) {
      if (out.includes(watcher.text)) {
        watchers.splice(watchers.indexOf(watcher), 1);
        watcher.resolve();
      }
    }
  };
  let exited: Promise<number | null>;
  let kill: (signal: string) => void;
  if (Deno) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--quiet", ...flags, ...args],
      cwd: ROOT,
      env: { DENO_NO_UPDATE_CHECK: "1" },
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    const pump = async (stream: ReadableStream<Uint8Array>, add: (text: string) => void) => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) add(decoder.decode(chunk, { stream: true }));
    };
    const pumped = Promise.all([
      pump(child.stdout, (text) => {
        out += text;
        check();
      }),
      pump(child.stderr, (text) => err += text),
    ]);
    exited = child.status.then(async ({ code }) => {
      await pumped;
      return code;
    });
    kill = (signal) => {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    };
  } else {
    const child = spawn(process.execPath, [...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (text: string) => {
      out += text;
      check();
    });
    child.stderr.on("data", (text: string) => err += text);
    exited = new Promise((resolve) => child.on("close", (code) => resolve(code)));
    kill = (signal) => child.kill(signal as "SIGTERM");
  }
  const deadline = setTimeout(() => kill("SIGKILL"), 60_000);
  exited = exited.finally(() => clearTimeout(deadline));
  return {
    out: () => out,
    err: () => err,
    exited,
    waitFor(text) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      return new Promise<void>((resolve, reject) => {
        watchers.push({ text, resolve });
        check();
        timer = setTimeout(() => reject(new Error(`no "${text}" within 30 s: ${out}\n${err}`)), 30_000);
        exited.then((code) => reject(new Error(`exited (${code}) before "${text}": ${out}\n${err}`)));
      }).finally(() => clearTimeout(timer));
    },
    async stop() {
      kill("SIGTERM");
      const timer = setTimeout(() => kill("SIGKILL"), 10_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** The `--allow-*` flags of a command line. */
const allowFlags = (line: string) => line.split(/\s+/).filter((word) => word.startsWith("--allow")).sort();

/**
 * The Deno permissions documented for the CLI: `deno task cli`'s, which the install and run lines of the README and
 * of docs/cli.md must equal.
 */
async function documentedCliFlags(): Promise<string[]> {
  const config = JSON.parse(await readFile(join(ROOT, "deno.json"), "utf8")) as { tasks: Record<string, string> };
  const task = allowFlags(config.tasks.cli!);
  assert.ok(task.length > 0, "deno task cli grants permissions");
  for (const page of ["README.md", "docs/cli.md"]) {
    const text = await readFile(join(ROOT, page), "utf8");
    // The install line and the run-without-installing line (`... cli <command>`), not examples of one command.
    const lines = text.split("\n").filter((line) =>
      /^deno (install -g -n azmi|run) .*jsr:@azmi\/managed-identity\/cli( <command>)?$/.test(line)
    );
    assert.equal(lines.length, 2, `${page}'s deno install and deno run lines for the CLI`);
    for (const line of lines) assert.deepEqual(allowFlags(line), task, `${page}'s "${line}"`);
  }
  return task;
}

describe("every source starts with the documented permissions", () => {
  test(
    "on Deno with deno task cli's flags (the README's), emulate --source arc --arc-key-dir <dir> serves Azure Arc",
    { skip: denoOnly },
    async () => {
      const flags = await documentedCliFlags();
      await withRealTempDir(async (dir) => {
        const child = startChild(flags, [CLI, "emulate", "--source", "arc", "--arc-key-dir", dir]);
        try {
          await child.waitFor("Running until");
          const env = blockOf(child.out(), "AzureArc");
          const client = testClient({ env }, { arcTokenDirectory: dir });
          assert.equal(client.source, "AzureArc");
          const token = await client.acquireToken(VAULT);
          assert.equal(readClaims(token.accessToken)?.azmi_source, "AzureArc");
        } finally {
          assert.equal(await child.stop(), EXIT_CODES.ok, child.err());
        }
        assert.doesNotMatch(child.err(), /cannot|NotCapable|allow-sys/i);
        assert.deepEqual(await readdir(dir), [], "the key files are removed at stop");
      });
    },
  );

  test("emulate serves all seven sources, none left out (on Deno with the documented flags)", async () => {
    const flags = onDeno ? await documentedCliFlags() : [];
    await withRealTempDir(async (dir) => {
      const child = startChild(flags, [CLI, "emulate", "--arc-key-dir", dir, "--federated-token-dir", dir]);
      try {
        await child.waitFor("Running until");
        const out = child.out();
        assert.doesNotMatch(out, /left out/, out);
        for (const source of ALL_SOURCES) {
          const env = blockOf(out, source);
          const client = testClient({ env }, { arcTokenDirectory: dir });
          assert.equal(client.source, source);
          // Service Fabric's pinned HTTPS and Arc's key file included: a real request each.
          assert.equal(readClaims((await client.acquireToken(VAULT)).accessToken)?.azmi_source, source, source);
        }
      } finally {
        assert.equal(await child.stop(), EXIT_CODES.ok, child.err());
      }
    });
  });

  test("a directory that cannot be written is refused with the real reason, exit code 5", async () => {
    await withRealTempDir(async (dir) => {
      const file = join(dir, "file");
      await writeFile(file, "");
      const result = await run(["emulate", "--source", "arc", "--arc-key-dir", join(file, "tokens")]);
      assert.equal(result.code, EXIT_CODES.configuration);
      assert.equal(result.err.trim().split("\n").length, 1, result.err);
      assert.match(result.err, /it is not a directory/);
      assert.doesNotMatch(result.err, /run as a user/);
      // A missing directory whose parent is writable is fine: the emulator creates it.
      const emulate = await startEmulate(["--source", "arc", "--arc-key-dir", join(dir, "new", "tokens")]);
      emulate.stop.abort();
      assert.equal(await emulate.running, EXIT_CODES.ok, emulate.err());
    });
  });
});

describe("a refused permission is one line naming the flag", () => {
  test("a refused target holding control or format characters is quoted escaped, on one line", () => {
    const target = "/tmp/\x1b]0;owned\x07\u202e\nFORGED";
    const refusal = Object.assign(new Error(`Requires write access to "${target}", run again with --allow-write`), {
      name: "NotCapable",
    });
    const error = permissionError(refusal, "write a file")!;
    assert.ok(error instanceof EmulatorPermissionError);
    assert.ok(error.message.includes('to "/tmp/\\x1b]0;owned\\x07\\u202e\\x0aFORGED"'), error.message);
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(error.message, /[\x00-\x1f\u202e]/);
    // The flag itself, to copy, is as the runtime named it.
    assert.deepEqual(error.flags, [`--allow-write=${target}`]);
  });

  test("emulate without --allow-write: Arc's and workload identity's directories name --allow-write=<dir>", {
    skip: denoOnly,
  }, async () => {
    await withRealTempDir(async (dir) => {
      for (const [source, flag] of [["arc", "--arc-key-dir"], ["wi", "--federated-token-dir"]]) {
        const child = startChild(
          ["--allow-env", "--allow-net", "--allow-read"],
          [CLI, "emulate", "--source", source!, flag!, dir],
        );
        const code = await child.exited;
        assert.equal(code, EXIT_CODES.configuration, `${source}: ${child.err()}`);
        const lines = child.err().trim().split("\n");
        assert.equal(lines.length, 1, child.err());
        assert.ok(lines[0]!.includes(`--allow-write=${dir}`), lines[0]);
        assert.doesNotMatch(lines[0]!, /NotCapable|run as a user|\n/);
      }
      // Without --federated-token-dir, workload identity's default directory is named too.
      const child = startChild(["--allow-env", "--allow-net", "--allow-read"], [CLI, "emulate", "--source", "wi"]);
      assert.equal(await child.exited, EXIT_CODES.configuration, child.err());
      assert.equal(child.err().trim().split("\n").length, 1, child.err());
      assert.match(child.err(), /--allow-write=\S+/);
      assert.equal(child.out(), "");
    });
  });

  const onNode = !onDeno && (globalThis as { Bun?: unknown }).Bun === undefined;
  test("under Node's permission model, emulate names --allow-fs-write=<dir>", {
    skip: onNode ? false : "Node's permission model only",
  }, async () => {
    await withRealTempDir(async (dir) => {
      const child = startChild([], [
        "--permission",
        "--allow-fs-read=*",
        CLI,
        "emulate",
        "--source",
        "arc",
        "--arc-key-dir",
        dir,
      ]);
      assert.equal(await child.exited, EXIT_CODES.configuration, child.err());
      const lines = child.err().trim().split("\n");
      assert.equal(lines.length, 1, child.err());
      assert.ok(lines[0]!.includes(`--allow-fs-write=${dir}`), lines[0]);
      assert.doesNotMatch(lines[0]!, /run as a user/);
    });
  });

  /** Runs tests/helpers/emulator_permission_child.ts with `flags`; its stdout and stderr. */
  async function permissionChild(flags: string[], plan: Record<string, unknown>) {
    const script = fileURLToPath(new URL("./helpers/emulator_permission_child.ts", import.meta.url));
    const result = await new Deno!.Command(Deno!.execPath(), {
      args: ["run", "--no-prompt", "--quiet", ...flags, script, JSON.stringify(plan)],
      env: { DENO_NO_UPDATE_CHECK: "1" },
    }).output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return { code: result.code, out: decode(result.stdout), err: decode(result.stderr) };
  }

  test("serve() with workload identity: an uncaught refusal prints one line naming the flag", {
    skip: denoOnly,
  }, async () => {
    await withRealTempDir(async (dir) => {
      // docs/permissions.md's snippet with workload identity's token file in `dir`, and no --allow-write.
      const writing = await permissionChild(["--allow-net=127.0.0.1"], { mode: "serve-wi", dir });
      assert.notEqual(writing.code, 0);
      const lines = writing.err.trim().split("\n");
      assert.equal(lines.length, 1, writing.err);
      assert.ok(lines[0]!.includes(`--allow-write=${dir}`), lines[0]);
      assert.doesNotMatch(writing.err, /NotCapable|\s+at /);
      // In the temporary directory, which Deno finds through TMPDIR: --allow-env=TMPDIR first.
      const finding = await permissionChild(["--allow-net=127.0.0.1"], { mode: "serve-wi" });
      assert.equal(finding.err.trim().split("\n").length, 1, finding.err);
      assert.match(finding.err, /--allow-env=TMPDIR/);
      // And with what docs/permissions.md documents, it serves.
      const granted = await permissionChild(
        ["--allow-net=127.0.0.1", `--allow-read=${dir}`, `--allow-write=${dir}`],
        { mode: "serve-wi", dir },
      );
      assert.equal(granted.code, 0, granted.err);
      assert.equal(granted.out.trim(), "served WorkloadIdentity");
    });
  });

  test("serve() without --allow-net names --allow-net=127.0.0.1", { skip: denoOnly }, async () => {
    const result = await permissionChild([], { mode: "serve-app-service" });
    assert.notEqual(result.code, 0);
    assert.equal(result.err.trim().split("\n").length, 1, result.err);
    assert.match(result.err, /--allow-net=127\.0\.0\.1\b/);
  });

  test("Azure Arc's handler without --allow-write answers a 500 naming --allow-write=<dir>, and the client says so", {
    skip: denoOnly,
  }, async () => {
    await withRealTempDir(async (dir) => {
      const result = await permissionChild([], { mode: "arc-handler", dir });
      assert.equal(result.code, 0, result.err);
      assert.equal(result.err, "", "nothing but the answer: no stack trace");
      const { status, body, client } = JSON.parse(result.out) as { status: number; body: string; client: string };
      assert.equal(status, 500);
      // The value quoted, so that the client's redaction does not take a long path for a token.
      assert.ok(body.includes(`--allow-write=\\"${dir}\\"`), body);
      assert.ok(client.includes(`--allow-write="${dir}"`), client);
    });
  });
});
