/**
 * What the benchmarks read from a child process's stdout: one JSON object a line, among lines
 * that are not JSON (a runtime's warnings, say), which are skipped. bench/sign_in.ts,
 * bench/hostile.ts and bench/absent.ts read their children this way.
 * @module
 */

/**
 * The lines of `stream` that start with `{`, each parsed as JSON, in order, as they arrive; an
 * unfinished last line (the child killed mid-write) is dropped. A line that starts with `{` but
 * is not JSON throws.
 */
export async function* jsonLines<T>(stream: ReadableStream<Uint8Array>): AsyncGenerator<T> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const lines = chunk.split("\n");
    lines[0] = buffered + lines[0];
    buffered = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith("{")) yield JSON.parse(line) as T;
    }
  }
}
