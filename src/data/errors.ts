/**
 * The corpus pipeline's user-facing error: one line naming the file (and line or field) and what was
 * expected. Tasks print `error: <message>` and exit 1; anything else thrown is a bug.
 *
 * @module
 */

/** Bad input to the corpus pipeline: a corpus, vocabulary or shard file, or an option. */
export class DataError extends Error {
  /** Always `DataError`. */
  override name = "DataError";
}

/** The message of a thrown value, for wrapping foreign errors into one-line `DataError`s. */
export function describe(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "not found";
  if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable) {
    return "permission denied";
  }
  return error instanceof Error ? error.message.split("\n")[0] : String(error);
}
