import assert from "node:assert/strict";
import { DataError } from "../../src/data/errors.ts";
import { listCorpusFiles } from "../../src/data/corpus_files.ts";
import { readCorpus, type ReadCorpusOptions } from "../../src/data/read.ts";
import { documents } from "./documents.ts";

const fixture = (path: string) => new URL(`../../fixtures/data/${path}`, import.meta.url).pathname;

async function read(paths: string[], options: ReadCorpusOptions = {}) {
  const warnings: string[] = [];
  const { readable, stats } = readCorpus(await listCorpusFiles(paths), {
    onWarning: (m) => warnings.push(m),
    ...options,
  });
  return { docs: await documents(readable), stats, warnings };
}

Deno.test("readCorpus reads .txt, .jsonl and their .gz forms as documents", async () => {
  const { docs, stats, warnings } = await read([fixture("corpus")]);
  const records = Deno.readTextFileSync(fixture("corpus/records.jsonl")).trim().split("\n").map((l) =>
    JSON.parse(l).text
  );
  assert.deepEqual(docs, [
    "Notes kept in a gzip file.\n\nA second paragraph of notes.\n",
    "Compressed lines read like any other.",
    "Second compressed line.",
    Deno.readTextFileSync(fixture("corpus/prose.txt")),
    ...records,
  ]);
  assert.ok(records[1].includes("\u{1F600}") && records[1].includes("caf\u00e9") && records[1].includes('"'));
  assert.deepEqual(warnings, []);
  assert.equal(stats.documents, 8);
  assert.equal(stats.files, 4);
  assert.equal(stats.invalidUtf8, 0);
  assert.equal(stats.bytesRead, stats.bytesTotal);
});

Deno.test("readCorpus with paragraphs splits .txt files at blank lines and loses nothing", async () => {
  const { docs } = await read([fixture("corpus/prose.txt"), fixture("corpus/more/notes.txt.gz")], {
    paragraphs: true,
  });
  assert.equal(docs.length, 5);
  assert.equal(docs.slice(0, 3).join(""), Deno.readTextFileSync(fixture("corpus/prose.txt")));
  assert.ok(docs[0].startsWith("The lighthouse keeper") && docs[0].endsWith("name.\n\n"));
  assert.ok(docs[1].startsWith("In the village"));
  assert.deepEqual(docs.slice(3), ["Notes kept in a gzip file.\n\n", "A second paragraph of notes.\n"]);
});

Deno.test("a malformed JSON line is reported with file and line and skipped, or fails with strict", async () => {
  const { docs, stats, warnings } = await read([fixture("bad/malformed.jsonl")]);
  assert.deepEqual(docs, ["valid one", "valid three", "valid eight"]);
  assert.equal(stats.malformedLines, 7);
  const name = fixture("bad/malformed.jsonl");
  assert.deepEqual(warnings.map((w) => w.slice(name.length).split(" (")[0]), [
    ":2: malformed JSON line",
    ":4: malformed JSON line",
    ":5: malformed JSON line",
    ":6: malformed JSON line",
    ":7: malformed JSON line",
    ":9: malformed JSON line",
    ":10: malformed JSON line",
  ]);
  assert.match(warnings[0], /expected '\{', found 'n'\); line skipped$/);
  assert.match(warnings[1], /"text" is number, not a string/);
  assert.match(warnings[2], /no string field "text"/);
  assert.match(warnings[5], /bad escape "\\\\q"/);
  assert.match(warnings[6], /the line ends inside "text"/);
  await assert.rejects(read([fixture("bad/malformed.jsonl")], { strict: true }), (e) => {
    assert.ok(e instanceof DataError);
    assert.equal(e.message, `${name}:2: malformed JSON line (expected '{', found 'n')`);
    return true;
  });
});

Deno.test("limitBytes stops early and ends the document it cut", async () => {
  const { docs, stats } = await read([fixture("corpus/prose.txt"), fixture("corpus/records.jsonl")], {
    limitBytes: 100,
  });
  assert.equal(docs.length, 1);
  assert.ok(Deno.readTextFileSync(fixture("corpus/prose.txt")).startsWith(docs[0]));
  assert.ok(stats.textBytes >= 100);
});

Deno.test("skipDocuments leaves out the first documents across files, e.g. a held-out set's", async () => {
  const files = [fixture("corpus/prose.txt"), fixture("corpus/records.jsonl")];
  const all = (await read(files)).docs;
  const { docs, stats } = await read(files, { skipDocuments: 2 });
  // prose.txt is one document: the second left out is records.jsonl's first.
  assert.deepEqual(docs, all.slice(2));
  assert.deepEqual([stats.documents, stats.skippedDocuments], [all.length - 2, 2]);
  // A held-out set read up to a limit (the document it stops in ends there), then the rest without it.
  const heldOut = await read(files, { limitBytes: 1 });
  assert.equal(heldOut.stats.documents, 1);
  const rest = await read(files, { skipDocuments: heldOut.stats.documents });
  assert.deepEqual(rest.docs, all.slice(1));
  assert.deepEqual((await read(files, { skipDocuments: all.length + 1 })).docs, []);
});

Deno.test("a file that cannot be decoded fails the read; an empty file has no documents", async () => {
  await assert.rejects(read([fixture("bad/binary.txt")]), DataError);
  const { docs, stats } = await read([fixture("bad/empty.txt")]);
  assert.deepEqual(docs, []);
  assert.equal(stats.documents, 0);
  assert.equal(stats.files, 1);
});
