/**
 * The in-memory token cache. Never distributed: a managed identity token belongs to one Azure
 * resource. Freshness is decided on access; there are no timers.
 * @module
 */

import type { Contact } from "./first_contact.ts";
import type { Flights } from "./flight.ts";
import { numberOption } from "./options.ts";
import type { Identity } from "./identity.ts";
import type { Source } from "./types.ts";

/** A token is used until 5 minutes before it expires (docs/caching.md). */
export const EXPIRY_MARGIN_MS = 5 * 60 * 1000;

/** Options of a {@linkcode TokenCache}. */
export interface TokenCacheOptions {
  /** The most tokens kept; the least recently used is evicted beyond it. Default 1000. */
  readonly maxEntries?: number;
}

/** A cached token, times in milliseconds since the epoch. */
export interface CachedToken {
  readonly accessToken: string;
  readonly tokenType: string;
  readonly expiresOn: number;
  readonly refreshOn?: number;
  readonly resource: string;
  readonly source: Source;
}

/** The cache's storage, reached only from inside the module. */
export class CacheStore {
  readonly maxEntries: number;
  // Least recently used first is found by `used`, a counter bumped on each hit: cheaper on the
  // hot path than re-inserting into the Map. `written` is the counter when the entry was stored.
  readonly #entries = new Map<string, { token: CachedToken; used: number; readonly written: number }>();
  #clock = 0;
  // When the next background refresh of each key may start; oldest first, at most `maxEntries` keys.
  readonly #held = new Map<string, number>();
  /** Requests in flight by key, shared by every client of this cache. */
  readonly flights: Flights<CachedToken> = new Map();
  /** Endpoints that answered 429, with when their `Retry-After` ends. */
  readonly throttled: Map<string, number> = new Map();
  // What is known of IMDS endpoints through each `fetch` (src/first_contact.ts).
  readonly #contacts = new WeakMap<object, Map<string, Contact>>();

  constructor(maxEntries: number) {
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * What is known of IMDS endpoints through `fetch`: answered once, being probed, or found absent
   * (src/first_contact.ts). Kept per `fetch`, since a failing one says nothing of another's.
   */
  contacts(fetch: object): Map<string, Contact> {
    let known = this.#contacts.get(fetch);
    if (!known) this.#contacts.set(fetch, known = new Map());
    return known;
  }

  /** The token under `key` while it is usable (until 5 minutes before expiry); drops it after. */
  get(key: string, now: number): CachedToken | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (now >= entry.token.expiresOn - EXPIRY_MARGIN_MS) {
      this.#entries.delete(key);
      return undefined;
    }
    entry.used = ++this.#clock;
    return entry.token;
  }

  /** A counter that only grows, not a time (tests freeze the clock): take it when a request starts. */
  get stamp(): number {
    return this.#clock;
  }

  /**
   * Stores a token that is usable now, unless the entry under `key` was written after `since`
   * (a {@linkcode stamp}): an older request never replaces a newer token. Returns whether it was stored.
   */
  set(key: string, token: CachedToken, now: number, since = Infinity): boolean {
    if (now >= token.expiresOn - EXPIRY_MARGIN_MS || (this.#entries.get(key)?.written ?? 0) > since) return false;
    const stamp = ++this.#clock;
    this.#entries.set(key, { token, used: stamp, written: stamp });
    while (this.#entries.size > this.maxEntries) {
      let oldest: string | undefined;
      let least = Infinity;
      for (const [name, entry] of this.#entries) {
        if (entry.used < least) [oldest, least] = [name, entry.used];
      }
      this.#entries.delete(oldest!);
    }
    return true;
  }

  /** Whether a background refresh of `key` may start at `now`: none in flight, none held off until later. */
  mayRefresh(key: string, now: number): boolean {
    return !this.flights.has(key) && now >= (this.#held.get(key) ?? 0);
  }

  /**
   * Holds off background refreshes of `key` until `until` (set when one ends). Kept apart from the
   * entries: a token stored or dropped meanwhile does not lift it.
   */
  postponeRefresh(key: string, until: number): void {
    const held = this.#held;
    held.delete(key);
    held.set(key, until);
    if (held.size > this.maxEntries) held.delete(held.keys().next().value!);
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }
}

let storeOf: (cache: TokenCache) => CacheStore;

/**
 * An in-memory token cache. Every client uses one shared default cache, so clients of the same
 * identity in one process share tokens; give a client `new TokenCache()` to isolate it.
 *
 * @example Isolate a client's tokens
 * ```ts
 * import { ManagedIdentityClient, TokenCache } from "@azmi/managed-identity";
 *
 * const cache = new TokenCache({ maxEntries: 10 });
 * const client = new ManagedIdentityClient({ cache });
 * console.log(cache.size); // 0
 * ```
 */
export class TokenCache {
  readonly #store: CacheStore;

  static {
    storeOf = (cache) => cache.#store;
  }

  /**
   * Creates an empty cache.
   *
   * @param options The entry bound.
   * @throws {RangeError} When `maxEntries` is not a positive integer.
   */
  constructor(options?: TokenCacheOptions) {
    if (options === undefined) options = {};
    this.#store = new CacheStore(numberOption("maxEntries", options.maxEntries, 1000, 1, true));
  }

  /** How many tokens are held (expired ones are dropped when next looked up). */
  get size(): number {
    return this.#store.size;
  }

  /** Drops every token. */
  clear(): void {
    this.#store.clear();
  }
}

/** The store behind a cache. Internal: not exported from `mod.ts`. */
export function cacheStore(cache: TokenCache): CacheStore {
  return storeOf(cache);
}

/** The cache every client uses unless given its own. */
export const defaultCache: TokenCache = new TokenCache();

/**
 * The cache key: source, endpoint, identity kind and value (IDs compare case-insensitively), and
 * resource; a JSON array, so no content of one part can pass for another part's.
 */
export function cacheKey(source: Source, identity: Identity, resource: string, endpoint?: string): string {
  const id = identity.kind === "system" ? "" : identity.value.toLowerCase();
  return JSON.stringify([source, endpoint, identity.kind, id, resource]);
}
