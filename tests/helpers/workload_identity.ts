/**
 * Workload identity test helpers: the environment the AKS webhook sets, token files in temporary
 * directories, a file system that counts opens, and the exact form of a token request to Microsoft
 * Entra ID. Shared by tests/sources/workload_identity*_test.ts.
 */

import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { type EnvRecord, type ManagedIdentityClientOptions, ManagedIdentityError } from "../../mod.ts";
import type { InternalOptions } from "../../src/internal.ts";
import { counting } from "./checks.ts";
import { endpointOf, recorder, type Seen, testClient } from "./fake.ts";
import { withTempDir } from "./temp_dir.ts";

export const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
export const CLIENT_ID = "11111111-2222-3333-4444-555555555555";
export const OTHER_CLIENT_ID = "99999999-8888-7777-6666-555555555555";
export const VAULT = "https://vault.azure.net";
export const ENTRA = "https://login.microsoftonline.com";
export const TOKEN_URL = `${ENTRA}/${TENANT}/oauth2/v2.0/token`;
export const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/** A service account token as the kubelet projects it (header.payload.signature, no newline). */
export const ASSERTION = [
  "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3Qta2V5LTEifQ",
  "eyJhdWQiOlsiYXBpOi8vQXp1cmVBRFRva2VuRXhjaGFuZ2UiXSwic3ViIjoic3lzdGVtOnNlcnZpY2VhY2NvdW50OmRlZmF1bHQ6d29ya2xvYWQifQ",
  "c2lnbmF0dXJlLW9mLXRoZS1zZXJ2aWNlLWFjY291bnQtdG9rZW4",
].join(".");
/** The token the kubelet projects next: another signature. */
export const ROTATED = ASSERTION.replace("c2lnbmF0dXJl", "cm90YXRlZC1z");
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const NOW = 1_700_000_000_000;

/** The form fields of a token request body, in order. */
export function form(seen: Seen): [string, string][] {
  return [...new URLSearchParams(seen.body)];
}

/** The form fields every token request carries, in our order. */
export function expectedForm(assertion = ASSERTION, clientId = CLIENT_ID, resource = VAULT): [string, string][] {
  return [
    ["client_id", clientId],
    ["scope", `${resource}/.default`],
    ["grant_type", "client_credentials"],
    ["client_assertion_type", JWT_BEARER],
    ["client_assertion", assertion],
  ];
}

/** Asserts the request line and headers of a token request; the body is checked by the caller. */
export function assertTokenRequest(seen: Seen, url = TOKEN_URL): void {
  assert.equal(seen.method, "POST");
  assert.equal(endpointOf(seen), url);
  assert.equal(seen.url.search, "");
  assert.deepEqual([...seen.headers], [["content-type", "application/x-www-form-urlencoded"]]);
}

/** The environment the AKS webhook sets, for the token file at `file`. */
export function wiEnv(file: string, extra: EnvRecord = {}): EnvRecord {
  return {
    AZURE_FEDERATED_TOKEN_FILE: file,
    AZURE_TENANT_ID: TENANT,
    AZURE_CLIENT_ID: CLIENT_ID,
    ...extra,
  };
}

/** Runs `body` with a temporary directory (temp_dir.ts) holding a token file with `contents`; removes it afterwards. */
export function withTokenFile(
  body: (file: { dir: string; path: string }) => Promise<void>,
  contents: string | Uint8Array = ASSERTION,
): Promise<void> {
  return withTempDir(async (dir) => {
    const path = join(dir, "azure-identity-token");
    await fsp.writeFile(path, contents);
    await body({ dir, path });
  }, "azmi-wi-");
}

/** A workload identity client over the token file at `path`, with a counting file system (checks.ts). */
export function wiClient(
  path: string,
  options: Partial<ManagedIdentityClientOptions> = {},
  internal: InternalOptions = {},
) {
  const files = counting();
  const client = testClient({ env: wiEnv(path), ...options }, { tokenFileSystem: files, ...internal });
  return { client, files };
}

export const token = (accessToken = "entra-token", extra: Record<string, unknown> = {}) =>
  Response.json({ token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599, access_token: accessToken, ...extra });

/** Waits in 5 ms turns (1 s at most) until `done()` holds: a real file read comes before each request. */
export async function until(done: () => boolean, what = "the condition"): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(done(), `${what} did not happen within 1 s`);
}

/** Asserts that constructing a client with `env` (and `options`) throws `code`, and returns the error. */
export function constructionError(
  env: EnvRecord,
  code: string,
  options: Partial<ManagedIdentityClientOptions> = {},
): ManagedIdentityError {
  const fake = recorder();
  const files = counting({ open: () => Promise.reject(new Error("construction must not open the token file")) });
  let caught: unknown;
  try {
    testClient({ env, fetch: fake.fetch, ...options }, { tokenFileSystem: files });
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ManagedIdentityError, `expected a ManagedIdentityError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.source, "WorkloadIdentity");
  assert.equal(fake.seen.length, 0);
  assert.deepEqual(files.openCalls, []);
  return caught;
}
