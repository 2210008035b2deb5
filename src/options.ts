/**
 * Validation of numeric options, with a `RangeError` that names the option, its value and the
 * allowed range.
 * @module
 */

/**
 * The longest wait a timer can hold: `setTimeout` and `AbortSignal.timeout` keep their delay in
 * a signed 32-bit integer, and a longer one fires at once (Node, Deno) or after 1 ms (Bun).
 */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * `fallback` when `value` is undefined; else a finite number from `least` to `most` (whole if
 * asked). A millisecond option passes `MAX_TIMER_MS` as `most`.
 */
export function numberOption(
  name: string,
  value: unknown,
  fallback: number,
  least: number,
  whole = false,
  most = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== "number" || !Number.isFinite(value) || value < least || value > most ||
    (whole && !Number.isInteger(value))
  ) {
    throw new RangeError(
      `Option "${name}" must be a ${whole ? "whole " : ""}number from ${least} to ${most}${
        most === MAX_TIMER_MS ? " (the longest wait a timer can hold)" : ""
      }: got ${String(value)}`,
    );
  }
  return value;
}
