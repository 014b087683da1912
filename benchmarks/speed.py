"""Speed of deberta_torch against the reference (transformers 4.57.6) and a same-size BERT, on CPU.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/speed.py            # the full table (`make bench`)
    .venv/bin/python benchmarks/speed.py --quick                      # a 2-layer smoke run (~1 min)
    .venv/bin/python benchmarks/speed.py --families v3 --shapes 4x512 --dtypes bf16 --repeats 5

Every configuration builds three models with random weights: ours (deberta_torch, loaded with the
reference's state dict, so their outputs are compared too), the reference DeBERTa, and a BERT of the
same size (hidden, layers, heads, intermediate and vocabulary size, so embedding gradients cost the
same). The three runs of a configuration are interleaved, `--repeats` times, after one warm-up run
each, and the median is reported. Throughput is tokens per second of *CPU time* by default
(`--clock cpu`): on a shared machine wall time includes waiting for the other processes, CPU time does
not; both are stored. Peak memory is the rise of the process's peak resident set (VmHWM, reset before
an untimed run after the warm-up) over its resident set before that run; `kept_mb` is what the warm-up
left resident (ours' inference caches: packed Linear weights and position tables). The long-input run
(1 x 8192, v3, ours only) runs in a fresh subprocess and reports its whole-process peak.

`--compile` adds a fourth model, ours under `torch.compile(fullgraph=True, dynamic=False)`, timed
interleaved with the others after its compile (whose seconds are stored as `compile_s`).
`--device cuda` runs the same comparison on a GPU (wall time after synchronising, peak memory from
the CUDA allocator, dtypes fp16/bf16/fp32), plus ours with attn_implementation="flex_attention" and,
where the package is installed, the reference with disentangled-flash's Triton encoder
(`optimize_deberta`, v3 only), and checks the GPU targets (ours / reference >= 2.5x at 512 tokens,
>= 5x at 2048).

Writes benchmarks/results/speed.json and speed.png (`--out` to change) and prints the tables and a
check of the targets in docs/performance.md.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import importlib.util
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Python puts this folder first on sys.path; benchmarks/tokenizers.py would then shadow the `tokenizers`
# package that transformers imports. Use the repository root instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("USE_TF", "0")  # keep transformers from importing TensorFlow

# Hub config.json of microsoft/deberta-v3-base and microsoft/deberta-base (architecture fields).
FAMILIES = {
    "v3": dict(vocab_size=128100, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
               intermediate_size=3072, hidden_act="gelu", max_position_embeddings=512, type_vocab_size=0,
               layer_norm_eps=1e-7, relative_attention=True, max_relative_positions=-1, position_buckets=256,
               norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type="p2c|c2p",
               position_biased_input=False, pad_token_id=0),
    "v1": dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
               intermediate_size=3072, hidden_act="gelu", max_position_embeddings=512, type_vocab_size=0,
               layer_norm_eps=1e-7, relative_attention=True, max_relative_positions=-1,
               pos_att_type="c2p|p2c", position_biased_input=False, pad_token_id=0),
}
FAMILY_NAMES = {"v3": "deberta-v3-base", "v1": "deberta-base"}
DTYPES = ("fp32", "bf16", "bf16-autocast", "fp16")
IMPLS = ("ours", "ref", "bert")
# Targets of the performance issue (docs/performance.md): (what, shape, dtype, mode, against, ratio).
TARGETS = [
    ("ours/ref inference", "8x128", "fp32", "infer", "ref", 1.4),
    ("ours/ref inference", "4x512", "fp32", "infer", "ref", 2.0),
    ("ours/ref inference", "4x512", "bf16", "infer", "ref", 4.0),
    ("ours/ref training step", "8x128", "fp32", "train", "ref", 1.8),
]
# GPU: ours / reference at least this at a sequence length (and FlexAttention's memory linear in T).
GPU_TARGETS = {512: 2.5, 2048: 5.0}
BERT_TARGET = {"fp32": 0.9, "bf16": 0.8}  # ours / BERT at every inference shape, by dtype (training: 0.9)
LONG_TARGET_MB = 2500  # whole-process peak of the 1 x 8192 v3 forward



def flop_ceiling(family: str, batch: int, seq: int, mode: str, layers: int = 12) -> float:
    """BERT / ours matmul FLOPs at this shape (benchmarks/flops.py): the best ours/BERT any exact
    implementation reaches with kernels as efficient as BERT's."""
    from deberta_core.config import DebertaConfig, DebertaV2Config

    from benchmarks.flops import ceiling

    config = (DebertaConfig if family == "v1" else DebertaV2Config)(**dict(FAMILIES[family], num_hidden_layers=layers))
    return ceiling(config, batch, seq, train=mode == "train")


