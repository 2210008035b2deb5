/**
 * What the emulator's tests (tests/emulator*_test.ts) share: the resource they ask for, and a
 * temporary directory removed afterwards, given by its real path where a test names it in flags.
 */

import { mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const VAULT = "https://vault.azure.net";

/** Runs `body` with a new temporary directory, removed afterwards whatever happens. */
export async function withTempDir<T>(body: (dir: string) => Promise<T>, prefix = "azmi-emulator-"): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** withTempDir() given the directory's real path (macOS's /var is a link): Deno's flags name paths. */
export function withRealTempDir<T>(body: (dir: string) => Promise<T>, prefix = "azmi-rehearsal-"): Promise<T> {
  return withTempDir(async (dir) => await body(await realpath(dir)), prefix);
}
