/**
 * Azure Arc's challenge (PROTOCOL.md section 5): the agent answers the first request with
 * `401` and `WWW-Authenticate: Basic realm=<key file path>`; the key file's contents prove the
 * caller may read the agent's token directory. A hostile or buggy challenge could name any
 * file, so the path is validated completely before any file is touched, and the file's size is
 * checked by `stat` before it is read. The file system is a seam (`node:fs/promises`, loaded
 * lazily on this path only).
 * @module
 */

import { ManagedIdentityError } from "./errors.ts";
import { loadBuiltin } from "./runtime.ts";
import type { ArcConfig } from "./sources/azure_arc.ts";
import type { httpError, HttpReply, ParseContext, ParseOutcome, parseStandardReply } from "./sources/source.ts";

/** The file operations the challenge needs. */
export interface ArcKeyFileSystem {
  /** `lstat`: a symbolic link is reported as one, not followed. */
  lstat(path: string): Promise<{ size: number; isFile(): boolean; isSymbolicLink(): boolean }>;
  readFile(path: string, encoding: "utf8"): Promise<string>;
}

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

/**
 * Validates the challenge header and returns the key file's path, in PROTOCOL.md's order:
 * header present; `Basic realm=` present; platform Linux or Windows; file name ends in `.key`;
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
  // deno-lint-ignore no-control-regex
  if (!path || /["',\x00-\x1f]/.test(path)) {
    throw arcError(
      "arc_challenge_invalid",
      `expected "${REALM}<key file path>", found ${at < 0 ? "no realm" : "an empty, quoted or listed realm"}`,
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
  if (!/.\.key$/.test(windows ? name.toLowerCase() : name)) {
    throw arcError("arc_key_invalid_name", `expected a ".key" file, found "${name}"`);
  }
  const parent = unified.slice(0, cut);
  const absolute = windows ? /^[a-z]:\\/i.test(unified) : unified[0] === "/" && !unified.includes("\\");
  const dotted = unified.split(separator).slice(1).some((part) => part === "" || part === "." || part === "..");
  if (!absolute || dotted || (windows ? parent.toLowerCase() !== directory.toLowerCase() : parent !== directory)) {
    throw arcError("arc_key_invalid_directory", `expected a file directly in "${directory}", found "${path}"`);
  }
  return path;
}

function fileError(error: unknown, path: string, platform: string): ManagedIdentityError {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "ENOENT" || code === "ENOTDIR") {
    return arcError("arc_key_not_found", `expected the key file "${path}", found none`, error);
  }
  if (code === "EACCES" || code === "EPERM" || (error as Error | null)?.name === "NotCapable") {
    const advice = platform === "win32"
      ? 'run as an administrator or a member of "Hybrid agent extension applications"'
      : 'add the user to the "himds" group (sudo usermod -aG himds $USER) and log in again';
    return arcError("arc_key_permission_denied", `permission denied reading "${path}": ${advice}`, error);
  }
  return arcError("arc_key_unreadable", `cannot read "${path}": ${String(code ?? error)}`, error);
}

/** The real file system, loaded on first use. */
export function nodeFileSystem(): ArcKeyFileSystem {
  return loadBuiltin<ArcKeyFileSystem>("node:fs/promises");
}

/**
 * Reads the validated key file: `lstat` first (a regular file, not a link, at most 4096 bytes),
 * then the contents, whose size is checked again (the file may have grown). Error messages name
 * the path and sizes, never the contents.
 *
 * @throws {ManagedIdentityError} `arc_key_not_found`, `arc_key_permission_denied`, `arc_key_invalid_file`,
 *   `arc_key_too_large` or `arc_key_unreadable`.
 */
export async function readArcKey(path: string, platform: string, fs: () => ArcKeyFileSystem): Promise<string> {
  const limit = (size: number) => {
    if (size > ARC_MAX_KEY_BYTES) {
      throw arcError("arc_key_too_large", `expected at most ${ARC_MAX_KEY_BYTES} bytes in "${path}", found ${size}`);
    }
  };
  try {
    const system = fs();
    const stat = await system.lstat(path);
    if (stat.isSymbolicLink() || !stat.isFile()) {
      throw arcError("arc_key_invalid_file", `expected a regular file at "${path}", found a link or directory`);
    }
    limit(stat.size);
    const contents = await system.readFile(path, "utf8");
    if (!contents) throw arcError("arc_key_invalid_file", `expected a key in "${path}", found an empty file`);
    limit(new TextEncoder().encode(contents).length);
    return contents;
  } catch (error) {
    throw error instanceof ManagedIdentityError ? error : fileError(error, path, platform);
  }
}

// The identity fields the agent echoes for a user-assigned request.
const ECHO: Record<string, readonly string[]> = {
  clientId: ["client_id"],
  objectId: ["object_id"],
  resourceId: ["msi_res_id", "mi_res_id"],
};

/** The standard reply handling, handed in by the Arc source. */
export interface StandardReplies {
  readonly httpError: typeof httpError;
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
      const { code, status, error, errorDescription, correlationId, endpoint } = standard.httpError(reply, context);
      throw new ManagedIdentityError(
        code === "unavailable" ? code : "request_failed",
        `The Azure Arc agent must answer the first request with a 401 challenge: it answered ${reply.status}`,
        { source: "AzureArc", status, error, errorDescription, correlationId, endpoint },
      );
    }
    const { platform } = config;
    const path = validateArcChallenge(
      reply.headers.get("www-authenticate"),
      platform,
      config.tokenDirectory ?? arcTokenDirectory(platform, config.programData),
    );
    const key = await readArcKey(path, platform, () => config.fileSystem ?? nodeFileSystem());
    const { retry: _never, ...request } = context.request;
    return { next: { ...request, headers: { ...request.headers, "Authorization": `Basic ${key}` } } };
  }
  const outcome = standard.parseStandardReply(reply, context);
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
