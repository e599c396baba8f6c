import assert from "node:assert/strict";
import { newPackStats, Packer, type PackOptions, packStream } from "../../src/data/pack.ts";
import type { IdChunk } from "../../src/data/wordpiece.ts";

const SEP = 3;
const chunk = (ids: number[], chars: number, end: boolean): IdChunk => ({
  ids: Uint32Array.from(ids),
  chars,
  end,
});

/** The sequences a packer makes of `chunks`, as arrays, and its stats. */
function pack(chunks: IdChunk[], options: PackOptions) {
  const packer = new Packer(options);
  const out: number[] = [];
  for (const c of chunks) {
    const sequences = packer.push(c);
    assert.equal(sequences.length % packer.seqLen, 0);
    out.push(...sequences);
  }
  packer.finish();
  const sequences: number[][] = [];
  for (let i = 0; i < out.length; i += packer.seqLen) sequences.push(out.slice(i, i + packer.seqLen));
  return { sequences, stats: packer.stats };
}

Deno.test("documents end with [SEP], are concatenated and cut into full sequences", () => {
  const { sequences, stats } = pack(
    [
      chunk([10, 11, 12], 9, true),
      chunk([], 0, true),
      chunk([20, 21], 6, false),
      chunk([22, 23, 24], 9, true),
    ],
    { seqLen: 4 },
  );
  assert.deepEqual(sequences, [[10, 11, 12, SEP], [20, 21, 22, 23]]);
  assert.deepEqual(stats, {
    ...newPackStats(),
    documents: 3,
    emptyDocuments: 1,
    tokens: 8,
    sequences: 2,
    leftoverTokens: 2,
  });
});

Deno.test("one large chunk yields many sequences; ids fill sequences across documents", () => {
  const ids = Array.from({ length: 1000 }, (_, i) => 5 + i);
  const { sequences, stats } = pack([chunk(ids, 5000, true), chunk([7], 5, true)], { seqLen: 128 });
  assert.equal(sequences.length, 7);
  assert.deepEqual(sequences.flat(), [...ids, SEP, 7, SEP].slice(0, 7 * 128));
  assert.equal(stats.leftoverTokens, 1003 - 7 * 128);
});

Deno.test("the filter keeps documents with more than minCharsPerToken characters per token", () => {
  const { sequences, stats } = pack(
    [
      chunk([10, 11, 12], 20, true),
      chunk([20, 21, 22, 23, 24], 10, true),
      chunk([30, 31, 32, 33], 16, true),
      chunk([40], 5, true),
    ],
    { seqLen: 2, minCharsPerToken: 4 },
  );
  assert.deepEqual(sequences, [[10, 11], [12, SEP], [40, SEP]]);
  assert.equal(stats.droppedDocuments, 2, "2 and exactly 4 characters per token are dropped");
  assert.equal(stats.droppedTokens, 9);
  assert.equal(stats.documents, 4);
});

Deno.test("a long document is judged in windows; [SEP] follows if any window was kept", () => {
  const options = { seqLen: 1, minCharsPerToken: 4, filterWindow: 4 };
  const kept = pack(
    [chunk([1, 2, 3, 4], 40, false), chunk([5, 6, 7, 8], 4, false), chunk([9], 40, true)],
    options,
  );
  assert.deepEqual(kept.sequences.flat(), [1, 2, 3, 4, 9, SEP]);
  assert.equal(kept.stats.droppedTokens, 4);
  assert.equal(kept.stats.droppedDocuments, 0);
  const dropped = pack([chunk([1, 2, 3, 4], 4, false), chunk([5], 1, true), chunk([6], 9, true)], options);
  assert.deepEqual(dropped.sequences.flat(), [6, SEP]);
  assert.equal(dropped.stats.droppedDocuments, 1);
});

Deno.test("packStream packs a stream and counts into the given stats", async () => {
  const stats = newPackStats();
  const out: Uint16Array[] = [];
  await ReadableStream.from([chunk([10, 11, 12], 9, true), chunk([13, 14, 15, 16], 9, true)])
    .pipeThrough(packStream({ seqLen: 3 }, stats))
    .pipeTo(new WritableStream({ write: (s) => void out.push(s) }));
  assert.deepEqual(out.map((s) => Array.from(s)), [[10, 11, 12], [SEP, 13, 14, 15, 16, SEP]]);
  assert.equal(stats.sequences, 3);
  assert.equal(stats.leftoverTokens, 0);
});

Deno.test("the packer refuses a bad sequence length or threshold", () => {
  assert.throws(() => new Packer({ seqLen: 0 }), /sequence length 0: expected a positive integer/);
  assert.throws(() => new Packer({ minCharsPerToken: -1 }), /minimum characters per token -1/);
});
