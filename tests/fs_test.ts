import assert from "node:assert/strict";
import { exists, writeFileAtomic } from "../src/fs.ts";

Deno.test("writeFileAtomic reports a failed write in one line naming the path", async () => {
  // Tests run with read permission only, so the write is refused (as an unwritable directory would be).
  await assert.rejects(
    () => writeFileAtomic("no/such/dir/out.bin", new Uint8Array(1)),
    (e: Error) => e.message.startsWith("cannot write no/such/dir/out.bin: ") && !e.message.includes("\n"),
  );
});

Deno.test("exists tells a present path from a missing one", async () => {
  assert.equal(
    await exists(new URL("../fixtures/data/shards/manifest.json", import.meta.url).pathname),
    true,
  );
  assert.equal(await exists("no/such/file"), false);
});