_libc = ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else None


# ------------------------------------------------------------------------------------------ memory
def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> float:
    """Return freed heap to the OS, reset VmHWM to the current RSS and return that RSS (MB)."""
    if _libc is not None:
        _libc.malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _rss_mb("VmRSS")


# ------------------------------------------------------------------------------------------ models
def build_models(family: str, layers: int, dtype: str, impls, device: str = "cpu", sequence_lengths=()):
    import torch
    import transformers

    import deberta_torch

    cfg = dict(FAMILIES[family], num_hidden_layers=layers)
    torch.manual_seed(0)
    models = {}
    if family == "v1":
        ref = transformers.DebertaModel(transformers.DebertaConfig(**cfg))
        ours = deberta_torch.DebertaModel(deberta_torch.DebertaConfig(**cfg))
    else:
        ref = transformers.DebertaV2Model(transformers.DebertaV2Config(**cfg))
        ours = deberta_torch.DebertaV2Model(deberta_torch.DebertaV2Config(**cfg))
    ours.load_checkpoint_state(ref.state_dict(), strict=True)
    bert = transformers.BertModel(transformers.BertConfig(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], num_hidden_layers=layers,
        num_attention_heads=cfg["num_attention_heads"], intermediate_size=cfg["intermediate_size"],
        max_position_embeddings=512, hidden_act="gelu", attn_implementation="sdpa"))
    weights = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype, torch.float32)
    for name, model in (("ours", ours), ("ref", ref), ("bert", bert)):
        if name in impls:
            models[name] = model.to(device=device, dtype=weights)
    if "flex" in impls:  # the same weights, FlexAttention kernel
        flex = copy.deepcopy(models["ours"])
        flex.set_attn_implementation("flex_attention")
        models["flex"] = flex
    if "compiled" in impls:
        models["compiled"] = torch.compile(models["ours"], fullgraph=True, dynamic=False)
    if "dflash" in impls and family == "v3":  # the reference with disentangled-flash's Triton encoder
        from disentangled_flash import optimize_deberta

        models["dflash"] = optimize_deberta(copy.deepcopy(models["ref"]), sequence_lengths=sequence_lengths)
    return models


def make_step(model, ids, mode: str, dtype: str):
    """A no-argument callable running one forward (infer) or forward + backward + SGD step (train)."""
    import torch

    autocast = dtype == "bf16-autocast"
    device = ids.device.type
    if mode == "infer":
        model.eval()

        def run():
            with torch.inference_mode(), torch.autocast(device, torch.bfloat16, enabled=autocast):
                return model(input_ids=ids).last_hidden_state
        return run
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)

    def run():
        with torch.autocast(device, torch.bfloat16, enabled=autocast):
            out = model(input_ids=ids).last_hidden_state
        out.float().pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return run


def time_call(fn, device: str = "cpu"):
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    sync()
    return out, time.perf_counter() - w0, time.process_time() - c0


def _reset_device_peak(device: str) -> float:
    """CPU: `_reset_peak` (process RSS, MB). CUDA: reset the allocator's peak; returns allocated MB."""
    if device != "cuda":
        return _reset_peak()
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated() / 2 ** 20


def _device_peak(device: str) -> float:
    if device != "cuda":
        return _rss_mb("VmHWM")
    import torch

    return torch.cuda.max_memory_allocated() / 2 ** 20


