/**
 * What `az account get-access-token` prints, for `azmi token`: the output object with az's fields,
 * the JMESPath of `--query` that scripts use with this command (a field, a multi-select hash or
 * list of fields), and az's output formats, as az's output layer (knack's `output.py`) writes them.
 *
 * - `json` (and `jsonc`, coloured by az only on a terminal): `json.dumps(indent=2, sort_keys=True,
 *   ensure_ascii=False)`; C1 controls and DEL are escaped as well, the same JSON value.
 * - `tsv`: a dict's values sorted by key (an `OrderedDict`, what a multi-select hash makes, in its
 *   own order), a list one row per element, a scalar as it is; lists and dicts inside a row are
 *   never made here.
 * - `yaml` (and `yamlc`): `yaml.safe_dump(default_flow_style=False, allow_unicode=True)`, keys
 *   sorted; a string PyYAML would read as another type is single-quoted, one with a control
 *   character double-quoted with escapes.
 * - `table`: tabulate's `simple` format as knack builds it: column names with their first letter
 *   capitalised, sorted unless `--query` shaped the result, no `id`, `type` or `etag` column.
 * - `none`: nothing.
 *
 * Every function here is linear in its input: one pass over the query, one over each value.
 * @module
 */

import { readClaims } from "../emulator/token.ts";
import { escapeRaw, hasUnprintable, jsonText } from "./common.ts";

/** The output formats of `-o`, as az names them. */
export const AZ_OUTPUTS = ["json", "jsonc", "tsv", "yaml", "yamlc", "table", "none"] as const;
/** One of {@linkcode AZ_OUTPUTS}. */
export type AzOutput = (typeof AZ_OUTPUTS)[number];

/**
 * `--resource-type`'s names, to the public cloud's resources: azure-cli's profile module maps each
 * name to a cloud endpoint (`cloud_resource_type_mappings` in `command_modules/profile/custom.py`),
 * whose values for `AzureCloud` are in `azure-cli-core`'s `cloud.py` (`AZURE_PUBLIC_CLOUD`).
 */
export const AZ_RESOURCE_TYPES: Readonly<Record<string, string>> = {
  "oss-rdbms": "https://ossrdbms-aad.database.windows.net",
  "arm": "https://management.core.windows.net/",
  "aad-graph": "https://graph.windows.net/",
  "ms-graph": "https://graph.microsoft.com/",
  "batch": "https://batch.core.windows.net/",
  "media": "https://rest.media.azure.net",
  "data-lake": "https://datalake.azure.net/",
};

/** The resource az asks for without one: Azure Resource Manager (`active_directory_resource_id`). */
export const AZ_DEFAULT_RESOURCE: string = AZ_RESOURCE_TYPES.arm!;

/** The fields of az's output object, in the order az prints them (its keys sorted). */
export const AZ_FIELDS = ["accessToken", "expiresOn", "expires_on", "subscription", "tenant", "tokenType"] as const;
/** One of {@linkcode AZ_FIELDS}. */
export type AzField = (typeof AZ_FIELDS)[number];

/** az's output object. */
export type AzToken = Readonly<Record<AzField, string | number>>;

/** A value of the output: a field's value, or what `--query` made of the fields. */
export type AzValue =
  | { readonly kind: "scalar"; readonly field: AzField; readonly value: string | number }
  | {
    readonly kind: "object";
    /** Key, field and value, in the object's order. */
    readonly entries: readonly { readonly key: string; readonly field: AzField; readonly value: string | number }[];
    /** Whether `--query` made it (knack's `OrderedDict`: TSV and table keep its order) or az did (sorted). */
    readonly ordered: boolean;
  }
  | { readonly kind: "list"; readonly items: readonly { readonly field: AzField; readonly value: string | number }[] };

/**
 * az's output object for a token: `expiresOn` is local time as az prints it, `datetime.fromtimestamp(
 * expires_on).strftime("%Y-%m-%d %H:%M:%S.%f")` (azure-cli-core `_profile.py`, `get_raw_token`),
 * `expires_on` Unix seconds; `subscription` the one given, else empty; `tenant` the token's `tid`.
 */
