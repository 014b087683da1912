"""Where the fast path spends its time, and the training-bias A/B quoted in docs/performance.md.

    python benchmarks/profile.py bias            # relative_bias forward + backward, 8x128 v3-base shapes:
                                                 # its autograd Function (training default) vs autograd
                                                 # through the in-place ops, and the Function with
                                                 # unaligned band widths
    python benchmarks/profile.py step            # a v3-base training step (8x128, 12 layers), each way
    python benchmarks/profile.py layer [4x512]   # torch.profiler op table of v3-base inference, per layer
    python benchmarks/profile.py paths [4x512]   # ours/BERT, 12-layer v3-base inference, with each way of
                                                 # building the relative bias forced (native/<tile>, torch)
    python benchmarks/profile.py attention [1x512]  # one layer's relative attention (v3-base shapes) by bias
                                                 # kernel, against plain SDPA on the same q, k, v
    python benchmarks/profile.py gelu [4x512]    # ours/BERT, 4-layer v3-base inference, the intermediate
                                                 # layer's GELU in place (the default) or into a fresh tensor

One thread (OMP_NUM_THREADS=1 unless set), CPU time, runs interleaved, medians.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("USE_TF", "0")  # transformers: torch only
# This folder holds tokenizers.py, which would shadow the `tokenizers` package: import from the
# repository root instead (speed.py as benchmarks.speed).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import functools  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from deberta_torch import kernels  # noqa: E402


def _times_ms(fns: dict, rounds: int, clock=time.process_time, evict: bool = False) -> dict:
    """Each of `fns` timed `rounds` times, interleaved: name -> list of ms. evict: write
    kernels._EVICT_BYTES of other data before each run (the cache state inside a model)."""
    scratch = torch.empty(kernels._EVICT_BYTES // 4) if evict else None
    times = {name: [] for name in fns}
    for r in range(rounds):
        for name, fn in fns.items():
            if scratch is not None:
                scratch.fill_(float(r))
            start = clock()
            fn()
            times[name].append((clock() - start) * 1000)
    return times


def _median_ms(fns: dict, rounds: int) -> dict:
    return {name: statistics.median(t) for name, t in _times_ms(fns, rounds).items()}


def _patched(owner, name: str, value, fn):
    """`fn` run with `owner.name` set to `value`, restored afterwards."""
    def run():
        saved = getattr(owner, name)
        setattr(owner, name, value)
        try:
            return fn()
        finally:
            setattr(owner, name, saved)
    return run


def _bias_forced(choice: str, fn):
    """`fn` with kernels.BIAS taking `choice` ("native/<tile>" or "torch") for every shape."""
    return _patched(kernels.BIAS, "pick", lambda key, runs: choice, fn)


def _print_cpu() -> None:
    from benchmarks import speed

    cpu = speed.cpu_features()
    print(f"CPU: {cpu['cpu']}; AMX: {'yes' if cpu['amx'] else 'no'}; threads {torch.get_num_threads()}")


def bias(rounds: int = 9) -> None:
    B, H, T, D = 8, 12, 128, 64
    g = torch.Generator().manual_seed(0)
    base = [torch.randn(B, H, T, D, generator=g), torch.randn(B, H, T, D, generator=g),
            torch.randn(H, 2 * T - 1, D, generator=g), torch.randn(H, 2 * T - 1, D, generator=g)]
    grad = torch.randn(B, H, T, T, generator=g)

    def run(function):
        inputs = [t.clone().requires_grad_() for t in base]
        kernels.relative_bias(*inputs, (0, T), autograd=function).backward(grad)

    fns = {"function": lambda: run(True), "in place": lambda: run(False),
           # the Function with its bands at their natural, odd width (159 rows here)
           "unaligned": _patched(kernels, "BAND_ALIGN", 1, lambda: run(True))}
    ms = _median_ms(fns, rounds)
    _print_cpu()
    print(f"relative_bias forward + backward, B={B} H={H} T={T} D={D}, CPU ms (median of {rounds}):")
    for name, value in ms.items():
        print(f"  {name:13s} {value:7.1f}")


def step(rounds: int = 5) -> None:
    from benchmarks import speed

    model = speed.build_models("v3", 12, "fp32", ("ours",))["ours"]
    ids = torch.randint(5, 1000, (8, 128), generator=torch.Generator().manual_seed(0))
    run = speed.make_step(model, ids, "train", "fp32")
    fns = {name: _patched(kernels, "relative_bias", functools.partial(kernels.relative_bias, autograd=flag), run)
           for name, flag in (("function", True), ("in place", False))}
    fns["unaligned"] = _patched(kernels, "BAND_ALIGN", 1, fns["function"])  # odd band widths (159)
    fns["function"]()  # warm-up
    ms = _median_ms(fns, rounds)
    _print_cpu()
    print(f"v3-base training step 8x128, 12 layers, tokens/s of CPU time (median of {rounds}):")
    for name, value in ms.items():
        print(f"  {name:13s} {1024 / (value / 1000):7.1f}")


def layer(shape: str = "4x512", layers: int = 4) -> None:
    from benchmarks import speed
    from torch.profiler import ProfilerActivity, profile

    batch, seq = map(int, shape.split("x"))
    model = speed.build_models("v3", layers, "fp32", ("ours",))["ours"]
    ids = torch.randint(5, 1000, (batch, seq), generator=torch.Generator().manual_seed(0))
    run = speed.make_step(model, ids, "infer", "fp32")
    run()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        run()
    print(f"v3-base inference {shape}, {layers} layers: self CPU ms per layer, by op and input shapes")
    events = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
    for e in events[:15]:
        print(f"  {e.self_cpu_time_total / 1000 / layers:7.1f}  {e.key:32s} {str(e.input_shapes)[:80]}")


def paths(shape: str = "4x512", rounds: int = 5) -> None:
    """ours/BERT with each bias kernel forced, in the model: what `kernels.BIAS` chooses between, timed
    where it runs (its own choice is timed alone, with cold caches)."""
    from benchmarks import speed

    batch, seq = map(int, shape.split("x"))
    models = speed.build_models("v3", 12, "fp32", ("ours", "bert"))
    ids = torch.randint(5, 1000, (batch, seq), generator=torch.Generator().manual_seed(0))
    ours, bert = (speed.make_step(models[name], ids, "infer", "fp32") for name in ("ours", "bert"))

    fns = {f"native/{tile}": _bias_forced(f"native/{tile}", ours) for tile in kernels.NATIVE_TILES}
    fns.update(torch=_bias_forced("torch", ours), bert=bert)
    for fn in fns.values():
        fn()
    ms = _median_ms(fns, rounds)
    _print_cpu()
    print(f"v3-base inference {shape}, 12 layers, fp32, ours/BERT by bias kernel (median of {rounds}):")
    for name, value in ms.items():
        if name != "bert":
            print(f"  {name:11s} {ms['bert'] / value:.3f}")
    ours()  # unforced: what the measured choice takes
    print("chosen by kernels.BIAS here:", kernels.bias_choices())


def attention(shape: str = "1x512", rounds: int = 30) -> None:
    """The relative part of one layer's attention, timed alone: `relative_attention` with each bias kernel
    forced, and plain scaled_dot_product_attention (BERT's layer) on the same strided q, k, v. Wall time,
    interleaved, 32 MB written before each run (the cache state inside a model), min and median."""
    from deberta_core.relative_position import line_bounds
    from deberta_torch.relative_position import relative_position_line

    batch, seq = map(int, shape.split("x"))
    H, D = 12, 64
    g = torch.Generator().manual_seed(0)
    fused = torch.randn(batch, seq, 3, H, D, generator=g)  # as the fused projection lays them out
    q, k, v = (fused[:, :, i].transpose(1, 2) for i in range(3))
    pos_key, pos_query = (torch.randn(H, 512, D, generator=g) / 8 for _ in range(2))
    line = relative_position_line(seq, seq, 256, 256, 512)
    flat = line_bounds(seq, seq, 256, 256, 512)[2:]

    def layer():  # as attend does it: native tables, laid out by distance only for the PyTorch path
        key_line, query_line, native = kernels.bias_tables(q, pos_key, pos_query, line)
        kernels.relative_attention(q, k, v, 8.0, key_line, query_line, flat_ends=flat, native=native)

    fns = {f"native/{tile}": _bias_forced(f"native/{tile}", layer) for tile in kernels.NATIVE_TILES}
    fns.update(torch=_bias_forced("torch", layer),
               sdpa=lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
    with torch.inference_mode():
        for fn in fns.values():
            fn()
        times = _times_ms(fns, rounds, clock=time.perf_counter, evict=True)
    _print_cpu()
    print(f"one layer's attention, v3-base shapes, {shape}, fp32, ms (min / median of {rounds}):")
    for name, t in times.items():
        print(f"  {name:11s} {min(t):8.2f} {statistics.median(t):8.2f}")


def gelu(shape: str = "4x512", rounds: int = 9) -> None:
    """ours/BERT with the plain Linear path's exact GELU in place (`kernels._gelu`) and into a fresh tensor
    (what F.gelu does, and BERT), 4 layers (the ratio is per layer), interleaved."""
    from benchmarks import speed
    import torch.nn.functional as F

    batch, seq = map(int, shape.split("x"))
    layers = 4
    models = speed.build_models("v3", layers, "fp32", ("ours", "bert"))
    ids = torch.randint(5, 1000, (batch, seq), generator=torch.Generator().manual_seed(0))
    ours, bert = (speed.make_step(models[name], ids, "infer", "fp32") for name in ("ours", "bert"))
    fns = {"in place": ours, "fresh": _patched(kernels, "_gelu", F.gelu, ours), "bert": bert}
    faults = {name: [] for name in fns}

    def counted(name, fn):  # minor page faults: the robust half of this A/B on a noisy machine
        def run():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            fn()
            faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        return run

    for fn in fns.values():
        fn()
    ms = _median_ms({name: counted(name, fn) for name, fn in fns.items()}, rounds)
    _print_cpu()
    print(f"v3-base inference {shape}, {layers} layers, fp32, per layer: CPU ms, ours/BERT, minor page faults "
          f"(medians of {rounds}):")
    for name, value in ms.items():
        per_layer = statistics.median(faults[name]) / layers
        print(f"  {name:9s} {value / layers:7.1f}  {ms['bert'] / value:.3f}  {per_layer:7.0f}")
    print("Linear kernels chosen:", kernels.linear_choices())


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    what = sys.argv[1] if len(sys.argv) > 1 else "bias"
    modes = {"bias": bias, "step": step, "layer": layer, "paths": paths, "attention": attention, "gelu": gelu}
    modes[what](*sys.argv[2:3])
