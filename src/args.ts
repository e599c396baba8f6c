/**
 * Command-line parsing shared by the tasks: node:util `parseArgs` errors rewritten as one line that
 * names the option.
 *
 * @module
 */

/** The one-line message of a node:util `parseArgs` error (its own are several sentences). */
export function parseArgsMessage(e: unknown): string {
  const error = e as Error & { code?: string };
  const option = /'(-[^' ]+)/.exec(error.message)?.[1] ?? "";
  switch (error.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${option} (--help lists the options)`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return /does not take an argument/.test(error.message)
        ? `${option} takes no value`
        : `${option}: expected a value (write ${option}=<value> for one that starts with -)`;
    default:
      return error.message.split("\n")[0];
  }
}
