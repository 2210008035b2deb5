/**
 * What the emulator's tests (tests/emulator*_test.ts) share: the resource they ask for, and a
 * temporary directory removed afterwards, given by its real path where a test names it in flags.
 */

import { realpath } from "node:fs/promises";
import { withTempDir as inTempDir } from "./temp_dir.ts";

export const VAULT = "https://vault.azure.net";

/** Runs `body` with a new temporary directory (temp_dir.ts), removed afterwards whatever happens. */
export function withTempDir<T>(body: (dir: string) => Promise<T>, prefix = "azmi-emulator-"): Promise<T> {
  return inTempDir(body, prefix);
}

/** withTempDir() given the directory's real path (macOS's /var is a link): Deno's flags name paths. */
export function withRealTempDir<T>(body: (dir: string) => Promise<T>, prefix = "azmi-rehearsal-"): Promise<T> {
  return withTempDir(async (dir) => await body(await realpath(dir)), prefix);
}
