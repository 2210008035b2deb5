/**
 * Shared test checks: deferred promises, where a promise stands, unhandled rejections, rejection
 * and secret-leak assertions, and a counting file system for the Arc key-file tests.
 */

import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import process from "node:process";
import { ManagedIdentityError } from "../../mod.ts";
import type { ArcKeyFileSystem } from "../../src/arc_key.ts";
import { assertNoLeak, renderings } from "./leaks.ts";

/** A promise the test settles when it chooses. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

/** A new deferred promise. */
export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

/** Lets pending requests reach the fake endpoint and settled ones finish (one macrotask turn). */
export function turn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

export type State = "pending" | "fulfilled" | "rejected";

/** Where a promise stands after one turn of the event loop. */
export async function state(promise: Promise<unknown>): Promise<State> {
  let seen: State = "pending";
  promise.then(() => seen = "fulfilled", () => seen = "rejected");
  await turn();
  return seen;
}

/** Runs `body` while collecting unhandled rejections, lets the event loop turn, returns them. */
export async function unhandledDuring(body: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const listener = (error: unknown) => seen.push(error);
  process.on("unhandledRejection", listener);
  try {
    await body();
    for (let i = 0; i < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  } finally {
    process.off("unhandledRejection", listener);
  }
  return seen;
}

/** Awaits a rejection with a ManagedIdentityError of `code` (and `source`, when given) and returns it. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  source?: string,
): Promise<ManagedIdentityError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ManagedIdentityError, `expected a ManagedIdentityError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (source !== undefined) assert.equal(caught.source, source);
  return caught;
}

/**
 * Asserts that `secret` appears in no rendering of `error` (leaks.ts's: every depth of `cause`),
 * in none of the notations an endpoint may echo it in (leaks.ts's `assertNoLeak`).
 */
export function assertNotShown(error: unknown, secret: string): void {
  assertNoLeak(renderings(error), secret, "error");
}

/** A file system that records every call and forwards it to `inner` (the real one by default). */
export interface CountingFileSystem extends ArcKeyFileSystem {
  readonly lstatCalls: string[];
  /** The path of each `open`; its flags are in `openFlags`. */
  readonly openCalls: string[];
  readonly openFlags: number[];
  /** The path of each handle closed, so a test can check that every opened handle was. */
  readonly closeCalls: string[];
}

/** A counting file system over `inner`; a missing operation throws when called. */
export function counting(inner: Partial<ArcKeyFileSystem> = fsp): CountingFileSystem {
  const lstatCalls: string[] = [];
  const openCalls: string[] = [];
  const openFlags: number[] = [];
  const closeCalls: string[] = [];
  return {
    lstatCalls,
    openCalls,
    openFlags,
    closeCalls,
    lstat(path) {
      lstatCalls.push(path);
      if (!inner.lstat) throw new Error("this test must not lstat");
      return inner.lstat(path);
    },
    async open(path, flags) {
      openCalls.push(path);
      openFlags.push(flags);
      if (!inner.open) throw new Error("this test must not open");
      const handle = await inner.open(path, flags);
      return {
        stat: () => handle.stat(),
        read: (buffer, offset, length, position) => handle.read(buffer, offset, length, position),
        close: () => (closeCalls.push(path), handle.close()),
      };
    },
  };
}
