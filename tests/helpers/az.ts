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
import { createEmulator, EMULATOR_TENANT, readClaims } from "../../src/emulator/mod.ts";
import { emulatedEndpoint, SECRET } from "./cli.ts";
import { azAnswer, azLocalTime } from "./fake_tools.ts";

export const ARM = "https://management.core.windows.net/";
export const SUBSCRIPTION = "2d1c3c2a-4f4e-4e5b-9d1f-0c6c1b0f5a11";

/**
 * A fresh emulator's App Service endpoint (cli.ts's emulatedEndpoint: the requests it saw, the
 * tokens it issued), and the resource each request asked for.
 */
export function appService() {
  const endpoint = emulatedEndpoint(createEmulator({ secret: SECRET }), "AppService");
  return {
    ...endpoint,
    get resources(): string[] {
      return endpoint.requests.map((request) => new URL(request.url).searchParams.get("resource") ?? "");
    },
  };
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
    expiresOn: azLocalTime(exp as number),
    expires_on: exp as number,
    subscription,
    tenant: EMULATOR_TENANT,
    tokenType: "Bearer",
  };
}

/**
 * What az's `-o json` prints for the whole object: fake_tools.ts's azAnswer (sorted keys, two
 * spaces of indent), which derives `expiresOn` and `tokenType` as fieldsOf() does.
 */
export const azJson = (f: Fields) => {
  assert.equal(f.expiresOn, azLocalTime(f.expires_on), "expiresOn is expires_on in local time");
  assert.equal(f.tokenType, "Bearer");
  return azAnswer(f.accessToken, f.expires_on, { tenant: f.tenant, subscription: f.subscription });
};

/** What az's `-o tsv` prints for the whole object: the values sorted by key, on one line. */
export const azTsv = (f: Fields) =>
  `${f.accessToken}\t${f.expiresOn}\t${f.expires_on}\t${f.subscription}\t${f.tenant}\t${f.tokenType}\n`;
