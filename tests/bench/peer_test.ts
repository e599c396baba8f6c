/**
 * The PyTorch peer's step benchmark as `bench --step --peer` reads it. The test that starts a stand-in for
 * the peer (fixtures/bench/fake_torch_peer.py) needs --allow-run: .ci/run runs the tests named "writes: ..."
 * with -A.
 */
import assert from "node:assert/strict";
import { parsePeerBench, runPeerBench, versusPeer } from "../../src/bench/peer.ts";
import type { StepBenchResult } from "../../src/bench/step.ts";
import { writesAllowed } from "../_helpers.ts";

const PEER_OUTPUT = `2.11.0+cu130 NVIDIA H100 80GB HBM3
{"peer": "pytorch", "mode": "fp32", "compile": false, "batch": 128, "tokens_per_s": 61404, "ms_per_step": 266.82, "peak_mem_gib": 14.64}
{"peer": "pytorch", "mode": "bf16", "compile": false, "batch": 128, "tokens_per_s": 357505, "ms_per_step": 45.83, "peak_mem_gib": 14.64}
`;

const OURS: StepBenchResult = {
  bench: "train_step",
  precision: "f32",
  micro_batch: 128,
  accumulate: 1,
  tokens_per_s: 52455,
  ms_per_step: 312.34,
  ms_alone: 320.47,
  gpu_ms_per_step: null,
  gpu_mem_gib: 12.65,
  loss: 8.288,
  grad_norm: 6.6,
  skipped_steps: 0,
};

Deno.test("the peer's bench output parses to one result per mode, the version line skipped", () => {
  const results = parsePeerBench(PEER_OUTPUT);
  assert.deepEqual(results.map((r) => [r.mode, r.batch, r.tokens_per_s, r.ms_per_step]), [
    ["fp32", 128, 61404, 266.82],
    ["bf16", 128, 357505, 45.83],
  ]);
});

Deno.test("a line of the peer's output that is no result is an error naming the line", () => {
  assert.throws(
    () => parsePeerBench(PEER_OUTPUT + "Traceback (most recent call last):\n"),
    /line 4: expected a JSON result, got "Traceback/,
  );
  assert.throws(
    () => parsePeerBench(`v\n{"peer": "pytorch", "mode": "fp32"}\n`),
    /line 2: expected peer, mode/,
  );
});

Deno.test("our step against the peer's: tokens/s over each mode's, to 3 decimals", () => {
  assert.deepEqual(versusPeer(OURS, parsePeerBench(PEER_OUTPUT)), {
    bench: "train_step_vs_peer",
    precision: "f32",
    micro_batch: 128,
    tokens_per_s: 52455,
    peer_fp32: 61404,
    vs_fp32: 0.854,
    peer_bf16: 357505,
    vs_bf16: 0.147,
  });
  assert.throws(
    () => versusPeer({ ...OURS, micro_batch: 64 }, parsePeerBench(PEER_OUTPUT)),
    /no fp32 result at batch 64/,
  );
});

Deno.test({
  name: "writes: the peer runs with our micro-batch, both modes and our step count",
  ignore: !writesAllowed("peer_test", ["run"]),
  fn: async () => {
    const script = new URL("../../fixtures/bench/fake_torch_peer.py", import.meta.url).pathname;
    const results = await runPeerBench({ script, batch: 64, steps: 7 });
    // The stand-in's rate is 1000 * batch * (mode's position + 1) + steps.
    assert.deepEqual(results.map((r) => [r.mode, r.batch, r.tokens_per_s]), [["fp32", 64, 64007], [
      "bf16",
      64,
      128007,
    ]]);
    await assert.rejects(
      runPeerBench({ script: "/nonexistent/torch_peer.py", batch: 64, steps: 7 }),
      /python3 \/nonexistent\/torch_peer.py bench --batch 64 --modes fp32,bf16 --steps 7 failed \(exit 2\)/,
    );
  },
});
