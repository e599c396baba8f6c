import assert from "node:assert/strict";
import {
  checkpointName,
  checkpointStep,
  checkpointsToRemove,
  decodeCheckpointFiles,
  decodeModelFiles,
  encodeCheckpointFiles,
  newestCheckpoint,
  readCheckpoint,
} from "../../src/train/checkpoints.ts";
import { RunFileError } from "../../src/train/run_dir.ts";
import { fixtureState, fixtureWeights } from "./run_fixture.ts";

const run = new URL("../../fixtures/train/run", import.meta.url).pathname;
const dir = "runs/x/checkpoints/step-000000004";

/** Decodes in-memory files, optionally altered by `change`. */
async function decode(
  files: Map<string, Uint8Array>,
  change?: (name: string, bytes: Uint8Array) => Uint8Array,
) {
  return await decodeCheckpointFiles((name) => {
    const bytes = files.get(name);
    if (!bytes) return Promise.reject(new Error(`no ${name}`));
    return Promise.resolve(change ? change(name, bytes) : bytes);
  }, dir);
}

function edited(files: Map<string, Uint8Array>, name: string, edit: (text: string) => string) {
  const copy = new Map(files);
  copy.set(name, new TextEncoder().encode(edit(new TextDecoder().decode(files.get(name)))));
  return copy;
}

Deno.test("checkpoint folder names sort by step; retention keeps the newest and clears interrupted writes", () => {
  assert.equal(checkpointName(1234), "step-000001234");
  assert.equal(checkpointStep("step-000001234"), 1234);
  assert.equal(checkpointStep("step-000001234.partial"), undefined);
  assert.equal(checkpointStep("notes"), undefined);
  const names = ["step-000000010", "step-000000200", "step-000000030", "step-000000300.partial", "notes"];
  assert.deepEqual(checkpointsToRemove(names, 2), ["step-000000010", "step-000000300.partial"]);
  assert.deepEqual(checkpointsToRemove(names, 1), [
    "step-000000030",
    "step-000000010",
    "step-000000300.partial",
  ]);
  assert.deepEqual(checkpointsToRemove(names, 0), ["step-000000300.partial"]);
});

Deno.test("a checkpoint round-trips through its encoded files", async () => {
  const state = fixtureState(4);
  const weights = fixtureWeights(4);
  const files = await encodeCheckpointFiles(state, weights);
  assert.deepEqual([...files.keys()], ["model.safetensors", "optimizer.safetensors", "state.json"]);
  const decoded = await decode(files);
  assert.deepEqual(decoded.state, state);
  assert.deepEqual(decoded.weights, weights);
  // An f16 run's checkpoint carries its loss scale.
  const f16 = { ...state, lossScale: { scale: 32768, goodSteps: 17 } };
  assert.deepEqual((await decode(await encodeCheckpointFiles(f16, weights))).state, f16);
});

Deno.test("a checkpoint's model decodes without its optimizer file, which finetuning does not need", async () => {
  const files = await encodeCheckpointFiles(fixtureState(4), fixtureWeights(4));
  const withoutOptimizer = new Map([...files].filter(([name]) => name !== "optimizer.safetensors"));
  const read = (name: string) => {
    const bytes = withoutOptimizer.get(name);
    return bytes ? Promise.resolve(bytes) : Promise.reject(new Error(`no ${name}`));
  };
  const { state, params } = await decodeModelFiles(read, dir);
  assert.equal(state.step, 4);
  assert.deepEqual(params, fixtureWeights(4).params);
  await assert.rejects(decodeCheckpointFiles(read, dir), /no optimizer\.safetensors/);
});

