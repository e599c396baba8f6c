/**
 * Value parsers for option tables (args.ts): each returns the value of an option's text or throws a
 * `UsageError` of one line, `--flag: expected <what>, got "<text>"`.
 *
 * @module
 */
import { UsageError } from "./args.ts";

/** A value parser: the value of `text`, given as option `flag`. */
export type ValueParser<T> = (text: string, flag: string) => T;

/** Throws the usage error of a value that is not what `flag` expects. */
export function fail(flag: string, expected: string, got: string): never {
  throw new UsageError(`${flag}: expected ${expected}, got ${JSON.stringify(got)}`);
}

/** A number for which `ok` holds, described to the user as `expected`. */
export function numberWhere(expected: string, ok: (n: number) => boolean): ValueParser<number> {
  return (text, flag) => {
    const n = Number(text);
    return text.trim() === "" || !Number.isFinite(n) || !ok(n) ? fail(flag, expected, text) : n;
  };
}

/** An integer from `min` to `max`, described as "an integer from min to max" (or "of at least min"). */
export function integerFrom(min: number, max = Number.MAX_SAFE_INTEGER): ValueParser<number> {
  const expected = max === Number.MAX_SAFE_INTEGER
    ? `an integer of at least ${min}`
    : `an integer from ${min} to ${max}`;
  return numberWhere(expected, (n) => Number.isSafeInteger(n) && n >= min && n <= max);
}

/** 1, 2, 3... */
export const positiveInteger: ValueParser<number> = numberWhere(
  "a positive integer",
  (n) => Number.isSafeInteger(n) && n >= 1,
);

/** 0, 1, 2... */
export const nonNegativeInteger: ValueParser<number> = numberWhere(
  "a non-negative integer",
  (n) => Number.isSafeInteger(n) && n >= 0,
);

/** A finite number above 0. */
export const positiveNumber: ValueParser<number> = numberWhere("a positive number", (n) => n > 0);

/** One of `choices`, as written. */
export function oneOf<const C extends string>(choices: readonly C[]): ValueParser<C> {
  const expected = choices.length === 2 ? `${choices[0]} or ${choices[1]}` : `one of ${choices.join(", ")}`;
  return (text, flag) => choices.find((c) => c === text) ?? fail(flag, expected, text);
}

/** The text as given. */
export const text: ValueParser<string> = (text) => text;

/** Any text but an empty one, described as `expected` (e.g. "a folder path"). */
export function nonEmpty(expected: string): ValueParser<string> {
  return (text, flag) => text.trim() === "" ? fail(flag, expected, text) : text;
}

/** A comma-separated list of values of `item`, at least one; an item's error names the list's flag. */
export function listOf<T>(item: ValueParser<T>): ValueParser<T[]> {
  return (text, flag) => text.split(",").map((part) => item(part.trim(), flag));
}

/**
 * A value that another parser gives, such as one that throws its own errors: its message becomes a usage
 * error naming `flag`.
 */
export function parsedBy<T>(parse: (text: string) => T): ValueParser<T> {
  return (text, flag) => {
    try {
      return parse(text);
    } catch (e) {
      throw new UsageError(`${flag}: ${(e as Error).message}`);
    }
  };
}