def run_config(models, family, dtype, mode, batch, seq, repeats, log, device="cpu"):
    import torch

    g = torch.Generator().manual_seed(batch * 100003 + seq)
    ids = torch.randint(5, 1000, (batch, seq), generator=g).to(device)
    steps = {name: make_step(m, ids, mode, dtype) for name, m in models.items()}
    rows = {name: {"wall": [], "cpu": []} for name in steps}
    outputs = {}
    for name, step in steps.items():
        if name == "compiled":
            torch._dynamo.reset()  # compile time of this shape alone
        before = _reset_device_peak(device)
        out, warm_wall, _ = time_call(step, device)  # warm-up: ours' caches (packed weights, position tables)
        if name == "compiled":
            rows[name]["compile_s"] = warm_wall
        if mode == "infer" and name in ("ours", "ref", "compiled", "flex", "dflash"):
            outputs[name] = out.float()
        del out
        base = _reset_device_peak(device)
        rows[name]["kept_mb"] = max(0.0, base - before)  # memory the warm-up left behind (caches)
        time_call(step, device)  # memory run
        rows[name]["peak_mb"] = max(0.0, _device_peak(device) - base)
    for _ in range(repeats):
        for name, step in steps.items():
            _, wall, cpu = time_call(step, device)
            rows[name]["wall"].append(wall)
            rows[name]["cpu"].append(cpu)
    tokens = batch * seq
    records = []
    for name, r in rows.items():
        rec = {"family": family, "dtype": dtype, "mode": mode, "batch": batch, "seq": seq, "impl": name,
               "tokens": tokens, "wall_s": r["wall"], "cpu_s": r["cpu"],
               "tokens_per_s_cpu": tokens / statistics.median(r["cpu"]),
               "tokens_per_s_wall": tokens / statistics.median(r["wall"]),
               "peak_mb": round(r["peak_mb"], 1), "kept_mb": round(r["kept_mb"], 1), "device": device}
        if "compile_s" in r:
            rec["compile_s"] = round(r["compile_s"], 1)
        if name in ("ours", "compiled", "flex", "dflash") and name in outputs and "ref" in outputs:
            rec["max_abs_diff_vs_ref"] = float((outputs[name] - outputs["ref"]).abs().max())
        records.append(rec)
    return records


