/**
 * Reading a small secret file that a hostile or broken file system may swap, grow or replace
 * with a FIFO: what Azure Arc's key file and workload identity's federated token file share.
 * Every step is raced against the caller's signal and the attempt's timeout, a handle that
 * opens after the race was lost is still closed, and at most one byte more than the cap is read.
 * Loaded only on those sources' paths (`node:fs` through `loadBuiltin`).
 * @module
 */

import { loadBuiltin } from "./runtime.ts";

/** What `lstat` and `fstat` say about a file, as far as the checks need. */
export interface FileStat {
  readonly size: number;
  readonly dev: number;
  readonly ino: number;
  isFile(): boolean;
}

/** An open file: the subset of `node:fs/promises`' `FileHandle` the read needs. */
export interface FileHandleView {
  /** `fstat`: what the handle refers to, whatever the path names by now. */
  stat(): Promise<FileStat>;
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/** Some file work, each step bounded by a signal and a timeout. */
export interface Bounded {
  /** Settles like `operation`, or rejects as soon as the signal aborts or the time runs out. */
  step<T>(operation: Promise<T>): Promise<T>;
  /** Aborts when the time has run out (as opposed to the caller's signal). */
  readonly timer: AbortSignal;
}

/**
 * Bounds file work by the caller's `signal` and `timeoutMs`. Each step listens to the bound only
 * while it runs: nothing is left on the caller's signal or the timer once the work has settled
 * (Deno keeps a process alive for as long as an `AbortSignal.timeout` has a listener).
 */
export function bounded(signal: AbortSignal | undefined, timeoutMs: number): Bounded {
  const timer = AbortSignal.timeout(timeoutMs);
  const bound = signal ? AbortSignal.any([signal, timer]) : timer;
  return {
    timer,
    step: (operation) => {
      operation.catch(() => {}); // A late failure, after the race was lost, is nobody's.
      if (bound.aborted) return Promise.reject(bound.reason);
      // Not transport.ts's raceAbort: importing it would split the eager bundle into one more
      // chunk. The listener lives for this step only: on Deno, a timeout signal with a listener
      // keeps the process alive until it fires.
      return new Promise((resolve, reject) => {
        const onAbort = () => reject(bound.reason);
        bound.addEventListener("abort", onAbort, { once: true });
        operation.then(resolve, reject).finally(() => bound.removeEventListener("abort", onAbort));
      });
    },
  };
}

/** `O_RDONLY`, `O_NOFOLLOW` and `O_NONBLOCK` from `node:fs`, each 0 where the platform has none (Windows). */
export function openFlags(): { O_RDONLY: number; O_NOFOLLOW: number; O_NONBLOCK: number } {
  const { O_RDONLY = 0, O_NOFOLLOW = 0, O_NONBLOCK = 0 } =
    loadBuiltin<{ constants: Record<string, number | undefined> }>("node:fs").constants;
  return { O_RDONLY, O_NOFOLLOW, O_NONBLOCK };
}

/** Opens within the bound; a handle that opens after the bound ended is closed when it arrives. */
export async function openWithin(opening: Promise<FileHandleView>, bound: Bounded): Promise<FileHandleView> {
  return await bound.step(opening).catch((error) => {
    opening.then((late) => late.close()).catch(() => {});
    throw error;
  });
}

/** Reads at most `max + 1` bytes from the start of an open file, so that a file over `max` shows as such. */
export async function readAtMost(handle: FileHandleView, max: number, bound: Bounded): Promise<Uint8Array> {
  const buffer = new Uint8Array(max + 1);
  let size = 0;
  for (;;) {
    const { bytesRead } = await bound.step(handle.read(buffer, size, buffer.length - size, size));
    size += bytesRead;
    if (!bytesRead || size === buffer.length) break;
  }
  return buffer.subarray(0, size);
}

/** Azure Arc's key file seam (`src/arc_key.ts`): the file operations the challenge needs: the subset of `node:fs/promises` it uses. */
export interface ArcKeyFileSystem {
  /** `lstat`: a symbolic link is reported as one, not followed. */
  lstat(path: string): Promise<FileStat & { isSymbolicLink(): boolean }>;
  /** `open` with numeric flags. */
  open(path: string, flags: number): Promise<FileHandleView>;
}

/** Workload identity's token file seam (`src/token_file.ts`): the file operations its read needs (the subset of `node:fs/promises`). */
export interface TokenFileSystem {
  open(path: string, flags: number): Promise<FileHandleView>;
}
