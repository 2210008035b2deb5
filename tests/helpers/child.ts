/**
 * Runs a TypeScript script in a child process of the runtime running the tests (Deno, Bun or
 * Node, whichever this is), with an environment of the test's choosing, and tells when each
 * line of its output arrived and when it exited: what only a real process shows (which proxy
 * variables a runtime's `fetch` honours, whether anything keeps the process alive).
 */

import { spawn } from "node:child_process";

/** What a child did: its exit code, its output lines with their arrival times, and when it exited. */
export interface ChildRun {
  readonly code: number | null;
  readonly lines: readonly { readonly text: string; readonly at: number }[];
  readonly stderr: string;
  /** `performance.now()` in this process when the child exited. */
  readonly exitedAt: number;
  /** Whether it was killed at `timeoutMs`. */
  readonly killed: boolean;
}

/** The command line that runs `script` with this runtime, all permissions granted on Deno. */
export function runtimeCommand(script: string, args: readonly string[] = []): [string, string[]] {
  const runtime = globalThis as { Deno?: { execPath(): string } };
  if (runtime.Deno) return [runtime.Deno.execPath(), ["run", "-A", "--quiet", script, ...args]];
  return [process.execPath, [script, ...args]];
}

/**
 * What a child runtime needs of this process's environment to start (PATH, HOME, NODE_OPTIONS,
 * DENO_DIR, TMPDIR), and Deno's update check off: it checks for a newer version of itself at
 * start, through any proxy a test names. Nothing else of this process's environment.
 */
export function childBaseEnv(): Record<string, string> {
  const inherited: Record<string, string> = { DENO_NO_UPDATE_CHECK: "1" };
  for (const name of ["PATH", "HOME", "NODE_OPTIONS", "DENO_DIR", "TMPDIR"]) {
    const value = process.env[name];
    if (value !== undefined) inherited[name] = value;
  }
  return inherited;
}

/**
 * Runs `script` with exactly `env` (plus {@linkcode childBaseEnv}), kills it after `timeoutMs`.
 */
export function runChild(
  script: string,
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<ChildRun> {
  const [command, argv] = runtimeCommand(script, args);
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { env: { ...childBaseEnv(), ...env }, stdio: ["ignore", "pipe", "pipe"] });
    const lines: { text: string; at: number }[] = [];
    let pending = "";
    let stderr = "";
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      const at = performance.now();
      pending += chunk;
      const parts = pending.split("\n");
      pending = parts.pop()!;
      for (const text of parts) lines.push({ text, at });
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => stderr += chunk);
    child.on("error", reject);
    child.on("close", (code) => {
      const exitedAt = performance.now();
      clearTimeout(timer);
      if (pending) lines.push({ text: pending, at: exitedAt });
      resolve({ code, lines, stderr, exitedAt, killed });
    });
  });
}

/** `azmi emulate` running as a child process of this runtime, once it has printed its variables. */
export interface EmulateChild {
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Whether it is still running. */
  running(): boolean;
  /** Its exit code when it has ended. */
  readonly exited: Promise<number | null>;
  /** Kills it (SIGKILL) if it still runs, and waits for it to end. */
  kill(): Promise<void>;
}

/**
 * Starts `azmi emulate ARGS` as a child process of this runtime and waits until its last line
 * (how to stop it with SIGTERM) is out, at most `startMs`; it is killed after `lifeMs` whatever
 * the test does. Throws, with what it wrote to stderr, when it ends or stays silent first.
 */
export async function spawnEmulate(args: readonly string[], startMs = 30_000, lifeMs = 90_000): Promise<EmulateChild> {
  const cli = new URL("../../src/cli.ts", import.meta.url).pathname;
  const [command, argv] = runtimeCommand(cli, ["emulate", ...args]);
  const child = spawn(command, argv, { env: childBaseEnv(), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (text: string) => stdout += text);
  child.stderr.setEncoding("utf8").on("data", (text: string) => stderr += text);
  let ended = false;
  const exited = new Promise<number | null>((resolve) =>
    child.on("close", (code) => {
      ended = true;
      resolve(code);
    })
  );
  const killer = setTimeout(() => child.kill("SIGKILL"), lifeMs);
  const kill = async () => {
    clearTimeout(killer);
    if (!ended) child.kill("SIGKILL");
    await exited;
  };
  const ready = /SIGTERM\.\n/;
  for (let waited = 0; waited < startMs && !ready.test(stdout) && !ended; waited += 50) {
    await new Promise((wake) => setTimeout(wake, 50));
  }
  if (!ready.test(stdout)) {
    await kill();
    throw new Error(`azmi emulate did not start: ${stderr}`);
  }
  return {
    pid: child.pid!,
    stdout: () => stdout,
    stderr: () => stderr,
    running: () => !ended,
    exited,
    kill,
  };
}
