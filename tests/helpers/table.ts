/**
 * A Markdown table as the benchmarks (bench/) and `deno task interop` print their results: the
 * first row is the header, each column as wide as its widest cell.
 */

/** `rows` as a Markdown table, the first row its header; no trailing line break. */
export function markdownTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const line = (row: readonly string[]) => `| ${row.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(rows[0]!), `|${widths.map((width) => "-".repeat(width + 2)).join("|")}|`, ...rows.slice(1).map(line)]
    .join("\n");
}
