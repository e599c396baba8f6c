/**
 * The argument checks the op references share: an array's length and an id's range, each failing with a
 * `RangeError` that names the op and the argument.
 *
 * @module
 */

/** Throws a `RangeError` naming `what` unless `array` has `expected` elements. */
export function checkLength(what: string, array: ArrayLike<number>, expected: number): void {
  if (array.length !== expected) {
    throw new RangeError(`${what}: expected ${expected} elements, got ${array.length}`);
  }
}

/** Throws a `RangeError` naming `what` and `index` unless `id` is an integer in [0, limit). */
export function checkId(what: string, id: number, index: number, limit: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= limit) {
    throw new RangeError(`${what}: id ${id} at index ${index} is outside [0, ${limit})`);
  }
}
