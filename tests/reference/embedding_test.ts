import assert from "node:assert/strict";
import { embeddingBackward, embeddingForward } from "../../src/reference/embedding.ts";

Deno.test("embeddingForward adds rows by id and position; embeddingBackward scatter-adds", () => {
  const word = [1, 2, 10, 20, 100, 200]; // vocab 3, hidden 2
  const position = [0.5, 0.25, -1, -2]; // seq 2
  const ids = [2, 0, 2, 2];
  const x = embeddingForward(ids, word, position, { tokens: 4, seq: 2, hidden: 2 });
  assert.deepEqual([...x], [100.5, 200.25, 0, 0, 100.5, 200.25, 99, 198]);
  const dword = embeddingBackward([1, 2, 3, 4, 5, 6, 7, 8], ids, { vocab: 3, hidden: 2, tokens: 4 });
  assert.deepEqual([...dword], [3, 4, 0, 0, 13, 16]);
  assert.throws(
    () => embeddingForward([3], word, [0, 0], { tokens: 1, seq: 1, hidden: 2 }),
    /id 3 at index 0 is outside \[0, 3\)/,
  );
});
