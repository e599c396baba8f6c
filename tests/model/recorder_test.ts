import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { readF32, uploadBuffer } from "../../src/gpu/buffers.ts";
import { Kernels, submitDispatches } from "../../src/gpu/kernels.ts";
import { matmulScratchBytes } from "../../src/model/layers/matmul.ts";
import { Recorder } from "../../src/model/recorder.ts";
import * as ref from "../../src/reference/matmul.ts";
import { assertClose, seededUniform } from "../_helpers.ts";

const k = new Kernels(await requestGpu());

Deno.test("finish plans each recording in order, all products sharing one scratch sized for the largest", async () => {
  const rec = new Recorder(k, { sizedBy: "--micro-batch" });
  // Deep products with few output tiles split K, each needing partial-sum scratch of its own size.
  const shapes = [{ m: 4, n: 4, k: 2048 }, { m: 8, n: 8, k: 4096 }];
  // matmulScratchBytes looks at the shape only; any buffer stands in.
  const probe = rec.f32("probe", 1);
  const scratch = shapes.map((s) => matmulScratchBytes(k, { ...s, a: probe, b: probe, c: probe }));
  assert.ok(scratch[0] > 0 && scratch[1] > scratch[0], `scratch bytes ${scratch}`);
  const before = rec.bytes;
  const order: string[] = [];
  const products = shapes.map((s, i) => {
    const a = seededUniform(s.m * s.k, 1 + i);
    const b = seededUniform(s.k * s.n, 3 + i);
    const c = rec.f32(`c${i}`, s.m * s.n);
    const recording = rec.recording();
    recording.run(() => {
      order.push(`op ${i}`);
      return Promise.resolve([]);
    });
    recording.product({ ...s, a: uploadBuffer(k.gpu, "a", a), b: uploadBuffer(k.gpu, "b", b), c });
    return { a, b, c, s };
  });
  const lists = await rec.finish();
  assert.deepEqual(order, ["op 0", "op 1"]);
  assert.equal(lists.length, 2);
  // The C buffers, then one scratch of the larger size.
  assert.equal(rec.bytes - before, (4 * 4 + 8 * 8) * 4 + scratch[1]);
  for (const [i, { a, b, c, s }] of products.entries()) {
    submitDispatches(k.gpu, lists[i]);
    // Sums of 2048-4096 products of values in [-1, 1): f32 error well below 1e-4.
    assertClose(await readF32(k.gpu, c), ref.matmul(a, b, s), {
      rtol: 1e-4,
      atol: 1e-4,
      what: `product ${i}`,
    });
  }
});
