/**
 * Validation of numeric options, with a `RangeError` that names the option and its value.
 * @module
 */

/** `fallback` when `value` is undefined; else a finite number of at least `least` (whole if asked). */
export function numberOption(name: string, value: unknown, fallback: number, least: number, whole = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < least || (whole && !Number.isInteger(value))) {
    throw new RangeError(
      `Option "${name}" must be a ${whole ? "whole " : ""}number of at least ${least}: got ${String(value)}`,
    );
  }
  return value;
}
