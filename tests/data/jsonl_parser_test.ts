import assert from "node:assert/strict";
import { JsonlParser } from "../../src/data/jsonl_parser.ts";
import type { TextChunk } from "../../src/data/text_parser.ts";
import { parse } from "./documents.ts";

const fixture = (path: string) => new URL(`../../fixtures/data/${path}`, import.meta.url).pathname;

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
