/**
 * A temporary directory for a test, removed afterwards whatever happens: the one mkdtemp/rm pair
 * the helpers that give tests a directory (arc_key.ts, emulator.ts, workload_identity.ts) build on.
 */

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Runs `body` with a new directory in the system's temporary one, named `prefix` and six random characters. */
export async function withTempDir<T>(body: (dir: string) => Promise<T>, prefix: string): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
