/**
 * Command-line parsing shared by the tasks: node:util `parseArgs` errors rewritten as one line that
 * names the option.
 *
 * @module
 */

/**
 * The one-line message of a node:util `parseArgs` error (its own are several sentences). Given the
 * parser's `options`, an unknown option's message suggests the nearest known one.
 */
export function parseArgsMessage(e: unknown, options: Record<string, unknown> = {}): string {
  const error = e as Error & { code?: string };
  // node:util names an option with a short form as '-h, --help'.
  const option = /'(?:-\w, )?(-[^' ]+)/.exec(error.message)?.[1] ?? "";
  switch (error.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION": {
      const near = nearestOption(option.replace(/^-+/, "").replace(/=.*$/, ""), Object.keys(options));
      return `unknown option ${option}${near ? ` (did you mean --${near}?)` : " (--help lists the options)"}`;
    }
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return /does not take an argument/.test(error.message)
        ? `${option} takes no value`
        : `${option}: expected a value (write ${option}=<value> for one that starts with -)`;
    default:
      return error.message.split("\n")[0];
  }
}

/**
 * The known option closest to `name` by edit distance, if it is close: at most 2 edits, and fewer than
 * half of the name's letters (so that "x" does not suggest "-h").
 */
export function nearestOption(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return bestDistance <= 2 && bestDistance < name.length / 2 ? best : undefined;
}

/** Levenshtein distance: insertions, deletions and substitutions of one character each count 1. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length];
}

/** An environment variable's value where this process may read it and it is not empty. */
export function envVar(name: string): string | undefined {
  const status = Deno.permissions.querySync({ name: "env", variable: name });
  return status.state === "granted" ? Deno.env.get(name) || undefined : undefined;
}
