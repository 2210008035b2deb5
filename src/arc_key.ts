/**
 * Azure Arc's challenge (docs/sources.md, Azure Arc): the agent answers the first request with
 * `401` and `WWW-Authenticate: Basic realm=<key file path>`; the key file's contents prove the
 * caller may read the agent's token directory. A hostile or buggy challenge could name any
 * file, so the path is validated completely before any file is touched. The file is then
 * opened once, without following a link and without blocking (`O_NOFOLLOW | O_NONBLOCK` where
 * the platform has them), and everything else is checked on that open handle: `fstat` says a
 * regular file of at most 4096 bytes, the same one an `lstat` of the path saw just before (so
 * a file swapped in between is refused, on Windows too), and the read stops after 4097 bytes.
 * A symlink, pipe, directory, socket or device swapped in at any moment is refused, never
 * read. Every step is bounded by the attempt's timeout and the caller's signal, and the handle
 * is always closed. The file system is a seam (`node:fs/promises`, loaded lazily on this path
 * only).
 * @module
 */

import { CredentialUnavailableError, ManagedIdentityError } from "./errors.ts";
import { loadBuiltin } from "./runtime.ts";
import { httpError, refusedFlag } from "./failure.ts";
import { visible } from "./redact.ts";
import {
  type ArcKeyFileSystem,
  bounded,
  type FileHandleView,
  type FileStat,
  openFlags,
  openWithin,
  readAtMost,
} from "./file_read.ts";
import type { HttpReply, ParseContext, ParseOutcome, parseStandardReply } from "./sources/source.ts";

export type { ArcKeyFileSystem };

/** What Arc captures at construction. */
export interface ArcConfig {
  readonly platform: string;
  readonly programData: string | undefined;
  /** Overrides from the internal seam (tests). */
  readonly tokenDirectory: string | undefined;
  readonly fileSystem: ArcKeyFileSystem | undefined;
}

/** What `lstat` and `fstat` say about a file, as far as the checks need. */
export type ArcKeyStat = FileStat;

/** An open key file: the subset of `node:fs/promises`' `FileHandle` the read needs. */
export type ArcKeyHandle = FileHandleView;

/** The agent's token directory on Linux. */
export const ARC_LINUX_TOKEN_DIRECTORY = "/var/opt/azcmagent/tokens";

/** The largest key file accepted. */
export const ARC_MAX_KEY_BYTES = 4096;

/** The agent's token directory for a platform; `undefined` where Arc does not run. */
export function arcTokenDirectory(platform: string, programData: string | undefined): string | undefined {
  if (platform === "linux") return ARC_LINUX_TOKEN_DIRECTORY;
  if (platform === "win32") {
    return `${(programData ?? "C:\\ProgramData").replace(/[\\/]+$/, "")}\\AzureConnectedMachineAgent\\Tokens`;
  }
  return undefined;
}

function arcError(code: string, message: string, cause?: unknown): ManagedIdentityError {
  return new ManagedIdentityError(code, `Azure Arc: ${message}`, { source: "AzureArc", cause });
}

const REALM = "Basic realm=";

// The longest file name there is: 255 bytes on Linux (NAME_MAX), 255 UTF-16 units on Windows.
const MAX_NAME = 255;

/**
 * A path from the challenge (or the directory, from `ProgramData`) as a message quotes it: at
 * most 510 characters, since an agent could send one of any length, and every control, format or
 * separator character escaped (`\x9b`), so that no message carries one to a terminal.
 */
function quoted(text: string): string {
  return visible(text.length > 2 * MAX_NAME ? `${text.slice(0, 2 * MAX_NAME)}...` : text);
}

/**
 * Validates the challenge header and returns the key file's path, in the order docs/sources.md gives:
 * header present; `Basic realm=` present, its path unquoted, unlisted and free of control, format and
 * separator characters (C0, DEL, C1, bidirectional and zero-width characters, ...: no real path has one,
 * and a message quoting the path shows each escaped); platform Linux or Windows; file name ends in `.key`
 * (and has at most 255 characters, as every file system's names);
 * directory exactly the agent's token directory, with no `.`, `..` or empty segment (so no
 * relative path, no other directory, no look-alike). Nothing is read here.
 *
 * @throws {ManagedIdentityError} `arc_challenge_missing`, `arc_challenge_invalid`,
 *   `arc_platform_unsupported`, `arc_key_invalid_name` or `arc_key_invalid_directory`.
 */
