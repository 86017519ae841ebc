"""The one interface every generator sits behind: cheap construction, lazy ``load()``, ``generate(requests)``.

An adapter is built from its registry name and a :class:`WeightsChoice`. Construction imports nothing heavy and
touches no file; :meth:`Generator.resolve_weights` looks for weights (a local path or the Hugging Face cache,
never the network) and says which it found; :meth:`Generator.load` builds the model; :meth:`Generator.generate`
turns :class:`GenerationRequest` items into :class:`GeneratedAudio`. Parameter counts come from the real
architecture built on the meta device, so they never need weights or memory.

Timing hooks: ``generate`` takes ``max_units`` (stop after that many diffusion steps or autoregressive frames,
for ``--timing extrapolate``) and ``on_unit`` (called once per step or frame with no arguments, so the harness
can timestamp them). An adapter whose work has no such units (files on disk) ignores both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

WeightsMode = Literal["auto", "pretrained", "random"]
WEIGHTS_MODES: tuple[str, ...] = ("auto", "pretrained", "random")
# What a row's numbers rest on. "files": audio made elsewhere (reference stems, pre-generated outputs).
WeightsKind = Literal["pretrained", "random", "files", "missing"]
TimingUnit = Literal["steps", "frames"]

RANDOM_WEIGHTS_LABEL = "RANDOM WEIGHTS: efficiency only, never a quality result"


class AdapterError(RuntimeError):
    """A generator that cannot be built or run, with the reason (and file or id) named."""


class WeightsNotFoundError(AdapterError):
    """Weights were asked for and are not here. The message says what was looked for, where, and how to get it."""


class ItemError(AdapterError):
    """One request failed (a bad vocal file, a missing pre-generated output); the run goes on without it."""


@dataclass(frozen=True)
class WeightsChoice:
    """What the user asked for: ``auto`` (pretrained where found, random otherwise), ``pretrained`` or ``random``,
    and optionally where to look first (a local path or a Hugging Face id overriding the adapter's default)."""

    mode: WeightsMode = "auto"
    source: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in WEIGHTS_MODES:
            raise ValueError(f"weights mode must be one of {WEIGHTS_MODES}, got {self.mode!r}")


@dataclass(frozen=True)
class WeightsStatus:
    """What a row's numbers rest on; it travels into every record, table and file name."""

    kind: WeightsKind
    source: str  # a resolved path, a hub id with its cache folder, "random init (seed S)" or a folder of files
    message: str  # one line for the console: which weights and why
    sha256: str | None = None  # of the weights (or of the first weights file) when known
    # why these weights, though usable, may not be what the row claims (a checkpoint run with another VAE than the
    # one it was trained on, allowed by the user); every table shows it beside the row
    caveat: str | None = None

    @property
    def is_random(self) -> bool:
        return self.kind == "random"

    @property
    def quality_ok(self) -> bool:
        """Whether outputs made with these weights may be scored for quality."""
        return self.kind in ("pretrained", "files")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "message": self.message, "sha256": self.sha256,
                "caveat": self.caveat}


@dataclass(frozen=True)
class GenerationRequest:
    """One matched item: the same vocal, prompt, seed and duration go to every model."""

    item_id: str
    seed: int
    duration_s: float
    prompt: str = ""
    vocal_path: Path | None = None  # the input vocal stem (vocal-conditioned models read it)
    reference_path: Path | None = None  # the true accompaniment (the `reference` row reads it)
    start_s: float = 0.0  # the item's window in its vocal and reference files: [start_s, start_s + duration_s)
    # fold audio of more than 2 channels to stereo (--downmix) instead of refusing it: the vocal, the reference and
    # pre-generated outputs alike
    downmix: bool = False

    def read_vocal(self) -> np.ndarray:
        """The vocal's window, (2, S) float32 at 44.1 kHz (:func:`samuel.audio.load_window`); :class:`ItemError`
        naming the file when it is missing or unusable. Every vocal-conditioned adapter reads the vocal here."""
        return _read_window(self.vocal_path, self, "vocal")

    def read_reference(self) -> np.ndarray:
        """The true accompaniment's window, like :meth:`read_vocal`."""
        return _read_window(self.reference_path, self, "reference")


