import assert from "node:assert/strict";
import { DataError } from "../../src/data/errors.ts";
import {
  type DocumentParser,
  JsonlParser,
  listCorpusFiles,
  readCorpus,
  type ReadCorpusOptions,
  type TextChunk,
  TextParser,
  Utf8Decoder,
} from "../../src/data/read.ts";

const fixture = (path: string) => new URL(`../../fixtures/data/${path}`, import.meta.url).pathname;

/** The documents of a chunk stream, each joined. */
async function documents(chunks: AsyncIterable<TextChunk> | Iterable<TextChunk>): Promise<string[]> {
  const docs: string[] = [];
  let current = "";
  for await (const chunk of chunks) {
    current += chunk.text;
    if (chunk.end) {
      docs.push(current);
      current = "";
    }
  }
  assert.equal(current, "", "the stream ended inside a document");
  return docs;
}

async function read(paths: string[], options: ReadCorpusOptions = {}) {
  const warnings: string[] = [];
  const { readable, stats } = readCorpus(await listCorpusFiles(paths), {
    onWarning: (m) => warnings.push(m),
    ...options,
  });
  return { docs: await documents(readable), stats, warnings };
}

/** Feeds `text` to `parser` in the given pieces and returns its documents. */
function parse(parser: DocumentParser, pieces: string[]): Promise<string[]> {
  const chunks: TextChunk[] = [];
  for (const piece of pieces) chunks.push(...parser.push(piece));
  chunks.push(...parser.finish());
  return documents(chunks);
}

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
  await assert.rejects(listCorpusFiles([fixture("shards")]), /no corpus files in .*shards/);
  await assert.rejects(listCorpusFiles([]), /no corpus given/);
});

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

