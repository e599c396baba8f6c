import assert from "node:assert/strict";
import { crammed, tiny } from "../../src/model/config.ts";
import { PARAM_ALIGNMENT, paramLayout, paramTensor, paramView } from "../../src/model/params.ts";

// torch_peer.py's docstring and named_for_checkpoint, written out for one layer of the tiny shape
// (V 96, H 32, I 64, S 16).
const peerTensors: [string, number[]][] = [
  ["embeddings.word.weight", [96, 32]],
  ["embeddings.position_scale", [1]],
  ["embeddings.norm.weight", [32]],
  ["embeddings.norm.bias", [32]],
  ["layers.0.attn_norm.weight", [32]],
  ["layers.0.attn_norm.bias", [32]],
  ["layers.0.attn.qkv.weight", [96, 32]],
  ["layers.0.attn.out.weight", [32, 32]],
  ["layers.0.ffn_norm.weight", [32]],
  ["layers.0.ffn_norm.bias", [32]],
  ["layers.0.ffn.up.weight", [64, 32]],
  ["layers.0.ffn.down.weight", [32, 64]],
  ["final_norm.weight", [32]],
  ["final_norm.bias", [32]],
];

Deno.test("paramLayout names and shapes match torch_peer's checkpoint list", () => {
  const layout = paramLayout({ ...tiny, layers: 1 });
  assert.deepEqual(layout.tensors.map((t) => [t.name, t.shape]), peerTensors);
  const glu = paramLayout({ ...tiny, layers: 1, ffn: "gelu-glu", positions: "learned" });
  assert.deepEqual(paramTensor(glu, "embeddings.position.weight").shape, [16, 32]);
  assert.deepEqual(paramTensor(glu, "layers.0.ffn.up.weight").shape, [64, 32]);
  assert.deepEqual(paramTensor(glu, "layers.0.ffn.down.weight").shape, [32, 32]);
  assert.throws(
    () => paramTensor(glu, "embeddings.position_scale"),
    /no parameter named embeddings.position_scale/,
  );
  assert.equal(paramLayout(tiny).tensors.length, 4 + 8 * 2 + 2);
});

Deno.test("paramLayout offsets are aligned, in order, non-overlapping, and sizes are the shapes' products", () => {
  const layout = paramLayout(tiny);
  let end = 0;
  for (const t of layout.tensors) {
    assert.equal(t.offset % PARAM_ALIGNMENT, 0, t.name);
    assert.ok(t.offset >= end, t.name);
    assert.equal(t.size, t.shape.reduce((a, b) => a * b, 1));
    end = t.offset + t.size;
  }
  assert.equal(layout.totalSize, Math.ceil(end / PARAM_ALIGNMENT) * PARAM_ALIGNMENT);
});

Deno.test("weight decay applies to matrices and the learned position table only", () => {
  const decayed = (config: typeof tiny) =>
    paramLayout({ ...config, layers: 1 }).tensors.filter((t) => t.decay).map((t) => t.name);
  const matrices = [
    "layers.0.attn.qkv.weight",
    "layers.0.attn.out.weight",
    "layers.0.ffn.up.weight",
    "layers.0.ffn.down.weight",
  ];
  assert.deepEqual(decayed(tiny), ["embeddings.word.weight", ...matrices]);
  assert.deepEqual(decayed({ ...tiny, positions: "learned" }), [
    "embeddings.word.weight",
    "embeddings.position.weight",
    ...matrices,
  ]);
});

Deno.test("crammed has the BERT-base-like parameter count", () => {
  // 32768*768 embedding + 16 layers of (4 H^2 + 2 H I + 4 H) + 1 scale + 4 H of embedding and final norms.
  const count = paramLayout(crammed).tensors.reduce((a, t) => a + t.size, 0);
  const H = 768, I = 3072;
  assert.equal(count, 32768 * H + 16 * (4 * H * H + 2 * H * I + 4 * H) + 1 + 4 * H);
});

Deno.test("paramView is a view of one tensor's elements", () => {
  const layout = paramLayout(tiny);
  const params = new Float32Array(layout.totalSize);
  paramView(layout, params, "final_norm.bias").fill(2);
  const t = paramTensor(layout, "final_norm.bias");
  assert.equal(params[t.offset], 2);
  assert.equal(params[t.offset + t.size - 1], 2);
  assert.equal(params.reduce((a, b) => a + b, 0), 2 * 32);
});
