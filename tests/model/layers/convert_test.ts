import assert from "node:assert/strict";
import { readBuffer, storageBuffer, uploadBuffer } from "../../../src/gpu/buffers.ts";
import { requestGpu } from "../../../src/gpu/device.ts";
import { Kernels, submitDispatches } from "../../../src/gpu/kernels.ts";
import { castToF16 } from "../../../src/model/layers/convert.ts";
import { seededUniform } from "../../_helpers.ts";

const gpu = await requestGpu();
const kernels = new Kernels(gpu);

/** The bits castToF16 writes for `x`. */
async function castBits(x: Float32Array<ArrayBuffer>): Promise<Uint16Array> {
  const y = storageBuffer(gpu, "y", x.length * 2, "f16");
  submitDispatches(gpu, await castToF16(kernels, { x: uploadBuffer(gpu, "x", x), y, length: x.length }));
  return new Uint16Array(await readBuffer(gpu, y, x.length * 2));
}

/** The bits of `x` rounded as Float16Array rounds (to nearest even, overflow to infinity). */
function f16Bits(x: ArrayLike<number>): Uint16Array {
  return new Uint16Array(Float16Array.from(x).buffer);
}

Deno.test("castToF16 rounds as Float16Array: to nearest even, beyond the range to infinity", async () => {
  const ulp1 = 2 ** -10; // f16's spacing in [1, 2)
  const edge = [
    1 + ulp1 / 2, // a tie: rounds down to the even 1
    1 + 1.5 * ulp1, // a tie: rounds up to the even 1 + 2 ulp
    1 + ulp1 / 2 + 2 ** -20, // just past the tie
    65504, // the largest finite f16
    65519, // below the midpoint to the next binade: 65504
    65520, // the midpoint: to even, which is infinity
    70000,
    1e30,
    -1e30,
    Infinity,
    -Infinity,
    2 ** -24, // the smallest subnormal
    2 ** -25, // a tie between 0 and the smallest subnormal: to the even 0
    3 * 2 ** -25, // a tie between subnormals: up to the even 2^-23
    0.75 * 2 ** -24, // past the tie: the smallest subnormal
    -0,
    0,
    6.1e-5, // just below the smallest normal
    -123.456,
  ];
  // Then values across f16's range and a little beyond, and small ones (f16 keeps ~3 digits of each).
  const x = seededUniform(4 * 77, 1, -70000, 70000);
  x.set(edge);
  x.set(seededUniform(40, 2, -1e-3, 1e-3), 100);
  const actual = await castBits(x);
  const expected = f16Bits(x);
  for (let i = 0; i < x.length; i++) {
    assert.equal(
      actual[i],
      expected[i],
      `x[${i}] = ${x[i]}: 0x${actual[i].toString(16)}, expected 0x${expected[i].toString(16)}`,
    );
  }
});

Deno.test("castToF16 writes exactly `length` elements, over a grid of several workgroups", async () => {
  const length = 4 * 300; // 300 vec4s: more than the 256 of one workgroup, not a multiple
  const x = seededUniform(length, 3, -2, 2);
  const y = uploadBuffer(gpu, "y", Float16Array.from({ length: length + 8 }, () => 7));
  submitDispatches(gpu, await castToF16(kernels, { x: uploadBuffer(gpu, "x", x), y, length }));
  const expected = new Float16Array(length + 8).fill(7);
  expected.set(Float16Array.from(x));
  assert.deepEqual(new Float16Array(await readBuffer(gpu, y)), expected);
});

Deno.test("castToF16 names a bad length or buffer", async () => {
  const f32 = storageBuffer(gpu, "master", 64 * 4);
  const f16 = storageBuffer(gpu, "copy", 64 * 2, "f16");
  await assert.rejects(
    () => castToF16(kernels, { x: f32, y: f16, length: 6 }),
    /castToF16: length = 6, expected a positive multiple of 4/,
  );
  await assert.rejects(
    () => castToF16(kernels, { x: f32, y: f32, length: 64 }),
    /castToF16 y: buffer master stores f32, expected f16/,
  );
  await assert.rejects(
    () => castToF16(kernels, { x: f16, y: f16, length: 64 }),
    /castToF16 x: buffer copy stores f16, expected f32/,
  );
  await assert.rejects(
    () => castToF16(kernels, { x: f32, y: f16, length: 128 }),
    /castToF16 x: buffer master has 256 bytes, needs 512/,
  );
});
