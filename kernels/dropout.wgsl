// Inverted dropout with a counter-based mask (finetuning only): element i is kept iff
// hash_index(pcg(seed), i) >> 8 >= threshold, exactly as the reference's dropoutKeep (threshold =
// ceil(p * 2^24), so the integer compare equals its (u >>> 8) / 2^24 >= p), and a kept element is scaled
// by 1 / (1 - p). The mask is recomputed from the seed, never stored: the backward is this same map
// applied to dy (dx = dy * keep / (1 - p)) with the step's seed.
//
// dropout_add fuses the residual connection of a dropped block output: output = residual + dropout(input);
// its backward is the plain map (the residual's gradient passes through unchanged).

struct Uniforms {
  // Elements / 4.
  count4: u32,
  threshold: u32,
  // 1 / (1 - p), rounded to f32 on the host.
  scale: f32,
  // Index of this dropout site's seed in `seeds`.
  seedIndex: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> uniforms: Uniforms;
// Seeds of the step's dropout sites, rewritten by the host every step.
@group(0) @binding(1) var<storage, read> seeds: array<u32>;
@group(0) @binding(2) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> output: array<vec4<f32>>;
// dropout_add only.
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;

fn keep(key: u32, index: u32) -> f32 {
  return select(0.0, uniforms.scale, (hash_index(key, index) >> 8u) >= uniforms.threshold);
}

// keep / (1 - p) of the four elements of vec4 i.
fn factors(i: u32) -> vec4<f32> {
  let key = pcg(seeds[uniforms.seedIndex]);
  let first = 4u * i;
  return vec4<f32>(keep(key, first), keep(key, first + 1u), keep(key, first + 2u), keep(key, first + 3u));
}

// One thread per vec4: output = input * keep / (1 - p).
@compute @workgroup_size(WG)
fn dropout(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i < uniforms.count4) {
    output[i] = input[i] * factors(i);
  }
}

// One thread per vec4: output = residual + input * keep / (1 - p).
@compute @workgroup_size(WG)
fn dropout_add(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i < uniforms.count4) {
    output[i] = residual[i] + input[i] * factors(i);
  }
}