export function validateArcChallenge(
  header: string | null,
  platform: string,
  directory: string | undefined = arcTokenDirectory(platform, undefined),
): string {
  if (!header?.trim()) {
    throw arcError("arc_challenge_missing", `expected a 401 with "WWW-Authenticate: ${REALM}<key file>", found none`);
  }
  const at = header.indexOf(REALM);
  const path = at < 0 ? "" : header.slice(at + REALM.length).trim();
  if (!path || /["',]/.test(path)) {
    throw arcError(
      "arc_challenge_invalid",
      `expected "${REALM}<key file path>", found ${at < 0 ? "no realm" : "an empty, quoted or listed realm"}`,
    );
  }
  if (visible(path) !== path) {
    throw arcError(
      "arc_challenge_invalid",
      `expected a key file path without control, format or separator characters, found "${quoted(path)}"`,
    );
  }
  const windows = platform === "win32";
  if (!directory || !(windows || platform === "linux")) {
    throw arcError("arc_platform_unsupported", `expected Linux or Windows, found "${platform}"`);
  }
  const separator = windows ? "\\" : "/";
  const unified = windows ? path.replace(/\//g, separator) : path;
  const cut = unified.lastIndexOf(separator);
  const name = unified.slice(cut + 1);
  if (!/.\.key$/.test(windows ? name.toLowerCase() : name) || name.length > MAX_NAME) {
    throw arcError(
      "arc_key_invalid_name",
      `expected a ".key" file name of at most ${MAX_NAME} characters, found "${quoted(name)}"`,
    );
  }
  const parent = unified.slice(0, cut);
  const absolute = windows ? /^[a-z]:\\/i.test(unified) : unified[0] === "/" && !unified.includes("\\");
  const dotted = unified.split(separator).slice(1).some((part) => part === "" || part === "." || part === "..");
  if (!absolute || dotted || (windows ? parent.toLowerCase() !== directory.toLowerCase() : parent !== directory)) {
    throw arcError(
      "arc_key_invalid_directory",
      `expected a file directly in "${quoted(directory)}", found "${quoted(path)}"`,
    );
  }
  return path;
}

function fileError(error: unknown, path: string, platform: string): ManagedIdentityError {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "ENOENT" || code === "ENOTDIR") {
    return arcError("arc_key_not_found", `expected the key file "${path}", found none`, error);
  }
  // O_NOFOLLOW met a link (ELOOP); a directory or a socket cannot be opened for reading.
  if (code === "ELOOP" || code === "EISDIR" || code === "ENXIO") return notAFile(path, error);
  // The runtime's refusal (Deno without --allow-read), not the OS's: the key's name changes, so
  // the flag names the directory.
  const flag = refusedFlag(error, "read", path.slice(0, Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"))));
  if (flag) {
    return arcError(
      "invalid_configuration",
      `the runtime refused to read the key file "${path}"; run it with ${flag}`,
      error,
    );
  }
  if (code === "EACCES" || code === "EPERM") {
    const advice = platform === "win32"
      ? 'run as an administrator or a member of "Hybrid agent extension applications"'
      : 'add the user to the "himds" group (sudo usermod -aG himds $USER) and log in again';
    return arcError("arc_key_permission_denied", `permission denied reading "${path}": ${advice}`, error);
  }
  return arcError("arc_key_unreadable", `cannot read "${path}": ${String(code ?? error)}`, error);
}

function notAFile(path: string, cause?: unknown, found = "a link, directory, pipe, socket or device") {
  return arcError("arc_key_invalid_file", `expected a regular file at "${path}", found ${found}`, cause);
}

/** The real file system, loaded on first use. */
export function nodeFileSystem(): ArcKeyFileSystem {
  return loadBuiltin<ArcKeyFileSystem>("node:fs/promises");
}

/**
 * Reads the validated key file: `lstat` the path (a regular file, not a link, at most 4096
 * bytes), open it once without following a link or blocking, then check the open handle
 * (`fstat`: a regular file, the same device and inode `lstat` saw, at most 4096 bytes) and read
 * at most 4097 bytes from it. Every step is raced against `timeoutMs` and `signal`; the handle
 * is always closed, even one that opens after the time ran out. Error messages name the path
 * and sizes, never the contents.
 *
 * @throws {ManagedIdentityError} `arc_key_not_found`, `arc_key_permission_denied`, `arc_key_invalid_file`,
 *   `arc_key_too_large`, `arc_key_unreadable`, `timeout` or `aborted`; `invalid_configuration` when
 *   the runtime refuses the read (Deno without `--allow-read`), naming the flag.
 */
export async function readArcKey(
  path: string,
  platform: string,
  fs: () => ArcKeyFileSystem,
  { signal, timeoutMs }: Pick<ParseContext, "signal" | "timeoutMs">,
): Promise<string> {
  const bound = bounded(signal, timeoutMs);
  const limit = (size: number, found: string | number = size) => {
    if (size > ARC_MAX_KEY_BYTES) {
      throw arcError("arc_key_too_large", `expected at most ${ARC_MAX_KEY_BYTES} bytes in "${path}", found ${found}`);
    }
  };
  try {
    const system = fs();
    // 0 on Windows: there the dev/ino comparison below refuses a swap.
    const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = openFlags();
    const seen = await bound.step(system.lstat(path));
    if (seen.isSymbolicLink() || !seen.isFile()) throw notAFile(path);
    limit(seen.size);
    const handle = await openWithin(system.open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK), bound);
    try {
      const opened = await bound.step(handle.stat());
      if (!opened.isFile()) throw notAFile(path);
      if (opened.dev !== seen.dev || opened.ino !== seen.ino) {
        throw notAFile(path, undefined, "a different file than the one checked a moment before (it was replaced)");
      }
      limit(opened.size);
      const bytes = await readAtMost(handle, ARC_MAX_KEY_BYTES, bound);
      limit(bytes.length, `more than ${ARC_MAX_KEY_BYTES}`);
      if (!bytes.length) throw arcError("arc_key_invalid_file", `expected a key in "${path}", found an empty file`);
      return new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes);
    } finally {
      await bound.step(handle.close()).catch(() => {});
    }
  } catch (error) {
    if (signal?.aborted) {
      throw arcError("aborted", `reading the key file "${path}" was aborted by the caller`, signal.reason);
    }
    if (bound.timer.aborted) {
      throw arcError("timeout", `reading the key file "${path}" took longer than ${timeoutMs} ms`);
    }
    throw error instanceof ManagedIdentityError ? error : fileError(error, path, platform);
  }
}

// The identity fields the agent echoes for a user-assigned request.
const ECHO: Record<string, readonly string[]> = {
  clientId: ["client_id"],
  objectId: ["object_id"],
  resourceId: ["msi_res_id", "mi_res_id"],
};

/** The standard reply handling, handed in by the Arc source (so that it stays in the eager bundle alone). */
export interface StandardReplies {
  readonly parseStandardReply: typeof parseStandardReply;
}

/**
 * Reads an Azure Arc answer. The first request (no `Authorization` yet) must get a 401
 * challenge: its key file is validated, read, and the same request comes back with
 * `Authorization: Basic <key>`. The second gets a token; for a user-assigned identity the
 * answer must echo the requested ID, or it fails closed (the agent gave another identity's
 * token, usually the system-assigned one) and nothing is cached.
 */
export async function parseArcReply(
  reply: HttpReply,
  context: ParseContext,
  standard: StandardReplies,
): Promise<ParseOutcome> {
  const config = context.config as ArcConfig;
  if (context.request.headers["Authorization"] === undefined) {
    if (reply.status !== 401) {
      const { code, status, error, errorDescription, correlationId, endpoint } = httpError(reply, context);
      const message =
        `The Azure Arc agent must answer the first request with a 401 challenge: it answered ${reply.status}`;
      const details = { source: "AzureArc" as const, status, error, errorDescription, correlationId, endpoint };
      throw code === "unavailable"
        ? new CredentialUnavailableError(message, details)
        : new ManagedIdentityError("request_failed", message, details);
    }
    const { platform } = config;
    const path = validateArcChallenge(
      reply.headers.get("www-authenticate"),
      platform,
      config.tokenDirectory ?? arcTokenDirectory(platform, config.programData),
    );
    const key = await readArcKey(path, platform, () => config.fileSystem ?? nodeFileSystem(), context);
    const { retry: _never, ...request } = context.request;
    return { next: { ...request, headers: { ...request.headers, "Authorization": `Basic ${key}` } } };
  }
  const outcome = await standard.parseStandardReply(reply, context);
  const { identity } = context;
  if (identity.kind !== "system" && "token" in outcome) {
    const fields = outcome.token.fields;
    const wanted = identity.value.toLowerCase();
    if (
      !ECHO[identity.kind]!.some((name) => typeof fields[name] === "string" && fields[name].toLowerCase() === wanted)
    ) {
      throw new ManagedIdentityError(
        "identity_mismatch",
        `The Azure Arc agent did not return the requested ${identity.kind} "${identity.value}": the response does not echo it`,
        { source: "AzureArc", status: reply.status, endpoint: context.endpoint },
      );
    }
  }
  return outcome;
}