def _read_window(path: Path | None, request: GenerationRequest, what: str) -> np.ndarray:
    from samuel.audio import AudioError, load_window

    if path is None:
        raise ItemError(f"item {request.item_id!r} has no {what} file")
    try:
        return load_window(path, request.start_s, request.duration_s, downmix=request.downmix).samples
    except (AudioError, ValueError) as err:
        raise ItemError(f"{what} of item {request.item_id!r}: {err}") from err


@dataclass
class GeneratedAudio:
    """Audio for one request: ``audio`` is (channels, samples) float32 at ``sample_rate``."""

    audio: np.ndarray
    sample_rate: int
    info: dict[str, Any] = field(default_factory=dict)  # per-item provenance: steps, units done, source file...

    def __post_init__(self) -> None:
        if self.audio.ndim != 2:
            raise ValueError(f"audio must be (channels, samples), got shape {self.audio.shape}")

    @property
    def duration_s(self) -> float:
        return self.audio.shape[1] / self.sample_rate


@dataclass(frozen=True)
class ParamCount:
    """Exact parameter counts, shared tensors counted once, split by component (codec, text_encoder, lm, ...)."""

    total: int
    by_component: dict[str, int]

    def __post_init__(self) -> None:
        if sum(self.by_component.values()) != self.total:
            raise ValueError(f"components sum to {sum(self.by_component.values())}, total says {self.total}")

    def to_dict(self) -> dict[str, Any]:
        return {"params_total": self.total, "params_by_component": dict(self.by_component)}


@dataclass(frozen=True)
class DenoiserCalls:
    """:meth:`Generator.denoiser_call_seconds`' answer: the median seconds of one call per depth (blocks), and the
    calls one step makes (2 with classifier-free guidance run as two calls, 1 when it is batched)."""

    seconds: dict[int, float]
    calls_per_step: float


def count_parameters(components: dict[str, Any]) -> ParamCount:
    """Count ``{component: nn.Module or list of modules}`` exactly; a tensor shared by several modules (tied
    embeddings, a codec reused by two parts) is counted once, in the first component that holds it.

    Works on the meta device: nothing is allocated.
    """
    seen: set[int] = set()
    by_component: dict[str, int] = {}
    for name, modules in components.items():
        n = 0
        for module in modules if isinstance(modules, list | tuple) else [modules]:
            for param in module.parameters():
                if id(param) not in seen:
                    seen.add(id(param))
                    n += param.numel()
        by_component[name] = n
    return ParamCount(sum(by_component.values()), by_component)


def snr_db(reference: Any, other: Any) -> float:
    """Signal-to-noise ratio of ``other`` against ``reference`` in dB, 10 log10(sum r^2 / sum (r - o)^2), in float64;
    inf when they are equal."""
    ref = np.asarray(reference, dtype=np.float64)
    diff = ref - np.asarray(other, dtype=np.float64)
    noise = float(np.sum(diff * diff))
    return float("inf") if noise == 0.0 else float(10.0 * np.log10(float(np.sum(ref * ref)) / noise))


@dataclass(frozen=True)
class PrecisionDistance:
    """How far a faster precision lands from fp32 (:meth:`Generator.precision_distance`): per stage, the SNR in dB of
    the faster result against fp32 on the same input, and what that input was."""

    stages: dict[str, float]
    on: str
    compared_with: str = "fp32"

    def label(self) -> str:
        figures = ", ".join(f"{name} {value:.1f} dB" for name, value in self.stages.items())
        return f"vs {self.compared_with}, SNR: {figures} ({self.on})"

    def to_dict(self) -> dict[str, Any]:
        return {"compared_with": self.compared_with, "snr_db": {k: round(v, 2) for k, v in self.stages.items()},
                "on": self.on, "label": self.label()}


