import assert from "node:assert/strict";
import {
  crammed,
  downInputWidth,
  fromPeerConfig,
  headDim,
  modelName,
  paddedVocabSize,
  presets,
  tiny,
  toPeerConfig,
  validateConfig,
} from "../../src/model/config.ts";

Deno.test("presets are valid; crammed is the Cramming shape", () => {
  for (const [name, config] of Object.entries(presets)) assert.equal(validateConfig(config, name), config);
  assert.equal(headDim(crammed), 64);
  assert.equal(downInputWidth(crammed), 3072);
  assert.equal(downInputWidth({ ...crammed, ffn: "gelu-glu" }), 1536);
});

Deno.test("paddedVocabSize rounds a tokenizer's size up to a multiple of 8", () => {
  assert.deepEqual([1, 8, 9, 193, 1001, 32768].map(paddedVocabSize), [8, 8, 16, 200, 1008, 32768]);
});

Deno.test("modelName is the preset's, then what differs from the preset's shape", () => {
  const compact = presets.compact;
  assert.equal(modelName("compact", { ...compact, vocabSize: 8192, maxSeqLen: 64 }), "compact");
  assert.equal(modelName("compact", { ...compact, layers: 8 }), "compact 8x512");
  assert.equal(
    modelName("compact", { ...compact, hidden: 768, heads: 12, intermediate: 3072 }),
    "compact 4x768, 12 heads, FFN 3072",
  );
  assert.equal(modelName("custom", crammed), "custom");
});

Deno.test("validateConfig names the field in a one-line error", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ hidden: 0 }, "test: hidden must be an integer from 1 to 16384, got 0"],
    [{ layers: 1.5 }, "test: layers must be an integer from 1 to 512, got 1.5"],
    // Bounded before anything is allocated from a config read from a file.
    [{ layers: 20_000_000 }, "test: layers must be an integer from 1 to 512, got 20000000"],
    [{ vocabSize: 65537 }, "test: vocabSize must be an integer from 1 to 65536, got 65537"],
    [{ hidden: 30 }, "test: hidden must be a multiple of heads (4), got 30"],
    [{ hidden: 3, heads: 1 }, "test: hidden must be even, got 3"],
    [{ ffn: "relu" }, 'test: ffn must be one of gelu, gelu-glu, got "relu"'],
    [{ positions: "rotary" }, 'test: positions must be one of scaled-sinusoidal, learned, got "rotary"'],
    [{ normEps: 0 }, "test: normEps must be a positive number, got 0"],
    [{ ffn: "gelu-glu", intermediate: 63 }, "test: intermediate must be even for ffn gelu-glu, got 63"],
  ];
  for (const [change, message] of cases) {
    assert.throws(() => validateConfig({ ...tiny, ...change } as typeof tiny, "test"), {
      name: "RangeError",
      message,
    });
  }
});

Deno.test("toPeerConfig and fromPeerConfig round-trip through the peer's JSON keys", () => {
  const peer = toPeerConfig(crammed);
  assert.deepEqual(peer, {
    vocab_size: 32768,
    hidden_size: 768,
    num_layers: 16,
    num_heads: 12,
    intermediate_size: 3072,
    max_seq_len: 128,
    ffn: "gelu",
    norm_eps: 1e-12,
    positions: "scaled-sinusoidal",
  });
  assert.deepEqual(fromPeerConfig(JSON.stringify(peer)), crammed);
  const glu = { ...tiny, ffn: "gelu-glu" as const, positions: "learned" as const };
  assert.deepEqual(fromPeerConfig(toPeerConfig(glu)), glu);
});

Deno.test("fromPeerConfig errors name the file and the JSON key", () => {
  const peer = toPeerConfig(tiny);
  assert.throws(() => fromPeerConfig("{", "m.safetensors"), /m.safetensors: config is not valid JSON/);
  assert.throws(() => fromPeerConfig("[]", "m.safetensors"), /m.safetensors: config must be a JSON object/);
  const { num_heads: _, ...missing } = peer;
  assert.throws(
    () => fromPeerConfig(missing, "m.safetensors"),
    /m.safetensors: config key num_heads is missing/,
  );
  assert.throws(
    () => fromPeerConfig({ ...peer, hidden_size: "32" }, "m.safetensors"),
    /m.safetensors: config key hidden_size must be an integer from 1 to 16384, got "32"/,
  );
});
