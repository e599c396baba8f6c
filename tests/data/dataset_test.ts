import assert from "node:assert/strict";
import { buildDataset } from "../../src/data/dataset.ts";
import { DataError } from "../../src/data/errors.ts";
import { openShards, readManifest } from "../../src/data/shard.ts";
import { inTempDir, writesAllowed } from "../_helpers.ts";

const data = new URL("../../fixtures/data/", import.meta.url).pathname;
const corpus = [`${data}corpus/prose.txt`];
const vocab = `${data}vocab`;

const canWrite = writesAllowed("dataset_test");

Deno.test({
  name: "writes: a second dataset in the same --out needs overwrite, and a failed one leaves the old intact",
  ignore: !canWrite,
  fn: () =>
    inTempDir(async (out) => {
      const first = await buildDataset({ corpus, vocab, out, seqLen: 16 });
      assert.ok(first.pack.sequences > 0);
      const manifest = await Deno.readTextFile(`${out}/manifest.json`);
      await assert.rejects(
        buildDataset({ corpus, vocab, out, seqLen: 8 }),
        (e) => e instanceof DataError && /already holds a dataset .* pass --overwrite/.test(e.message),
      );
      // A replacement that fails (no sequence of 4096 tokens in this corpus) leaves the old dataset whole.
      await assert.rejects(
        buildDataset({ corpus, vocab, out, seqLen: 4096, overwrite: true }),
        (e) => e instanceof DataError && /no 4096-token sequence/.test(e.message),
      );
      assert.equal(await Deno.readTextFile(`${out}/manifest.json`), manifest);
      const { paths } = await readManifest(out);
      assert.equal((await openShards(paths)).sequences, first.pack.sequences);
      assert.deepEqual([...Deno.readDirSync(out)].filter((e) => e.name.startsWith(".")), []);
      // A replacement that succeeds takes the old one's place.
      const second = await buildDataset({ corpus, vocab, out, seqLen: 8, overwrite: true });
      const { manifest: replaced, paths: newPaths } = await readManifest(out);
      assert.equal(replaced.seqLen, 8);
      assert.equal((await openShards(newPaths)).sequences, second.pack.sequences);
    }),
});

Deno.test({
  name: "writes: the manifest records the documents left out by skipDocuments and counts only the others",
  ignore: !canWrite,
  fn: () =>
    inTempDir(async (out) => {
      const files = [...corpus, `${data}corpus/records.jsonl`];
      const whole = await buildDataset({ corpus: files, vocab, out: `${out}/whole`, seqLen: 8 });
      const rest = await buildDataset({
        corpus: files,
        vocab,
        out: `${out}/rest`,
        seqLen: 8,
        skipDocuments: 1,
      });
      const { manifest } = await readManifest(`${out}/rest`);
      assert.equal(manifest.skipDocuments, 1);
      assert.equal(manifest.documents, whole.pack.documents - 1);
      assert.equal(rest.read.skippedDocuments, 1);
      // prose.txt, the document left out, holds most of the tokens.
      assert.ok(rest.pack.tokens < whole.pack.tokens / 2, `${rest.pack.tokens} of ${whole.pack.tokens}`);
    }),
});
