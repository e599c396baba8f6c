import assert from "node:assert/strict";
import { DataError } from "../../src/data/errors.ts";
import { listCorpusFiles } from "../../src/data/corpus_files.ts";

const fixture = (path: string) => new URL(`../../fixtures/data/${path}`, import.meta.url).pathname;

Deno.test("listCorpusFiles walks directories in name order and skips other and hidden files", async () => {
  const files = await listCorpusFiles([fixture("corpus")]);
  assert.deepEqual(
    files.map((f) => [f.path.slice(fixture("corpus").length), f.format, f.gzip]),
    [
      ["/more/notes.txt.gz", "txt", true],
      ["/more/records.jsonl.gz", "jsonl", true],
      ["/prose.txt", "txt", false],
      ["/records.jsonl", "jsonl", false],
    ],
  );
  assert.equal(files[2].size, Deno.statSync(fixture("corpus/prose.txt")).size);
});

Deno.test("listCorpusFiles refuses a tokenized dataset where it looks for text, also in a subfolder", async () => {
  // Its vocab.txt would be read as a document of the corpus.
  for (const [path, holder] of [["shards", "shards"], ["", "shards"]]) {
    await assert.rejects(listCorpusFiles([fixture(path)]), (e) => {
      assert.ok(e instanceof DataError);
      assert.equal(
        e.message,
        `corpus directory ${fixture(holder)} holds a tokenized dataset (manifest.json), not raw text; ` +
          `pretrain takes it as a --corpus of its own`,
      );
      return true;
    });
  }
});

Deno.test("listCorpusFiles names the path that is missing, of unknown format, or holds no corpus", async () => {
  await assert.rejects(listCorpusFiles([fixture("corpus/nope.txt")]), (e) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /^corpus path .*corpus\/nope\.txt: not found$/);
    return true;
  });
  await assert.rejects(
    listCorpusFiles([fixture("bad/table.csv")]),
    /corpus file .*table\.csv: unknown format/,
  );
  await assert.rejects(listCorpusFiles([fixture("bad/no-corpus")]), /no corpus files in .*bad\/no-corpus/);
  await assert.rejects(listCorpusFiles([]), /no corpus given/);
});
