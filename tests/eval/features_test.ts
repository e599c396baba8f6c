import assert from "node:assert/strict";
import { Tokenizer } from "../../src/data/tokenizer.ts";
import { encodeExample, longestFirst, MAX_LENGTH, padBatch } from "../../src/eval/features.ts";

// ids: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, then a 5, b 6, c 7, d 8, e 9, f 10, g 11, "." 12.
const tokenizer = new Tokenizer([
  "[PAD]",
  "[UNK]",
  "[CLS]",
  "[SEP]",
  "[MASK]",
  "a",
  "b",
  "c",
  "d",
  "e",
  "f",
  "g",
  ".",
]);

Deno.test("one sentence: [CLS] a [SEP], cut to the limit", () => {
  assert.deepEqual(encodeExample(tokenizer, { a: "a b c." }), [2, 5, 6, 7, 12, 3]);
  assert.deepEqual(encodeExample(tokenizer, { a: "a b c d e" }, 4), [2, 5, 6, 3]);
});

Deno.test("a pair: [CLS] a [SEP] b [SEP], the longer sentence cut first", () => {
  assert.deepEqual(encodeExample(tokenizer, { a: "a b", b: "c" }), [2, 5, 6, 3, 7, 3]);
  // a 6 tokens, b 2, limit 8 leaves 5 for text: a loses 3.
  assert.deepEqual(encodeExample(tokenizer, { a: "a b c d e f", b: "f g" }, 8), [2, 5, 6, 7, 3, 10, 11, 3]);
  // a 4, b 3, 5 left: a loses one (3 and 3), then the tie takes one from b.
  assert.deepEqual(encodeExample(tokenizer, { a: "a b c d", b: "e f g" }, 8), [2, 5, 6, 7, 3, 9, 10, 3]);
  assert.throws(() => encodeExample(tokenizer, { a: "a", b: "b" }, 2), /maxLength must be >= 3 for a pair/);
});

Deno.test("longestFirst removes from the longer side, from b on ties", () => {
  assert.deepEqual(longestFirst(3, 2, 10), [3, 2]);
  assert.deepEqual(longestFirst(10, 4, 7), [4, 3]);
  assert.deepEqual(longestFirst(5, 5, 7), [4, 3]);
  assert.deepEqual(longestFirst(2, 300, 125), [2, 123]);
});

Deno.test("the default limit is the recipe's 128 tokens", () => {
  const long = Array(200).fill("a").join(" ");
  assert.equal(MAX_LENGTH, 128);
  assert.equal(encodeExample(tokenizer, { a: long }).length, 128);
  const pair = encodeExample(tokenizer, { a: long, b: "b c" });
  assert.equal(pair.length, 128);
  assert.deepEqual(pair.slice(-4), [3, 6, 7, 3]);
});

Deno.test("padBatch pads with [PAD] and marks real tokens in the mask", () => {
  const batch = padBatch([[2, 5, 3], [2, 3]]);
  assert.deepEqual([batch.batch, batch.seq], [2, 3]);
  assert.deepEqual([...batch.inputIds], [2, 5, 3, 2, 3, 0]);
  assert.deepEqual([...batch.attentionMask], [1, 1, 1, 1, 1, 0]);
  const wide = padBatch([[2, 3]], 4);
  assert.deepEqual([...wide.inputIds, ...wide.attentionMask], [2, 3, 0, 0, 1, 1, 0, 0]);
  assert.throws(() => padBatch([[2, 5, 3]], 2), /3 tokens does not fit seq 2/);
});
