/**
 * Runs a sign-in tool (`az`, `azd`) and collects what it prints, on Deno, Bun and Node alike
 * through `node:child_process`, loaded lazily. The rules, and where they come from, are in
 * docs/sign_in.md:
 *
 * - Arguments are an argv array, never a shell string: no shell reads them, so a resource holding
 *   `;` or `$(...)` is one argument, not a command.
 * - The tool is looked up on the `PATH` of the env given (never this process's own), and run with
 *   exactly that env, from a fixed system directory (`/bin`, or `%SystemRoot%` on Windows), as
 *   `@azure/identity` and azure-identity for Python do, so that no `az` in the working directory
 *   is picked up.
 * - Each run has a timeout (10 s by default, azure-identity for Python's `process_timeout`) and
 *   ends at once when the caller's signal aborts: the tool is killed with its children (the real
 *   `az` is a shell script that starts Python), as its own process group on POSIX.
 * - stdout and stderr are each capped (1 MiB): beyond it the tool is killed and the run fails.
 * @module
 */

import { concat } from "../../http1.ts";
import { currentPlatform, fileExists, loadBuiltin } from "../../runtime.ts";
import { OriginError } from "../../emulator/origin.ts";

/** The environment a tool runs with and is found through. */
export type ToolEnv = Readonly<Record<string, string | undefined>>;

/** How long a run may take by default: azure-identity for Python's `process_timeout` (10 s). */
export const DEFAULT_TOOL_TIMEOUT_MS = 10_000;
/** The most either stream may carry: a token answer is a few KiB. */
export const MAX_TOOL_OUTPUT_BYTES = 1024 * 1024;

/** How to run a tool. */
export interface RunOptions {
  readonly env: ToolEnv;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** The cap of each stream, in bytes. */
  readonly maxOutputBytes?: number;
  /** How to get the tool, said when it is not on the `PATH`. */
  readonly install?: string;
}

