import assert from "node:assert/strict";
import type { WordChunk } from "../../src/data/pretokenize.ts";
import { countWordsStream, trainWordPiece, WordCounter } from "../../src/data/trainer.ts";
import { randomInts } from "./adversarial.ts";

const SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
/** Special tokens, printable ASCII, and printable ASCII with `##`. */
const BASE = 5 + 94 + 94;

/**
 * The obvious trainer: recount every pair before each merge. The incremental trainer must pick the
 * same pairs (highest count, ties to the smaller ids).
 */
function naiveTrain(counts: Map<string, number>, vocabSize: number, minFrequency: number): string[] {
  const printable = Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i));
  const tokens = [...SPECIAL, ...printable, ...printable.map((c) => "##" + c)];
  const ids = new Map(tokens.map((t, i) => [t, i]));
  const words = [...counts].map(([word, count]) => ({
    symbols: [...word].map((c, i) => ids.get(i ? "##" + c : c)!),
    count,
  }));
  while (tokens.length < vocabSize) {
    const pairs = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]},${symbols[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + count);
      }
    }
    let best: [number, number] | undefined;
    let bestCount = 0;
    for (const [key, count] of pairs) {
      const pair = key.split(",").map(Number) as [number, number];
      const better = count > bestCount ||
        (count === bestCount && best && (pair[0] < best[0] || (pair[0] === best[0] && pair[1] < best[1])));
      if (better) [best, bestCount] = [pair, count];
    }
    if (!best || bestCount < minFrequency) break;
    const token = tokens[best[0]] + tokens[best[1]].slice(2);
    if (!ids.has(token)) {
      ids.set(token, tokens.length);
      tokens.push(token);
    }
    const merged = ids.get(token)!;
    for (const word of words) {
      const out: number[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (word.symbols[i] === best[0] && word.symbols[i + 1] === best[1]) {
          out.push(merged);
          i++;
        } else out.push(word.symbols[i]);
      }
      word.symbols = out;
    }
  }
  return tokens;
}

Deno.test("trainWordPiece: special tokens, alphabet, ## alphabet, then merges in order", () => {
  const counts = new Map([["hug", 10], ["pug", 5], ["pun", 12], ["bun", 4], ["hugs", 5]]);
  const vocab = trainWordPiece(counts, { vocabSize: 1000, minFrequency: 1 });
  assert.deepEqual(vocab.slice(0, 5), SPECIAL);
  assert.equal(vocab[5], "!");
  assert.equal(vocab[5 + 93], "~");
  assert.equal(vocab[5 + 94], "##!");
  assert.equal(vocab[BASE - 1], "##~");
  // ##u ##g (20), ##u ##n (16), h ##ug (15), p ##un (12), then a tie at 5 won by the smaller ids
  // (p ##ug before hug ##s), then b ##un (4).
  assert.deepEqual(vocab.slice(BASE), ["##ug", "##un", "hug", "pun", "pug", "hugs", "bun"]);
  assert.deepEqual(trainWordPiece(counts, { vocabSize: BASE + 2, minFrequency: 1 }).slice(BASE), [
    "##ug",
    "##un",
  ]);
  assert.deepEqual(trainWordPiece(counts, { vocabSize: 1000, minFrequency: 5 }).slice(BASE), [
    "##ug",
    "##un",
    "hug",
    "pun",
    "pug",
    "hugs",
  ]);
});

Deno.test("trainWordPiece equals recounting every pair before each merge, on random corpora", () => {
  const next = randomInts(11);
  for (let round = 0; round < 12; round++) {
    const letters = "abcde".slice(0, 2 + next(4));
    const counts = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const word = Array.from({ length: 1 + next(8) }, () => letters[next(letters.length)]).join("");
      counts.set(word, (counts.get(word) ?? 0) + 1 + next(20));
    }
    const size = BASE + 5 + next(60);
    const minFrequency = 1 + next(3);
    assert.deepEqual(
      trainWordPiece(counts, { vocabSize: size, minFrequency }),
      naiveTrain(counts, size, minFrequency),
    );
  }
});

Deno.test("trainWordPiece is deterministic and ignores the order of the counts", () => {
  const next = randomInts(12);
  const entries: [string, number][] = Array.from(
    { length: 300 },
    (_, i) => [`w${(i * 7919) % 1000}x${i % 13}`, 1 + next(50)],
  );
  const a = trainWordPiece(new Map(entries), { vocabSize: 400 });
  const b = trainWordPiece(new Map(entries.toReversed()), { vocabSize: 400 });
  assert.equal(a.length, 400);
  assert.deepEqual(a, b);
  assert.equal(new Set(a).size, a.length, "no token twice");
});

Deno.test("trainWordPiece adds characters beyond ASCII and refuses impossible sizes", () => {
  const vocab = trainWordPiece(new Map([["é", 3]]), { vocabSize: BASE + 2 });
  assert.deepEqual(vocab.slice(5 + 94, 5 + 95), ["é"]);
  assert.equal(vocab.length, BASE + 2, "é and ##é, no merges possible");
  assert.throws(
    () => trainWordPiece(new Map([["a", 1]]), { vocabSize: 100 }),
    /vocabulary size 100: expected 193 to 65536/,
  );
});

Deno.test("WordCounter counts words, skips overlong ones, and prunes the rarest past its cap", async () => {
  const counter = new WordCounter({ maxWords: 8, maxWordChars: 5 });
  const chunks: WordChunk[] = [
    { words: ["a", "b", "a", "toolongword"], chars: 20, end: false },
    { words: ["c", "a", "b"], chars: 5, end: true },
  ];
  await ReadableStream.from(chunks).pipeThrough(new TransformStream()).pipeTo(countWordsStream(counter));
  assert.deepEqual([...counter.counts], [["a", 3], ["b", 2], ["c", 1]]);
  assert.equal(counter.total, 7);
  counter.add(["d", "e", "f", "g", "h", "i"]);
  // Nine words exceed the cap of 8: those seen once go, leaving at most 6.
  assert.deepEqual([...counter.counts], [["a", 3], ["b", 2]]);
  assert.equal(counter.pruned, 7);
  assert.equal(counter.prunedBelow, 1);
});
