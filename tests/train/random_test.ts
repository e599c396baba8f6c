import assert from "node:assert/strict";
import { below, draws, hash, permutation, streamKey, uniform } from "../../src/train/random.ts";

Deno.test("hash is a pure function of key and counter", () => {
  assert.equal(hash(7, 3), hash(7, 3));
  assert.notEqual(hash(7, 3), hash(7, 4));
  assert.notEqual(hash(7, 3), hash(8, 3));
  assert.equal(streamKey(1, 2, 3), streamKey(1, 2, 3));
  assert.notEqual(streamKey(1, 2, 3), streamKey(1, 3, 2));
  // Coordinates above 2^32 are not truncated to their low word.
  assert.notEqual(streamKey(1, 5), streamKey(1, 5 + 2 ** 32));
});

Deno.test("draws are the stream's first draws, in order", () => {
  assert.deepEqual(Array.from(draws(11, 4)), [0, 1, 2, 3].map((i) => hash(11, i)));
  assert.equal(draws(11, 0).length, 0);
});

Deno.test("uniform draws fill [0, 1) evenly (chi-square over 16 buckets)", () => {
  const n = 160_000;
  const buckets = new Array(16).fill(0);
  const key = streamKey(42, 0);
  for (let i = 0; i < n; i++) {
    const u = uniform(key, i);
    assert.ok(u >= 0 && u < 1);
    buckets[Math.floor(u * 16)]++;
  }
  const expected = n / 16;
  const chi2 = buckets.reduce((sum, b) => sum + (b - expected) ** 2 / expected, 0);
  // 15 degrees of freedom: P(chi2 > 37.7) = 0.001.
  assert.ok(chi2 < 37.7, `chi2 ${chi2}`);
});

Deno.test("neighbouring counters and keys are uncorrelated", () => {
  const n = 100_000;
  let sameKey = 0;
  let nextKey = 0;
  for (let i = 0; i < n; i++) {
    const a = uniform(9, i) - 0.5;
    sameKey += a * (uniform(9, i + 1) - 0.5);
    nextKey += a * (uniform(10, i) - 0.5);
  }
  // Correlation of independent uniforms: sd 1/sqrt(n) = 0.0032; allow 5 sd.
  const scale = 12 / n;
  assert.ok(Math.abs(sameKey * scale) < 0.016, `counter correlation ${sameKey * scale}`);
  assert.ok(Math.abs(nextKey * scale) < 0.016, `key correlation ${nextKey * scale}`);
});

Deno.test("below stays in range and covers it evenly, also for n above 2^32", () => {
  const counts = new Array(6).fill(0);
  for (let i = 0; i < 60_000; i++) counts[below(3, i, 6)]++;
  for (const c of counts) assert.ok(Math.abs(c - 10_000) < 500, `counts ${counts}`);
  let high = 0;
  for (let i = 0; i < 1000; i++) {
    const v = below(3, i, 2 ** 40);
    assert.ok(Number.isInteger(v) && v >= 0 && v < 2 ** 40);
    if (v >= 2 ** 39) high++;
  }
  assert.ok(high > 400 && high < 600, `upper half ${high}`);
});

Deno.test("permutation holds every index once and depends on the key", () => {
  const p = permutation(5, 1000);
  assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual(permutation(5, 1000), p);
  assert.notDeepEqual(permutation(6, 1000), p);
  // Each position is equally likely to hold 0: over many keys it is spread out.
  const firstOfZero = new Array(4).fill(0);
  for (let key = 0; key < 4000; key++) firstOfZero[permutation(key, 4).indexOf(0)]++;
  for (const c of firstOfZero) assert.ok(Math.abs(c - 1000) < 150, `positions of 0: ${firstOfZero}`);
});
