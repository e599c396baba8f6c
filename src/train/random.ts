/**
 * Counter-based random numbers: every draw is a hash of a key and a counter, so any draw can be
 * recomputed from its coordinates alone. A resumed run gets the same shuffles and masks from
 * nothing more than the seed and the data position; there is no generator state to save.
 */

/** A 32-bit integer finalizer with full avalanche (Chris Wellons' "lowbias32"). */
function mix(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The draw number `counter` of the stream `key`: a uniform unsigned 32-bit integer. */
export function hash(key: number, counter: number): number {
  return mix((key ^ mix(counter + 0x9e3779b9)) >>> 0);
}

/**
 * A stream key derived from `seed` and the coordinates in `path` (e.g. epoch and sequence index).
 * Coordinates may be any non-negative safe integers: values above 2^32 are folded in by their high
 * word too.
 */
export function streamKey(seed: number, ...path: number[]): number {
  let key = mix(seed >>> 0);
  for (const value of path) {
    key = hash(key, value >>> 0);
    const high = Math.floor(value / 2 ** 32);
    if (high > 0) key = hash(key ^ 0x5bd1e995, high);
  }
  return key;
}

/** Draws 0 .. count-1 of stream `key` (e.g. one dropout seed per site). */
export function draws(key: number, count: number): Uint32Array<ArrayBuffer> {
  return Uint32Array.from({ length: count }, (_, i) => hash(key, i));
}

/** A uniform float in [0, 1) from draw `counter` of stream `key`. */
export function uniform(key: number, counter: number): number {
  return hash(key, counter) / 2 ** 32;
}

/**
 * A uniform integer in [0, n) for n up to 2^53, from draws 2*counter and 2*counter+1 of stream
 * `key` (53 random bits, so the bias is below 2^-53 * n).
 */
export function below(key: number, counter: number, n: number): number {
  const high = hash(key, 2 * counter) >>> 11; // 21 bits
  const low = hash(key, 2 * counter + 1); // 32 bits
  return Math.floor(((high * 2 ** 32 + low) / 2 ** 53) * n);
}

/** A seeded permutation of 0..n-1 (Fisher-Yates driven by stream `key`). */
export function permutation(key: number, n: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = below(key, i, i + 1);
    const swap = order[i];
    order[i] = order[j];
    order[j] = swap;
  }
  return order;
}
