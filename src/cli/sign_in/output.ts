/**
 * What the sign-in origins share: reading a tool's JSON answer and its error text, all of it
 * hostile (docs/sign_in.md). Messages pass the redaction gate (`endpointText`) with the token as
 * a secret, then `visible()`: one line, bounded, no control character, never a token.
 * @module
 */

import { endpointText, visible } from "../../redact.ts";
import { MAX_LIFETIME_MS, parseJsonObject } from "../../response.ts";
import { OriginError, type OriginFailure } from "../../emulator/origin.ts";
import { RELAY_MAX_TOKEN_LENGTH, TOKEN_TEXT } from "../../emulator/relay.ts";

/**
 * Microsoft Entra ID's codes for a tenant that is not the account's, as az and azd pass them on:
 * the user does not exist in it (50020), it does not exist (90002), no tenant could be read from
 * the request (50128, 50059), the application is not in it (700016).
 * https://learn.microsoft.com/entra/identity-platform/reference-error-codes
 */
export const TENANT_CODES = /\bAADSTS(?:50020|90002|50128|50059|700016)\b/;

/** The longest excerpt of a tool's message an error carries. */
export const MAX_MESSAGE = 300;

/** A tool's text made safe to show: redacted (`secrets` cut out), one line, bounded, escaped. */
export function safeText(text: string, secrets: readonly string[] = []): string {
  return visible(endpointText(text, secrets, MAX_MESSAGE));
}

/** The error for a failed run, with what the tool said, made safe. */
export function toolError(reason: OriginFailure, tool: string, said: string, hint = ""): OriginError {
  const shown = safeText(said);
  return new OriginError(reason, `${tool}: ${shown || "failed without a message"}${hint ? ` (${hint})` : ""}`);
}

/**
 * The line of a tool's stderr that says what went wrong: the first `ERROR:` line (az and azd
 * both start theirs so), without the prefix, else the first line that is not blank.
 */
export function errorLine(stderr: string): string {
  const lines = stderr.slice(0, 64 * 1024).split(/\r?\n/);
  const error = lines.find((line) => /^\s*ERROR:/.test(line));
  return (error ?? lines.find((line) => line.trim() !== "") ?? "").replace(/^\s*ERROR:\s*/, "");
}

/** The JSON object a tool printed, or `undefined` when it printed anything else (the library's reading of a body). */
export const jsonObject: (text: string) => Record<string, unknown> | undefined = parseJsonObject;

/**
 * `value` when it is an access token the relay will serve (printable ASCII, no space, at most
 * `RELAY_MAX_TOKEN_LENGTH` characters: src/emulator/relay.ts), else an `invalid_output` error.
 */
export function accessToken(tool: string, field: string, value: unknown): string {
  if (typeof value !== "string" || value.length > RELAY_MAX_TOKEN_LENGTH || !TOKEN_TEXT.test(value)) {
    throw new OriginError("invalid_output", `${tool} printed no usable "${field}": not a token`);
  }
  return value;
}

/**
 * `seconds` as an expiry in Unix seconds when it is one: a finite whole number, in the future
 * and at most a year ahead (the module's own expiry rule, `MAX_LIFETIME_MS` in src/response.ts).
 */
export function saneExpiry(tool: string, field: string, seconds: number, now: number): number {
  if (!Number.isFinite(seconds) || seconds * 1000 <= now || seconds * 1000 - now > MAX_LIFETIME_MS) {
    throw new OriginError(
      "invalid_output",
      `${tool} printed an "${field}" that is not a time within a year from now`,
    );
  }
  return Math.floor(seconds);
}
