import assert from "node:assert/strict";
import { readF32, storageBuffer, uploadBuffer, writeBuffer } from "../../../src/gpu/buffers.ts";
import { requestGpu } from "../../../src/gpu/device.ts";
import { Kernels, submitDispatches } from "../../../src/gpu/kernels.ts";
import { dropoutBackward, dropoutForward, dropoutThreshold } from "../../../src/model/layers/dropout.ts";
import * as ref from "../../../src/reference/dropout.ts";
import { assertClose, seededUniform } from "../../_helpers.ts";

const gpu = await requestGpu();
const kernels = new Kernels(gpu);

// A kept element is x * f32(1 / (1 - p)): two f32 roundings of the exact x / (1 - p).
const TOL = { rtol: 1.5e-7, atol: 0 };

Deno.test("dropoutThreshold turns the reference's keep test into an integer compare", () => {
  for (const p of [0, 0.1, 0.37, 0.5, 0.9, 1 - 2 ** -24, 1 / 3]) {
    const threshold = dropoutThreshold(p);
    for (const v of [threshold - 1, threshold, threshold + 1]) {
      if (v < 0 || v >= 2 ** 24) continue;
      assert.equal(v >= threshold, v / 2 ** 24 >= p, `p ${p}, u >>> 8 = ${v}`);
    }
  }
});

Deno.test("dropout masks equal the reference's bit for bit, forward and backward, for each seed", async () => {
  const count = 1000; // 250 vec4s: not a multiple of the workgroup
  // Nonzero inputs, so a zero output means a dropped element.
  const x = seededUniform(count, 1, 0.5, 1.5);
  const dy = seededUniform(count, 2, 0.5, 1.5);
  const seeds = uploadBuffer(gpu, "seeds", Uint32Array.of(11, 0xdeadbeef, 3));
  const y = storageBuffer(gpu, "y", count * 4);
  const dx = storageBuffer(gpu, "dx", count * 4);
  for (const p of [0.1, 0.37, 0.5]) {
    const site = { count, p, seeds, seedIndex: 1 };
    const steps = [
      ...await dropoutForward(kernels, { ...site, x: uploadBuffer(gpu, "x", x), y }),
      ...await dropoutBackward(kernels, { ...site, dy: uploadBuffer(gpu, "dy", dy), dx }),
    ];
    // A new seed each step draws a new mask through the same plan.
    for (const seed of [0xdeadbeef, 12345]) {
      writeBuffer(gpu, seeds, Uint32Array.of(seed), 4);
      submitDispatches(gpu, steps);
      const expected = ref.dropout(x, { p, seed });
      const gotY = await readF32(gpu, y);
      const gotDx = await readF32(gpu, dx);
      const dropped = expected.keep.filter((k) => k === 0).length;
      assert.ok(Math.abs(dropped / count - p) < 0.06, `p ${p}: dropped ${dropped} of ${count}`);
      assert.deepEqual(Array.from(gotY, (v) => v !== 0 ? 1 : 0), Array.from(expected.keep), `mask, p ${p}`);
      assert.deepEqual(
        Array.from(gotDx, (v) => v !== 0 ? 1 : 0),
        Array.from(expected.keep),
        `dx mask, p ${p}`,
      );
      assertClose(gotY, expected.y, { ...TOL, what: `y, p ${p}` });
      assertClose(gotDx, expected.keep.map((k, i) => k * dy[i] / (1 - p)), { ...TOL, what: `dx, p ${p}` });
    }
  }
});

Deno.test("dropout with a residual adds it to the dropped input in the same pass", async () => {
  const count = 1000;
  const x = seededUniform(count, 4, 0.5, 1.5);
  const residual = seededUniform(count, 5);
  const y = storageBuffer(gpu, "y", count * 4);
  const seeds = uploadBuffer(gpu, "seeds", Uint32Array.of(99));
  submitDispatches(
    gpu,
    await dropoutForward(kernels, {
      count,
      p: 0.2,
      seeds,
      seedIndex: 0,
      x: uploadBuffer(gpu, "x", x),
      y,
      residual: uploadBuffer(gpu, "residual", residual),
    }),
  );
  const dropped = ref.dropout(x, { p: 0.2, seed: 99 }).y;
  // x * 1.25 and the add each round once, by at most half an ulp of a value below 4: < 2.4e-7 in all.
  assertClose(await readF32(gpu, y), dropped.map((v, i) => v + residual[i]), {
    rtol: 3e-7,
    atol: 3e-7,
    what: "residual + dropout(x)",
  });
});

Deno.test("dropout with p = 0 is the identity", async () => {
  const x = seededUniform(64, 3);
  const y = storageBuffer(gpu, "y", 64 * 4);
  const seeds = uploadBuffer(gpu, "seeds", Uint32Array.of(7));
  submitDispatches(
    gpu,
    await dropoutForward(kernels, { count: 64, p: 0, seeds, seedIndex: 0, x: uploadBuffer(gpu, "x", x), y }),
  );
  assert.deepEqual(await readF32(gpu, y), x);
});

Deno.test("dropout rejects a bad probability or seed index, naming it", async () => {
  const b = storageBuffer(gpu, "b", 64);
  const args = { count: 16, seeds: b, x: b, y: storageBuffer(gpu, "y", 64) };
  await assert.rejects(
    () => dropoutForward(kernels, { ...args, p: 1, seedIndex: 0 }),
    /dropout p = 1, expected a probability in \[0, 1\)/,
  );
  await assert.rejects(
    () => dropoutForward(kernels, { ...args, p: 0.1, seedIndex: 16 }),
    /dropout seeds: buffer b has 64 bytes, needs 68/,
  );
  await assert.rejects(
    () => dropoutForward(kernels, { ...args, p: 0.1, seedIndex: -1 }),
    /dropout seedIndex = -1, expected a non-negative integer/,
  );
  await assert.rejects(
    () => dropoutForward(kernels, { ...args, y: b, p: 0.1, seedIndex: 0 }),
    /dropout forward input and output: expected two different buffers, got b twice/,
  );
  await assert.rejects(
    () => dropoutForward(kernels, { ...args, residual: args.y, p: 0.1, seedIndex: 0 }),
    /dropout forward residual and y: expected two different buffers, got y twice/,
  );
});
