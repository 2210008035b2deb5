/**
 * A runtime's refusal of a permission the emulator needs (Deno without `--allow-net`,
 * `--allow-write`, `--allow-read` or `--allow-env`; Node's permission model), turned into one
 * line that names the flag to add, instead of a raw `NotCapable` stack trace.
 * @module
 */

import { visible } from "../redact.ts";

/** What was refused: `read`, `write`, `env`, `net`, ...; and, on Deno, what it was refused for. */
interface Refusal {
  readonly kind: string;
  /** Deno's quoted target: a path, a variable, `host:port`. */
  readonly target?: string;
  /** Node's permission model rather than Deno's flags. */
  readonly node: boolean;
}

/** The refusal in `error` or its causes, or `undefined` when it is some other failure. */
export function refusalOf(error: unknown): Refusal | undefined {
  let link: unknown = error;
  for (let depth = 0; depth < 5 && typeof link === "object" && link !== null; depth++) {
    const { name, message, code, permission } = link as {
      name?: unknown;
      message?: unknown;
      code?: unknown;
      permission?: unknown;
    };
    const text = typeof message === "string" ? message : "";
    if (name === "NotCapable" || (name === "PermissionDenied" && /--allow-/.test(text))) {
      const [, kind, target] = /Requires (\w+) access to "([^"]{0,4096})"/.exec(text) ??
        [undefined, /--allow-(\w+)/.exec(text)?.[1] ?? "unknown", undefined];
      return { kind: kind!, ...(target === undefined ? {} : { target }), node: false };
    }
    if (code === "ERR_ACCESS_DENIED") {
      const kind = permission === "FileSystemWrite"
        ? "write"
        : permission === "FileSystemRead"
        ? "read"
        : permission === "Net"
        ? "net"
        : "unknown";
      return { kind, node: true };
    }
    link = (link as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The flag that grants `kind` for `target`: Deno's `--allow-write=/tmp`, Node's `--allow-fs-write=/tmp`. */
export function flagFor(kind: string, target: string | undefined, node: boolean): string {
  const name = node
    ? (kind === "read" || kind === "write" ? `--allow-fs-${kind}` : `--allow-${kind}`)
    : `--allow-${kind}`;
  return target === undefined || (node && kind === "net") ? name : `${name}=${target}`;
}

/** A permission the runtime refused to the emulator: its message names the flags to add. */
export class EmulatorPermissionError extends Error {
  override readonly name: "EmulatorPermissionError" = "EmulatorPermissionError";
  /** The flags that grant what was refused, such as `["--allow-write=/tmp"]`. */
  readonly flags: readonly string[];
  constructor(message: string, flags: readonly string[]) {
    super(message);
    this.flags = flags;
    // One line when uncaught: the message says what was refused and the flag, the frames and
    // the runtime's own error (no `cause`, which Deno would print with its stack) add nothing.
    this.stack = `${this.name}: ${message}`;
  }
}

/**
 * The error for a refused permission while the emulator was doing `what` (a clause: "write
 * workload identity's federated token file in /tmp"), or `undefined` for any other failure.
 * `flags` gives the flags to name for each kind refused (a directory needs read and write
 * together, say); without an entry, the one flag for what was refused.
 */
export function permissionError(
  error: unknown,
  what: string,
  flags: (refusal: Refusal) => readonly string[] | undefined = () => undefined,
): EmulatorPermissionError | undefined {
  if (error instanceof EmulatorPermissionError) return error;
  const refusal = refusalOf(error);
  if (!refusal) return undefined;
  const named = flags(refusal) ?? [flagFor(refusal.kind, refusal.target, refusal.node)];
  const runtime = refusal.node ? "Node" : "Deno";
  return new EmulatorPermissionError(
    `The emulator cannot ${what}: ${runtime} refused ${refusal.kind} access${
      refusal.target === undefined ? "" : ` to "${visible(refusal.target)}"`
    }; run it with ${named.map(visible).join(" ")}`.replace(/[\r\n]+/g, " "),
    named,
  );
}

/** The error for a server that Deno (or Node) may not start on `hostname`; `undefined` for any other failure. */
export function listenRefused(error: unknown, hostname: string): EmulatorPermissionError | undefined {
  if (error instanceof EmulatorPermissionError) return error;
  const refusal = refusalOf(error);
  if (refusal?.kind !== "net") return undefined;
  return permissionError(error, `listen on ${hostname}`, () => [flagFor("net", hostname, refusal.node)]);
}
