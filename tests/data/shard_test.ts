import assert from "node:assert/strict";
import { DataError } from "../../src/data/errors.ts";
import {
  crc32,
  decodeShard,
  encodeShard,
  openShards,
  parseShardHeader,
  readManifest,
  readManifests,
  SHARD_HEADER_BYTES,
} from "../../src/data/shard.ts";

const fixture = (path: string) => new URL(`../../fixtures/data/shards/${path}`, import.meta.url).pathname;
/** The ids the fixture shards were made from: good-0 holds ids(0, 12), good-1 ids(12, 8). */
const ids = (from: number, n: number) =>
  Uint16Array.from({ length: n }, (_, i) => ((from + i) * 7919) % 1000);
const meta = { vocabSize: 1000, vocabHash: "0123456789abcdef", seqLen: 4 };

Deno.test("crc32 matches the IEEE check value and continues across pieces", () => {
  const bytes = new TextEncoder().encode("123456789");
  assert.equal(crc32(bytes), 0xCBF43926);
  assert.equal(crc32(new Uint8Array()), 0);
  const long = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff);
  for (const split of [0, 1, 7, 8, 9, 500, 999]) {
    assert.equal(crc32(long.subarray(split), crc32(long.subarray(0, split))), crc32(long));
  }
});

Deno.test("encodeShard writes the documented layout; the fixture shards are byte-identical", () => {
  const bytes = encodeShard(ids(0, 12), meta);
  assert.deepEqual(bytes, Deno.readFileSync(fixture("good-0.bin")));
  assert.deepEqual(encodeShard(ids(12, 8), meta), Deno.readFileSync(fixture("good-1.bin")));
  const view = new DataView(bytes.buffer);
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), "CRAMSHRD");
  assert.deepEqual([8, 12, 16, 20].map((o) => view.getUint32(o, true)), [1, 64, 1000, 4]);
  assert.equal(view.getBigUint64(24, true), 0x0123456789abcdefn);
  assert.equal(view.getBigUint64(32, true), 3n);
  assert.equal(view.getUint32(40, true), crc32(bytes.subarray(64)));
  assert.ok(bytes.subarray(44, 64).every((b) => b === 0));
  assert.equal(view.getUint16(64 + 2 * 5, true), ids(0, 12)[5]);
  const { header, ids: decoded } = decodeShard(bytes, "x");
  assert.deepEqual(decoded, ids(0, 12));
  assert.deepEqual(header, { version: 1, ...meta, sequences: 3, crc32: view.getUint32(40, true) });
});

Deno.test("encodeShard refuses a partial sequence and a vocabulary too large for uint16", () => {
  assert.throws(() => encodeShard(ids(0, 6), meta), /6 ids are not a whole number of 4-token sequences/);
  assert.throws(() => encodeShard(ids(0, 4), { ...meta, vocabSize: 70000 }), /at most 65536/);
  assert.throws(() => encodeShard(ids(0, 4), { ...meta, vocabHash: "xyz" }), /16 hex digits/);
});

Deno.test("bad shards get one-line errors naming the file", () => {
  const check = (file: string, pattern: RegExp) => {
    const bytes = Deno.readFileSync(fixture(file));
    assert.throws(() => decodeShard(bytes, file), (e) => {
      assert.ok(e instanceof DataError);
      assert.match(e.message, pattern);
      return true;
    });
  };
  check("truncated.bin", /^shard truncated\.bin: 86 bytes, but its header promises 88 .*: truncated$/);
  check("corrupt.bin", /^shard corrupt\.bin: checksum mismatch/);
  check("bad-magic.bin", /^shard bad-magic\.bin: not a cram shard/);
  assert.throws(() => parseShardHeader(new Uint8Array(10), "tiny"), /shard tiny: truncated \(10 bytes/);
  const future = Deno.readFileSync(fixture("good-0.bin"));
  new DataView(future.buffer).setUint32(8, 2, true);
  assert.throws(() => parseShardHeader(future, "future"), /shard future: format version 2, expected 1/);
});

Deno.test("openShards serves sequences by global index across shards, by ranges", async () => {
  const { manifest, paths } = await readManifest(fixture(""));
  assert.equal(manifest.sequences, 5);
  const set = await openShards(paths, { expect: { vocabHash: meta.vocabHash, seqLen: 4 } });
  try {
    assert.equal(set.sequences, 5);
    assert.deepEqual([set.seqLen, set.vocabSize, set.vocabHash], [4, 1000, meta.vocabHash]);
    assert.deepEqual(await set.read(0, 5), ids(0, 20));
    assert.deepEqual(await set.read(2, 2), ids(8, 8), "a read spanning both shards");
    assert.deepEqual(await set.read(4, 1), ids(16, 4));
    assert.deepEqual(await set.read(1, 0), new Uint16Array());
    const concurrent = await Promise.all([set.read(3, 1), set.read(0, 1), set.read(4, 1)]);
    assert.deepEqual(concurrent, [ids(12, 4), ids(0, 4), ids(16, 4)]);
    await assert.rejects(set.read(4, 2), RangeError);
  } finally {
    set.close();
  }
});

Deno.test("readManifests lists several datasets' shards in order, and refuses two vocabularies", async () => {
  const dir = fixture("");
  const other = new URL("../../fixtures/data/shards-other-vocab", import.meta.url).pathname;
  const one = (await readManifest(dir)).paths;
  assert.deepEqual(await readManifests([dir]), one);
  assert.deepEqual(await readManifests([dir, dir]), [...one, ...one]);
  // The other folder's data is complete and valid on its own.
  const alone = await openShards(await readManifests([other]));
  alone.close();
  await assert.rejects(readManifests([dir, other]), (e) => {
    assert.ok(e instanceof DataError);
    assert.equal(
      e.message,
      `dataset ${other}: tokenized with vocabulary fedcba9876543210, dataset ${dir} with 0123456789abcdef; ` +
        `datasets read together need one vocabulary (tokenize with --vocab ${dir})`,
    );
    return true;
  });
});

Deno.test("openShards rejects truncated, corrupt, mismatched and unexpected shards", async () => {
  const good = fixture("good-0.bin");
  await assert.rejects(openShards([good, fixture("truncated.bin")]), /truncated\.bin: 86 bytes.*truncated$/);
  await assert.rejects(openShards([fixture("corrupt.bin")]), /corrupt\.bin: checksum mismatch/);
  const unverified = await openShards([fixture("corrupt.bin")], { verify: false });
  unverified.close();
  await assert.rejects(
    openShards([good, fixture("other-vocab.bin")]),
    /other-vocab\.bin: vocabHash fedcba9876543210 differs from 0123456789abcdef in .*good-0\.bin/,
  );
  await assert.rejects(
    openShards([good], { expect: { vocabHash: "ffffffffffffffff" } }),
    /vocabHash 0123456789abcdef, expected ffff/,
  );
  await assert.rejects(openShards([fixture("missing.bin")]), /shard .*missing\.bin: not found/);
  await assert.rejects(openShards([]), /no shards given/);
  assert.equal(SHARD_HEADER_BYTES, 64);
});

Deno.test("readManifest names a missing or foreign manifest", async () => {
  await assert.rejects(readManifest(fixture("../corpus")), /manifest .*corpus\/manifest\.json: not found/);
});

Deno.test("readManifest names a manifest without shards", async () => {
  await assert.rejects(
    readManifest(fixture("../shards-empty")),
    /shards-empty\/manifest\.json: "shards" is empty/,
  );
});
