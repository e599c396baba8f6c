import assert from "node:assert/strict";
import { tiny } from "../../src/model/config.ts";
import { HEAD_INNER, headLayout, headView } from "../../src/model/head_layout.ts";

Deno.test("the head's tensors are PyTorch-shaped and packed in order, without padding", () => {
  const { tensors, totalSize } = headLayout(tiny, 3);
  const H = tiny.hidden;
  assert.deepEqual(tensors.map((t) => [t.name, t.shape, t.offset, t.size]), [
    ["head.dense.weight", [HEAD_INNER, H], 0, HEAD_INNER * H],
    ["head.dense.bias", [HEAD_INNER], HEAD_INNER * H, HEAD_INNER],
    ["head.out.weight", [3, HEAD_INNER], HEAD_INNER * H + HEAD_INNER, 3 * HEAD_INNER],
    ["head.out.bias", [3], HEAD_INNER * H + 4 * HEAD_INNER, 3],
  ]);
  assert.equal(totalSize, HEAD_INNER * H + 4 * HEAD_INNER + 3);
  assert.throws(() => headLayout(tiny, 0), /labels must be >= 1, got 0/);
});

Deno.test("headView is a view of one tensor, and names what is wrong", () => {
  const head = new Float32Array(headLayout(tiny, 1).totalSize);
  const bias = headView(tiny, 1, head, "head.out.bias");
  bias[0] = 5;
  assert.equal(head[head.length - 1], 5);
  assert.throws(() => headView(tiny, 2, head, "head.out.bias"), /expected \d+ elements for 2 labels/);
  assert.throws(() => headView(tiny, 1, head, "head.nope"), /no head parameter named head.nope/);
});
