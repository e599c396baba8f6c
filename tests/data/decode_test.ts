import assert from "node:assert/strict";
import { DataError } from "../../src/data/errors.ts";
import { type CorpusFile, listCorpusFiles } from "../../src/data/corpus_files.ts";
import { type DecodeStats, fileText } from "../../src/data/decode.ts";

const fixture = (path: string) => new URL(`../../fixtures/data/${path}`, import.meta.url).pathname;

/** The whole decoded text of the corpus file at `path`, and the counters. */
async function decode(path: string): Promise<{ text: string; stats: DecodeStats }> {
  const [file] = await listCorpusFiles([fixture(path)]);
  const stats = { bytesRead: 0, textBytes: 0, invalidUtf8: 0 };
  let text = "";
  for await (const piece of fileText(file, stats)) text += piece;
  return { text, stats };
}

Deno.test("fileText gunzips, and counts bytes read and decoded", async () => {
  const { text, stats } = await decode("corpus/more/notes.txt.gz");
  assert.equal(text, "Notes kept in a gzip file.\n\nA second paragraph of notes.\n");
  assert.equal(stats.bytesRead, Deno.statSync(fixture("corpus/more/notes.txt.gz")).size);
  assert.equal(stats.textBytes, new TextEncoder().encode(text).length);
});

Deno.test("invalid UTF-8 is replaced and counted; an encoded U+FFFD is not counted", async () => {
  const { text, stats } = await decode("bad/invalid-utf8.txt");
  assert.equal(text, "caf\uFFFD ok \uFFFD\uFFFD end \uFFFD genuine");
  assert.equal(stats.invalidUtf8, 3);
});

Deno.test("a binary file, a bad .gz and a missing file get one-line answers; an empty file is empty", async () => {
  await assert.rejects(decode("bad/binary.txt"), (e) => {
    assert.ok(e instanceof DataError);
    assert.equal(e.message, `${fixture("bad/binary.txt")}: binary data (a NUL byte at offset 9), not text`);
    return true;
  });
  await assert.rejects(decode("bad/not-gzip.jsonl.gz"), (e) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /^.*not-gzip\.jsonl\.gz: not valid gzip data \(.*\)$/);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
  const missing: CorpusFile = { path: fixture("bad/absent.txt"), format: "txt", gzip: false, size: 0 };
  await assert.rejects(async () => {
    for await (const _ of fileText(missing, { bytesRead: 0, textBytes: 0, invalidUtf8: 0 })) { /* none */ }
  }, /^DataError: cannot read .*absent\.txt: /);
  assert.deepEqual(await decode("bad/empty.txt"), {
    text: "",
    stats: { bytesRead: 0, textBytes: 0, invalidUtf8: 0 },
  });
});
