/**
 * Reading workload identity's federated token file: a secret, like Azure Arc's key, read with
 * the same care (src/file_read.ts): opened once without blocking (a FIFO swapped in cannot hang
 * a call), checked on the open handle to be a regular file of at most 64 KiB, read with that
 * cap, and bounded by the attempt's timeout and the caller's signal. Unlike Arc's key, links are
 * followed: Kubernetes projects the token through symbolic links (`token -> ..data/token`) so
 * that it can rotate it atomically. Errors say what to check, never what the file holds.
 * @module
 */

import { ManagedIdentityError } from "./errors.ts";
import { bounded, openFlags, openWithin, readAtMost } from "./file_read.ts";
import { loadBuiltin } from "./runtime.ts";
import type { TokenFileSystem } from "./file_read.ts";

/** The largest federated token file accepted (a service account token is 1 to 2 KB). */
export const MAX_TOKEN_FILE_BYTES = 64 * 1024;

// A directory or a FIFO: the variable names something other than the projected token itself.
const NOT_A_FILE = "is not a regular file: it must name the token file itself, not its directory";

const CHECK = "on AKS, check the pod's label azure.workload.identity/use: \"true\", its service account's " +
  "annotation azure.workload.identity/client-id, and that the token volume is mounted at that path";

function fileError(code: string, message: string, cause?: unknown): ManagedIdentityError {
  return new ManagedIdentityError(code, `Workload identity: ${message}`, { source: "WorkloadIdentity", cause });
}

/**
 * The assertion in the federated token file at `path`, trimmed.
 *
 * @throws {ManagedIdentityError} `invalid_configuration` when the file is missing, empty, not a
 *   regular file, larger than 64 KiB or unreadable (saying what to check), or the runtime refuses
 *   to read it (Deno without `--allow-read`: naming the flag); `timeout` or `aborted`.
 */
export async function readTokenFile(
  path: string,
  fs: TokenFileSystem | undefined,
  { signal, timeoutMs }: { readonly signal?: AbortSignal | undefined; readonly timeoutMs: number },
): Promise<string> {
  const bound = bounded(signal, timeoutMs);
  try {
    const system = fs ?? loadBuiltin<TokenFileSystem>("node:fs/promises");
    const { O_RDONLY, O_NONBLOCK } = openFlags();
    const handle = await openWithin(system.open(path, O_RDONLY | O_NONBLOCK), bound);
    try {
      const opened = await bound.step(handle.stat());
      if (!opened.isFile()) {
        throw fileError("invalid_configuration", `AZURE_FEDERATED_TOKEN_FILE "${path}" ${NOT_A_FILE}`);
      }
      const bytes = await readAtMost(handle, MAX_TOKEN_FILE_BYTES, bound);
      if (bytes.length > MAX_TOKEN_FILE_BYTES) {
        throw fileError(
          "invalid_configuration",
          `AZURE_FEDERATED_TOKEN_FILE "${path}" holds more than ${MAX_TOKEN_FILE_BYTES} bytes: not a service account token`,
        );
      }
      const assertion = new TextDecoder().decode(bytes).trim();
      if (!assertion) {
        throw fileError("invalid_configuration", `AZURE_FEDERATED_TOKEN_FILE "${path}" is empty: ${CHECK}`);
      }
      return assertion;
    } finally {
      await bound.step(handle.close()).catch(() => {});
    }
  } catch (error) {
    if (signal?.aborted) {
      throw fileError("aborted", `reading the federated token file "${path}" was aborted by the caller`, signal.reason);
    }
    if (bound.timer.aborted) {
      throw fileError("timeout", `reading the federated token file "${path}" took longer than ${timeoutMs} ms`);
    }
    if (error instanceof ManagedIdentityError) throw error;
    // The runtime's refusal (Deno without --allow-read): failure.ts loads on this path only.
    const flag = (await import("./failure.ts")).refusedFlag(error, "read", path);
    const code = (error as { code?: unknown } | null)?.code;
    const reason = flag
      ? `cannot be read: the runtime refused; run it with ${flag}`
      : code === "ENOENT" || code === "ENOTDIR"
      ? `does not exist: ${CHECK}`
      : code === "EACCES" || code === "EPERM"
      ? "cannot be read by this process: its owner and mode do not allow it"
      : code === "EISDIR" || code === "ENXIO"
      ? NOT_A_FILE
      : `cannot be read (${String(code ?? "an unknown error")})`;
    throw fileError("invalid_configuration", `AZURE_FEDERATED_TOKEN_FILE "${path}" ${reason}`);
  }
}