/** What a tool did. */
export interface ToolRun {
  /** The exit code; `null` when a signal ended it. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface ChildView {
  readonly pid?: number;
  readonly stdout: StreamView;
  readonly stderr: StreamView;
  kill(signal?: string): boolean;
  on(event: "error", listener: (error: Error) => void): void;
  on(event: "close" | "exit", listener: (code: number | null) => void): void;
}
interface StreamView {
  on(event: "data", listener: (chunk: Uint8Array) => void): void;
  destroy(): void;
}
interface ChildProcessView {
  spawn(
    command: string,
    args: readonly string[],
    options: {
      cwd: string;
      env: Record<string, string>;
      stdio: readonly ["ignore", "pipe", "pipe"];
      detached: boolean;
      windowsHide: boolean;
      shell: false;
      windowsVerbatimArguments?: boolean;
    },
  ): ChildView;
}
interface ProcessKill {
  kill(pid: number, signal?: string): void;
}

/** The directory tools run in: one the OS owns, never the caller's working directory. */
export function safeWorkingDirectory(env: ToolEnv, platform = currentPlatform()): string {
  if (platform !== "win32") return "/bin";
  return env.SystemRoot ?? env.SYSTEMROOT ?? "C:\\Windows";
}

/**
 * The file `name` names on the env's `PATH`, or `undefined`. On Windows each `PATHEXT`
 * extension is tried in turn (`az.cmd`, `azd.exe`), as the shell would; elsewhere the file must
 * be executable. Only absolute directories count: an empty or relative entry would be the
 * working directory.
 */
export function findTool(
  name: string,
  env: ToolEnv,
  options: { readonly platform?: string; readonly exists?: (path: string) => boolean } = {},
): string | undefined {
  const platform = options.platform ?? currentPlatform();
  const windows = platform === "win32";
  const exists = options.exists ?? ((path: string) => fileExists(path) && (windows || executable(path)));
  const path = windows ? env.Path ?? env.PATH ?? env.path : env.PATH;
  const extensions = windows ? (env.PATHEXT ?? ".COM;.EXE;.BAT;.CMD").split(";").filter(Boolean) : [""];
  for (const dir of (path ?? "").split(windows ? ";" : ":")) {
    const absolute = windows ? /^(?:[a-z]:[\\/]|\\\\)/i.test(dir) : dir.startsWith("/");
    if (!absolute) continue;
    const base = `${dir.replace(/[\\/]+$/, "")}${windows ? "\\" : "/"}${name}`;
    for (const extension of extensions) {
      if (exists(base + extension.toLowerCase())) return base + extension.toLowerCase();
    }
  }
  return undefined;
}

function executable(path: string): boolean {
  try {
    const fs = loadBuiltin<{ accessSync(path: string, mode: number): void; constants: { X_OK: number } }>("node:fs");
    fs.accessSync(path, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// What cmd.exe would read as anything but text inside double quotes.
const CMD_SPECIAL = /["%!^&|<>\r\n]/;

/**
 * The command line for a batch file (`az.cmd`): Node refuses to spawn one without a shell
 * (CVE-2024-27980), so `cmd.exe /d /s /c "..."` runs it with each argument double-quoted, and an
 * argument that cmd.exe would read as more than text is refused rather than escaped.
 */
function batchCommand(file: string, args: readonly string[], env: ToolEnv): [string, string[]] {
  for (const arg of [file, ...args]) {
    if (CMD_SPECIAL.test(arg)) {
      throw new OriginError(
        "failed",
        `refused to pass ${JSON.stringify(arg)} to a batch file: it holds a character cmd.exe reads`,
      );
    }
  }
  const comspec = env.ComSpec ?? env.COMSPEC ?? `${safeWorkingDirectory(env, "win32")}\\System32\\cmd.exe`;
  return [comspec, ["/d", "/s", "/c", `"${[file, ...args].map((arg) => `"${arg}"`).join(" ")}"`]];
}

/** The flag a runtime's refusal to start a process names, or `undefined` when `error` is no refusal. */
export function refusedRunFlag(error: unknown): string | undefined {
  const link = error as { name?: unknown; code?: unknown; message?: unknown } | null;
  const message = typeof link?.message === "string" ? link.message : "";
  if (link?.code === "ERR_ACCESS_DENIED") return "--allow-child-process";
  if (link?.name === "NotCapable" || link?.name === "PermissionDenied" || /--allow-run/.test(message)) {
    return /--allow-run(?:=\S*)?/.exec(message)?.[0]?.replace(/[.,;]$/, "") ?? "--allow-run";
  }
  return undefined;
}

/**
 * Runs `name` (found on `options.env.PATH`) with `args`, and resolves with its exit code and
 * output whatever the code. Rejects with an {@linkcode OriginError}: `missing` when the tool is
 * not on the `PATH` or the runtime refuses to start a process (naming the flag), `timeout` when
 * it ran longer than the timeout, `invalid_output` when a stream passed the cap; and with the
 * signal's reason when the signal aborts. In every one of those cases the tool and its children
 * are killed first, and the promise settles once the tool has exited.
 */
export function runTool(name: string, args: readonly string[], options: RunOptions): Promise<ToolRun> {
  const { env, signal } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS;
  const cap = options.maxOutputBytes ?? MAX_TOOL_OUTPUT_BYTES;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const file = findTool(name, env);
  if (file === undefined) return Promise.reject(notFound(name, options.install));
  const windows = currentPlatform() === "win32";
  let command = file;
  let argv = [...args];
  try {
    if (windows && /\.(?:cmd|bat)$/i.test(file)) [command, argv] = batchCommand(file, args, env);
  } catch (error) {
    return Promise.reject(error);
  }
  const childEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) childEnv[key] = value;
  let child: ChildView;
  try {
    child = loadBuiltin<ChildProcessView>("node:child_process").spawn(command, argv, {
      cwd: safeWorkingDirectory(env),
      env: childEnv,
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group, so that a kill reaches the Python process behind az's script too.
      detached: !windows,
      windowsHide: true,
      shell: false,
      ...(command !== file ? { windowsVerbatimArguments: true } : {}),
    });
  } catch (error) {
    return Promise.reject(startError(name, error, options.install));
  }
  return new Promise<ToolRun>((resolve, reject) => {
    const out: Uint8Array[] = [];
    const err: Uint8Array[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let failure: { error: unknown } | undefined;
    let exited = false;
    // Once the tool is stopped and has exited, its pipes are closed from this end: a child that
    // escaped the kill (a daemon in a session of its own) must not hold the run open.
    const release = () => {
      child.stdout.destroy();
      child.stderr.destroy();
      settle(null);
    };
    const stop = (error: unknown) => {
      if (failure) return;
      failure = { error };
      kill(child, windows);
      if (exited) release();
    };
    const timer = setTimeout(
      () => stop(new OriginError("timeout", `${name} did not finish within ${timeoutMs} ms, and was stopped`)),
      timeoutMs,
    );
    const onAbort = () => stop(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const collect = (chunks: Uint8Array[], which: "stdout" | "stderr") => (chunk: Uint8Array) => {
      if (failure) return;
      const size = which === "stdout" ? (outBytes += chunk.length) : (errBytes += chunk.length);
      if (size > cap) {
        stop(new OriginError("invalid_output", `${name} printed more than ${cap} bytes on ${which}, and was stopped`));
        return;
      }
      chunks.push(chunk);
    };
    child.stdout.on("data", collect(out, "stdout"));
    child.stderr.on("data", collect(err, "stderr"));
    let settled = false;
    const settle = (code: number | null, error?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (failure || error !== undefined) {
        reject(failure ? failure.error : error);
        return;
      }
      resolve({ code, stdout: decode(out), stderr: decode(err) });
    };
    child.on("error", (error) => {
      kill(child, windows);
      settle(null, startError(name, error, options.install));
    });
    child.on("exit", () => {
      exited = true;
      if (failure) release();
    });
    child.on("close", (code) => settle(code));
  });
}

function notFound(name: string, install: string | undefined): OriginError {
  return new OriginError("missing", `${name} was not found on PATH${install ? ` (${install})` : ""}`);
}

function startError(name: string, error: unknown, install: string | undefined): OriginError {
  const flag = refusedRunFlag(error);
  if (flag) return new OriginError("missing", `the runtime refused to start ${name}: run it with ${flag}`);
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "ENOENT") return notFound(name, install);
  return new OriginError("failed", `${name} could not be started${typeof code === "string" ? ` (${code})` : ""}`);
}

/** Kills the tool and its process group (POSIX); on Windows, the tool itself. */
function kill(child: ChildView, windows: boolean): void {
  try {
    if (!windows && child.pid !== undefined) {
      loadBuiltin<ProcessKill>("node:process").kill(-child.pid, "SIGKILL");
      return;
    }
  } catch {
    // The group is gone already, or the runtime cannot signal a group: kill the tool itself.
  }
  try {
    child.kill("SIGKILL");
  } catch {
    // Already gone.
  }
}

function decode(chunks: readonly Uint8Array[]): string {
  return new TextDecoder().decode(concat(chunks));
}
