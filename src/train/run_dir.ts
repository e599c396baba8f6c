/**
 * The run folder:
 *
 *   <run>/checkpoints/step-000001234/model.safetensors      parameters, torch_peer.py names
 *   <run>/checkpoints/step-000001234/optimizer.safetensors  AdamW moments m.<name> and v.<name>
 *   <run>/checkpoints/step-000001234/state.json             step, data position, budget used, ...
 *   <run>/metrics.jsonl                                      one record every --log-every steps
 *   <run>/summary.json, <run>/loss.svg                       written at the end
 *
 * A checkpoint is written into `step-N.partial/` and renamed to `step-N/` once complete, so a crash
 * mid-write leaves a `.partial` folder that is ignored and the previous checkpoints intact. Its
 * state.json holds the size and SHA-256 of the two tensor files; loading checks them, so a
 * truncated or corrupt file is a one-line error naming it. There is no random-generator state to
 * save: all randomness after initialization is counter-based on the seed and the data position
 * (random.ts).
 *
 * checkpoint_state.ts decodes and checks state.json, checkpoints.ts writes, finds and reads checkpoints,
 * metrics.ts keeps metrics.jsonl and run_summary.ts summary.json. The encoding and validation work on
 * bytes in memory; the functions that touch the disk are thin.
 *
 * @module
 */
/** A checkpoint, metrics or summary file that cannot be used: the message names the file. */
export class RunFileError extends Error {
  override name = "RunFileError";
}
