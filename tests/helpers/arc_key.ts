/**
 * What the Azure Arc key tests (tests/arc_*_test.ts) share: a key, the Windows token directory,
 * fake file-system answers, and predicates for Arc's refusals, none of which may show the key.
 */

import assert from "node:assert/strict";
import { ManagedIdentityError } from "../../mod.ts";
import { type ArcKeyFileSystem, readArcKey, validateArcChallenge } from "../../src/arc_key.ts";
import { assertNoLeak, renderings } from "./leaks.ts";
import { withTempDir as inTempDir } from "./temp_dir.ts";

export const KEY = "SECRET-KEY-CONTENTS-1234";
export const WINDOWS_TOKENS = "C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens";

/** The bounds of a direct readArcKey call: the client's default timeout, no caller signal. */
export const BOUNDS = { timeoutMs: 15_000 };

/** What lstat and fstat report for a regular file of `size` bytes (one inode throughout). */
export function fileStat(size: number) {
  return { size, dev: 1, ino: 1, isFile: () => true, isSymbolicLink: () => false };
}

/** An error shaped like the one node:fs throws for `code`. */
export function errnoError(code: string, syscall: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, syscall, path });
}

/** A predicate for assert.throws/rejects: a ManagedIdentityError of `code` from AzureArc whose message has each fragment. */
export function arcError(code: string, ...fragments: string[]): (error: unknown) => true {
  return (error) => {
    assert.ok(error instanceof ManagedIdentityError, `expected a ManagedIdentityError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.equal(error.source, "AzureArc");
    assert.equal(error.name, "ManagedIdentityError");
    for (const fragment of fragments) {
      assert.ok(error.message.includes(fragment), `expected ${JSON.stringify(fragment)} in: ${error.message}`);
    }
    return true;
  };
}

/** Asserts that the key file's contents show in no rendering of `error`, in no notation (leaks.ts). */
export function assertKeyNotShown(error: unknown, key = KEY): void {
  assertNoLeak(renderings(error), key, "error");
}

/** Validates `header`, then (only when valid) reads the key through `fs`, as the Arc source does. */
export async function challengeThenRead(
  header: string | null,
  platform: string,
  directory: string | undefined,
  fs: ArcKeyFileSystem,
): Promise<string> {
  const path = validateArcChallenge(header, platform, directory);
  return await readArcKey(path, platform, () => fs, BOUNDS);
}

/** Runs `body` with a fresh temporary directory (temp_dir.ts), removed afterwards. */
export function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  return inTempDir(body, "azmi-arc-key-");
}
