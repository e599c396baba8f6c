/** Test helpers for the corpus readers: a chunk stream's documents, and a parser fed in pieces. */
import assert from "node:assert/strict";
import type { DocumentParser, TextChunk } from "../../src/data/text_parser.ts";

/** The documents of a chunk stream, each joined. */
export async function documents(chunks: AsyncIterable<TextChunk> | Iterable<TextChunk>): Promise<string[]> {
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

/** Feeds `parser` the given pieces of text and returns its documents. */
export function parse(parser: DocumentParser, pieces: string[]): Promise<string[]> {
  const chunks: TextChunk[] = [];
  for (const piece of pieces) chunks.push(...parser.push(piece));
  chunks.push(...parser.finish());
  return documents(chunks);
}
