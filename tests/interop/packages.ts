/**
 * The npm packages of `deno task interop` (tests/interop/run.ts), one list for the runner, which
 * installs them, and for the child processes, which load them: on Node and Bun from the folder
 * the runner installed them into (`AZMI_INTEROP_MODULES`, outside git), on Deno as `npm:`
 * specifiers from Deno's cache (the runner fills it before any child starts, and Deno children
 * run with `--cached-only`, so no child reaches the registry).
 *
 * No file under tests/interop/ imports a package by a bare name: Node and Bun resolve a bare
 * name next to the importing file, where there is no node_modules, and `deno check tests/` would
 * refuse it. Types come from `import type` of the `npm:` specifier, which Node's and Bun's type
 * stripping erase.
 */

import { createRequire } from "node:module";
import process from "node:process";
import { pathToFileURL } from "node:url";

/** Each package and the version range every runtime uses (for the peers, the versions docs/benchmarks.md cites). */
export const PACKAGES = {
  "@azure/identity": "4.14",
  "@azure/msal-node": "7.2",
  "@azure/storage-blob": "12.34",
  "@azure/keyvault-secrets": "4.12",
  "azurite": "3.37",
} as const;

/** A package name of {@linkcode PACKAGES}. */
export type PackageName = keyof typeof PACKAGES;

/** The variable that tells a Node or Bun child where the packages are installed (a folder with node_modules/). */
export const MODULES_VARIABLE = "AZMI_INTEROP_MODULES";

/** `npm:<name>@<range>`, what a Deno child imports. */
export const npmSpecifier = (name: PackageName): string => `npm:${name}@${PACKAGES[name]}`;

/**
 * Imports a package in a child: on Deno its `npm:` specifier, elsewhere the entry point npm
 * installed under `AZMI_INTEROP_MODULES` (resolved as `require` would, then imported).
 */
export async function loadPackage<T>(name: PackageName): Promise<T> {
  if ("Deno" in globalThis) return await import(npmSpecifier(name)) as T;
  const folder = process.env[MODULES_VARIABLE];
  if (!folder) throw new Error(`${MODULES_VARIABLE} is not set: run this file through tests/interop/run.ts`);
  const entry = createRequire(`${folder}/package.json`).resolve(name);
  return await import(pathToFileURL(entry).href) as T;
}

/** What a child prints as its last line: `@@interop ` and one JSON value. */
export const RESULT_PREFIX = "@@interop ";

/** Prints a child's result for the runner, then ends the process (the SDKs may keep sockets or timers open). */
export async function report(result: unknown): Promise<never> {
  await new Promise<void>((resolve) =>
    process.stdout.write(`\n${RESULT_PREFIX}${JSON.stringify(result)}\n`, () => resolve())
  );
  process.exit(0);
}

/** An error as plain data: name, code (whichever property the library keeps it in), status, message. */
export function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { name: typeof error, message: String(error) };
  const { code, errorCode, statusCode, status } = error as {
    code?: unknown;
    errorCode?: unknown;
    statusCode?: unknown;
    status?: unknown;
  };
  const cause = (error as { cause?: unknown }).cause;
  return {
    name: error.name,
    ...(typeof errorCode === "string" && errorCode ? { code: errorCode } : code === undefined ? {} : { code }),
    ...(typeof statusCode === "number" ? { status: statusCode } : typeof status === "number" ? { status } : {}),
    message: error.message.replace(/\s+/g, " ").slice(0, 600),
    ...(cause instanceof Error ? { cause: `${cause.name}: ${cause.message.replace(/\s+/g, " ").slice(0, 300)}` } : {}),
  };
}
