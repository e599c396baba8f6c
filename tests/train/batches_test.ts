import assert from "node:assert/strict";
import { BatchSource, type MicroBatch, type SequenceSource } from "../../src/train/batches.ts";

const T = 8;

/** N sequences whose every token is 5 + the sequence's index; records the reads. */
function fakeSource(n: number, fail?: (index: number) => boolean) {
  const reads: [number, number][] = [];
  const source: SequenceSource = {
    sequences: n,
    seqLen: T,
    async read(index, count) {
      reads.push([index, count]);
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (fail?.(index)) throw new Error(`shard-0001.bin: truncated at sequence ${index}`);
      const tokens = new Uint16Array(count * T);
      for (let i = 0; i < count; i++) tokens.fill(5 + index + i, i * T, (i + 1) * T);
      return tokens;
    },
  };
  return { source, reads };
}

/** The corpus index of each sequence of a micro-batch (labels put back in place first). */
function sequencesOf(batch: MicroBatch): number[] {
  const original = batch.inputIds.slice();
  batch.labelPositions.forEach((p, i) => (original[p] = batch.labelIds[i]));
  const out = [];
  for (let b = 0; b < original.length / T; b++) {
    const row = original.subarray(b * T, (b + 1) * T);
    assert.ok(row.every((id) => id === row[0]), "a sequence's tokens stay together");
    out.push(row[0] - 5);
  }
  return out;
}

const options = { microBatch: 4, seed: 3, maskRate: 0.25, vocabSize: 200 };

Deno.test("an epoch uses each sequence at most once, in a shuffled order, and the next epoch reshuffles", async () => {
  const { source } = fakeSource(101);
  const epochs: number[] = [];
  const batches = new BatchSource(source, { ...options, onEpoch: (e) => epochs.push(e) });
  const seen: number[][] = [[], []];
  // 101 sequences: 25 micro-batches of 4 an epoch, one sequence left out.
  for (let i = 0; i < 50; i++) {
    const batch = await batches.next();
    assert.equal(batch.epoch, i < 25 ? 0 : 1);
    assert.deepEqual(
      batch.next,
      i === 24 || i === 49
        ? { epoch: batch.epoch + 1, index: 0 }
        : { epoch: batch.epoch, index: (i % 25 + 1) * 4 },
    );
    seen[batch.epoch].push(...sequencesOf(batch));
    assert.ok(batch.labelPositions.length > 0);
  }
  assert.deepEqual(epochs, [1]);
  for (const epoch of seen) {
    assert.equal(new Set(epoch).size, 100);
    assert.ok(epoch.every((s) => s >= 0 && s < 101));
  }
  assert.notDeepEqual(seen[0], seen[1]);
  const sorted = [...seen[0]].sort((a, b) => a - b);
  assert.notDeepEqual(seen[0], sorted, "shuffled");
  // Chunks of 8 consecutive sequences stay together.
  assert.equal(seen[0][1] - seen[0][0], 1);
});

Deno.test("starting from a saved position gives exactly the micro-batches of the uninterrupted run", async () => {
  const uninterrupted = new BatchSource(fakeSource(101).source, options);
  const all: MicroBatch[] = [];
  for (let i = 0; i < 40; i++) all.push(await uninterrupted.next());
  const stop = all[16];
  const epochs: number[] = [];
  const resumed = new BatchSource(fakeSource(101).source, {
    ...options,
    start: stop.next,
    onEpoch: (e) => epochs.push(e),
  });
  for (let i = 17; i < 40; i++) assert.deepEqual(await resumed.next(), all[i], `micro-batch ${i}`);
  assert.deepEqual(epochs, [1]);
  // A position from another epoch's boundary: no event for the starting epoch.
  const fromEpoch1 = new BatchSource(fakeSource(101).source, {
    ...options,
    start: all[24].next,
    onEpoch: () => assert.fail(),
  });
  assert.deepEqual(await fromEpoch1.next(), all[25]);
});

Deno.test("micro-batches are read ahead, in order", async () => {
  const fake = fakeSource(64);
  const batches = new BatchSource(fake.source, { ...options, prefetch: 3, chunk: 2 });
  await new Promise((resolve) => setTimeout(resolve, 20));
  // Three micro-batches of 4 sequences, chunks of 2: 6 reads issued before any is asked for.
  assert.equal(fake.reads.length, 6);
  const first = await batches.next();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(fake.reads.length, 8);
  const handedOut = [first, await batches.next(), await batches.next(), await batches.next()].flatMap(
    sequencesOf,
  );
  const read = fake.reads.flatMap(([index, count]) => Array.from({ length: count }, (_, i) => index + i));
  // Reads go in the order micro-batches are handed out (and three more are under way).
  assert.deepEqual(read.slice(0, handedOut.length), handedOut);
  assert.ok(fake.reads.every(([, count]) => count === 2));
});

Deno.test("a failed read is reported by next(), later micro-batches still come", async () => {
  let failures = 0;
  const fake = fakeSource(64, () => failures++ === 0);
  const batches = new BatchSource(fake.source, { ...options, chunk: 4 });
  await assert.rejects(batches.next(), /shard-0001.bin: truncated at sequence/);
  const batch = await batches.next();
  assert.equal(sequencesOf(batch).length, 4);
});

Deno.test("a corpus smaller than a micro-batch, or a position past its end, is a one-line error", () => {
  assert.throws(
    () => new BatchSource(fakeSource(3).source, options),
    /^RangeError: the corpus has 3 sequences, fewer than one micro-batch of 4 \(--micro-batch\)$/,
  );
  assert.throws(
    () =>
      new BatchSource(fakeSource(10).source, { ...options, start: { epoch: 0, index: 8 }, name: "runs/d" }),
    /data position 8 of epoch 0 is past the 10 sequences of runs\/d/,
  );
});
