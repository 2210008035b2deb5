/**
 * Whether files can be written in a directory, found out by writing one: a probe file is
 * created and removed. Asking instead (`access(path, W_OK)`) needs more than the write itself
 * on Deno: its `node:fs` looks up the user ID, which only `--allow-sys` grants, and the promise
 * form then rejects outside the caller's `try`. Used by `deno task demo` for Azure Arc's key
 * directory.
 * @module
 */

import { loadBuiltin } from "../runtime.ts";

/** Whether a directory can be written in, and if not, why (a clause: "it does not exist"). */
export type WriteCheck = { readonly writable: true } | { readonly writable: false; readonly reason: string };

interface FsView {
  writeFile(path: string, data: string, options: { flag: string; mode: number }): Promise<void>;
  rm(path: string, options: { force: boolean }): Promise<void>;
}

/**
 * Creates and removes a probe file in `directory` (which is never created). Never throws: every
 * failure, a runtime without `node:fs` or a Deno permission included, is a `reason`.
 */
export async function checkWritable(directory: string): Promise<WriteCheck> {
  let fs: FsView;
  try {
    fs = loadBuiltin<FsView>("node:fs/promises");
  } catch {
    return { writable: false, reason: "this runtime cannot write files (no node:fs/promises)" };
  }
  const probe = `${directory.replace(/[\\/]+$/, "")}/.azmi-write-probe-${crypto.randomUUID()}`;
  try {
    // "wx": a new file only, never one that is there already.
    await fs.writeFile(probe, "", { flag: "wx", mode: 0o600 });
  } catch (error) {
    return { writable: false, reason: whyNot(error) };
  }
  await fs.rm(probe, { force: true }).catch(() => {});
  return { writable: true };
}

function whyNot(error: unknown): string {
  const { code, name } = (error ?? {}) as { code?: unknown; name?: unknown };
  switch (code) {
    case "ENOENT":
      return "it does not exist";
    case "ENOTDIR":
      return "it is not a directory";
    case "EACCES":
    case "EPERM":
      return "this user may not write there";
    case "EROFS":
      return "it is on a read-only file system";
  }
  if (name === "NotCapable" || name === "PermissionDenied") {
    return "Deno's permissions do not allow writing there (--allow-write)";
  }
  const message = error instanceof Error ? error.message : String(error);
  return `writing there failed: ${message.split("\n")[0]}`;
}
