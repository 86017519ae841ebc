"""Issue 15, fair timing: MusicGen-Small in fp32 and bf16, each with transformers' dynamic KV cache and a static one,
bf16 on the static cache compiled (``compile=True``: transformers' ``CompileConfig`` on the decoding step), and bf16
with the decoder's linears prepacked for oneDNN (``prepack=True``, the CPU default for bf16) on either of
transformers' caches and on the preallocated one (the CPU default).

Real-size random weights (speed does not depend on trained values), eight adapters side by side in one process,
interleaved round by round so that load on the machine hits all alike; each figure is the fastest of the
rounds (a median within the round), because other processes on a shared 2-core machine only ever add time. Per
configuration:

- the per-frame time the harness's extrapolation uses (``--timing extrapolate``: the median frame time of the
  first frames of a 47.55 s request through the adapter's own ``generate``);
- one decoder step with 1 and with 2,380 positions in the cache (:meth:`_MusicGen.decoder_step_seconds`); the step's
  cost is linear in the position for the dynamic cache (attention and the cache's concatenation grow) and the
  preallocated one (attention grows) and constant for the static one (it always attends over the whole cache), so
  the whole run is estimated as the mean of the two times x 2,383 steps. The compiled configuration's bare steps
  would run uncompiled, so its whole-run figure is the harness's own estimate (the first frames plus the bare static
  step's growth, which is nil: in whole compiled runs on an AMX Xeon the first and last 200 steps took 127.9 / 127.4
  ms), given for every configuration as ``frames_plus_growth_s``; the first generation's time (compiling) beside it;
- bf16's distance from fp32 (the default, prepacked): the relative error of the first step's (conditional) logits,
  and the share of codes that agree over 16 greedy frames (random weights give nearly flat logits, so that share is a
  pessimistic figure); and whether the prepacked linears' greedy codes equal the plain ``nn.Linear``'s.

The ratios go to ``extra_info``; docs/benchmarks.md and baselines.musicgen's defaults (``DEFAULT_CACHE``,
``default_inference``) rest on them. Run with `nox -s bench` (about 8 minutes on a shared 2-core CPU: eight
587M-parameter models to build, one compile, then the rounds). Nothing here is a quality result.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from baselines.base import GenerationRequest, WeightsChoice
from baselines.musicgen import DEFAULT_DURATION_S, MusicGenSmall
from samuel.provenance import cpu_name

CONFIGS = (("float32", "dynamic"), ("bfloat16", "dynamic"), ("bfloat16", "static"), ("float32", "static"),
           ("bfloat16", "static compiled"), ("bfloat16", "dynamic prepacked"), ("bfloat16", "static prepacked"),
           ("bfloat16", "preallocated prepacked"))
DEFAULT = ("bfloat16", "preallocated prepacked")  # what ``auto`` takes on a CPU with native bf16
BASELINE = ("float32", "dynamic")  # transformers' defaults: what Table II showed before issue 15
FRAMES = 6  # timed frames per run (the first holds the prefill, so 5 frame times)
ROUNDS = 3
GREEDY_STEPS = 19  # 16 whole frames of 4 codebooks
REQUEST = GenerationRequest("bench", seed=0, duration_s=DEFAULT_DURATION_S, prompt="upbeat pop with guitar and drums")


@pytest.fixture(scope="module")
def adapters() -> dict[tuple[str, str], MusicGenSmall]:
    built = {}
    for dtype, cache in CONFIGS:
        adapter = MusicGenSmall(WeightsChoice("random"), dtype=dtype, cache_implementation=cache.split()[0],
                                compile=cache.endswith("compiled"), prepack=cache.endswith("prepacked"))
        adapter.load()
        built[(dtype, cache)] = adapter
    return built


def frame_seconds(adapter: MusicGenSmall, frames: int = FRAMES) -> float:
    """The median time between the frames of one run cut to ``frames`` (as bench.timing's extrapolation)."""
    stamps: list[float] = []
    adapter.generate([REQUEST], max_units=frames, on_unit=lambda: stamps.append(time.perf_counter()))
    return float(np.median(np.diff(stamps)))


def first_step_logits(adapter: MusicGenSmall) -> torch.Tensor:
    """(codebooks, vocab) conditional logits of the first step, in float32."""
    model = adapter._model
    text = adapter._tokenizer([REQUEST.prompt])
    start = torch.full((model.decoder.num_codebooks, 1), model.generation_config.decoder_start_token_id)
    with torch.no_grad():
        return model(input_ids=text["input_ids"], attention_mask=text["attention_mask"],
                     decoder_input_ids=start).logits.float()


def greedy_codes(adapter: MusicGenSmall, steps: int) -> torch.Tensor:
    """The (codebooks, frames) codes of ``steps`` greedy steps with guidance 3, the delay pattern undone: codebook k
    of frame j is sampled at step j + k, so ``steps - codebooks + 1`` whole frames."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Keep(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
            self.ids = input_ids.clone()
            return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    keep = Keep()
    text = adapter._tokenizer([REQUEST.prompt])
    with torch.no_grad():
        adapter._model.generate(**text, do_sample=False, guidance_scale=3.0, max_new_tokens=steps,
                                stopping_criteria=StoppingCriteriaList([keep]))
    ids = keep.ids[:, 1:]  # (codebooks, steps): the start token dropped
    codebooks = ids.shape[0]
    frames = steps - codebooks + 1
    return torch.stack([ids[k, k: k + frames] for k in range(codebooks)])


def test_musicgen_precision_and_cache(benchmark, summary, adapters) -> None:
    """Each configuration's frame times, late-step times and whole-run estimates, and bf16's distance."""
    positions = (1, adapters[BASELINE].total_units(REQUEST) - 3)  # the first step and (about) the last
    first_call_s = {}
    for config, adapter in adapters.items():  # warm-up: kernels, allocator, the static cache, compiling
        t0 = time.perf_counter()
        adapter.generate([REQUEST], max_units=2)
        first_call_s[config] = time.perf_counter() - t0
    frame_times: dict[tuple[str, str], list[float]] = {c: [] for c in CONFIGS}
    step_times: dict[tuple[str, str], list[dict[int, float]]] = {c: [] for c in CONFIGS}

    def interleaved() -> None:
        for _ in range(ROUNDS):
            for config in CONFIGS:
                frame_times[config].append(frame_seconds(adapters[config]))
                step_times[config].append(adapters[config].decoder_step_seconds(positions, repeats=2))

    benchmark.pedantic(interleaved, rounds=1, warmup_rounds=0)
    steps = adapters[BASELINE].total_units(REQUEST)
    figures = {}
    for config in CONFIGS:  # the fastest round of each: other processes on a shared machine only ever add time
        late = {p: min(s[p] for s in step_times[config]) for p in positions}
        frame = min(frame_times[config])
        figures[config] = {"frame_s": frame, "step_s_by_position": late,
                           "whole_run_estimate_s": (late[positions[0]] + late[positions[1]]) / 2 * steps,
                           "extrapolated_s": frame * steps,  # --timing extrapolate's lower bound
                           # as the harness extrapolates: the first frames plus the bare step's growth, linear
                           "frames_plus_growth_s": (frame + (late[positions[1]] - late[positions[0]]) / 2) * steps,
                           "first_generation_s": first_call_s[config],
                           "rounds": {"frame_s": frame_times[config], "step_s": step_times[config]}}
        if config[1].endswith("compiled"):  # its bare steps run uncompiled: the frames are its whole-run figure
            figures[config]["whole_run_estimate_s"] = figures[config]["frames_plus_growth_s"]
    base = figures[BASELINE]
    for config, fig in figures.items():
        fig["frame_speedup_vs_fp32_dynamic"] = base["frame_s"] / fig["frame_s"]
        fig["whole_run_speedup_vs_fp32_dynamic"] = base["whole_run_estimate_s"] / fig["whole_run_estimate_s"]
        fig["frames_plus_growth_speedup_vs_bf16_dynamic"] = (figures[("bfloat16", "dynamic")]["frames_plus_growth_s"]
                                                             / fig["frames_plus_growth_s"])
        benchmark.extra_info[f"{config[0]} {config[1]}"] = fig

    ref, low = first_step_logits(adapters[BASELINE]), first_step_logits(adapters[DEFAULT])
    logits_error = float((low - ref).norm() / ref.norm())
    default_codes = greedy_codes(adapters[DEFAULT], GREEDY_STEPS)
    agreement = float((greedy_codes(adapters[BASELINE], GREEDY_STEPS) == default_codes).float().mean())
    plain_codes = greedy_codes(adapters[("bfloat16", "dynamic")], GREEDY_STEPS)
    prepacked_identical = bool(torch.equal(default_codes, plain_codes)) and bool(
        torch.equal(low, first_step_logits(adapters[("bfloat16", "dynamic")])))
    benchmark.extra_info["bf16_vs_fp32"] = {"configuration": " ".join(DEFAULT),
                                            "first_step_logits_relative_error": logits_error,
                                            f"greedy_code_agreement_{GREEDY_STEPS}_steps": agreement}
    benchmark.extra_info["prepacked_equals_plain_bf16"] = prepacked_identical
    lines = [f"MusicGen-Small (random weights), CPU {cpu_name()}, {torch.get_num_threads()} threads, "
             f"{ROUNDS} interleaved rounds"]
    for (dtype, cache), fig in figures.items():
        first, last = (fig["step_s_by_position"][p] * 1e3 for p in positions)
        bare = "bare (uncompiled) " if cache.endswith("compiled") else ""
        lines.append(f"{dtype} {cache}: frame {fig['frame_s'] * 1e3:.0f} ms "
                     f"(x{fig['frame_speedup_vs_fp32_dynamic']:.2f}); {bare}step at position {positions[0]} / "
                     f"{positions[1]}: {first:.0f} / {last:.0f} ms; whole 47.55 s run about "
                     f"{fig['whole_run_estimate_s']:.0f} s (x{fig['whole_run_speedup_vs_fp32_dynamic']:.2f}; "
                     f"extrapolated from the first frames {fig['extrapolated_s']:.0f} s; first frames plus the "
                     f"bare step's growth {fig['frames_plus_growth_s']:.0f} s, "
                     f"x{fig['frames_plus_growth_speedup_vs_bf16_dynamic']:.2f} against bf16 dynamic); first "
                     f"generation (2 frames) {fig['first_generation_s']:.1f} s")
    lines.append(f"bf16 ({' '.join(DEFAULT)}) vs fp32: first-step logits relative error {logits_error:.2e}, greedy "
                 f"codes agreeing over {GREEDY_STEPS - 3} whole frames {agreement:.0%}; prepacked linears' first-step "
                 f"logits and greedy codes {'identical to' if prepacked_identical else 'DIFFERENT from'} nn.Linear's")
    summary.append("\n  ".join(lines))
    assert all(np.isfinite(f["frame_s"]) and f["frame_s"] > 0 for f in figures.values())
    assert np.isfinite(logits_error)
