"""PyTorch finetuning peer: finetunes a cram checkpoint on GLUE with plain PyTorch, to check our finetuning.

  python3 peer/finetune_peer.py --checkpoint RUN/checkpoints/step-N --features RUN/glue-features \
      [--seeds 3] [--seed 0] [--from-scratch] [--device cuda|cpu] [--out peer-glue.json]
  python3 peer/finetune_peer.py --checkpoint RUN/checkpoints/step-N --features RUN/glue-features \
      --lockstep RUN/glue-trace [--tasks STS-B] [--out lockstep.json]

The examples are the ones `deno task eval --write-features` tokenized (RUN/glue-features/<task>.json:
token ids with [CLS]/[SEP], targets, the task's labels and metrics, and the recipe), so both engines see
the same inputs. Nothing here comes from our engine: the model is standard PyTorch modules, the loop a
plain AdamW loop. What it reproduces is the recipe our evaluation runs (src/eval/finetune.ts):

- the model of the checkpoint (pre-LN BERT without linear biases, scaled sinusoidal or learned positions,
  final LayerNorm), padded keys masked out of attention;
- dropout p (default the file's 0.1) after the embedding LayerNorm, on the attention probabilities, on
  each block's output before its residual add, and on the head's tanh output;
- the head on the pooled final states (the recipe's `pooling`: the [CLS] state, or the mean over the real
  tokens): Linear(hidden, 1024) + bias, tanh, dropout, Linear(1024, labels) + bias,
  weights normal(0, 0.02) and biases 0; cross-entropy, or squared error for a one-output regression task;
- 5 epochs in a seeded random order, batches of 16 (the last one smaller), AdamW (betas 0.9/0.98, eps
  1e-6, no weight decay), no clipping, the learning rate warming up linearly over floor(10%) of the steps
  and then falling along a cosine to 0 (transformers' get_cosine_schedule_with_warmup);
- with --from-scratch, the encoder is initialized as ours is: normal(0, 0.02) matrices and embeddings,
  LayerNorm 1/0, position scale 1/sqrt(hidden).

Scores are the dev sets' metrics in percent, the median over seeds, and the GLUE average of each dev
set's first metric (WNLI left out, as in our report). Seeds give the same orders and initial heads from
run to run of this script, not the same as our engine's (different generators): compare medians and seed
spreads.

With --lockstep, each of our runs is replayed instead from the trace `eval --write-features --trace`
wrote (RUN/glue-trace/<task>-seed<n>.json): the checkpoint's encoder and the trace's start head, its data
order of every epoch, every step's padded width (our length bucket, which sets the flat indices of the
masks), and our dropout masks, one seed per site and step in the order the model calls its dropouts
(embedding; per layer the attention probabilities, the attention block's and the FFN block's outputs; the
head), each mask by our rule (TraceDropout: element i of the flat tensor kept iff
pcg(pcg(i ^ pcg(seed))) >> 8 >= ceil(p * 2^24), kept values times float32(1 / (1 - p))). Products run in
float32 (no TF32). It prints, per task and seed, the worst and mean relative difference of the per-step
training losses (|peer - ours| / |peer|) over the first 10, the first 200 and all steps, the largest
|dev logit difference| and the dev metrics of both; --out gets them with the peer's per-step losses.
"""
import argparse, json, math, os, re, statistics, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

HEAD_INNER = 1024
# GLUE's table order; WNLI is left out of the average, as in our report (src/eval/report.ts).
GLUE_ORDER = ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI"]
DTYPES = {"F32": torch.float32, "F16": torch.float16, "I32": torch.int32}


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = bytearray(raw[8 + n:])
    out = {}
    for name, h in header.items():
        start, end = h["data_offsets"]
        out[name] = torch.frombuffer(body[start:end], dtype=DTYPES[h["dtype"]]).reshape(h["shape"]).clone()
    return meta, out


