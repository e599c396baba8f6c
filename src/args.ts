/**
 * The command line of every task: a table of options drives the parser, the checks of each value and the
 * `--help` text. A mistake is a `UsageError` whose message is one line naming the option (an unknown
 * option's suggests the nearest known one); `-h`/`--help` is always known. The value parsers that tables
 * share are in arg_values.ts.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { describe } from "./data/errors.ts";

/** A mistake in the command line: the message is one line that names the option. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** An option that takes a value, `--name <value>` or `--name=<value>`. */
export interface ValueOption<T> {
  /** The value's placeholder in the usage text, e.g. `<n>`. */
  value: string;
  /** What the option does, for the usage text. */
  help: string;
  /** The value of `text`; throws a `UsageError` naming `flag` when `text` is not one (see arg_values.ts). */
  parse: (text: string, flag: string) => T;
  /** The value when the option is not given. */
  default?: T;
  /** The default as the usage text shows it; default: `default` as a string, if there is one. */
  shown?: string;
  /** Without it the command is refused (except with --help). */
  required?: true;
  /** The option may be repeated; its values are collected in order. */
  multiple?: true;
}

/** An option without a value: `--name` turns it on. */
export interface SwitchOption {
  switch: true;
  /** What the option does, for the usage text. */
  help: string;
}

/**
 * A task's options by key: the key in camelCase is the flag in kebab-case (`peakLr` is `--peak-lr`), and the
 * order of the keys is the order of the usage text.
 */
export type OptionTable = Record<string, ValueOption<unknown> | SwitchOption>;

/** The parsed value of one option: a list if repeatable, possibly undefined unless defaulted or required. */
export type OptionValue<S> = S extends SwitchOption ? boolean
  : S extends ValueOption<infer T> ? S extends { multiple: true } ? T[]
    : S extends { default: unknown } | { required: true } ? T
    : T | undefined
  : never;

/** The values of a table's options. */
export type OptionValues<T extends OptionTable> = { -readonly [K in keyof T]: OptionValue<T[K]> };

/** A parsed command line. */
export interface CommandLine<T extends OptionTable> {
  values: OptionValues<T>;
  /** The options the command line gave. */
  given: ReadonlySet<keyof T & string>;
  /** The arguments that are not options (only where `positionals` is allowed). */
  positionals: string[];
  /** `-h` or `--help` was given: the caller prints the usage text and does nothing else. */
  help: boolean;
}

/** The flag of a table key: `peakLr` is `--peak-lr`. */
export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * Parses `args` by `table`. Values are checked by their option's `parse`; an unknown option, a missing
 * value or a missing required option is a `UsageError`. With `positionals`, arguments that are not options
 * are returned (else they are errors).
 */
export function parseCommandLine<T extends OptionTable>(
  table: T,
  args: readonly string[],
  { positionals = false }: { positionals?: boolean } = {},
): CommandLine<T> {
  const config: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {};
  for (const [key, spec] of Object.entries(table)) {
    config[flagOf(key).slice(2)] = "switch" in spec
      ? { type: "boolean" }
      : { type: "string", multiple: spec.multiple === true };
  }
  config.help = { type: "boolean", short: "h" };
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: config, allowPositionals: positionals, strict: true });
  } catch (e) {
    throw new UsageError(parseArgsMessage(e, config));
  }
  const help = parsed.values.help === true;
  const values: Record<string, unknown> = {};
  const given = new Set<keyof T & string>();
  for (const [key, spec] of Object.entries(table)) {
    const flag = flagOf(key);
    const raw = parsed.values[flag.slice(2)];
    if (raw !== undefined) given.add(key);
    if ("switch" in spec) values[key] = raw === true;
    else if (raw === undefined && spec.required && !help) {
      throw new UsageError(`${flag} is required (--help lists the options)`);
    } else if (spec.multiple) values[key] = ((raw ?? []) as string[]).map((text) => spec.parse(text, flag));
    else if (raw !== undefined) values[key] = spec.parse(raw as string, flag);
    else if (spec.default !== undefined) values[key] = spec.default;
  }
  return { values: values as OptionValues<T>, given, positionals: parsed.positionals, help };
}

/**
 * The usage text: `head` (the usage line and what the command does), then every option of `table` with its
 * placeholder, description and default, wrapped at 100 columns, and `-h, --help` last.
 */
export function usageText(head: string, table: OptionTable): string {
  const left = Object.entries(table).map(([key, spec]) =>
    `  ${flagOf(key)}${"switch" in spec ? "" : ` ${spec.value}`}`
  );
  const width = Math.max(...left.map((l) => l.length)) + 2;
  const lines = [head.trimEnd(), "", "Options:"];
  const entry = (term: string, text: string) => {
    let line = term.padEnd(width);
    for (const word of text.split(" ")) {
      if (line.length + word.length > 100 && line.trim() !== term.trim()) {
        lines.push(line.trimEnd());
        line = " ".repeat(width);
      }
      line += word + " ";
    }
    lines.push(line.trimEnd());
  };
  Object.values(table).forEach((spec, i) => {
    const shown = "switch" in spec
      ? undefined
      : spec.shown ?? (spec.default === undefined ? undefined : String(spec.default));
    entry(left[i], shown === undefined ? spec.help : `${spec.help} (default: ${shown})`);
  });
  entry("  -h, --help", "Show this text.");
  return lines.join("\n");
}

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
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument ${/'([^']*)'/.exec(error.message)?.[1] ?? ""} (--help lists the options)`;
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

/**
 * Runs a task's `main`: exits with the code it returns (0 when it returns nothing), or prints what it threw
 * as one line, `error: <message>`, and exits 1.
 */
export async function runTask(main: () => Promise<number | void>): Promise<never> {
  let code: number;
  try {
    code = (await main()) ?? 0;
  } catch (e) {
    console.error(`error: ${describe(e)}`);
    code = 1;
  }
  Deno.exit(code);
}
