/**
 * The PyTorch peer's step benchmark (`torch_peer.py bench`, in ../shared/peer/ beside the project) run from
 * `deno task bench --step --peer <script>`, so that our tokens/s and the peer's come from one command on
 * one machine, with the ratios the benchmark targets are stated in.
 */
import type { StepBenchResult } from "./step.ts";

/** The peer's modes: strict fp32 (the like-for-like peer of f32 shaders) and bf16 autocast. */
const PEER_MODES = ["fp32", "bf16"] as const;
type PeerMode = (typeof PEER_MODES)[number];

/** One line of `torch_peer.py bench`. */
export interface PeerStepResult {
  peer: "pytorch";
  mode: string;
  batch: number;
  tokens_per_s: number;
  ms_per_step: number;
  peak_mem_gib: number;
}

/** Our step beside the peer's at the same micro-batch. */
export interface VersusPeer {
  bench: "train_step_vs_peer";
  precision: string;
  micro_batch: number;
  tokens_per_s: number;
  /** The peer's tokens/s per mode, and ours divided by each. */
  peer_fp32: number;
  vs_fp32: number;
  peer_bf16: number;
  vs_bf16: number;
}

/**
 * The results in the peer's output: a JSON line per mode after a first line naming PyTorch's version and
 * the GPU. A line that is neither is an error naming it (the peer's output changed or it failed midway).
 */
export function parsePeerBench(text: string): PeerStepResult[] {
  const results: PeerStepResult[] = [];
  const lines = text.split("\n").map((line) => line.trim());
  lines.forEach((line, i) => {
    if (line === "" || (i === 0 && !line.startsWith("{"))) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`torch_peer.py bench output, line ${i + 1}: expected a JSON result, got "${line}"`);
    }
    const r = value as Partial<PeerStepResult>;
    const numeric = [r.batch, r.tokens_per_s, r.ms_per_step, r.peak_mem_gib].every((v) =>
      typeof v === "number"
    );
    if (r.peer !== "pytorch" || typeof r.mode !== "string" || !numeric) {
      throw new Error(
        `torch_peer.py bench output, line ${i + 1}: expected peer, mode, batch, tokens_per_s, ms_per_step ` +
          `and peak_mem_gib, got ${line}`,
      );
    }
    results.push(r as PeerStepResult);
  });
  return results;
}

/** Our result against the peer's fp32 and bf16 results at its micro-batch; ratios to 3 decimals. */
export function versusPeer(ours: StepBenchResult, peer: readonly PeerStepResult[]): VersusPeer {
  const rate = (mode: PeerMode) => {
    const r = peer.find((p) => p.mode === mode && p.batch === ours.micro_batch);
    if (!r) throw new Error(`the peer printed no ${mode} result at batch ${ours.micro_batch}`);
    return r.tokens_per_s;
  };
  const ratio = (theirs: number) => Math.round((ours.tokens_per_s / theirs) * 1000) / 1000;
  const [fp32, bf16] = [rate("fp32"), rate("bf16")];
  return {
    bench: "train_step_vs_peer",
    precision: ours.precision,
    micro_batch: ours.micro_batch,
    tokens_per_s: ours.tokens_per_s,
    peer_fp32: fp32,
    vs_fp32: ratio(fp32),
    peer_bf16: bf16,
    vs_bf16: ratio(bf16),
  };
}

/** Options of {@linkcode runPeerBench}. */
export interface PeerBenchOptions {
  /** The path of torch_peer.py. */
  script: string;
  /** Sequences per step (our micro-batch). */
  batch: number;
  /** Timed steps (the peer warms up with 5 first). */
  steps: number;
}

/** Runs `python3 torch_peer.py bench` in both modes and returns its results; its stderr goes to ours. */
export async function runPeerBench(options: PeerBenchOptions): Promise<PeerStepResult[]> {
  const { script, batch, steps } = options;
  const args = [
    script,
    "bench",
    "--batch",
    `${batch}`,
    "--modes",
    PEER_MODES.join(","),
    "--steps",
    `${steps}`,
  ];
  const result = await new Deno.Command("python3", { args, stderr: "inherit" }).output();
  if (!result.success) throw new Error(`python3 ${args.join(" ")} failed (exit ${result.code})`);
  return parsePeerBench(new TextDecoder().decode(result.stdout));
}
