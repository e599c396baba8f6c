import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { Kernels } from "../../src/gpu/kernels.ts";
import { benchMatmul, CRAMMED_DIMS, modelShapes } from "../../src/bench/matmul.ts";

Deno.test("modelShapes lists each product of a crammed step in its three layouts", () => {
  const shapes = modelShapes(CRAMMED_DIMS);
  const find = (name: string, layout: string) => shapes.find((s) => s.name === name && s.layout === layout);
  assert.deepEqual(find("qkv", "NT"), { name: "qkv", layout: "NT", m: 16384, n: 2304, k: 768 });
  assert.deepEqual(find("qkv", "NN"), { name: "qkv", layout: "NN", m: 16384, n: 768, k: 2304 });
  assert.deepEqual(find("qkv", "TN"), { name: "qkv", layout: "TN", m: 2304, n: 768, k: 16384 });
  assert.deepEqual(find("ffn_down", "NT"), { name: "ffn_down", layout: "NT", m: 16384, n: 768, k: 3072 });
  // The sparse head's rows: 19 predictions in each of 128 sequences, what a training step plans.
  assert.equal(CRAMMED_DIMS.masked, 128 * 19);
  assert.deepEqual(find("mlm_decoder", "NT"), {
    name: "mlm_decoder",
    layout: "NT",
    m: 2432,
    n: 32768,
    k: 768,
  });
  assert.deepEqual(find("mlm_decoder", "TN"), {
    name: "mlm_decoder",
    layout: "TN",
    m: 32768,
    n: 768,
    k: 2432,
  });
  assert.deepEqual(find("cube", "TN"), { name: "cube", layout: "TN", m: 4096, n: 4096, k: 4096 });
  // Forward, input gradient and weight gradient of one product cost the same FLOPs.
  for (const name of new Set(shapes.map((s) => s.name))) {
    const flops = shapes.filter((s) => s.name === name).map((s) => s.m * s.n * s.k);
    assert.equal(flops.length, 3);
    assert.ok(flops.every((f) => f === flops[0]), name);
  }
});

Deno.test("benchMatmul times each shape and checks it against float64", async () => {
  const kernels = new Kernels(await requestGpu());
  const shapes = [
    { name: "plain", layout: "NT", m: 64, n: 128, k: 32 },
    { name: "deep", layout: "TN", m: 64, n: 128, k: 1024 },
  ] as const;
  const results = [];
  for await (const r of benchMatmul(kernels, shapes, { warmupSeconds: 0.02, timedSeconds: 0.02 })) {
    results.push(r);
  }
  // The tile the wrapper picks: 64 x 64 for products this small.
  assert.deepEqual(results.map((r) => [r.name, r.kernel, r.tile, r.splits]), [
    ["plain", "matmul_tiled", "64x64x8/u8", 1],
    ["deep", "matmul_tiled", "64x64x8/u8", 2],
  ]);
  for (const r of results) {
    assert.ok(r.tflops > 0, `${r.name}: tflops ${r.tflops}`);
    // f32 sums of k products of values in [-1, 1): the error is a few ulps of the partial sums, ~1e-7 of
    // the RMS at these depths (the notes measured 3e-6 at k = 4096); 1e-5 leaves margin yet catches any
    // wrong entry, whose error is of the order of the RMS itself.
    assert.ok(r.rel_err < 1e-5, `${r.name}: rel_err ${r.rel_err}`);
  }
});

Deno.test("benchMatmul with f16 operands checks against float64 on the rounded operands", async () => {
  const kernels = new Kernels(await requestGpu());
  const shapes = [{ name: "plain", layout: "NN", m: 64, n: 128, k: 32 }] as const;
  const options = { warmupSeconds: 0.02, timedSeconds: 0.02, operands: "f16" } as const;
  for await (const r of benchMatmul(kernels, shapes, options)) {
    assert.equal(r.operands, "f16");
    // The products of the rounded operands are exact in f32: the error is the f32 sum's, as above.
    assert.ok(r.rel_err < 1e-5, `rel_err ${r.rel_err}`);
  }
});