Deno.test("a truncated or corrupt checkpoint file is a one-line error naming it", async () => {
  const files = await encodeCheckpointFiles(fixtureState(4), fixtureWeights(4));
  const cases: [
    Map<string, Uint8Array>,
    ((name: string, b: Uint8Array) => Uint8Array) | undefined,
    RegExp,
  ][] = [
    [
      files,
      (n, b) => (n === "model.safetensors" ? b.subarray(0, 1000) : b),
      /step-000000004\/model.safetensors: 1000 bytes, state.json says \d+ \(truncated\?\)$/,
    ],
    [files, (n, b) => {
      if (n !== "optimizer.safetensors") return b;
      const c = b.slice();
      c[c.length - 1] ^= 1;
      return c;
    }, /step-000000004\/optimizer.safetensors: SHA-256 does not match state.json \(file corrupt\)$/],
    [
      files,
      (n, b) => (n === "state.json" ? b.subarray(0, 200) : b),
      /step-000000004\/state.json: not valid JSON \(truncated or corrupt\?\)/,
    ],
    [
      edited(files, "state.json", (t) => t.replace('"step": 4', '"step": -4')),
      undefined,
      /state.json: step must be a non-negative integer, got -4$/,
    ],
    [
      edited(files, "state.json", (t) => t.replace('"epoch": 0', '"epoch": "zero"')),
      undefined,
      /state.json: data must be \{"epoch": n, "index": n\}/,
    ],
    [
      edited(files, "state.json", (t) => t.replace("0123456789abcdef", "xyz")),
      undefined,
      /state.json: dataset must be \{"sequences": n, "vocabHash": "<16 hex digits>"\}/,
    ],
    [
      edited(files, "state.json", (t) => t.replace('"hidden": 4', '"hidden": 3')),
      undefined,
      /state.json: config: hidden must be a multiple of heads|state.json: config: hidden must be even/,
    ],
    [
      edited(files, "state.json", (t) => t.replace('"maskRate": 0.15', '"maskRate": 2')),
      undefined,
      /state.json: options: --mask-rate: expected a fraction above 0 and below 1, got "2"$/,
    ],
    [
      edited(files, "state.json", (t) => t.replace("cram-checkpoint/1", "cram-checkpoint/9")),
      undefined,
      /state.json: format must be "cram-checkpoint\/1"/,
    ],
    [
      edited(files, "state.json", (t) => t.replace(/"sha256": "[0-9a-f]+"/, '"sha256": "xyz"')),
      undefined,
      /state.json: files.model.safetensors must be/,
    ],
    // Edits that leave a valid state.json: caught by the digest the model file records.
    [
      edited(files, "state.json", (t) => t.replace('"step": 4', '"step": 40')),
      undefined,
      /step-000000004\/state.json: edited since the checkpoint was written \(model.safetensors records a digest of it\)/,
    ],
    [
      edited(files, "state.json", (t) => t.replace('"preset": "tiny"', '"preset": "small"')),
      undefined,
      /state.json: edited since the checkpoint was written/,
    ],
  ];
  for (const [variant, change, message] of cases) {
    await assert.rejects(decode(variant, change), (e: Error) => {
      assert.ok(message.test(e.message), `${e.message} does not match ${message}`);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  }
  // A model file (intact) whose config is not the one state.json gives.
  await assert.rejects(
    decode(edited(files, "state.json", (t) => t.replace('"normEps": 1e-12', '"normEps": 0.00001'))),
    /step-000000004\/model.safetensors: its config differs from the one in state.json$/,
  );
});

Deno.test("the fixture run folder is what the encoder writes", async () => {
  for (const step of [2, 4]) {
    const files = await encodeCheckpointFiles(fixtureState(step), fixtureWeights(step));
    for (const [name, bytes] of files) {
      assert.deepEqual(
        await Deno.readFile(`${run}/checkpoints/${checkpointName(step)}/${name}`),
        bytes,
        `${step}/${name}`,
      );
    }
  }
});

Deno.test("resuming a run folder reads its newest complete checkpoint", async () => {
  assert.equal(await newestCheckpoint(run), `${run}/checkpoints/step-000000004`);
  for (const path of [run, `${run}/`]) {
    const loaded = await readCheckpoint(path, { branch: false });
    assert.equal(loaded.dir, `${run}/checkpoints/step-000000004`);
    assert.equal(loaded.runDir, run);
    assert.deepEqual(loaded.state, fixtureState(4));
    assert.deepEqual(loaded.weights, fixtureWeights(4));
  }
  // A checkpoint folder named directly: the newest is fine in place, an older one needs a branch.
  const newest = await readCheckpoint(`${run}/checkpoints/step-000000004`, { branch: false });
  assert.equal(newest.runDir, run);
  await assert.rejects(
    readCheckpoint(`${run}/checkpoints/step-000000002`, { branch: false }),
    (e: Error) =>
      e instanceof RunFileError &&
      /has a newer checkpoint, .*step-000000004; give --out <new folder>/.test(e.message),
  );
  const older = await readCheckpoint(`${run}/checkpoints/step-000000002`, { branch: true });
  assert.deepEqual(older.state, fixtureState(2));
  await assert.rejects(
    readCheckpoint(`${run}/checkpoints`, { branch: false }),
    /--resume .*checkpoints: no checkpoint there \(expected .*checkpoints\/checkpoints\/step-\*\/state.json\)/,
  );
});
