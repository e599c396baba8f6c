/**
 * File helpers shared by every task. Output is written to a temporary name in the same directory, then
 * renamed into place, so a reader never sees a half-written file and an interrupted run leaves the old
 * file intact.
 *
 * @module
 */

/** Writes `bytes` to `path` atomically (a temporary file in the same directory, then a rename). */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const temp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeFile(temp, bytes);
    await Deno.rename(temp, path);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw new Error(`cannot write ${path}: ${(e as Error).message}`);
  }
}

/** Whether `path` exists; an error other than "not found" (e.g. no permission) is thrown. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
