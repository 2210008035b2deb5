/**
 * Running `azmi emulate` in this process for a test: until it has printed its variables, then
 * until the test stops it; and reading its `export` lines back as a shell would, all of them or
 * one source's block.
 */

import assert from "node:assert/strict";
import type { Source } from "../../mod.ts";
import { main } from "../../src/cli.ts";

/** The variables of `export NAME='value'` lines, unquoted as a POSIX shell would. */
export function parseExports(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^export ([A-Za-z_][A-Za-z0-9_]*)=((?:'[^']*'|\\')+)$/.exec(line);
    if (!match) continue;
    env[match[1]!] = match[2]!.replace(
      /'([^']*)'|\\(')/g,
      (_, quoted: string | undefined, escaped: string) => quoted ?? escaped,
    );
  }
  return env;
}

/** The `export` lines of one source's block in `azmi emulate`'s output. */
export function blockOf(out: string, source: Source): Record<string, string> {
  const start = out.indexOf(`# ${source}: `);
  assert.ok(start >= 0, `${source} is served:\n${out}`);
  const end = out.indexOf("\n\n", start);
  return parseExports(out.slice(start, end === -1 ? undefined : end));
}

/** A running `azmi emulate`: what it printed so far, its stop, and its exit code to come. */
export interface StartedEmulate {
  out(): string;
  err(): string;
  readonly stop: AbortController;
  readonly running: Promise<number>;
}

/**
 * Runs `azmi emulate` with `args` (and `env`, else the process's) until it has printed its
 * variables: `stop` ends it, `running` is its exit code.
 */
export async function startEmulate(
  args: string[],
  env?: Readonly<Record<string, string | undefined>>,
): Promise<StartedEmulate> {
  const stop = new AbortController();
  let out = "";
  let err = "";
  let printed!: () => void;
  const ready = new Promise<void>((resolve) => printed = resolve);
  const running = main(["emulate", ...args], {
    ...(env ? { env } : {}),
    stdout: (text) => {
      out += text;
      if (out.includes("Running until")) printed();
    },
    stderr: (text) => err += text,
    until: stop.signal,
  });
  await Promise.race([ready, running.then((code) => assert.fail(`emulate ended early with ${code}: ${err}`))]);
  return { out: () => out, err: () => err, stop, running };
}
