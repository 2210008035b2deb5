/**
 * What az prints, for the tests of `azmi token` as a drop-in for `az account get-access-token`
 * (tests/cli_az_test.ts, tests/cli_az_formats_test.ts): az's six fields from the token an
 * emulator's App Service endpoint issued, and the JSON and TSV az prints for them.
 *
 * The expected outputs follow az's output layer, knack's `output.py` (microsoft/knack): JSON with
 * `sort_keys=True` and an indent of 2; TSV a dict's values sorted by key (an `OrderedDict`, what a
 * `--query` multi-select hash makes, in its own order), a list one row per element; YAML
 * `yaml.safe_dump(default_flow_style=False)`; table tabulate's "simple" format.
 */

import assert from "node:assert/strict";
import type { FetchLike } from "../../mod.ts";
import { createEmulator, EMULATOR_TENANT, readClaims } from "../../src/emulator/mod.ts";
import { SECRET } from "./cli.ts";

export const ARM = "https://management.core.windows.net/";
export const SUBSCRIPTION = "2d1c3c2a-4f4e-4e5b-9d1f-0c6c1b0f5a11";

/** A fresh emulator's App Service endpoint, recording the resource of each request and each token issued. */
export function appService() {
  const handler = createEmulator({ secret: SECRET }).handler("AppService");
  const resources: string[] = [];
  const tokens: string[] = [];
  const fetch: FetchLike = async (request) => {
    resources.push(new URL(request.url).searchParams.get("resource") ?? "");
    const response = await handler(request);
    const body = await response.clone().json().catch(() => ({}));
    if (typeof body.access_token === "string") tokens.push(body.access_token);
    return response;
  };
  return { fetch, resources, tokens };
}

/** Python's `datetime.fromtimestamp(s).strftime("%Y-%m-%d %H:%M:%S.%f")` in this process's time zone. */
function pythonLocal(seconds: number): string {
  const d = new Date(seconds * 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.000000`;
}

/** The six fields az prints, from the token the endpoint issued, in az's (sorted) order. */
export interface Fields {
  readonly accessToken: string;
  readonly expiresOn: string;
  readonly expires_on: number;
  readonly subscription: string;
  readonly tenant: string;
  readonly tokenType: string;
}

export function fieldsOf(token: string, subscription = ""): Fields {
  const exp = readClaims(token)?.exp;
  assert.equal(typeof exp, "number", "the emulator's token has an exp claim");
  return {
    accessToken: token,
    expiresOn: pythonLocal(exp as number),
    expires_on: exp as number,
    subscription,
    tenant: EMULATOR_TENANT,
    tokenType: "Bearer",
  };
}

/** What az's `-o json` prints for the whole object: sorted keys, two spaces of indent. */
export const azJson = (f: Fields) =>
  `{\n  "accessToken": "${f.accessToken}",\n  "expiresOn": "${f.expiresOn}",\n  "expires_on": ${f.expires_on},\n` +
  `  "subscription": "${f.subscription}",\n  "tenant": "${f.tenant}",\n  "tokenType": "${f.tokenType}"\n}\n`;

/** What az's `-o tsv` prints for the whole object: the values sorted by key, on one line. */
export const azTsv = (f: Fields) =>
  `${f.accessToken}\t${f.expiresOn}\t${f.expires_on}\t${f.subscription}\t${f.tenant}\t${f.tokenType}\n`;