class Generator(ABC):
    """A music generator behind the harness. Subclasses set the class attributes and implement the methods.

    ``__init__`` must stay cheap: no heavy import, no file read, no weights. Everything heavy happens in
    :meth:`load` (called once, by the harness, so that loading time is measured apart from generation).
    """

    name: str = ""  # registry name, e.g. "musicgen-small"
    display_name: str = ""  # as in the paper's tables, e.g. "MusicGen - Small"
    sample_rate: int = 0  # of the audio `generate` returns
    conditioning: str = ""  # the paper's Table II column: "Vocal melody", "Text description", "Vocal + Text"...
    uses_vocal: bool = False
    uses_text: bool = False
    timing_unit: TimingUnit | None = None  # what `max_units` counts; None: no unit (files)
    # What a timed unit leaves out, carried into every timing label (e.g. Jukebox: upsamplers not timed).
    timing_note: str = ""
    default_timing_mode: Literal["full", "extrapolate", "depth"] = "full"
    # Names how random weights are drawn when that changed between releases (bench.evaluate.model_key): samples
    # made from another draw are then not reused. Empty: the draw has not changed.
    random_draw: str = ""

    def __init__(self, weights: WeightsChoice | None = None, *, device: str = "cpu", **options: Any) -> None:
        self.weights = weights or WeightsChoice()
        self.device = device
        self.options = options
        self._status: WeightsStatus | None = None
        self._loaded = False
        self._counts: tuple[ParamCount | None] | None = None  # cached: building on the meta device takes seconds
        self._distance_request: GenerationRequest | None = None  # plan_precision_distance
        self.fp32_reference_s = 0.0  # of the last load, spent on the planned comparison's fp32 side

    # -- weights -------------------------------------------------------------------------------------------
    @property
    def status(self) -> WeightsStatus:
        """The weights this adapter uses (resolved on first use; cheap: looks, does not load)."""
        if self._status is None:
            self._status = self.resolve_weights()
        return self._status

    @abstractmethod
    def resolve_weights(self) -> WeightsStatus:
        """Find the weights per ``self.weights`` without loading them. ``pretrained`` with none found raises
        :class:`WeightsNotFoundError`; ``auto`` falls back to random init and says so in the status message."""

    # -- lifecycle -----------------------------------------------------------------------------------------
    def load(self) -> None:
        """Build the model and put it on the device (idempotent)."""
        if not self._loaded:
            self.fp32_reference_s = 0.0
            self._load()
            self._loaded = True

    @property
    def loaded(self) -> bool:
        return self._loaded

    def plan_precision_distance(self, request: GenerationRequest | None) -> None:
        """Name, before the model loads, the request :meth:`precision_distance` will be asked about. An adapter that
        builds or reads its weights in fp32 and then casts them runs the fp32 side of that comparison during the
        load, on the model it has then, instead of building a second, fp32 copy afterwards (seconds to a minute of
        random init, and a copy MusicGen-Large's memory could not hold). The seconds it spent are in
        :attr:`fp32_reference_s`, which the harness keeps out of the load time."""
        self._distance_request = request

    @abstractmethod
    def _load(self) -> None: ...

    def unload(self) -> None:
        """Free the model (the harness unloads each model before the next loads)."""
        self._unload()
        self._loaded = False

    def _unload(self) -> None:  # noqa: B027 (a hook with nothing to do by default, not an abstract method)
        """Drop references to heavy objects; subclasses override when they hold any."""

    @abstractmethod
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        max_units: int | None = None,
        on_unit: Callable[[], None] | None = None,
    ) -> list[GeneratedAudio]:
        """One output per request, in order. A request that fails raises :class:`ItemError` naming its file;
        the harness then retries the others one by one, so one bad item never sinks a batch."""

    # -- measurement ---------------------------------------------------------------------------------------
    def parameter_counts(self) -> ParamCount | None:
        """Exact counts from the real architecture on the meta device, computed once per adapter (the params
        pass, the memory check and the timing pass all ask)."""
        if self._counts is None:
            self._counts = (self._count_parameters(),)
        return self._counts[0]

    @abstractmethod
    def _count_parameters(self) -> ParamCount | None:
        """Exact counts from the real architecture on the meta device (config from the weights when found,
        else the embedded published config); None where there is no model (files made elsewhere)."""

    def parameter_source(self) -> str:
        """Where the counted architecture comes from (the contract of :meth:`_count_parameters`); adapters with a
        finer answer override it."""
        status = self.status
        if self.parameter_counts() is None:
            return "no model to count: audio files made elsewhere"
        if status.is_random:
            return (f"the embedded published configuration in {type(self).__module__} (no weights found; its values' "
                    "sources are stated there)")
        return f"the configuration of the weights at {status.source}"

    def parameter_sources(self) -> dict[str, str]:
        """Where each counted component's configuration comes from (by default all from
        :meth:`parameter_source`)."""
        counts = self.parameter_counts()
        return {} if counts is None else dict.fromkeys(counts.by_component, self.parameter_source())

    def total_units(self, request: GenerationRequest) -> int | None:
        """How many steps or frames a full generation of ``request`` takes (None for file adapters)."""
        return None

    def output_seconds(self, request: GenerationRequest) -> float:
        """How long a full generation of ``request`` is: the item's duration, except for a model whose output lasts
        as long as the vocal's window (SAMUeL), which a song that ends inside the item cuts short. An extrapolated
        timing divides by it for the real-time factor."""
        return request.duration_s

    def memory_estimate_bytes(self) -> int:
        """Rough peak memory of inference: the parameters in the inference dtype plus 25% for activations."""
        counts = self.parameter_counts()
        return 0 if counts is None else int(counts.total * self.bytes_per_param() * 1.25)

    def bytes_per_param(self) -> int:
        return 4

    def precision(self) -> str:
        """The numeric precision inference runs in, as Table II and every timing record show it."""
        return {4: "fp32", 2: "16-bit"}.get(self.bytes_per_param(), f"{self.bytes_per_param() * 8}-bit")

    def precision_distance(self, request: GenerationRequest) -> PrecisionDistance | None:
        """For a model running in a faster precision than fp32 (loaded): the same computations in fp32 on a small
        piece of ``request``, stage by stage, as SNRs of the faster result against the fp32 one; None when it runs
        in fp32 or cannot compare. The timing pass records it beside every time (Table II's Precision column)."""
        return None

    def unit_growth_seconds(self, total_units: int) -> tuple[float, float] | None:
        """For an autoregressive model whose frames cost more as its cache grows: seconds of one bare decoder step
        with 1 and with ``total_units - 1`` positions cached (loaded, warmed up), so that an extrapolation from the
        first frames can add the growth (:func:`bench.stats.extrapolate_growing_units`); None when unit cost does
        not grow or cannot be measured (the extrapolation is then labelled a lower bound)."""
        return None

    def set_sampling_steps(self, steps: int) -> None:
        """Run the next generations with ``steps`` sampler steps (the steps x precision sweep, bench.sweep)."""
        raise NotImplementedError(f"{self.name}: no sampler-step setting")

    def unmatched_files(self, requests: Sequence[GenerationRequest]) -> list[Path]:
        """Files this adapter reads samples from that match none of ``requests`` (a folder of outputs made
        elsewhere): listed for the user, since a misnamed file otherwise shows only as a missing one."""
        return []

    def source_file(self, request: GenerationRequest) -> Path | None:
        """The file a sample of ``request`` is read from, for rows of files made elsewhere (the true
        accompaniments, ``outputs:`` folders): a sample stays valid only while that file's bytes do, which the
        harness checks by the sha256 its sidecar records (``info.source_sha256``). None for generated samples, or
        when no file matches (the generation names why)."""
        return None

    # -- reduced-depth timing (bench.timing's depth mode) ------------------------------------------------
    def timing_depths(self) -> tuple[int, int] | None:
        """``(layers, full_layers)`` when this model can be timed with its denoiser cut to ``layers`` of its
        ``full_layers`` identical blocks and scaled up (random weights: timing does not depend on them); None when
        it cannot. Only for a model too big or too slow to time whole here."""
        return None

    def at_depth(self, layers: int) -> Generator:
        """A random-weight copy of this adapter whose denoiser has ``layers`` blocks (see :meth:`timing_depths`)."""
        raise NotImplementedError(f"{self.name}: no reduced-depth timing")

    def denoiser_call_seconds(self, depths: Sequence[int], repeats: int = 3) -> DenoiserCalls:
        """Time one denoiser call at each of ``depths`` (blocks, random init) on the inputs of this adapter's last
        generation, and say how many calls that generation made per step."""
        raise NotImplementedError(f"{self.name}: no reduced-depth timing")

    def describe(self) -> dict[str, Any]:
        """Static facts for results.json (no loading)."""
        return {"name": self.name, "display_name": self.display_name or self.name, "sample_rate": self.sample_rate,
                "conditioning": self.conditioning, "uses_vocal": self.uses_vocal, "uses_text": self.uses_text,
                "timing_unit": self.timing_unit, "device": self.device, "options": dict(self.options)}


