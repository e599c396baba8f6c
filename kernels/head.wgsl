// The classifier head's small ops (finetuning), forward and backward: bias adds, tanh, the bias gradient,
// and the loss over a batch's logits (cross-entropy, or squared error for a one-output regression head).
// The head's tensors are tiny ([batch, 1024] at most), so these are plain one-thread-per-element kernels;
// the matrix products around them are matmul.wgsl's.

struct Uniforms {
  rows: u32,
  cols: u32,
}

struct LossTotals {
  sum: f32,
  count: u32,
}

override WG: u32 = 64u;
// head_loss: squared error against a score instead of cross-entropy against a label.
override REGRESSION: bool = false;
const LOWEST = -3.0e38;
// tanh is 1 in f32 from |x| > 9.01; clamping keeps the builtin away from exp overflow.
const TANH_LIMIT = 16.0;

@group(0) @binding(0) var<uniform> uniforms: Uniforms;
// bias_tanh and bias_add: values [rows, cols] (in place), bias [cols].
@group(0) @binding(1) var<storage, read> bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> values: array<f32>;
// tanh_backward: values holds the gradient of tanh's output (in place), activated its output.
@group(0) @binding(1) var<storage, read> activated: array<f32>;
// bias_grad: gradient [rows, cols] of the biased values, dbias [cols] added to.
@group(0) @binding(1) var<storage, read> gradient: array<f32>;
@group(0) @binding(2) var<storage, read_write> dbias: array<f32>;
// head_loss: count [1] (real rows), targets [rows] (label index, or score), logits [rows, cols], dlogits
// [rows, cols] written, totals added to.
@group(0) @binding(1) var<storage, read> count: array<u32>;
@group(0) @binding(2) var<storage, read> targets: array<f32>;
@group(0) @binding(3) var<storage, read> logits: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(5) var<storage, read_write> totals: LossTotals;
// head_loss_scaled: also the loss scale.
@group(0) @binding(6) var<storage, read> loss_scale: LossScale;

// values = tanh(values + bias).
@compute @workgroup_size(WG)
fn bias_tanh(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i < uniforms.rows * uniforms.cols) {
    values[i] = tanh(clamp(values[i] + bias[i % uniforms.cols], -TANH_LIMIT, TANH_LIMIT));
  }
}

// values += bias.
@compute @workgroup_size(WG)
fn bias_add(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i < uniforms.rows * uniforms.cols) {
    values[i] += bias[i % uniforms.cols];
  }
}

// values = values * (1 - activated^2): the gradient through tanh from its output.
@compute @workgroup_size(WG)
fn tanh_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i < uniforms.rows * uniforms.cols) {
    let a = activated[i];
    values[i] *= 1.0 - a * a;
  }
}

// One thread per column: dbias[c] += the sum over rows of gradient[r, c], rows in order.
@compute @workgroup_size(WG)
fn bias_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= uniforms.cols) {
    return;
  }
  var s = 0.0;
  for (var r = 0u; r < uniforms.rows; r++) {
    s += gradient[r * uniforms.cols + c];
  }
  dbias[c] += s;
}

// One workgroup. For each real row r < count: its loss (-log softmax(logits)[label], or (logit - score)^2)
// and dlogits = its gradient divided by count (the mean over the batch); rows past count get zero.
// totals.sum += the rows' losses, summed per thread then in a fixed tree; totals.count += count.
@compute @workgroup_size(WG)
fn head_loss(@builtin(local_invocation_index) lid: u32) {
  head_loss_rows(lid, 1.0);
}

// As head_loss, the gradient multiplied by the loss scale too (the loss is not).
@compute @workgroup_size(WG)
fn head_loss_scaled(@builtin(local_invocation_index) lid: u32) {
  head_loss_rows(lid, loss_scale.scale);
}

// head_loss with the gradient's extra factor `scale`.
fn head_loss_rows(lid: u32, scale: f32) {
  let n = count[0];
  let inverse = scale / f32(max(n, 1u));
  let cols = uniforms.cols;
  var sum = 0.0;
  for (var r = lid; r < uniforms.rows; r += WG) {
    let base = r * cols;
    if (r >= n) {
      for (var c = 0u; c < cols; c++) {
        dlogits[base + c] = 0.0;
      }
      continue;
    }
    if (REGRESSION) {
      let diff = logits[base] - targets[r];
      sum += diff * diff;
      dlogits[base] = 2.0 * diff * inverse;
      continue;
    }
    let label = u32(targets[r]);
    var m = LOWEST;
    for (var c = 0u; c < cols; c++) {
      m = max(m, logits[base + c]);
    }
    var s = 0.0;
    for (var c = 0u; c < cols; c++) {
      s += exp(logits[base + c] - m);
    }
    sum += log(s) + m - logits[base + label];
    for (var c = 0u; c < cols; c++) {
      let hot = select(0.0, 1.0, c == label);
      dlogits[base + c] = (exp(logits[base + c] - m) / s - hot) * inverse;
    }
  }
  let total = workgroup_sum(sum, lid);
  if (lid == 0u) {
    totals.sum += total;
    totals.count += n;
  }
}
