import assert from "node:assert/strict";
import { Utf8Decoder } from "../../src/data/utf8.ts";

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
