// The classifier head's mean pooling (finetuning), forward and backward: each example's final states
// averaged over its real tokens (key mask 1), the crammed-BERT recipe's "avg" pooler with padding left
// out, so that a batch padded further gives the same result. An example without real tokens (a padding
// row of the batch) pools to zero.
//
// The states may be stored as f16 (STATES_T, see src/gpu/kernels.ts): widened on load, summed in f32.

struct Uniforms {
  batch: u32,
  seq: u32,
  hidden4: u32,
}

override WG: u32 = 64u;

alias STATES_T = f32;

@group(0) @binding(0) var<uniform> uniforms: Uniforms;
// [batch * seq]: 1 for a real token, 0 for padding.
@group(0) @binding(1) var<storage, read> key_mask: array<u32>;
// mean_pool_forward: states [batch * seq, hidden] -> pooled [batch, hidden], and per example 1 / its
// count of real tokens (0 without any) for the backward.
@group(0) @binding(2) var<storage, read> states: array<vec4<STATES_T>>;
@group(0) @binding(3) var<storage, read_write> pooled: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> inverse_counts: array<f32>;
// mean_pool_backward: dpooled [batch, hidden] -> dstates [batch * seq, hidden], every element written,
// with the forward's inverse counts.
@group(0) @binding(2) var<storage, read> dpooled: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dstates: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> forward_inverse_counts: array<f32>;

// One invocation per vec4 of pooled: the sum over the example's real tokens in order, over their count.
@compute @workgroup_size(WG)
fn mean_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= uniforms.batch * uniforms.hidden4) {
    return;
  }
  let b = i / uniforms.hidden4;
  let h = i % uniforms.hidden4;
  var sum = vec4<f32>(0.0);
  var n = 0u;
  for (var t = 0u; t < uniforms.seq; t++) {
    let token = b * uniforms.seq + t;
    if (key_mask[token] != 0u) {
      sum += vec4<f32>(states[token * uniforms.hidden4 + h]);
      n++;
    }
  }
  pooled[i] = sum / f32(max(n, 1u));
  if (h == 0u) {
    inverse_counts[b] = select(0.0, 1.0 / f32(n), n > 0u);
  }
}

// One invocation per vec4 of dstates: a real token gets its example's pooled gradient times the
// forward's inverse count, padding gets zero.
@compute @workgroup_size(WG)
fn mean_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= uniforms.batch * uniforms.seq * uniforms.hidden4) {
    return;
  }
  let token = i / uniforms.hidden4;
  let b = token / uniforms.seq;
  var d = vec4<f32>(0.0);
  if (key_mask[token] != 0u) {
    d = dpooled[b * uniforms.hidden4 + i % uniforms.hidden4] * forward_inverse_counts[b];
  }
  dstates[i] = d;
}
