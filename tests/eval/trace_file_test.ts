/**
 * `deno task eval --write-features --trace` on the CPU adapter: the small pretrained fixture run finetuned on
 * two GLUE-format fixtures, and what each run's trace holds for the peer's lockstep replay.
 */
import assert from "node:assert/strict";
import type { TaskFeatures } from "../../src/eval/features_file.ts";
import { sequenceBuckets } from "../../src/eval/finetune.ts";
import { parseEvalOptions } from "../../src/eval/options.ts";
import { loadPretrained } from "../../src/eval/pretrained.ts";
import { runEvaluation } from "../../src/eval/run.ts";
import type { FinetuneTrace } from "../../src/eval/trace_file.ts";
import { dropoutSiteCount } from "../../src/model/dropout_sites.ts";
import { headLayout } from "../../src/model/head_layout.ts";
import { initHead } from "../../src/model/init.ts";
import { inTempDir, writesAllowed } from "../_helpers.ts";

const fixtures = new URL("../../fixtures/", import.meta.url).pathname;
const canWrite = writesAllowed("trace_file_test");

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(path));
}

Deno.test({
  name: "writes: eval --trace writes each run's start head, orders, widths, dropout seeds, losses and logits",
  ignore: !canWrite,
  fn: () =>
    inTempDir(async (out) => {
      const run = `${fixtures}eval/run`;
      // STS-B (regression, one dev set) and MNLI (3 labels, two dev sets); 2 examples a step, so that an
      // epoch has several steps and MNLI's last is short.
      const options = parseEvalOptions([
        ...["--checkpoint", run, "--glue-dir", `${fixtures}glue`, "--out", out, "--tasks", "STS-B,MNLI"],
        ...["--seeds", "2", "--epochs", "2", "--batch", "2", "--lr", "1e-3", "--no-onnx"],
        ...["--write-features", "--trace"],
      ]);
      await runEvaluation(options, () => {});
      const { config } = await loadPretrained(run);
      const names = [...Deno.readDirSync(`${out}/glue-trace`)].map((e) => e.name).sort();
      assert.deepEqual(names, ["MNLI-seed0.json", "MNLI-seed1.json", "STS-B-seed0.json", "STS-B-seed1.json"]);
      for (const name of names) {
        const trace = await readJson<FinetuneTrace>(`${out}/glue-trace/${name}`);
        const features = await readJson<TaskFeatures>(`${out}/glue-features/${trace.task}.json`);
        const seed = Number(name.match(/seed(\d+)/)![1]);
        const labels = features.labels?.length ?? 1;
        const n = features.train.ids.length;
        const steps = Math.ceil(n / 2) * 2;
        assert.deepEqual([trace.format, trace.version, trace.task], [
          "cram-glue-trace",
          2,
          name.split("-seed")[0],
        ]);
        assert.deepEqual(trace.finetune, { ...features.finetune, seed, logEvery: 1 });
        assert.equal(trace.trainExamples, n);

        // The head the run started from, by the head layout's names and shapes.
        const layout = headLayout(config, labels);
        assert.deepEqual(Object.keys(trace.head), layout.tensors.map((t) => t.name));
        const start = initHead(config, labels, { seed });
        for (const t of layout.tensors) {
          assert.deepEqual(trace.head[t.name].shape, t.shape, `${name} ${t.name}`);
          assert.deepEqual(
            trace.head[t.name].values,
            Array.from(start.subarray(t.offset, t.offset + t.size)),
          );
        }

        // Each epoch's order is a permutation of the training set; a step's width holds its longest example.
        assert.equal(trace.orders.length, 2);
        for (const order of trace.orders) {
          assert.deepEqual(order.toSorted((a, b) => a - b), Array.from({ length: n }, (_, i) => i), name);
        }
        assert.equal(trace.widths.length, steps);
        const buckets = sequenceBuckets(config.maxSeqLen);
        trace.widths.forEach((width, s) => {
          const order = trace.orders[Math.floor(s / (steps / 2))];
          const first = (s % (steps / 2)) * 2;
          const longest = Math.max(...order.slice(first, first + 2).map((i) => features.train.ids[i].length));
          assert.equal(width, buckets.find((b) => b >= longest), `${name} step ${s}`);
        });

        // One row of seeds per step, one u32 per dropout site, a fresh row each step.
        assert.equal(trace.seeds.length, steps);
        for (const row of trace.seeds) {
          assert.equal(row.length, dropoutSiteCount(config));
          assert.ok(row.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32), name);
        }
        assert.equal(new Set(trace.seeds.map((row) => row.join())).size, steps);

        assert.equal(trace.losses.length, steps);
        assert.ok(
          trace.losses.every((loss) => Number.isFinite(loss) && loss >= 0),
          `${name}: ${trace.losses}`,
        );

        assert.deepEqual(trace.devs.map((d) => d.name), features.devs.map((d) => d.name));
        trace.devs.forEach((dev, d) => {
          assert.equal(dev.logits.length, features.devs[d].ids.length, `${name} ${dev.name}`);
          assert.ok(dev.logits.every((row) => row.length === labels && row.every(Number.isFinite)));
        });
      }
    }),
});