def resolve_dtype_option(name: str, device: str) -> str:
    """A diffusers adapter's ``dtype`` option as run: "auto" is bfloat16 where the device computes it natively (as
    SAMUeL's precision "auto": samuel.generate.resolve_precision), else float32; other names pass through."""
    if name != "auto":
        return name
    from samuel.generate import resolve_precision

    return "bfloat16" if resolve_precision("auto", device) == "bf16" else "float32"


# A second, fp32 copy of a model (Generator.precision_distance) is made only when its weights + 25% are free (the
# harness's memory estimate rule): MusicGen-Large's 12.8 GiB copy with 12.9 GiB free took the main job to a peak RSS
# of 22.1 GiB on a 23 GiB machine.
COPY_HEADROOM = 1.25


def copy_fits(weight_bytes: int, device: Any) -> tuple[bool, int, int]:
    """(whether a copy of ``weight_bytes`` of weights fits beside what is loaded, the bytes it needs with
    :data:`COPY_HEADROOM`, the bytes free on ``device``)."""
    need, have = int(weight_bytes * COPY_HEADROOM), free_bytes(device)
    return need <= have, need, have


def free_bytes(device: Any) -> int:
    """Memory a second copy of a model could use: free GPU memory on CUDA, available RAM otherwise (the fp32 twins
    of :meth:`Generator.precision_distance`)."""
    import torch

    if torch.device(device).type == "cuda":
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    import psutil

    return int(psutil.virtual_memory().available)


