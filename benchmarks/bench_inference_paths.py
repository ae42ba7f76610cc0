"""Real-time factor of the shipped model's inference path, one speed-up at a time.

The shipped default model (the spectrum-aware mask head) is run through
``SpectrumAwareEnhancer.enhance_waveform`` (chunked, fast path, its packaged precision)
on the same real noisy input, with the fast path's speed-ups taken away one at a time
from the current path (``current``) back to the path before them (``reference``):

- ``reference``: one chunk per call (as for the HiFi-GAN generator), 4 chunks per
  ``overlap_add`` call, s3prl's elementwise GELU, and the fusion's attention computed
  by ``nn.MultiheadAttention`` (its transposed projections);
- ``+ batched chunks``: equal-length chunks as one batch, 8 per call;
- ``+ fusion attention``: the fusion attends from the contiguous projections (SDPA);
- ``current``: also ``F.gelu`` in TERA (:func:`speechbrain_sslse.fast.functional_gelu`),
  i.e. what the package runs.

All paths are timed interleaved in one process (one warm-up call each, then
``repeats`` rounds), and the speed-up is the reference's median over each path's. The
largest difference of each output from the reference's (in bf16 the paths round
differently) is printed with it.

    OMP_NUM_THREADS=1 python benchmarks/bench_inference_paths.py            # 1 thread, 60 s, median of 5
    python benchmarks/bench_inference_paths.py --quick                      # CI: 4 s, 2 repeats
    python benchmarks/bench_inference_paths.py --model <packaged model folder> --seconds 10
"""

import argparse
import contextlib
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_peers import noisy_input  # noqa: E402
from common import interleaved_times, machine, print_table, summary  # noqa: E402

import speechbrain_sslse.fast.wrapper as fast_wrapper  # noqa: E402
from speechbrain_sslse.inference import SpectrumAwareEnhancer, default_model_dir  # noqa: E402
from speechbrain_sslse.lobes import fusion as fusion_module  # noqa: E402

PATHS = ["reference", "+ batched chunks", "+ fusion attention", "current"]


@contextlib.contextmanager
def _no_functional_gelu(module):
    yield


def _multihead_attend(self, query, key, value, mask):
    attended, _ = self.attention(query, key, value, attn_mask=mask, need_weights=False)
    return attended


@contextlib.contextmanager
def path_settings(enhancer, name):
    """Within the block, ``enhancer`` runs the path ``name`` of :data:`PATHS`."""
    step = PATHS.index(name)
    saved = (
        enhancer.hparams.chunk_batch_size,
        fast_wrapper.functional_gelu,
        fusion_module._AttentionBlock._attend,
        enhancer._inference_model.per_item,
    )
    try:
        if step < 1:  # one chunk per call, as for the HiFi-GAN generator
            enhancer._inference_model.per_item = True
            enhancer.hparams.chunk_batch_size = 4
        if step < 2:
            fusion_module._AttentionBlock._attend = _multihead_attend
        if step < 3:
            fast_wrapper.functional_gelu = _no_functional_gelu
        yield
    finally:
        (
            enhancer.hparams.chunk_batch_size,
            fast_wrapper.functional_gelu,
            fusion_module._AttentionBlock._attend,
            enhancer._inference_model.per_item,
        ) = saved


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="packaged model folder (default: the shipped model)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="4 s input, 2 repeats (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.repeats = 4.0, 2
    torch.set_num_threads(args.threads)
    source = args.model or str(default_model_dir())
    enhancer = SpectrumAwareEnhancer.from_hparams(source=source, num_threads=args.threads)
    if not getattr(enhancer._inference_model, "needs_noisy", False):
        parser.error(f"{source} is not a mask-head model: these speed-ups are the mask head's path")
    wav, description = noisy_input(args.seconds)

    def run(name):
        def call(x):
            with path_settings(enhancer, name):
                return enhancer.enhance_waveform(x)

        return call

    paths = {name: run(name) for name in PATHS}
    outputs = {name: fn(wav) for name, fn in paths.items()}
    times = interleaved_times(paths, wav, args.repeats, warmup=False)
    reference = summary(times["reference"])[0]
    rows = []
    for name in PATHS:
        median, low, high = summary(times[name])
        diff = float((outputs[name] - outputs["reference"]).abs().max())
        rows.append(
            [
                name,
                f"{median:.3f}",
                f"{low:.3f}",
                f"{high:.3f}",
                f"{median / args.seconds:.4f}",
                f"{reference / median:.2f}x",
                f"{diff:.1e}",
            ]
        )
    print(
        f"# Shipped-model inference paths ({machine()}), {args.threads} thread(s), median of {args.repeats}"
    )
    print(f"model: {source}; precision {enhancer.precision}; input: {args.seconds:g} s, {description}")
    print_table(["path", "median s", "min s", "max s", "RTF", "speed-up", "max |diff| vs ref"], rows)
    current = summary(times["current"])[0]
    print(
        f"\nsummary: the shipped model on {args.threads} thread(s), {args.seconds:g} s input: RTF "
        f"{current / args.seconds:.4f}, {reference / current:.2f}x the reference path's "
        f"{reference / args.seconds:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
