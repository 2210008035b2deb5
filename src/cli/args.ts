/**
 * Command-line arguments: parsing flags against a command's flag table, the usage error every
 * bad argument becomes (exit code 2), whole-number flags, positional arguments, and the identity
 * flags `--client-id`, `--object-id` and `--resource-id`.
 * @module
 */

import type { IdentityOptions } from "../../mod.ts";
import { normalizeResource } from "../client.ts";

/** A usage error: printed with a hint to use --help, exit code 2. */
export class UsageError extends Error {
  override readonly name: "UsageError" = "UsageError";
  /** The command whose help the hint names, or `undefined` for the top level. */
  readonly command: string | undefined;
  constructor(message: string, command: string | undefined) {
    super(message);
    this.command = command;
  }
}

/** A command's flags: name (without `--`) to a description of its value, `null` for a switch. */
export type FlagSpec = Readonly<Record<string, string | null>>;

/** A command's arguments, split by {@linkcode parseArgs}. */
export interface Parsed {
  readonly positionals: string[];
  readonly values: Map<string, string>;
  readonly switches: Set<string>;
}

/** Whether `--help` or `-h` comes before any `--`. */
export function isHelp(args: readonly string[]): boolean {
  const end = args.indexOf("--");
  return (end === -1 ? args : args.slice(0, end)).some((arg) => arg === "--help" || arg === "-h");
}

/**
 * Splits `args` into positionals, flag values and switches; an unknown or malformed flag is a usage error.
 * `short` maps one-letter flags to the long flag they stand for (`{ o: "output" }`): `-o json` and
 * `-ojson`, as argparse (and so `az`) takes them, are `--output json`.
 */
export function parseArgs(
  command: string,
  args: readonly string[],
  flags: FlagSpec,
  short: Readonly<Record<string, string>> = {},
): Parsed {
  const positionals: string[] = [];
  const values = new Map<string, string>();
  const switches = new Set<string>();
  const known = () => Object.keys(flags).map((name) => `--${name}`).join(", ");
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]!;
    if (arg === "--") {
      positionals.push(...args.slice(index + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    // --name or --name=value; for a letter of `short`, -x or -xvalue.
    const long = arg.startsWith("--");
    const equals = long ? arg.indexOf("=") : -1;
    const letter = long ? "" : arg.slice(1, 2);
    const name = long
      ? arg.slice(2, equals === -1 ? undefined : equals)
      : Object.hasOwn(short, letter)
      ? short[letter]!
      : "";
    if (!Object.hasOwn(flags, name)) {
      const letters = Object.keys(short).map((each) => `-${each}`);
      throw new UsageError(
        `Unknown flag "${long && equals !== -1 ? arg.slice(0, equals) : arg}": "azmi ${command}" takes ${
          [known(), ...letters].filter(Boolean).join(", ") || "no flags"
        } and --help`,
        command,
      );
    }
    const flag = long ? `--${name}` : `-${letter}`;
    // argparse reads -o=json as -o json, and so does az.
    const attached = long
      ? (equals === -1 ? undefined : arg.slice(equals + 1))
      : arg.length > 2
      ? arg.slice(arg[2] === "=" ? 3 : 2)
      : undefined;
    const expects = flags[name];
    if (expects === null || expects === undefined) {
      if (attached !== undefined) throw new UsageError(`Flag "${flag}" takes no value: got "${attached}"`, command);
      switches.add(name);
      continue;
    }
    let value: string;
    if (attached !== undefined) {
      value = attached;
    } else {
      const next = args[index + 1];
      if (next === undefined || next.startsWith("--") || next === "-h") {
        throw new UsageError(`Flag "${flag}" needs a value: ${expects}`, command);
      }
      value = next;
      index++;
    }
    if (value === "") throw new UsageError(`Flag "${flag}" needs a value: ${expects}, got an empty one`, command);
    if (values.has(name)) throw new UsageError(`Flag "${flag}" is given more than once`, command);
    values.set(name, value);
  }
  return { positionals, values, switches };
}

/** A whole number flag within [least, most], or `undefined` when the flag is absent. */
export function wholeNumber(
  command: string,
  parsed: Parsed,
  name: string,
  unit: string,
  least: number,
  most: number,
): number | undefined {
  const text = parsed.values.get(name);
  if (text === undefined) return undefined;
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(value >= least && value <= most)) {
    throw new UsageError(
      `Flag "--${name}" expects ${unit} from ${least} to ${most}: got "${text}"`,
      command,
    );
  }
  return value;
}

/** What the `--timeout` flag of `token` and `doctor` takes. */
export const TIMEOUT_FLAG = "a number of milliseconds";

/** The `--timeout` flag in milliseconds, up to the largest delay a timer takes; `undefined` when absent. */
export function timeoutOf(command: string, parsed: Parsed): number | undefined {
  return wholeNumber(command, parsed, "timeout", "a whole number of milliseconds", 1, 2_147_483_647);
}

/** At most one positional argument. */
export function onePositional(command: string, parsed: Parsed, what: string, required: boolean): string | undefined {
  const [first, ...extra] = parsed.positionals;
  if (extra.length > 0) {
    throw new UsageError(
      `"azmi ${command}" takes one ${what}: got ${parsed.positionals.length} (${
        parsed.positionals.map((p) => `"${p}"`).join(", ")
      })`,
      command,
    );
  }
  if (first !== undefined && first.trim() === "") throw new UsageError(`The ${what} is empty: got "${first}"`, command);
  if (first === undefined && required) {
    throw new UsageError(`Missing ${what}: for example "azmi ${command} https://vault.azure.net"`, command);
  }
  return first;
}

/**
 * A resource as the library will use it (trimmed, one trailing `/.default` removed): a usage
 * error when nothing is left, so that `azmi token /.default` is exit code 2, not a failed request.
 * `given` is what the user wrote, when `value` was derived from it.
 */
export function checkedResource(command: string, value: string, given: string = value): string {
  try {
    normalizeResource(value);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    throw new UsageError(`The resource is empty: got "${given}" (a trailing /.default is removed)`, command);
  }
  return value;
}

/** No positional argument at all. */
export function noPositionals(command: string, parsed: Parsed): void {
  if (parsed.positionals.length > 0) {
    throw new UsageError(`"azmi ${command}" takes no arguments: got "${parsed.positionals[0]}"`, command);
  }
}

/** Each identity flag: the client option it sets, and a description of its value. */
const ID_FLAGS: Readonly<Record<string, { readonly option: keyof IdentityOptions; readonly value: string }>> = {
  "client-id": { option: "clientId", value: "a client ID" },
  "object-id": { option: "objectId", value: "an object ID" },
  "resource-id": { option: "resourceId", value: "an Azure resource ID" },
};

/** The identity flags of `token` and `doctor`. */
export const IDENTITY_FLAGS: FlagSpec = Object.fromEntries(
  Object.entries(ID_FLAGS).map(([flag, { value }]) => [flag, value]),
);

/** The identity the flags name: at most one of them; none is the system-assigned identity. */
export function identityOf(command: string, parsed: Parsed): IdentityOptions {
  const given = Object.keys(ID_FLAGS).filter((flag) => parsed.values.has(flag));
  if (given.length > 1) {
    throw new UsageError(
      `Give at most one of --client-id, --object-id, --resource-id: got ${given.map((f) => `--${f}`).join(" and ")}`,
      command,
    );
  }
  const flag = given[0];
  return flag ? { [ID_FLAGS[flag]!.option]: parsed.values.get(flag)! } : {};
}
