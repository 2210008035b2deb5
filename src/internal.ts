/**
 * A seam for tests and the emulator, never exported from `mod.ts`: a client created with
 * `{ [INTERNAL]: {...} }` in its options uses these instead of the machine's clock, files and
 * platform. Not a public option: nothing outside this repository should rely on it.
 * @module
 */

import type { ArcKeyFileSystem, TokenFileSystem } from "./file_read.ts";

/** The key of the internal options. */
export const INTERNAL: unique symbol = Symbol("azmi.internal");

/** What the internal seam can replace. */
export interface InternalOptions {
  /** The clock, in milliseconds since the epoch. */
  readonly now?: () => number;
  /** The platform, in Node's spelling, for detection and Arc's rules. */
  readonly platform?: string;
  /** The file check used by detection. */
  readonly fileExists?: (path: string) => boolean;
  /** The wait between attempts, so tests need not sleep through a real backoff. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** The jitter source. */
  readonly random?: () => number;
  /** Arc's token directory, so tests can use a temporary one. */
  readonly arcTokenDirectory?: string;
  /** Arc's key file reader, so tests can count or refuse file access. */
  readonly arcFileSystem?: ArcKeyFileSystem;
  /** Workload identity's token file reader, so tests can count or refuse file access. */
  readonly tokenFileSystem?: TokenFileSystem;
}

/** Reads the internal options out of a client's options object. */
export function internalOptions(options: object): InternalOptions {
  return (options as { [INTERNAL]?: InternalOptions })[INTERNAL] ?? {};
}
