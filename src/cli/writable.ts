/**
 * Whether files can be written in a directory, found out by writing one: a probe file is
 * created and removed. Asking instead (`access(path, W_OK)`) needs more than the write itself
 * on Deno: its `node:fs` looks up the user ID, which only `--allow-sys` grants, and the promise
 * form then rejects outside the caller's `try`. Used by `azmi emulate` for Azure Arc's key
 * directory and workload identity's token directory, and by `deno task demo`.
 * @module
 */

import { flagFor, refusalOf } from "../emulator/permission.ts";
import { loadBuiltin } from "../runtime.ts";

/** Whether a directory can be written in, and if not, why (a clause: "it does not exist"). */
export type WriteCheck = { readonly writable: true } | { readonly writable: false; readonly reason: string };

interface FsView {
  writeFile(path: string, data: string, options: { flag: string; mode: number }): Promise<void>;
  rm(path: string, options: { force: boolean }): Promise<void>;
}

const MISSING = "it does not exist";

/**
 * Creates and removes a probe file in `directory` (which is never created). Never throws: every
 * failure, a runtime without `node:fs` or a Deno permission included, is a `reason`; a refused
 * permission's reason names the flag that grants it (`--allow-write=<directory>`).
 */
export async function checkWritable(directory: string): Promise<WriteCheck> {
  let fs: FsView;
  try {
    fs = loadBuiltin<FsView>("node:fs/promises");
  } catch {
    return { writable: false, reason: "this runtime cannot write files (no node:fs/promises)" };
  }
  const trimmed = directory.replace(/[\\/]+$/, "") || directory;
  const probe = `${trimmed.replace(/[\\/]+$/, "")}/.azmi-write-probe-${crypto.randomUUID()}`;
  try {
    // "wx": a new file only, never one that is there already.
    await fs.writeFile(probe, "", { flag: "wx", mode: 0o600 });
  } catch (error) {
    return { writable: false, reason: whyNot(error, trimmed) };
  }
  await fs.rm(probe, { force: true }).catch(() => {});
  return { writable: true };
}

/**
 * Whether the emulator can write in `directory`, creating it (and the missing directories above
 * it) as it does: the nearest directory that exists must be writable. Nothing is created here.
 */
export async function checkCreatable(directory: string): Promise<WriteCheck> {
  let path = directory;
  for (let depth = 0; depth < 64; depth++) {
    const check = await checkWritable(path);
    if (check.writable || check.reason !== MISSING) {
      // A refused permission names the directory given: that is the one to allow.
      return check.writable || path === directory
        ? check
        : { writable: false, reason: renamed(check.reason, path, directory) };
    }
    const parent = path.replace(/[\\/]+[^\\/]*[\\/]*$/, "");
    if (parent === path || parent === "") return check;
    path = parent;
  }
  return { writable: false, reason: MISSING };
}

/** A reason found for `found`, said of `wanted`: a flag names the directory to allow, `wanted`. */
function renamed(reason: string, found: string, wanted: string): string {
  return reason.includes(`=${found}`) ? reason.replace(`=${found}`, `=${wanted}`) : `${reason} (${found})`;
}

function whyNot(error: unknown, directory: string): string {
  const { code } = (error ?? {}) as { code?: unknown };
  const refusal = refusalOf(error);
  if (refusal) {
    return `${refusal.node ? "Node's permission model does" : "Deno's permissions do"} not allow writing there: run ` +
      `it with ${flagFor(refusal.kind, directory, refusal.node)}`;
  }
  switch (code) {
    case "ENOENT":
      return MISSING;
    case "ENOTDIR":
      return "it is not a directory";
    case "EACCES":
    case "EPERM":
      return "this user may not write there";
    case "EROFS":
      return "it is on a read-only file system";
  }
  const message = error instanceof Error ? error.message : String(error);
  return `writing there failed: ${message.split("\n")[0]}`;
}