DIT_DISTANCE_FRAMES = 64  # latent frames of N(0, I) that dit_and_vae_distance decodes in both precisions


class _FirstCall(Exception):
    """Raised from a forward pre-hook to stop a pipeline at its first call of a module."""


def first_call_inputs(module: Any, run: Callable[[], Any]) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    """The positional and keyword arguments of ``module``'s first call inside ``run()``, which is stopped right
    there (a diffusers pipeline's denoiser inputs, without the rest of its steps or its VAE decode: ACE-Step's took
    about 50 s); None when ``run`` returns without calling it."""
    captured: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def grab(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        captured.append((args, dict(kwargs)))
        raise _FirstCall

    handle = module.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        run()
    except _FirstCall:
        pass
    finally:
        handle.remove()
    return captured[0] if captured else None


def as_fp32(value: Any) -> Any:
    """``value`` with every floating tensor in it (nested in tuples and lists too) cast to float32."""
    import torch

    if isinstance(value, (tuple, list)):
        return type(value)(as_fp32(v) for v in value)
    return value.float() if isinstance(value, torch.Tensor) and value.is_floating_point() else value


def model_output_tensor(out: Any) -> Any:
    """A diffusers model's output tensor: ``.sample``, or the first element of its tuple."""
    return out.sample if hasattr(out, "sample") else out[0]


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is running out of memory: a MemoryError (host RAM) or a RuntimeError saying so (CUDA's
    allocator and oneDNN raise those); anything else is a bug to see, not a limit to report."""
    return isinstance(err, MemoryError) or (isinstance(err, RuntimeError) and "out of memory" in str(err).lower())


def cast_like(value: Any, like: Any) -> Any:
    """``value`` with each floating tensor cast to the dtype of the tensor in the same place of ``like`` (nested in
    tuples, lists and dicts; a captured call's arguments): one pipeline's inputs as another precision holds them."""
    import torch

    if isinstance(value, (tuple, list)):
        return type(value)(cast_like(v, w) for v, w in zip(value, like, strict=True))
    if isinstance(value, dict):
        return {k: cast_like(v, like[k]) for k, v in value.items()}
    if isinstance(value, torch.Tensor) and value.is_floating_point() and isinstance(like, torch.Tensor):
        return value.to(like.dtype)
    return value


def dit_and_vae_outputs(dit: Any, call: tuple[tuple[Any, ...], dict[str, Any]], vae: Any, *, seed: int,
                        device: str) -> tuple[Any, Any]:
    """What :func:`dit_and_vae_distance` compares, from one precision: ``dit``'s output on ``call`` (captured args
    and kwargs, as given) and ``vae`` decoding :data:`DIT_DISTANCE_FRAMES` latent frames of N(0, I) drawn from
    ``seed`` (cast to the VAE's dtype), both as float32 on the CPU. Call under inference mode."""
    import torch

    args, kwargs = call
    out = model_output_tensor(dit(*args, **kwargs)).float().cpu()
    latents = torch.randn(1, vae.config.decoder_input_channels, DIT_DISTANCE_FRAMES,
                          generator=torch.Generator().manual_seed(seed)).to(device)
    return out, vae.decode(latents.to(vae.dtype)).sample.float().cpu()


def distance_of_outputs(exact: tuple[Any, Any], fast: tuple[Any, Any], *, item_id: str, weights: str,
                        inputs: str = "") -> PrecisionDistance:
    """The :class:`PrecisionDistance` of two :func:`dit_and_vae_outputs` (fp32 first); ``inputs`` says where the
    DiT call's inputs came from when that is not plain."""
    stages = {"DiT (first guided call)": snr_db(exact[0], fast[0]), "VAE decode": snr_db(exact[1], fast[1])}
    return PrecisionDistance(stages, f"item {item_id!r}'s first DiT call{inputs}; {DIT_DISTANCE_FRAMES} latent frames "
                                     f"of N(0, I) decoded; {weights}")


def dit_and_vae_distance(dit: Any, exact_dit: Any, call: tuple[tuple[Any, ...], dict[str, Any]], vae: Any,
                         exact_vae: Any, *, seed: int, device: str, item_id: str, weights: str
                         ) -> PrecisionDistance:
    """A diffusers audio pipeline's :meth:`Generator.precision_distance` (Stable Audio Open, ACE-Step): the SNR of
    one DiT call (``call``: the captured args and kwargs of item ``item_id``'s first guided call) in the loaded
    precision against ``exact_dit`` (the same weights in fp32) on the same inputs in fp32, then of ``vae`` decoding
    :data:`DIT_DISTANCE_FRAMES` seeded N(0, I) latent frames against ``exact_vae``. ``weights``: what the label
    says of them. Call under inference mode."""
    args, kwargs = call
    fast = dit_and_vae_outputs(dit, call, vae, seed=seed, device=device)
    exact = dit_and_vae_outputs(exact_dit, (as_fp32(args), {k: as_fp32(v) for k, v in kwargs.items()}), exact_vae,
                                seed=seed, device=device)
    return distance_of_outputs(exact, fast, item_id=item_id, weights=weights)
