import assert from "node:assert/strict";
import { DataError } from "../../src/data/errors.ts";
import { UsageError } from "../../src/args.ts";
import {
  checkFreshRunFolder,
  isDatasetFolder,
  lockRunFolder,
  planRunData,
} from "../../src/train/run_setup.ts";
import { inTempDir, writesAllowed } from "../_helpers.ts";

const data = new URL("../../fixtures/data/", import.meta.url).pathname;
const none = "/nonexistent/run/data";

Deno.test("a single raw corpus file is raw input, not a dataset folder to list", async () => {
  const file = `${data}corpus/prose.txt`;
  assert.equal(await isDatasetFolder(file), false);
  assert.deepEqual(await planRunData([file], none), { kind: "raw", dir: none, corpus: [file] });
});

Deno.test("tokenized folders are one dataset in the order given, and cannot be mixed with raw text", async () => {
  const folders = [`${data}shards`, `${data}shards`];
  assert.deepEqual(await planRunData(folders, none), { kind: "dataset", dirs: folders });
  await assert.rejects(
    planRunData([`${data}shards`, `${data}shards-other-vocab`], none),
    (e) =>
      e instanceof DataError && /^dataset .*shards-other-vocab: tokenized with vocabulary /.test(e.message),
  );
  for (const corpus of [[`${data}shards`, `${data}corpus`], [`${data}corpus/prose.txt`, `${data}shards`]]) {
    await assert.rejects(planRunData(corpus, none), (e) => {
      assert.ok(e instanceof UsageError);
      const raw = corpus.find((path) => !path.endsWith("shards"));
      assert.equal(
        e.message,
        `--corpus ${data}shards: a tokenized folder cannot be trained with raw text (--corpus ${raw}); ` +
          `tokenize the text with --vocab ${data}shards and give both folders, or give only raw text`,
      );
      return true;
    });
  }
});

Deno.test("a tokenized folder as the only corpus path is the dataset; the run's own data/ is reused", async () => {
  assert.equal(await isDatasetFolder(`${data}shards`), true);
  assert.equal(await isDatasetFolder(`${data}shards/`), true);
  assert.equal(await isDatasetFolder(`${data}corpus`), false);
  assert.deepEqual(await planRunData([`${data}shards`], none), { kind: "dataset", dirs: [`${data}shards`] });
  // A resumed run finds the dataset it tokenized at its first start.
  const tokenized = `${data}shards`;
  assert.deepEqual(await planRunData([`${data}corpus`], tokenized), { kind: "tokenized", dir: tokenized });
});

Deno.test("a missing corpus path or one of unknown format is a one-line error before anything is written", async () => {
  await assert.rejects(
    planRunData([`${data}corpus/prose.txt`, "/nonexistent/book.txt"], none),
    (e) => e instanceof DataError && /^corpus path \/nonexistent\/book\.txt: /.test(e.message),
  );
  await assert.rejects(
    planRunData([`${data}bad/table.csv`], none),
    (e) => e instanceof DataError && /table\.csv: unknown format/.test(e.message),
  );
});

Deno.test("a fresh run refuses a used run folder and takes a missing one", async () => {
  await checkFreshRunFolder("/nonexistent/run");
  await assert.rejects(
    checkFreshRunFolder(`${data}corpus`),
    (e) => e instanceof UsageError && /--out .*corpus: the folder is not empty .*--resume/.test(e.message),
  );
  await assert.rejects(
    checkFreshRunFolder(`${data}corpus/prose.txt`),
    (e) => e instanceof UsageError && /is a file, not a folder/.test(e.message),
  );
});

const canWrite = writesAllowed("run_setup_test");

Deno.test({
  name: "writes: one process at a time trains in a run folder; a second lock is refused, naming the holder",
  ignore: !canWrite,
  fn: () =>
    inTempDir(async (out) => {
      await checkFreshRunFolder(out); // an empty folder takes a fresh run
      const first = await lockRunFolder(out);
      await assert.rejects(
        lockRunFolder(out),
        (e) => e instanceof UsageError && e.message.includes(`another process (pid ${Deno.pid}) is training`),
      );
      first.close();
      (await lockRunFolder(out)).close(); // released with its file
    }),
});
