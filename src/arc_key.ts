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

function refuse(code: string, message: string, cause?: unknown): ManagedIdentityError {
  return new ManagedIdentityError(code, message, { source: "AzureArc", ...(cause ? { cause } : {}) });
}

/** Splits an absolute path into its directory and file name, refusing `.`/`..` and relative forms. */
function splitPath(path: string, platform: string): { directory: string; name: string } | string {
  if (platform === "win32") {
    const unified = path.replace(/\//g, "\\");
    if (!/^[A-Za-z]:\\/.test(unified)) return "is not an absolute path with a drive letter";
    const segments = unified.slice(3).split("\\");
    if (segments.some((segment) => segment === "" || segment === "." || segment === "..")) {
      return 'has an empty, "." or ".." segment';
    }
    const name = segments.pop()!;
    return { directory: `${unified.slice(0, 2)}\\${segments.join("\\")}`, name };
  }
  if (!path.startsWith("/")) return "is not an absolute path";
  if (path.includes("\\")) return "has a backslash";
  const segments = path.slice(1).split("/");
  if (segments.some((segment) => segment === "" || segment === "." || segment === "..")) {
    return 'has an empty, "." or ".." segment';
  }
  const name = segments.pop()!;
  return { directory: `/${segments.join("/")}`, name };
}

/**
 * Validates the challenge header and returns the key file's path, in PROTOCOL.md's order:
 * header present; `Basic realm=` present; platform Linux or Windows; file name ends in `.key`;
 * directory exactly the agent's token directory. Nothing is read here.
 *
 * @throws {ManagedIdentityError} `arc_challenge_missing`, `arc_challenge_invalid`,
 *   `arc_platform_unsupported`, `arc_key_invalid_name` or `arc_key_invalid_directory`.
 */
export function validateArcChallenge(
  header: string | null,
  platform: string,
  tokenDirectory: string | undefined = arcTokenDirectory(platform, undefined),
): string {
  if (header === null || header.trim() === "") {
    throw refuse(
      "arc_challenge_missing",
      'The Azure Arc agent answered 401 without a WWW-Authenticate header: expected "Basic realm=<key file>"',
    );
  }
  const marker = header.indexOf("Basic realm=");
  if (marker < 0) {
    throw refuse(
      "arc_challenge_invalid",
      `The Azure Arc challenge has no "Basic realm=": found a ${header.length}-character header of another form`,
    );
  }
  const path = header.slice(marker + "Basic realm=".length).trim();
  // deno-lint-ignore no-control-regex
  if (path === "" || /["',\u0000-\u001f]/.test(path)) {
    throw refuse(
      "arc_challenge_invalid",
      "The Azure Arc challenge's realm must be a bare file path: found an empty, quoted or listed value",
    );
  }
  const directory = platform === "linux" || platform === "win32" ? tokenDirectory : undefined;
  if (directory === undefined) {
    throw refuse(
      "arc_platform_unsupported",
      `Azure Arc managed identity needs Linux or Windows: this platform is "${platform}"`,
    );
  }
  const parts = splitPath(path, platform);
  const windows = platform === "win32";
  const fileName = typeof parts === "string" ? path.split(/[\\/]/).pop() ?? "" : parts.name;
  if (!(windows ? fileName.toLowerCase() : fileName).endsWith(".key") || fileName === ".key") {
    throw refuse(
      "arc_key_invalid_name",
      `The Azure Arc challenge must name a ".key" file: found "${fileName}"`,
    );
  }
  if (typeof parts === "string") {
    throw refuse("arc_key_invalid_directory", `The Azure Arc challenge's path "${path}" ${parts}`);
  }
  const same = windows ? parts.directory.toLowerCase() === directory.toLowerCase() : parts.directory === directory;
  if (!same) {
    throw refuse(
      "arc_key_invalid_directory",
      `The Azure Arc key file must be in "${directory}": the challenge names "${parts.directory}"`,
    );
  }
  return path;
}

function errno(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function fileError(error: unknown, path: string, platform: string): ManagedIdentityError {
  const code = errno(error);
  if (code === "ENOENT" || code === "ENOTDIR") {
    return refuse("arc_key_not_found", `The Azure Arc key file "${path}" does not exist`, error);
  }
  if (code === "EACCES" || code === "EPERM" || (error as Error | null)?.name === "NotCapable") {
    const advice = platform === "win32"
      ? 'run as a user in the local Administrators group or the "Hybrid agent extension applications" group'
      : 'add the process user to the "himds" group (sudo usermod -aG himds <user>) and start a new session';
    return refuse(
      "arc_key_permission_denied",
      `Cannot read the Azure Arc key file "${path}": permission denied; ${advice}`,
      error,
    );
  }
  return refuse(
    "arc_key_unreadable",
    `Cannot read the Azure Arc key file "${path}": ${code ?? "unknown error"}`,
    error,
  );
}

/** The real file system, loaded on first use. */
export function nodeFileSystem(): ArcKeyFileSystem {
  return loadBuiltin<ArcKeyFileSystem>("node:fs/promises");
}

/**
 * Reads the validated key file: `lstat` first (a regular file, not a link, at most 4096 bytes),
 * then the contents. Error messages name the path and sizes, never the contents.
 *
 * @throws {ManagedIdentityError} `arc_key_not_found`, `arc_key_permission_denied`, `arc_key_invalid_file`,
 *   `arc_key_too_large` or `arc_key_unreadable`.
 */
export async function readArcKey(path: string, platform: string, fs: () => ArcKeyFileSystem): Promise<string> {
  let system: ArcKeyFileSystem;
  try {
    system = fs();
  } catch (error) {
    throw refuse("arc_key_unreadable", `Cannot read the Azure Arc key file "${path}": ${(error as Error).message}`);
  }
  let stat: Awaited<ReturnType<ArcKeyFileSystem["lstat"]>>;
  try {
    stat = await system.lstat(path);
  } catch (error) {
    throw fileError(error, path, platform);
  }
  if (stat.isSymbolicLink() || !stat.isFile()) {
    throw refuse(
      "arc_key_invalid_file",
      `The Azure Arc key file "${path}" must be a regular file, not a link or directory`,
    );
  }
  if (stat.size > ARC_MAX_KEY_BYTES) {
    throw refuse(
      "arc_key_too_large",
      `The Azure Arc key file "${path}" must be at most ${ARC_MAX_KEY_BYTES} bytes: it has ${stat.size}`,
    );
  }
  let contents: string;
  try {
    contents = await system.readFile(path, "utf8");
  } catch (error) {
    throw fileError(error, path, platform);
  }
  if (contents === "") throw refuse("arc_key_invalid_file", `The Azure Arc key file "${path}" is empty`);
  // The file may have grown between stat and read.
  const size = new TextEncoder().encode(contents).length;
  if (size > ARC_MAX_KEY_BYTES) {
    throw refuse(
      "arc_key_too_large",
      `The Azure Arc key file "${path}" must be at most ${ARC_MAX_KEY_BYTES} bytes: it has ${size}`,
    );
  }
  return contents;
}