# --------------------------------------------------------------------------------------- long input
def long_worker(args) -> None:
    """Child process: ours only, one forward at 1 x seq; prints one JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    models = build_models(args.families[0], args.layers, args.dtypes[0], ("ours",))
    model = models["ours"].eval()
    ids = torch.randint(5, 1000, (1, args.long_seq), generator=torch.Generator().manual_seed(0))
    before = _reset_peak()
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=args.dtypes[0] == "bf16-autocast"):
        _, wall, cpu = time_call(lambda: model(input_ids=ids).last_hidden_state)
    print(json.dumps({"family": args.families[0], "dtype": args.dtypes[0], "mode": "infer", "batch": 1,
                      "seq": args.long_seq, "impl": "ours", "tokens": args.long_seq, "wall_s": [wall], "cpu_s": [cpu],
                      "tokens_per_s_cpu": args.long_seq / cpu, "tokens_per_s_wall": args.long_seq / wall,
                      "peak_mb": round(_rss_mb("VmHWM") - before, 1),
                      # VmHWM, not ru_maxrss: Linux carries the forking parent's peak into a child's ru_maxrss
                      # across exec, so a large benchmark process would be counted here
                      "process_peak_mb": round(_rss_mb("VmHWM"), 1)}))


def run_long(args, family, dtype):
    cmd = [sys.executable, __file__, "--long-worker", "--families", family, "--dtypes", dtype,
           "--layers", str(args.layers), "--threads", str(args.threads), "--long-seq", str(args.long_seq)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ report
def ratio(records, cfg, a, b, clock):
    pick = {r["impl"]: r for r in records if all(r[k] == v for k, v in cfg.items())}
    if a not in pick or b not in pick:
        return None
    key = f"tokens_per_s_{clock}"
    return pick[a][key] / pick[b][key]


def summarize(records, clock):
    key = f"tokens_per_s_{clock}"
    lines = [f"{'model':<16}{'dtype':<14}{'mode':<6}{'shape':>7}  {'ours':>8}{'ref':>8}{'bert':>8}"
             f"{'ours/ref':>9}{'ours/bert':>10}{'ceiling':>8}{'peak MB ours/ref/bert':>24}  max|ours-ref|"]
    seen = []
    for r in records:
        cfg = (r["family"], r["dtype"], r["mode"], r["batch"], r["seq"])
        if cfg not in seen:
            seen.append(cfg)
    for family, dtype, mode, batch, seq in seen:
        group = {r["impl"]: r for r in records
                 if (r["family"], r["dtype"], r["mode"], r["batch"], r["seq"]) == (family, dtype, mode, batch, seq)}

        def val(name, fmt="{:.0f}", field=key):
            return fmt.format(group[name][field]) if name in group and field in group[name] else "-"
        ours = group.get("ours")
        r_ref = f"{ours[key] / group['ref'][key]:.2f}" if ours and "ref" in group else "-"
        r_bert = f"{ours[key] / group['bert'][key]:.2f}" if ours and "bert" in group else "-"
        bound = f"{flop_ceiling(family, batch, seq, mode):.2f}" if "bert" in group else "-"
        mem = "/".join(val(n, "{:.0f}", "peak_mb") for n in IMPLS)
        diff = f"{ours['max_abs_diff_vs_ref']:.1e}" if ours and "max_abs_diff_vs_ref" in ours else ""
        extra = ""
        for name, against in (("compiled", "ours"), ("flex", "ref"), ("dflash", "ref")):
            if name in group and against in group:
                extra += (f"  {name} {group[name][key]:.0f} ({group[name][key] / group[against][key]:.2f}x {against}"
                          + (f", compile {group[name]['compile_s']:.0f} s" if "compile_s" in group[name] else "")
                          + f", peak {group[name]['peak_mb']:.0f} MB)")
        lines.append(f"{FAMILY_NAMES[family]:<16}{dtype:<14}{mode:<6}{f'{batch}x{seq}':>7}  {val('ours'):>8}"
                     f"{val('ref'):>8}{val('bert'):>8}{r_ref:>9}{r_bert:>10}{bound:>8}{mem:>24}  {diff}{extra}")
    return "\n".join(lines)


def check_targets(records, clock, family="v3"):
    out = []
    for what, shape, dtype, mode, against, target in TARGETS:
        b, s = map(int, shape.split("x"))
        got = ratio(records, dict(family=family, dtype=dtype, mode=mode, batch=b, seq=s), "ours", against, clock)
        if got is not None:
            out.append(f"{'PASS' if got >= target else 'MISS'}  {what} {shape} {dtype}: {got:.2f} (target >= {target})")
    for r in records:
        if r["family"] == family and r["impl"] == "ours" and r.get("device", "cpu") == "cpu":
            cfg = {k: r[k] for k in ("family", "dtype", "mode", "batch", "seq")}
            target = 0.9 if r["mode"] == "train" else BERT_TARGET.get(r["dtype"], BERT_TARGET["bf16"])
            got = ratio(records, cfg, "ours", "bert", clock)
            if got is not None:
                bound = flop_ceiling(family, r["batch"], r["seq"], r["mode"])
                out.append(f"{'PASS' if got >= target else 'MISS'}  ours/bert {r['mode']} {r['batch']}x{r['seq']} "
                           f"{r['dtype']}: {got:.2f} (target >= {target}; FLOP ceiling {bound:.2f})")
            got = ratio(records, cfg, "compiled", "ours", clock)
            if got is not None:
                out.append(f"{'PASS' if got >= 1.0 else 'MISS'}  compiled/eager {r['mode']} {r['batch']}x{r['seq']} "
                           f"{r['dtype']}: {got:.2f} (target >= 1.0)")
        if r["family"] == family and r["impl"] == "ours" and r.get("device", "cpu") != "cpu" and r["seq"] in GPU_TARGETS:
            cfg = {k: r[k] for k in ("family", "dtype", "mode", "batch", "seq")}
            target = GPU_TARGETS[r["seq"]]
            for name in ("ours", "flex"):
                got = ratio(records, cfg, name, "ref", clock)
                if got is not None:
                    out.append(f"{'PASS' if got >= target else 'MISS'}  GPU {name}/ref {r['mode']} {r['batch']}x{r['seq']} "
                               f"{r['dtype']}: {got:.2f} (target >= {target})")
        if r["family"] == family and "process_peak_mb" in r:
            out.append(f"{'PASS' if r['process_peak_mb'] < LONG_TARGET_MB else 'MISS'}  1x{r['seq']} {r['dtype']} "
                       f"process peak: {r['process_peak_mb']:.0f} MB (target < {LONG_TARGET_MB})")
    return out


def plot(records, clock, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart")
        return
    key = f"tokens_per_s_{clock}"
    families = [f for f in FAMILIES if any(r["family"] == f for r in records)]
    fig, axes = plt.subplots(len(families), 1, figsize=(13, 4.2 * len(families)), squeeze=False)
    colors = {"ours": "#1b9e77", "ref": "#d95f02", "bert": "#7570b3"}
    for ax, family in zip(axes[:, 0], families):
        cfgs = []
        for r in records:
            c = (r["dtype"], r["mode"], r["batch"], r["seq"])
            if r["family"] == family and c not in cfgs and r["seq"] <= 512:
                cfgs.append(c)
        width = 0.27
        for k, impl in enumerate(IMPLS):
            vals = []
            for c in cfgs:
                hit = [r[key] for r in records if r["family"] == family and r["impl"] == impl
                       and (r["dtype"], r["mode"], r["batch"], r["seq"]) == c]
                vals.append(hit[0] if hit else 0.0)
            xs = [i + (k - 1) * width for i in range(len(cfgs))]
            ax.bar(xs, vals, width, label={"ours": "deberta_torch", "ref": "transformers DeBERTa",
                                            "bert": "transformers BERT (same size)"}[impl], color=colors[impl])
        ax.set_xticks(range(len(cfgs)))
        ax.set_xticklabels([f"{d}\n{m} {b}x{s}" for d, m, b, s in cfgs], fontsize=8)
        ax.set_ylabel(f"tokens/s ({clock} time)")
        ax.set_title(f"{FAMILY_NAMES[family]}, CPU, {records[0].get('threads', 1)} thread(s)")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -------------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--families", default="v3,v1", help="comma list of v3 (deberta-v3-base), v1 (deberta-base)")
    p.add_argument("--shapes", default="1x128,8x128,1x512,4x512", help="inference shapes, BATCHxSEQ")
    p.add_argument("--train-shapes", default="8x128", help="training-step shapes ('' for none)")
    p.add_argument("--dtypes", default="fp32,bf16", help=f"comma list of {', '.join(DTYPES)} (bf16: bf16 weights)")
    p.add_argument("--train-dtypes", default="fp32", help="dtypes of the training step")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per model and configuration")
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="time base of tokens/s and ratios")
    p.add_argument("--long-seq", type=int, default=8192, help="sequence length of the long-input run (0: skip)")
    p.add_argument("--quick", action="store_true", help="2 layers, 1 repeat, short shapes, no long input")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="directory for speed.json/png")
    p.add_argument("--compile", action="store_true", help="also time ours under torch.compile (inference shapes)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="cuda: run on the GPU (wall clock, allocator peaks, plus ours on FlexAttention); "
                        "defaults become --dtypes fp16,bf16 --shapes 8x512,1x2048 --train-shapes ''")
    p.add_argument("--long-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.device == "cuda":
        args.clock, args.long_seq = "wall", 0  # CPU time means nothing for GPU work
        defaults = {"dtypes": "fp32,bf16", "shapes": "1x128,8x128,1x512,4x512", "train_shapes": "8x128"}
        for name, value in {"dtypes": "fp16,bf16", "shapes": "8x512,1x2048", "train_shapes": ""}.items():
            if getattr(args, name) == defaults[name]:
                setattr(args, name, value)
    if args.quick:
        args.layers, args.repeats, args.long_seq = 2, 1, 0
        args.shapes, args.train_shapes = "1x128,8x128", "8x128"
    args.families = [f for f in args.families.split(",") if f]
    args.dtypes = [d for d in args.dtypes.split(",") if d]
    args.train_dtypes = [d for d in args.train_dtypes.split(",") if d]
    for d in args.dtypes + args.train_dtypes:
        if d not in DTYPES:
            p.error(f"unknown dtype {d!r}; choose from {DTYPES}")
    for f in args.families:
        if f not in FAMILIES:
            p.error(f"unknown family {f!r}; choose from {list(FAMILIES)}")
    args.shapes = [tuple(map(int, s.split("x"))) for s in args.shapes.split(",") if s]
    args.train_shapes = [tuple(map(int, s.split("x"))) for s in args.train_shapes.split(",") if s]
    return args


def cpu_features() -> dict:
    """The CPU model and the matrix extensions that decide bf16 speed (AMX tiles, AVX-512 bf16)."""
    info = {"cpu": platform.processor() or platform.machine(), "amx": [], "avx512_bf16": False}
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return info
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), None)
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    info.update(cpu=model or info["cpu"], amx=sorted(f for f in set(flags) if f.startswith("amx")),
                avx512_bf16="avx512_bf16" in flags)
    return info


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads > 1:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning threads would count as CPU time
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    if args.long_worker:
        long_worker(args)
        return 0
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "threads": args.threads,
            "layers": args.layers, "repeats": args.repeats, "clock": args.clock,
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv)}
    meta.update(cpu_features())
    if args.device == "cuda":
        meta["gpu"] = torch.cuda.get_device_name()
        print(f"GPU: {meta['gpu']}", flush=True)
    print(f"CPU: {meta['cpu']}; AMX: {'yes (' + ', '.join(meta['amx']) + ')' if meta['amx'] else 'no'}; "
          f"AVX-512 bf16: {'yes' if meta['avx512_bf16'] else 'no'}", flush=True)
    print(f"threads {args.threads}, {args.layers} layers, {args.repeats} repeats, tokens/s of {args.clock} time; "
          f"torch {torch.__version__}, transformers {transformers.__version__}", flush=True)
    records = []
    t_start = time.time()
    for family in args.families:
        plan = [(d, "infer", b, s) for d in args.dtypes for b, s in args.shapes]
        plan += [(d, "train", b, s) for d in args.train_dtypes for b, s in args.train_shapes]
        for dtype in dict.fromkeys(d for d, *_ in plan):
            impls = IMPLS + (("compiled",) if args.compile else ()) + (("flex",) if args.device == "cuda" else ())
            if args.device == "cuda" and importlib.util.find_spec("disentangled_flash") is not None:
                impls += ("dflash",)  # disentangled-flash (Triton), where it is installed
            models = build_models(family, args.layers, dtype, impls, args.device,
                                  sorted({s for _, _, _, s in plan}))
            for d, mode, b, s in plan:
                if d != dtype:
                    continue
                chosen = {n: m for n, m in models.items() if mode == "infer" or n != "compiled"}
                recs = run_config(chosen, family, dtype, mode, b, s, args.repeats, print, args.device)
                for r in recs:
                    r["threads"] = args.threads
                records += recs
                print(summarize(recs, args.clock).splitlines()[1], f"  [{time.time() - t_start:.0f}s]", flush=True)
            del models
    if args.long_seq and "v3" in args.families:
        print(f"long input: v3 1 x {args.long_seq}, ours only, fresh process ...", flush=True)
        rec = run_long(args, "v3", args.dtypes[0] if args.dtypes[0] != "bf16" else "fp32")
        if rec is not None:
            rec["threads"] = args.threads
            records.append(rec)
            print(f"  {rec['tokens_per_s_cpu']:.0f} tokens/s (cpu), {rec['wall_s'][0]:.0f} s wall, forward peak "
                  f"+{rec['peak_mb']:.0f} MB, process peak {rec['process_peak_mb']:.0f} MB", flush=True)
    print("\n" + summarize([r for r in records if r["seq"] <= 512], args.clock))
    checks = check_targets(records, args.clock)
    if checks:
        print("\ntargets (deberta-v3-base, one run):\n" + "\n".join(checks))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from deberta_torch import kernels

    picks = {f"{str(k[0]).removeprefix('torch.')} rows<={k[1]} {k[2]}->{k[3]}{' +gelu' if k[4] else ''}": v
             for k, v in sorted(kernels.linear_choices().items(), key=str)}
    meta["linear_choices"] = picks
    print("Linear kernels chosen by measurement (ours):", ", ".join(f"{k}: {v}" for k, v in picks.items()) or "none")
    precision = {"x".join(map(str, k[:5])): v for k, v in kernels.PRECISION.picks.items()}  # (B, H, T, D, S)
    meta["bf16_attention_precision"] = precision
    if precision:
        print("bf16 attention computed in (ours, measured per B x H x T x D x S):",
              ", ".join(f"{k}: {v}" for k, v in precision.items()))
    (out / "speed.json").write_text(json.dumps({"meta": meta, "records": records, "targets": checks}, indent=1) + "\n")
    plot(records, args.clock, out / "speed.png")
    print(f"\nwrote {out / 'speed.json'} and {out / 'speed.png'} ({time.time() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