Deno.test("TextParser splits paragraphs the same whatever the piece boundaries", async () => {
  const text = "one\n\n\ntwo a\n \t\r\nthree\n\nfour\n  \n";
  const whole = await parse(new TextParser({ paragraphs: true }), [text]);
  assert.deepEqual(whole, ["one\n\n", "\ntwo a\n \t\r\n", "three\n\n", "four\n  \n"]);
  for (let i = 0; i <= text.length; i++) {
    assert.deepEqual(
      await parse(new TextParser({ paragraphs: true }), [text.slice(0, i), text.slice(i)]),
      whole,
    );
  }
  assert.deepEqual(await parse(new TextParser(), [text.slice(0, 5), text.slice(5)]), [text]);
  assert.deepEqual(await parse(new TextParser(), []), []);
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

Deno.test("JsonlParser gives the same documents and warnings whatever the piece boundaries", async () => {
  const text = Deno.readTextFileSync(fixture("corpus/records.jsonl")) +
    Deno.readTextFileSync(fixture("bad/malformed.jsonl")) +
    '{"text":"\\ud83d\\ude00 \\u00E9\\/"}\r\n\n  {"text" : "x" , "field":[]}  \n{}';
  const run = (pieces: string[]) => {
    const warnings: string[] = [];
    const parser = new JsonlParser({ name: "f", onMalformed: (m) => warnings.push(m) });
    return parse(parser, pieces).then((docs) => ({ docs, warnings }));
  };
  const whole = await run([text]);
  assert.equal(whole.docs.length, 4 + 3 + 2);
  assert.equal(whole.docs[7], "\u{1F600} \u00e9/");
  assert.equal(whole.warnings.length, 8);
  assert.match(whole.warnings[7], /^f:18: malformed JSON line \(no string field "text"\)/);
  for (let i = 0; i <= text.length; i++) {
    assert.deepEqual(await run([text.slice(0, i), text.slice(i)]), whole);
  }
  const pieces: string[] = [];
  for (let i = 0, size = 1; i < text.length; i += size, size = (size % 7) + 1) {
    pieces.push(text.slice(i, i + size));
  }
  assert.deepEqual(await run(pieces), whole);
});

Deno.test("JsonlParser holds at most maxHeldChars of a line's text: a huge line streams through", () => {
  const parser = new JsonlParser({ name: "big.jsonl", maxHeldChars: 10_000 });
  const body = "abcdefghij".repeat(100_000);
  const line = `{"text": "${body}", "title": "t"}\n`;
  const out: TextChunk[] = [];
  let firstOutputAt = -1;
  for (let i = 0; i < line.length; i += 4096) {
    out.push(...parser.push(line.slice(i, i + 4096)));
    if (out.length > 0 && firstOutputAt < 0) firstOutputAt = i;
  }
  out.push(...parser.finish());
  assert.ok(firstOutputAt >= 0 && firstOutputAt < 20_000, `first output after ${firstOutputAt} characters`);
  assert.ok(out.every((c) => c.text.length <= 65536));
  assert.equal(out.map((c) => c.text).join(""), body);
  assert.deepEqual(out.map((c) => c.end).filter(Boolean), [true]);

  const warnings: string[] = [];
  const cut = new JsonlParser({ name: "cut.jsonl", maxHeldChars: 100, onMalformed: (m) => warnings.push(m) });
  const lines = `{"text": "${"x".repeat(250)}", oops}\n{"text": "next"}\n`;
  const chunks: TextChunk[] = [];
  for (let i = 0; i < lines.length; i += 50) chunks.push(...cut.push(lines.slice(i, i + 50)));
  chunks.push(...cut.finish());
  assert.equal(chunks.filter((c) => c.end).length, 2, "the cut document is ended, then the next one read");
  const passed = Number(
    /^cut\.jsonl:1: .*its first (\d+) characters of text were already used/.exec(warnings[0])?.[1],
  );
  assert.ok(passed >= 100 && passed < 250, `${passed} characters passed on`);
  assert.equal(chunks.map((c) => c.text).join(""), "x".repeat(passed) + "next");
});

Deno.test("invalid UTF-8 is replaced and counted; an encoded U+FFFD is not counted", async () => {
  const { docs, stats } = await read([fixture("bad/invalid-utf8.txt")]);
  assert.deepEqual(docs, ["caf\uFFFD ok \uFFFD\uFFFD end \uFFFD genuine"]);
  assert.equal(stats.invalidUtf8, 3);
});

Deno.test("Utf8Decoder matches TextDecoder and counts the same whatever the chunk boundaries", () => {
  const bytes = new Uint8Array([
    ...new TextEncoder().encode("é€😀\uFFFD"),
    0xC3, // truncated two-byte sequence
    0x41,
    0xED,
    0xA0,
    0x80, // encoded surrogate: invalid
    0xEF,
    0xBF,
    0xBD, // U+FFFD, genuine
    0xF0,
    0x9F, // truncated at the end
  ]);
  const expected = new TextDecoder().decode(bytes);
  for (let split = 0; split <= bytes.length; split++) {
    const decoder = new Utf8Decoder();
    const text = decoder.decode(bytes.subarray(0, split)) + decoder.decode(bytes.subarray(split)) +
      decoder.finish();
    assert.equal(text, expected);
    assert.equal(decoder.invalid, 1 + 3 + 1, `split at ${split}`);
  }
  const oneByOne = new Utf8Decoder();
  let text = "";
  for (const b of bytes) text += oneByOne.decode(Uint8Array.of(b));
  assert.equal(text + oneByOne.finish(), expected);
  assert.equal(oneByOne.invalid, 5);
});

Deno.test("a binary file, a bad .gz and an empty file get one-line answers", async () => {
  await assert.rejects(read([fixture("bad/binary.txt")]), (e) => {
    assert.ok(e instanceof DataError);
    assert.equal(e.message, `${fixture("bad/binary.txt")}: binary data (a NUL byte at offset 9), not text`);
    return true;
  });
  await assert.rejects(read([fixture("bad/not-gzip.jsonl.gz")]), (e) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /^.*not-gzip\.jsonl\.gz: not valid gzip data \(.*\)$/);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
  const { docs, stats } = await read([fixture("bad/empty.txt")]);
  assert.deepEqual(docs, []);
  assert.equal(stats.documents, 0);
});

Deno.test("limitBytes stops early and ends the document it cut", async () => {
  const { docs, stats } = await read([fixture("corpus/prose.txt"), fixture("corpus/records.jsonl")], {
    limitBytes: 100,
  });
  assert.equal(docs.length, 1);
  assert.ok(Deno.readTextFileSync(fixture("corpus/prose.txt")).startsWith(docs[0]));
  assert.ok(stats.textBytes >= 100);
});