export function azToken(accessToken: string, tokenType: string, expiresOn: Date, subscription: string): AzToken {
  const seconds = Math.floor(expiresOn.getTime() / 1000);
  return {
    accessToken,
    expiresOn: localTime(seconds),
    expires_on: seconds,
    subscription,
    tenant: tenantOf(accessToken) ?? "",
    tokenType,
  };
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `text` is a GUID, as a tenant or subscription ID is. */
export function isGuid(text: string): boolean {
  return GUID.test(text);
}

/** The token's `tid` claim when the token is a JWT and the claim is a tenant ID (a GUID), read without verifying. */
function tenantOf(token: string): string | undefined {
  const claims: unknown = readClaims(token);
  if (typeof claims !== "object" || claims === null) return undefined;
  const tid = (claims as Record<string, unknown>).tid;
  return typeof tid === "string" && isGuid(tid) ? tid : undefined;
}

/** Unix seconds as local time, `YYYY-MM-DD HH:MM:SS.000000` (Python's `%Y-%m-%d %H:%M:%S.%f`). */
function localTime(seconds: number): string {
  const date = new Date(seconds * 1000);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${String(date.getFullYear()).padStart(4, "0")}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${
    two(date.getHours())
  }:${two(date.getMinutes())}:${two(date.getSeconds())}.000000`;
}

// ---------------------------------------------------------------------------------------------
// --query

/** A parsed `--query`: one field, a multi-select hash of fields, or a multi-select list of fields. */
export type AzQuery =
  | { readonly kind: "field"; readonly field: string }
  | { readonly kind: "hash"; readonly entries: readonly { readonly key: string; readonly field: string }[] }
  | { readonly kind: "list"; readonly fields: readonly string[] };

/** What `--query` supports, for its usage error. */
export const QUERY_FORMS =
  "a field name (accessToken), a multi-select hash of field names ({token:accessToken, exp:expires_on}) " +
  "or a multi-select list of field names ([accessToken, expiresOn])";

/**
 * Parses the JMESPath subset of `--query`: an identifier (unquoted, or quoted as a JSON string),
 * `{key: identifier, ...}` or `[identifier, ...]`, with blanks around every token. Returns
 * `undefined` for anything else (a sub-expression, an index, a function, a pipe, a literal).
 */
export function parseQuery(text: string): AzQuery | undefined {
  let at = 0;
  const blanks = () => {
    while (at < text.length && (text[at] === " " || text[at] === "\t" || text[at] === "\n" || text[at] === "\r")) at++;
  };
  /** An identifier at `at`, or `undefined` (nothing consumed). */
  const identifier = (): string | undefined => {
    if (text[at] === '"') {
      // A JSON string: scanned once to its closing quote, then decoded.
      let end = at + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      if (end >= text.length) return undefined;
      let decoded: unknown;
      try {
        decoded = JSON.parse(text.slice(at, end + 1));
      } catch {
        return undefined;
      }
      at = end + 1;
      return typeof decoded === "string" ? decoded : undefined;
    }
    const start = at;
    if (!/[A-Za-z_]/.test(text[at] ?? "")) return undefined;
    at++;
    while (at < text.length && /[A-Za-z0-9_]/.test(text[at]!)) at++;
    return text.slice(start, at);
  };
  /** `open` items separated by commas, then `close`: each item read by `item`. */
  const items = <T>(close: string, item: () => T | undefined): T[] | undefined => {
    const found: T[] = [];
    for (;;) {
      blanks();
      const each = item();
      if (each === undefined) return undefined;
      found.push(each);
      blanks();
      if (text[at] === ",") {
        at++;
        continue;
      }
      if (text[at] !== close) return undefined;
      at++;
      return found;
    }
  };

  blanks();
  let query: AzQuery | undefined;
  if (text[at] === "{") {
    at++;
    const entries = items("}", () => {
      const key = identifier();
      if (key === undefined) return undefined;
      blanks();
      if (text[at] !== ":") return undefined;
      at++;
      blanks();
      const field = identifier();
      return field === undefined ? undefined : { key, field };
    });
    query = entries && { kind: "hash", entries };
  } else if (text[at] === "[") {
    at++;
    const fields = items("]", identifier);
    query = fields && { kind: "list", fields };
  } else {
    const field = identifier();
    query = field === undefined ? undefined : { kind: "field", field };
  }
  blanks();
  return query && at === text.length ? query : undefined;
}

/** The fields a query names that az's output object does not have. */
export function unknownFields(query: AzQuery): string[] {
  const named = query.kind === "field"
    ? [query.field]
    : query.kind === "hash"
    ? query.entries.map((entry) => entry.field)
    : query.fields;
  return named.filter((field) => !(AZ_FIELDS as readonly string[]).includes(field));
}

/** Applies a query (whose fields all exist: see {@linkcode unknownFields}), or none, to az's object. */
export function applyQuery(token: AzToken, query: AzQuery | undefined): AzValue {
  const pick = (field: string) => ({ field: field as AzField, value: token[field as AzField] });
  if (query === undefined) {
    return { kind: "object", entries: AZ_FIELDS.map((field) => ({ key: field, ...pick(field) })), ordered: false };
  }
  if (query.kind === "field") return { kind: "scalar", ...pick(query.field) };
  if (query.kind === "list") return { kind: "list", items: query.fields.map(pick) };
  // A repeated key keeps its first place and takes its last value, as a Python dict does.
  const byKey = new Map<string, { key: string; field: AzField; value: string | number }>();
  for (const { key, field } of query.entries) byKey.set(key, { key, ...pick(field) });
  return { kind: "object", entries: [...byKey.values()], ordered: true };
}

// ---------------------------------------------------------------------------------------------
// Output formats

/** What a format made: the text to print, or the field it cannot print (TSV and table refuse unprintable characters). */
export type Formatted = { readonly text: string } | { readonly refused: AzField };

/** Formats `value` as `-o output` does; `none` gives no text. */
export function formatAz(value: AzValue, output: AzOutput): Formatted {
  switch (output) {
    case "json":
    case "jsonc":
      return { text: `${jsonText(jsonOf(value))}\n` };
    case "yaml":
    case "yamlc":
      return { text: yamlOf(value) };
    case "tsv":
      return refusal(value) ?? { text: tsvOf(value) };
    case "table":
      return refusal(value) ?? { text: tableOf(value) };
    case "none":
      return { text: "" };
  }
}

/** The values of `value`, with their fields. */
function valuesOf(value: AzValue): readonly { readonly field: AzField; readonly value: string | number }[] {
  return value.kind === "scalar" ? [value] : value.kind === "list" ? value.items : value.entries;
}

/**
 * The first field whose value holds a character that `visible()` escapes, which TSV and a table
 * cannot print: a tab or line break would shift their columns, an escape sequence or a
 * bidirectional override would reach the terminal.
 */
function refusal(value: AzValue): { readonly refused: AzField } | undefined {
  const found = valuesOf(value).find((each) => typeof each.value === "string" && hasUnprintable(each.value));
  return found && { refused: found.field };
}

/** Python's `sorted()` of strings: by code point (for the keys here, UTF-16 order agrees). */
function byKey(a: { key: string }, b: { key: string }): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** The JSON value; objects with their keys sorted, as `sort_keys=True` does for a dict and an `OrderedDict` alike. */
function jsonOf(value: AzValue): unknown {
  if (value.kind === "scalar") return value.value;
  if (value.kind === "list") return value.items.map((item) => item.value);
  return Object.fromEntries([...value.entries].sort(byKey).map((entry) => [entry.key, entry.value]));
}

/** knack's `_TsvOutput`: a row per element of a list, else one row; a dict's values sorted by key, an `OrderedDict`'s in order. */
function tsvOf(value: AzValue): string {
  if (value.kind === "scalar") return `${value.value}\n`;
  if (value.kind === "list") return value.items.map((item) => `${item.value}\n`).join("");
  const entries = value.ordered ? value.entries : [...value.entries].sort(byKey);
  return `${entries.map((entry) => String(entry.value)).join("\t")}\n`;
}

// PyYAML's implicit resolvers (yaml/resolver.py): a plain scalar matching one is read as a bool,
// float, int, merge key, null, timestamp or value, so a string that matches is quoted. Each is
// anchored, a sequence of character classes with no nested repetition over the same characters.
const YAML_IMPLICIT: readonly RegExp[] = [
  /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/,
  /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/,
  /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/,
  /^(?:<<)$/,
  /^(?:~|null|Null|NULL|)$/,
  /^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$/,
  /^(?:=)$/,
];

/**
 * A string as PyYAML's `safe_dump` writes it: plain when it has only the characters of tokens,
 * IDs and names (a subset of what PyYAML leaves plain) and reads back as a string; else
 * single-quoted when printable; else double-quoted with JSON's escapes, which YAML reads as well.
 */
function yamlString(text: string): string {
  // "-" alone is a sequence entry, and "---" or "..." starts a document marker: PyYAML quotes them.
  const plain = /^[A-Za-z0-9_./+=~-]+$/.test(text) && text !== "-" && !/^(?:---|\.\.\.)/.test(text);
  if (plain && !YAML_IMPLICIT.some((pattern) => pattern.test(text))) return text;
  if (!hasUnprintable(text)) return `'${text.replaceAll("'", "''")}'`;
  return escapeRaw(JSON.stringify(text), true);
}

function yamlScalar(value: string | number): string {
  return typeof value === "number" ? String(value) : yamlString(value);
}

/** `yaml.safe_dump(..., default_flow_style=False)`: block style, keys sorted; a plain scalar document ends with `...`. */
function yamlOf(value: AzValue): string {
  if (value.kind === "scalar") {
    const text = yamlScalar(value.value);
    // PyYAML ends a document that is one plain scalar with the document end marker.
    const plain = typeof value.value === "number" || text === value.value;
    return plain ? `${text}\n...\n` : `${text}\n`;
  }
  if (value.kind === "list") {
    return value.items.length === 0 ? "[]\n" : value.items.map((item) => `- ${yamlScalar(item.value)}\n`).join("");
  }
  if (value.entries.length === 0) return "{}\n";
  return [...value.entries].sort(byKey).map((entry) => `${yamlString(entry.key)}: ${yamlScalar(entry.value)}\n`)
    .join("");
}

/** Python's `len()` of a string: code points. */
function width(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * knack's `_TableOutput` through tabulate's `simple` format (`disable_numparse=True`, so every
 * cell is text, left-aligned and stripped of its blanks): a header of the keys with their first
 * letter capitalised, a line of dashes, a row per item; a column is as wide as its widest cell or
 * its name plus 2; rows lose their trailing blanks.
 */
function tableOf(value: AzValue): string {
  let columns: string[];
  let rows: string[][];
  if (value.kind === "object") {
    const entries = (value.ordered ? value.entries : [...value.entries].sort(byKey))
      .filter((entry) => !["id", "type", "etag"].includes(entry.key));
    columns = entries.map((entry) => entry.key.slice(0, 1).toUpperCase() + entry.key.slice(1));
    rows = [entries.map((entry) => String(entry.value).trim())];
  } else {
    columns = ["Result"];
    rows = valuesOf(value).map((each) => [String(each.value).trim()]);
  }
  if (columns.length === 0) return "\n";
  const widths = columns.map((column, i) => Math.max(width(column) + 2, ...rows.map((row) => width(row[i]!))));
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) => cell + " ".repeat(widths[i]! - width(cell))).join("  ").trimEnd();
  return [line(columns), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n") + "\n";
}
