/**
 * The hash behind the model's seeded randomness: the parameter init and the dropout masks (whose WGSL
 * twin is in kernels/prelude.wgsl; the tests hold the two to each other bit for bit).
 *
 * @module
 */

/** The PCG-RXS-M-XS 32-bit hash, in u32 arithmetic identical to the WGSL dropout kernel's. */
export function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul((state >>> ((state >>> 28) + 4)) ^ state, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/**
 * Element `index` of stream `key`: two rounds of {@linkcode pcg} on `key ^ index` (WGSL: `hash_index`). One
 * round left correlations of about 1e-3 between elements at a few distances rich in powers of two
 * (z up to 12 over 200 dropout masks of 2^20 elements); two rounds test clean.
 */
export function hashIndex(key: number, index: number): number {
  return pcg(pcg((key ^ index) >>> 0));
}
