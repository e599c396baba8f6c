import assert from "node:assert/strict";
import { type ModelConfig, tiny } from "../../src/model/config.ts";
import { INIT_STD, initParams } from "../../src/model/init.ts";
import { paramLayout, paramView } from "../../src/model/params.ts";

Deno.test("initParams is reproducible from its seed and differs between seeds", () => {
  assert.deepEqual(initParams(tiny, { seed: 5 }), initParams(tiny, { seed: 5 }));
  assert.notDeepEqual(initParams(tiny, { seed: 5 }), initParams(tiny, { seed: 6 }));
});

Deno.test("initParams gives a tensor the same values whatever else the model holds", () => {
  // Tensors before the layers keep their index when layers are added, so they must be identical.
  const one = { ...tiny, layers: 1 };
  const a = initParams(one, { seed: 3 });
  const b = initParams(tiny, { seed: 3 });
  for (const name of ["embeddings.word.weight", "layers.0.attn.qkv.weight", "layers.0.ffn.down.weight"]) {
    assert.deepEqual(paramView(paramLayout(one), a, name), paramView(paramLayout(tiny), b, name), name);
  }
});

Deno.test("initParams: matrices are normal(0, 0.02); norms 1 and 0; scale 1/sqrt(hidden); padding 0", () => {
  const config: ModelConfig = { ...tiny, vocabSize: 2000, hidden: 64, positions: "learned" };
  const layout = paramLayout(config);
  const params = initParams(config, { seed: 11 });
  const word = paramView(layout, params, "embeddings.word.weight");
  const n = word.length;
  const mean = word.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(word.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  // 128,000 samples: the standard error of the std is about 0.02 / sqrt(2n) = 4e-5.
  assert.ok(Math.abs(mean) < 3e-4, `mean ${mean}`);
  assert.ok(Math.abs(std - INIT_STD) < 3e-4, `std ${std}`);
  // A normal puts 68.27% within one standard deviation.
  const within = word.filter((v) => Math.abs(v) < INIT_STD).length / n;
  assert.ok(Math.abs(within - 0.6827) < 0.005, `within one std: ${within}`);

  assert.ok(paramView(layout, params, "embeddings.position.weight").some((v) => v !== 0));
  assert.ok(paramView(layout, params, "layers.1.ffn_norm.weight").every((v) => v === 1));
  assert.ok(paramView(layout, params, "final_norm.bias").every((v) => v === 0));
  const scaled = initParams(tiny, { seed: 11 });
  assert.equal(
    paramView(paramLayout(tiny), scaled, "embeddings.position_scale")[0],
    Math.fround(1 / Math.sqrt(32)),
  );
  let end = 0;
  for (const t of layout.tensors) {
    assert.ok(params.subarray(end, t.offset).every((v) => v === 0), `padding before ${t.name}`);
    end = t.offset + t.size;
  }
});
