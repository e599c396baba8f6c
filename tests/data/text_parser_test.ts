import assert from "node:assert/strict";
import { PIECE_CHARS, pieces, TextParser } from "../../src/data/text_parser.ts";
import { parse } from "./documents.ts";

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

Deno.test("pieces cuts text at PIECE_CHARS and loses nothing", () => {
  const text = "ab".repeat(PIECE_CHARS) + "c";
  const cut = [...pieces(text)];
  assert.deepEqual(cut.map((p) => p.length), [PIECE_CHARS, PIECE_CHARS, 1]);
  assert.equal(cut.join(""), text);
  assert.deepEqual([...pieces("")], []);
});
