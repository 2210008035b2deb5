/**
 * A fake `az` and a fake `azd`: POSIX shell scripts written into a temporary directory that a
 * test puts first on the `PATH` of the env it passes, never the real tools. Each run appends a
 * line to a counter file, writes its argv (NUL-separated) and its pid, then does what the
 * tool's scenario file says: print the given stdout and stderr and exit with the given code
 * (after an optional start-up delay), hang with a child process (so a kill must reach the
 * group), or print forever.
 */

import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { shellQuote } from "../../src/cli/running.ts";

/** What one run of a fake tool does. */
export interface Scenario {
  readonly stdout?: string;
  readonly stderr?: string;
  readonly code?: number;
  /** A start-up delay before anything is printed, in milliseconds (the real az takes about 1 s). */
  readonly delayMs?: number;
  /**
   * `hang`: never exits (a child `sleep` holds the group); `forever`: prints `y` lines forever;
   * `escape`: exits at once, leaving a `sleep` in a session of its own (out of the group's reach)
   * that holds stdout and stderr open (needs `setsid`).
   */
  readonly mode?: "print" | "hang" | "forever" | "escape";
}

/** The fakes' directory, and what they recorded. */
export interface FakeTools {
  readonly dir: string;
  /** An env whose PATH has the fakes first, then the system directories `sh`, `cat` and `sleep` live in. */
  env(extra?: Record<string, string>): Record<string, string>;
  set(tool: "az" | "azd", scenario: Scenario): Promise<void>;
  /** The argv of the tool's last run. */
  argv(tool: "az" | "azd"): Promise<string[]>;
  /** How many times the tool ran. */
  runs(tool: "az" | "azd"): Promise<number>;
  /** The pids of the tool's last run: the script's, and its child's when it hangs. */
  pids(tool: "az" | "azd"): Promise<number[]>;
  remove(): Promise<void>;
}

function script(dir: string, tool: string): string {
  const at = (name: string) => shellQuote(join(dir, `${tool}.${name}`));
  return `#!/bin/sh
echo run >> ${at("count")}
printf '%s\\0' "$@" > ${at("argv")}
echo $$ > ${at("pid")}
delay=$(cat ${at("delay")})
[ "$delay" = 0 ] || sleep "$delay"
mode=$(cat ${at("mode")})
case "$mode" in
  hang) sleep 600 & echo $! >> ${at("pid")}; wait ;;
  escape) setsid sh -c 'echo $$ >> "$1"; exec sleep 600' sh ${at("pid")} & sleep 0.2; exit 0 ;;
  forever) while :; do echo yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy; done ;;
  *) cat ${at("stdout")}; cat ${at("stderr")} >&2; exit "$(cat ${at("code")})" ;;
esac
`;
}

/** Writes the fakes, each answering with `scenario` until {@linkcode FakeTools.set} changes it. */
export async function fakeTools(scenarios: { az?: Scenario; azd?: Scenario } = {}): Promise<FakeTools> {
  const dir = await mkdtemp(join(tmpdir(), "azmi-fake-tools-"));
  const read = async (name: string) => {
    try {
      return await readFile(join(dir, name), "utf8");
    } catch {
      return "";
    }
  };
  const tools: FakeTools = {
    dir,
    env: (extra = {}) => ({ PATH: `${dir}:/usr/bin:/bin`, ...extra }),
    async set(tool, scenario) {
      const seconds = ((scenario.delayMs ?? 0) / 1000).toFixed(3);
      await writeFile(join(dir, `${tool}.stdout`), scenario.stdout ?? "");
      await writeFile(join(dir, `${tool}.stderr`), scenario.stderr ?? "");
      await writeFile(join(dir, `${tool}.code`), String(scenario.code ?? 0));
      await writeFile(join(dir, `${tool}.delay`), scenario.delayMs ? seconds : "0");
      await writeFile(join(dir, `${tool}.mode`), scenario.mode ?? "print");
    },
    argv: async (tool) => (await read(`${tool}.argv`)).split("\0").slice(0, -1),
    runs: async (tool) => (await read(`${tool}.count`)).split("\n").filter(Boolean).length,
    pids: async (tool) => (await read(`${tool}.pid`)).split("\n").filter(Boolean).map(Number),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
  for (const tool of ["az", "azd"] as const) {
    await writeFile(join(dir, tool), script(dir, tool));
    await chmod(join(dir, tool), 0o755);
    await tools.set(tool, scenarios[tool] ?? {});
  }
  return tools;
}

/** `datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S.%f")`: az's `expiresOn`, local time. */
export function azLocalTime(seconds: number): string {
  const date = new Date(seconds * 1000);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${
    two(date.getMinutes())
  }:${two(date.getSeconds())}.000000`;
}

/**
 * What `az account get-access-token -o json` prints: knack's `json.dumps(indent=2, sort_keys=True)`
 * of az's object, with `expires_on` from az 2.54.0 on (`legacy: true` leaves it out, as before).
 */
export function azAnswer(
  token: string,
  expiresOn: number,
  options: { readonly tenant?: string; readonly legacy?: boolean; readonly subscription?: string } = {},
): string {
  const body: Record<string, unknown> = {
    accessToken: token,
    expiresOn: azLocalTime(expiresOn),
    ...(options.legacy ? {} : { expires_on: expiresOn }),
    subscription: options.subscription ?? "0b1f6471-1bf0-4dda-aec3-cb9272f09590",
    tenant: options.tenant ?? "54826b22-38d6-4fb2-bad9-b7b93a3e9c5a",
    tokenType: "Bearer",
  };
  return `${JSON.stringify(body, null, 2)}\n`;
}

/** What `azd auth token --output json` prints: `contracts.AuthTokenResult`, `expiresOn` in RFC 3339 (UTC, no fraction). */
export function azdAnswer(token: string, expiresOn: number): string {
  const iso = new Date(expiresOn * 1000).toISOString().replace(/\.\d+Z$/, "Z");
  return `${JSON.stringify({ token, expiresOn: iso }, null, 2)}\n`;
}

/** az's answer when nobody is signed in: exit code 1 (azure-cli-core `_profile.py`, `get_subscription`). */
export const AZ_SIGNED_OUT: Scenario = { stderr: "ERROR: Please run 'az login' to setup account.\n", code: 1 };

/** azd's answer when nobody is signed in (azure-dev `pkg/auth/errors.go`, `ErrNoCurrentUser`). */
export const AZD_SIGNED_OUT: Scenario = {
  stderr: "\nERROR: fetching token: not logged in, run `azd auth login` to login\n",
  code: 1,
};
