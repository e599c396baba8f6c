/** Small helpers shared by the kernel tests. */
import { AssertionError } from "node:assert";

/** Tolerances of {@linkcode assertClose}: |actual - expected| <= atol + rtol * |expected| per element. */
export interface CloseOptions {
  rtol?: number;
  atol?: number;
  /** Names the compared quantity in the failure message. */
  what?: string;
}

/** Asserts that two arrays have the same length and agree element-wise within the tolerances. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { rtol = 0, atol = 0, what = "array" }: CloseOptions = {},
): void {
  if (actual.length !== expected.length) {
    throw new AssertionError({ message: `${what}: length ${actual.length}, expected ${expected.length}` });
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const excess = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    if (!(excess <= worstExcess)) { // also catches NaN
      worst = i;
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
    }
  }
  if (worst >= 0) {
    throw new AssertionError({
      message: `${what}[${worst}] = ${actual[worst]}, expected ${
        expected[worst]
      } (rtol ${rtol}, atol ${atol})`,
    });
  }
}

/** Uniform values in [lo, hi) from a seeded generator (mulberry32), as f32 so GPU and CPU see the same inputs. */
export function seededUniform(length: number, seed: number, lo = -1, hi = 1): Float32Array<ArrayBuffer> {
  const out = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

/**
 * Whether this test process may do what the tests named "writes: ..." do (write files, start processes):
 * the README's test command (--allow-read) may not, and then `file` says once that they are ignored;
 * .ci/run runs them again with -A.
 */
export function writesAllowed(file: string, needs: readonly ("write" | "run")[] = ["write"]): boolean {
  const allowed = needs.every((name) => Deno.permissions.querySync({ name }).state === "granted");
  if (!allowed) {
    console.log(
      `${file}: the tests named "writes: ..." are ignored without --allow-${needs.join(" and --allow-")}`,
    );
  }
  return allowed;
}

/** Runs `fn` with a fresh temporary folder, removed afterwards whatever happens. */
export async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A safetensors file of `headerJson` (not padded) and `dataBytes` zero bytes of data. */
export function safetensorsBytes(headerJson: string, dataBytes = 0): Uint8Array {
  const header = new TextEncoder().encode(headerJson);
  const bytes = new Uint8Array(8 + header.length + dataBytes);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
  bytes.set(header, 8);
  return bytes;
}
