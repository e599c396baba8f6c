import assert from "node:assert/strict";
import { listCorpusFiles } from "../../src/data/corpus_files.ts";
import { sampleCorpus } from "../../src/data/sample.ts";

Deno.test("the sample corpus arrives as 18 plain-text Gutenberg books that the reader takes", async () => {
  const files = await listCorpusFiles([await sampleCorpus()]);
  assert.equal(files.length, 18);
  assert.ok(files.every((f) => f.format === "txt" && !f.gzip));
  assert.ok(files.some((f) => f.path.endsWith("austen-emma.txt")));
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  assert.ok(bytes > 10e6 && bytes < 13e6, `${bytes} bytes of text`);
});