class Layer(nn.Module):
    def __init__(self, c, p):
        super().__init__()
        H, I = c["hidden_size"], c["intermediate_size"]
        self.heads = c["num_heads"]
        self.glu = c["ffn"] == "gelu-glu"
        self.attn_norm = nn.LayerNorm(H, eps=c["norm_eps"])
        self.ffn_norm = nn.LayerNorm(H, eps=c["norm_eps"])
        self.qkv = nn.Linear(H, 3 * H, bias=False)
        self.out = nn.Linear(H, H, bias=False)
        self.up = nn.Linear(H, I, bias=False)
        self.down = nn.Linear(I // 2 if self.glu else I, H, bias=False)
        self.drop = nn.Dropout(p)

    def forward(self, x, key_bias):
        B, T, H = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).view(B, T, 3, self.heads, H // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(H // self.heads) + key_bias
        a = (self.drop(torch.softmax(scores, dim=-1)) @ v).transpose(1, 2).reshape(B, T, H)
        x = x + self.drop(self.out(a))
        h = self.up(self.ffn_norm(x))
        if self.glu:
            value, gate = h.chunk(2, dim=-1)
            h = F.gelu(gate) * value
        else:
            h = F.gelu(h)
        return x + self.drop(self.down(h))


class Classifier(nn.Module):
    def __init__(self, c, outputs, p, pooling="cls"):
        super().__init__()
        V, H, S = c["vocab_size"], c["hidden_size"], c["max_seq_len"]
        self.c = c
        self.pooling = pooling
        self.word = nn.Embedding(V, H)
        if c["positions"] == "learned":
            self.position = nn.Parameter(torch.zeros(S, H))
        else:
            pos = torch.arange(S, dtype=torch.float64)[:, None]
            div = torch.exp(torch.arange(0, H, 2, dtype=torch.float64) * (-math.log(10000.0) / H))
            table = torch.zeros(S, H, dtype=torch.float64)
            table[:, 0::2], table[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
            self.register_buffer("sinusoid", table.float())
            self.position_scale = nn.Parameter(torch.tensor([1.0 / math.sqrt(H)]))
        self.emb_norm = nn.LayerNorm(H, eps=c["norm_eps"])
        self.layers = nn.ModuleList(Layer(c, p) for _ in range(c["num_layers"]))
        self.final_norm = nn.LayerNorm(H, eps=c["norm_eps"])
        self.dense = nn.Linear(H, HEAD_INNER)
        self.head_out = nn.Linear(HEAD_INNER, outputs)
        self.drop = nn.Dropout(p)

    def forward(self, ids, mask):
        T = ids.shape[1]
        pos = self.position[:T] if self.c["positions"] == "learned" else self.position_scale * self.sinusoid[:T]
        x = self.drop(self.emb_norm(self.word(ids) + pos))
        key_bias = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill(mask == 0, float("-inf"))
        key_bias = key_bias[:, None, None, :]
        for layer in self.layers:
            x = layer(x, key_bias)
        states = self.final_norm(x)
        if self.pooling == "mean":  # the mean over each example's real tokens
            weights = mask.to(states.dtype)[:, :, None]
            pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1)
        else:
            pooled = states[:, 0]
        return self.head_out(self.drop(torch.tanh(self.dense(pooled))))

    def encoder_params(self):
        """Checkpoint tensor name -> parameter (the layout of ../shared/peer/torch_peer.py's docstring)."""
        m = {"embeddings.word.weight": self.word.weight, "embeddings.norm.weight": self.emb_norm.weight,
             "embeddings.norm.bias": self.emb_norm.bias, "final_norm.weight": self.final_norm.weight,
             "final_norm.bias": self.final_norm.bias}
        if self.c["positions"] == "learned":
            m["embeddings.position.weight"] = self.position
        else:
            m["embeddings.position_scale"] = self.position_scale
        for i, b in enumerate(self.layers):
            p = f"layers.{i}."
            m.update({p + "attn_norm.weight": b.attn_norm.weight, p + "attn_norm.bias": b.attn_norm.bias,
                      p + "attn.qkv.weight": b.qkv.weight, p + "attn.out.weight": b.out.weight,
                      p + "ffn_norm.weight": b.ffn_norm.weight, p + "ffn_norm.bias": b.ffn_norm.bias,
                      p + "ffn.up.weight": b.up.weight, p + "ffn.down.weight": b.down.weight})
        return m


def init_weights(model, generator, pretrained):
    """Head: normal(0, 0.02) weights, zero biases. Encoder: the checkpoint's, or a fresh init as ours."""
    with torch.no_grad():
        for linear in (model.dense, model.head_out):
            linear.weight.normal_(0, 0.02, generator=generator)
            linear.bias.zero_()
        names = model.encoder_params()
        if pretrained is None:
            for name, p in names.items():
                if name.endswith("norm.weight"):
                    p.fill_(1.0)
                elif name.endswith("norm.bias"):
                    p.zero_()
                elif name == "embeddings.position_scale":
                    p.fill_(1.0 / math.sqrt(model.c["hidden_size"]))
                else:
                    p.normal_(0, 0.02, generator=generator)
            return
        missing = sorted(set(names) - set(pretrained))
        if missing:
            sys.exit(f"the checkpoint lacks {missing[:5]}")
        for name, p in names.items():
            if tuple(pretrained[name].shape) != tuple(p.shape):
                sys.exit(f"{name}: shape {tuple(pretrained[name].shape)} in the checkpoint, {tuple(p.shape)} expected")
            p.copy_(pretrained[name].float())


def learning_rate(step, total, lr, warmup):
    warmup_steps = math.floor(warmup * total)
    if step < warmup_steps:
        return lr * step / warmup_steps
    progress = (step - warmup_steps) / max(1, total - warmup_steps)
    return lr * max(0.0, (1 + math.cos(math.pi * progress)) / 2)


def padded(ids_list, device, width=None):
    """The batch right-padded with [PAD] to `width` (default: its longest example), and its key mask."""
    width = width or max(len(ids) for ids in ids_list)
    ids = torch.zeros(len(ids_list), width, dtype=torch.long)  # [PAD] is id 0
    mask = torch.zeros(len(ids_list), width, dtype=torch.long)
    for row, seq in enumerate(ids_list):
        ids[row, :len(seq)] = torch.tensor(seq)
        mask[row, :len(seq)] = 1
    return ids.to(device), mask.to(device)


def finetune(model, train, recipe, outputs, device, order, width=None, before_step=None):
    """The AdamW loop; returns each step's loss. order(epoch) is the epoch's order of the training examples,
    width(step) a step's padded width (default: its longest example); before_step(step) runs before each
    step's forward."""
    opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], betas=(recipe["beta1"], recipe["beta2"]),
                            eps=recipe["eps"], weight_decay=recipe["weightDecay"])
    n, batch = len(train["ids"]), recipe["batch"]
    per_epoch = math.ceil(n / batch)
    total = per_epoch * recipe["epochs"]
    step = 0
    losses = []
    model.train()
    for epoch in range(recipe["epochs"]):
        rows_of_epoch = order(epoch)
        epoch_loss = 0.0
        for b in range(per_epoch):
            rows = rows_of_epoch[b * batch:(b + 1) * batch]
            ids, mask = padded([train["ids"][i] for i in rows], device, width and width(step))
            targets = torch.tensor([train["targets"][i] for i in rows], device=device)
            if before_step:
                before_step(step)
            logits = model(ids, mask)
            if outputs == 1:
                loss = F.mse_loss(logits[:, 0], targets.float())
            else:
                loss = F.cross_entropy(logits, targets.long())
            for group in opt.param_groups:
                group["lr"] = learning_rate(step, total, recipe["lr"], recipe["warmup"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            losses.append(loss.item())
            epoch_loss += losses[-1] * len(rows)
        print(f"  epoch {epoch + 1}/{recipe['epochs']}: loss {epoch_loss / n:.4f}", file=sys.stderr, flush=True)
    return losses


@torch.no_grad()
def predict(model, ids_list, device, batch=64):
    model.eval()
    out = []
    for first in range(0, len(ids_list), batch):
        ids, mask = padded(ids_list[first:first + batch], device)
        out.append(model(ids, mask).float().cpu())
    return torch.cat(out)


def ranks(values):
    """Average ranks of ties, as scipy's spearmanr."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    r = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2
        i = j + 1
    return r


def pearson(x, y):
    mx, my = statistics.fmean(x), statistics.fmean(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else 0.0


def scores(metrics, logits, targets):
    """The GLUE metrics (scikit-learn's definitions) of a dev set, as fractions."""
    if logits.shape[1] == 1:
        pred = logits[:, 0].tolist()
    else:
        pred = logits.argmax(dim=1).tolist()
    out = {}
    for m in metrics:
        if m == "accuracy":
            out[m] = sum(p == t for p, t in zip(pred, targets)) / len(targets)
        elif m == "f1":
            tp = sum(p == 1 and t == 1 for p, t in zip(pred, targets))
            fp = sum(p == 1 and t != 1 for p, t in zip(pred, targets))
            fn = sum(p != 1 and t == 1 for p, t in zip(pred, targets))
            out[m] = 2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0
        elif m == "matthews":
            labels = sorted(set(targets) | set(pred))
            n = len(targets)
            correct = sum(p == t for p, t in zip(pred, targets))
            predicted = {c: pred.count(c) for c in labels}
            actual = {c: targets.count(c) for c in labels}
            crossed = sum(predicted[c] * actual[c] for c in labels)
            denominator = math.sqrt((n * n - sum(v * v for v in predicted.values())) *
                                    (n * n - sum(v * v for v in actual.values())))
            out[m] = (correct * n - crossed) / denominator if denominator > 0 else 0.0
        elif m == "pearson":
            out[m] = pearson(pred, targets)
        elif m == "spearman":
            out[m] = pearson(ranks(pred), ranks(targets))
        else:
            sys.exit(f"unknown metric {m}")
    return out


def glue_rank(task):
    return GLUE_ORDER.index(task) if task in GLUE_ORDER else len(GLUE_ORDER)


# The versions of eval's files this script reads (trace version 2: masks by two rounds of pcg).
FEATURES_VERSION = 1
TRACE_VERSION = 2


def read_json(path, kind, version):
    """A file `eval` wrote, checked to be a `kind` file of `version`."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"{path}: {e}")
    if not isinstance(data, dict) or data.get("format") != kind or data.get("version") != version:
        sys.exit(f"{path}: not a {kind} file of version {version} (written by another version of eval?)")
    return data


def compare_seeds(a, c, tensors):
    """Our recipe with this script's own seeds: the scores of every task file, median over seeds."""
    files = [f for f in os.listdir(a.features) if f.endswith(".json")]
    files.sort(key=lambda f: (glue_rank(f[:-5]), f))
    if a.tasks:
        files = [f for f in files if f[:-5] in a.tasks.split(",")]
    if not files:
        sys.exit(f"{a.features}: no task file")
    results = []
    for name in files:
        task = read_json(os.path.join(a.features, name), "cram-glue-features", FEATURES_VERSION)
        recipe = dict(task["finetune"])
        if a.lr is not None:
            recipe["lr"] = a.lr
        outputs = len(task["labels"]) if task["labels"] else 1
        runs = {dev["name"]: [] for dev in task["devs"]}
        n = len(task["train"]["ids"])
        for s in range(a.seeds):
            seed = a.seed + s
            print(f"{task['task']} seed {seed}: {n} examples, lr {recipe['lr']}", file=sys.stderr, flush=True)
            torch.manual_seed(seed)  # dropout masks
            generator = torch.Generator().manual_seed(seed)
            model = Classifier(c, outputs, recipe["dropout"], recipe.get("pooling", "cls"))
            init_weights(model, generator, None if a.from_scratch else tensors)
            model.to(a.device)
            started = time.time()
            finetune(model, task["train"], recipe, outputs, a.device,
                     order=lambda epoch: torch.randperm(n, generator=generator).tolist())
            for dev in task["devs"]:
                s_dev = scores(task["metrics"], predict(model, dev["ids"], a.device), dev["targets"])
                runs[dev["name"]].append(s_dev)
                main_metric = task["metrics"][0]
                print(f"{task['task']} seed {seed} {dev['name']}: {main_metric} {100 * s_dev[main_metric]:.1f} "
                      f"({time.time() - started:.1f} s)", file=sys.stderr, flush=True)
        for dev_name, dev_runs in runs.items():
            medians = {m: 100 * statistics.median(r[m] for r in dev_runs) for m in task["metrics"]}
            spread = {m: [100 * r[m] for r in dev_runs] for m in task["metrics"]}
            results.append({"dev_set": dev_name, "metrics": task["metrics"], "median": medians, "runs": spread})
    counted = [r for r in results if r["dev_set"] != "WNLI"]
    average = statistics.fmean(r["median"][r["metrics"][0]] for r in counted) if counted else float("nan")
    print("| dev set | metric | median | runs |\n| --- | --- | --- | --- |")
    for r in results:
        m = r["metrics"][0]
        print(f"| {r['dev_set']} | {m} | {r['median'][m]:.1f} | {', '.join(f'{v:.1f}' for v in r['runs'][m])} |")
    print(f"| GLUE average | main metric | {average:.1f} | over {', '.join(r['dev_set'] for r in counted)} |")
    return {"from_scratch": a.from_scratch, "seeds": a.seeds, "results": results, "average": average}


U32 = 0xFFFFFFFF


def pcg(v):
    """The PCG-RXS-M-XS 32-bit hash of u32 values (a Python int, or an int64 tensor elementwise)."""
    state = (v * 747796405 + 2891336453) & U32
    word = (((state >> ((state >> 28) + 4)) ^ state) * 277803737) & U32
    return ((word >> 22) ^ word) & U32


class TraceDropout(nn.Module):
    """Dropout with our engine's masks: one module for every site, taking the step's seeds in the order the
    model calls its dropouts. With seed s, element i of the flat tensor is kept iff
    pcg(pcg(i ^ pcg(s))) >> 8 >= ceil(p * 2^24), and kept values are scaled by float32(1 / (1 - p))."""

    def __init__(self, p):
        super().__init__()
        self.threshold = math.ceil(p * 2 ** 24)
        self.scale = float(torch.tensor(1 / (1 - p), dtype=torch.float32))
        self.seeds, self.used = None, 0
        self.indices = {}

    def use(self, seeds):
        """The seeds of the next forward, one per site (None: no dropout). Checks that the last used all of its."""
        if self.seeds is not None and self.used != len(self.seeds):
            raise RuntimeError(f"the model called dropout {self.used} times, the trace has {len(self.seeds)} sites")
        self.seeds, self.used = seeds, 0

    def forward(self, x):
        if not self.training or self.seeds is None:
            return x
        if self.used == len(self.seeds):
            raise RuntimeError(f"the model calls dropout more often than the trace's {len(self.seeds)} sites")
        key = pcg(self.seeds[self.used])
        self.used += 1
        index = self.indices.get((x.numel(), x.device))
        if index is None:
            index = self.indices[(x.numel(), x.device)] = torch.arange(x.numel(), dtype=torch.int64, device=x.device)
        keep = (pcg(pcg(index ^ key)) >> 8) >= self.threshold
        return x * torch.where(keep, self.scale, 0.0).to(x.dtype).view(x.shape)


def check_trace(path, trace, task, c, outputs):
    """Exits naming `path` where the trace does not fit its features file or the checkpoint."""
    missing = [k for k in ("task", "finetune", "trainExamples", "head", "orders", "widths", "seeds", "losses", "devs")
               if k not in trace]
    if missing:
        sys.exit(f"{path}: no {', '.join(missing)}")
    recipe, n = trace["finetune"], len(task["train"]["ids"])
    steps = math.ceil(n / recipe["batch"]) * recipe["epochs"]
    sites = 2 + 3 * c["num_layers"]
    problems = [
        (trace["task"] != task["task"], f"task {trace['task']}, its features file is {task['task']}'s"),
        (trace["trainExamples"] != n, f"trainExamples {trace['trainExamples']}, the features file has {n}"),
        (len(trace["orders"]) != recipe["epochs"], f"orders: {len(trace['orders'])} epochs, {recipe['epochs']} expected"),
        (any(sorted(o) != list(range(n)) for o in trace["orders"]), f"orders: not each a permutation of 0..{n - 1}"),
        (len(trace["widths"]) != steps, f"widths: {len(trace['widths'])} steps, {steps} expected"),
        (len(trace["losses"]) != steps, f"losses: {len(trace['losses'])} steps, {steps} expected"),
        (len(trace["seeds"]) != steps or any(len(r) != sites for r in trace["seeds"]),
         f"seeds: expected {steps} rows of {sites} (the checkpoint's dropout sites)"),
        ([d["name"] for d in trace["devs"]] != [d["name"] for d in task["devs"]], "devs: not the features file's"),
    ]
    problems += [(len(d["logits"]) != len(f["ids"]) or any(len(r) != outputs for r in d["logits"]),
                  f"devs {d['name']}: expected {len(f['ids'])} rows of {outputs} logits")
                 for d, f in zip(trace["devs"], task["devs"])]
    for wrong, message in problems:
        if wrong:
            sys.exit(f"{path}: {message}")
    batch, per_epoch = recipe["batch"], math.ceil(n / recipe["batch"])
    for step, width in enumerate(trace["widths"]):
        first = (step % per_epoch) * batch
        rows = trace["orders"][step // per_epoch][first:first + batch]
        longest = max(len(task["train"]["ids"][i]) for i in rows)
        if width < longest:
            sys.exit(f"{path}: widths: step {step} pads to {width}, its longest example has {longest} tokens")


def relative_differences(peer, ours):
    """The worst and mean |peer - ours| / |peer| over the first 10, the first 200 and all steps."""
    d = [abs(p - o) / abs(p) if p != 0 else abs(o) for p, o in zip(peer, ours)]
    spans = {"first 10": d[:10], "first 200": d[:200], "all": d}
    return {span: {"worst": max(v), "mean": statistics.fmean(v)} for span, v in spans.items()}


def lockstep(a, c, tensors):
    """Replays each of our runs in a.lockstep (trace files) and compares its losses and dev logits."""
    runs = []
    for name in os.listdir(a.lockstep):
        m = re.fullmatch(r"(.+)-seed(\d+)\.json", name)
        if m and (not a.tasks or m[1] in a.tasks.split(",")):
            runs.append((glue_rank(m[1]), m[1], int(m[2]), name))
    if not runs:
        sys.exit(f"{a.lockstep}: no trace file (<task>-seed<n>.json)")
    results = []
    for _, task_name, seed, name in sorted(runs):
        path = os.path.join(a.lockstep, name)
        trace = read_json(path, "cram-glue-trace", TRACE_VERSION)
        task = read_json(os.path.join(a.features, f"{task_name}.json"), "cram-glue-features", FEATURES_VERSION)
        outputs = len(task["labels"]) if task["labels"] else 1
        check_trace(path, trace, task, c, outputs)
        recipe = trace["finetune"]
        print(f"{task_name} seed {seed}: lockstep over {len(trace['losses'])} steps", file=sys.stderr, flush=True)
        model = Classifier(c, outputs, recipe["dropout"], recipe.get("pooling", "cls"))
        init_weights(model, None, tensors)  # the head's init is replaced by the trace's
        with torch.no_grad():
            for head_name, param in (("head.dense.weight", model.dense.weight), ("head.dense.bias", model.dense.bias),
                                     ("head.out.weight", model.head_out.weight), ("head.out.bias", model.head_out.bias)):
                t = trace["head"].get(head_name)
                if t is None:
                    sys.exit(f"{path}: head: no {head_name}")
                if tuple(t["shape"]) != tuple(param.shape):
                    sys.exit(f"{path}: {head_name}: shape {tuple(t['shape'])}, {tuple(param.shape)} expected")
                param.copy_(torch.tensor(t["values"], dtype=torch.float32).view(param.shape))
        masks = TraceDropout(recipe["dropout"])
        model.drop = masks
        for layer in model.layers:
            layer.drop = masks
        model.to(a.device)
        started = time.time()
        losses = finetune(model, task["train"], recipe, outputs, a.device, order=lambda epoch: trace["orders"][epoch],
                          width=lambda step: trace["widths"][step],
                          before_step=lambda step: masks.use(trace["seeds"][step] if recipe["dropout"] > 0 else None))
        masks.use(None)
        loss_difference = relative_differences(losses, trace["losses"])
        devs = []
        for ours, dev in zip(trace["devs"], task["devs"]):
            logits = predict(model, dev["ids"], a.device).double()
            ours_logits = torch.tensor(ours["logits"], dtype=torch.float64)
            devs.append({"dev_set": dev["name"], "max_logit_difference": (logits - ours_logits).abs().max().item(),
                         "ours": {k: 100 * v for k, v in scores(task["metrics"], ours_logits, dev["targets"]).items()},
                         "peer": {k: 100 * v for k, v in scores(task["metrics"], logits, dev["targets"]).items()}})
        print(f"{task_name} seed {seed}: worst relative loss difference {loss_difference['all']['worst']:.2e} "
              f"({time.time() - started:.1f} s)", file=sys.stderr, flush=True)
        results.append({"task": task_name, "seed": seed, "steps": len(losses), "loss_difference": loss_difference,
                        "devs": devs, "peer_losses": losses})
    print("| run | dev set | relative loss difference, worst / mean: steps 1-10, 1-200, all | max \\|Δ logit\\| "
          "| ours | peer |\n| --- | --- | --- | --- | --- | --- |")
    for r in results:
        spans = ", ".join(f"{v['worst']:.1e} / {v['mean']:.1e}" for v in r["loss_difference"].values())
        for d in r["devs"]:
            metric = next(iter(d["ours"]))
            print(f"| {r['task']} seed {r['seed']} ({r['steps']} steps) | {d['dev_set']} | {spans} "
                  f"| {d['max_logit_difference']:.1e} | {metric} {d['ours'][metric]:.2f} | {d['peer'][metric]:.2f} |")
    return {"lockstep": a.lockstep, "results": results}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True, help="a checkpoint folder (model.safetensors) or the file")
    ap.add_argument("--features", required=True, help="the glue-features folder `eval --write-features` wrote")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tasks", help="comma-separated task names (default: every file)")
    ap.add_argument("--lr", type=float, help="override the recipe's learning rate")
    ap.add_argument("--from-scratch", action="store_true", help="a fresh encoder instead of the checkpoint's")
    ap.add_argument("--lockstep", metavar="TRACE_DIR",
                    help="replay our runs (the glue-trace folder `eval --write-features --trace` wrote; their seeds, "
                         "not --seeds) and compare")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", help="write the scores as JSON here")
    a = ap.parse_args()
    if a.lockstep and (a.lr is not None or a.from_scratch):
        ap.error("--lockstep replays our runs as they ran: it takes no --lr or --from-scratch")
    path = a.checkpoint if a.checkpoint.endswith(".safetensors") else os.path.join(a.checkpoint, "model.safetensors")
    meta, tensors = read_safetensors(path)
    c = json.loads(meta["config"])
    # Float32 products in both modes, as our engine's (PyTorch's defaults may take TF32 on some versions).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"torch {torch.__version__} on {a.device}; {path}{' (not used: from scratch)' if a.from_scratch else ''}",
          file=sys.stderr)
    summary = lockstep(a, c, tensors) if a.lockstep else compare_seeds(a, c, tensors)
    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"peer": "pytorch", "torch": torch.__version__, "checkpoint": path, **summary}, f, indent=1)
        os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
