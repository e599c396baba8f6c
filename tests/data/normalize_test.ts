import assert from "node:assert/strict";
import { SequenceNormalizer } from "@huggingface/tokenizers";
import { HF_NORMALIZER, Normalizer, normalizeStream, normalizeText } from "../../src/data/normalize.ts";
import type { TextChunk } from "../../src/data/text_parser.ts";
import { adversarialStrings, randomInts } from "./adversarial.ts";

Deno.test("normalizeText applies the recipe's steps", () => {
  const cases: [string, string][] = [
    ["``Hello,'' she said.", '"hello," she said.'],
    ["```", '"`'],
    ["'''", "\"'"],
    ["Café NAÏVE résumé", "cafe naive resume"],
    ["a  \t\n\r b", "a b"],
    ["  lead and trail  ", " lead and trail "],
    ["x\u0000y\u007fz\u000bw\u000cv", "xyzwv"],
    ["日本 語", " "],
    ["emoji \u{1F600}!", "emoji !"],
    ["\u0130stanbul \u212Aelvin", "istanbul kelvin"],
    ["\uFB01 \uFF21\uFF22", " "], // compatibility forms have no canonical decomposition: removed
    ["`\u1FEF", "``"], // NFD makes this pair after the quote replacement, as in HF
    ["a \u00a0 b", "a b"],
    ["", ""],
  ];
  for (const [input, expected] of cases) assert.equal(normalizeText(input), expected, JSON.stringify(input));
});

Deno.test("normalizeText equals Hugging Face's normalizer built from HF_NORMALIZER", () => {
  const hf = new SequenceNormalizer(JSON.parse(JSON.stringify(HF_NORMALIZER)));
  const strings = adversarialStrings(3000, 1);
  for (const text of strings) assert.equal(normalizeText(text), hf.normalize(text), JSON.stringify(text));
});

Deno.test("normalizing in pieces equals normalizing the whole, wherever the cuts fall", () => {
  const next = randomInts(2);
  for (const text of adversarialStrings(400, 3)) {
    const whole = normalizeText(text);
    const normalizer = new Normalizer();
    let out = "";
    for (let i = 0; i < text.length;) {
      const size = 1 + next(6);
      out += normalizer.push(text.slice(i, i + size));
      i += size;
    }
    assert.equal(out + normalizer.finish(), whole, JSON.stringify(text));
  }
  for (const text of ["a``b''c", "x  \t y", "`'`'", "e\u0301\u0302 \u{1F600}"]) {
    for (let i = 0; i <= text.length; i++) {
      const normalizer = new Normalizer();
      const out = normalizer.push(text.slice(0, i)) + normalizer.push(text.slice(i)) + normalizer.finish();
      assert.equal(out, normalizeText(text), `${JSON.stringify(text)} cut at ${i}`);
    }
  }
});

Deno.test("normalizeStream keeps documents apart", async () => {
  const chunks: TextChunk[] = [
    { text: "First `", end: false },
    { text: "`doc ", end: true },
    { text: "`", end: false },
    { text: " Second", end: true },
  ];
  const out: TextChunk[] = [];
  await ReadableStream.from(chunks).pipeThrough(normalizeStream()).pipeTo(
    new WritableStream({ write: (c) => void out.push(c) }),
  );
  const docs = out.reduce<string[]>((acc, c) => {
    acc[acc.length - 1] += c.text;
    if (c.end) acc.push("");
    return acc;
  }, [""]);
  assert.deepEqual(docs, ['first "doc ', "` second", ""]);
  assert.equal(out.filter((c) => c.end).length, 2);
});
