"""VGGish (Hershey et al. 2017), the field's default FAD embedder (Kilgour et al. 2019), written out here.

The network is the AudioSet release's VGG-like stack: four conv blocks (64, 128, 256x2, 512x2 channels, 3x3,
each block ending in 2x2 max-pooling) over a (96 frames, 64 mels) log-mel example, flattened in TF's NHWC order,
then fully connected 12288 -> 4096 -> 4096 -> 128. Module names follow the torch port (harritaylor/torchvggish),
so its checkpoint ``vggish-10086976.pth`` loads as it is: ``features.{0,3,6,8,11,13}`` and
``embeddings.{0,2,4}``. Nothing is fetched at run time (no torch.hub).

Defaults, chosen to match fadtk's ``vggish`` (whose published statistics we read), which takes the raw 128-d
output of the last linear layer:

- ``postprocess=False``: no PCA whitening and 8-bit quantisation. That step (the AudioSet release's
  ``vggish_pca_params``) exists to make the published embeddings compact; quantised values distort the Gaussian
  fit, and fadtk loads VGGish with ``use_pca=False``. It is implemented (:func:`pca_quantize`) and can be
  switched on; its parameters file ``vggish_pca_params-970ea276.pth`` is then needed next to the checkpoint.
- ``final_relu=False``: fadtk drops the torch port's ReLU after the last layer (``use_activation=False``), and
  the AudioSet release's current TF definition makes ``fc2`` linear (``activation_fn=None``; early versions had
  a ReLU there, so FAD numbers from those include it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from baselines.base import AdapterError, WeightsChoice, WeightsNotFoundError
from baselines.weights import Resolved
from bench.embedders.base import RANDOM_SEED, Embedder, with_digest
from bench.embedders.features import VGGISH_FRONT_END, pad_to_length, vggish_examples
from bench.resample import DEFAULT_RESAMPLER
from samuel.hub import existing_path, looks_like_path, weights_digest

CHECKPOINT_FILE = "vggish-10086976.pth"
PCA_FILE = "vggish_pca_params-970ea276.pth"
RELEASE_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/"
EMBEDDING_SIZE = 128
CONV_CHANNELS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")  # "M": 2x2 max-pool
FLAT_FEATURES = 512 * 6 * 4  # 96 x 64 input halved four times -> 6 x 4, 512 channels
QUANTIZE_RANGE = (-2.0, 2.0)  # the AudioSet release clips PCA'd values to this range before 8-bit quantisation
MIN_SECONDS = 1.0  # fadtk pads shorter clips to 1 s (one example needs 0.975 s)
BATCH_EXAMPLES = 64  # examples per forward pass: bounds activation memory on long clips (~0.5 GB at 64)


class VGGishNet(nn.Module):
    """The VGGish network: (B, 1, 96, 64) log-mel examples -> (B, 128) embeddings."""

    def __init__(self, final_relu: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 1
        for spec in CONV_CHANNELS:
            if spec == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_channels, int(spec), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                in_channels = int(spec)
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.Linear(FLAT_FEATURES, 4096), nn.ReLU(inplace=True), nn.Linear(4096, 4096),
                                 nn.ReLU(inplace=True), nn.Linear(4096, EMBEDDING_SIZE)]
        if final_relu:  # parameter-free, so the state dict is the same either way
            head.append(nn.ReLU(inplace=True))
        self.embeddings = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, 512, 6, 4)
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # flatten as NHWC, the order of the TF original
        return self.embeddings(x)


def pca_quantize(embeddings: np.ndarray, eigen_vectors: np.ndarray, means: np.ndarray) -> np.ndarray:
    """The AudioSet release's postprocess: PCA with whitening, clip to [-2, 2], quantise to 0..255.

    Args:
        embeddings: (N, 128) raw VGGish outputs.
        eigen_vectors: (128, 128), one (whitening-scaled) component per row.
        means: (128,) the mean subtracted first.

    Returns:
        (N, 128) float32 holding the integers 0..255.
    """
    projected = (embeddings.astype(np.float64) - means.reshape(-1)) @ eigen_vectors.T
    low, high = QUANTIZE_RANGE
    clipped = np.clip(projected, low, high)
    return np.round((clipped - low) * (255.0 / (high - low))).astype(np.float32)


def torch_hub_checkpoints() -> Path:
    """Where torch.hub (and so the torch port and fadtk) keeps downloaded checkpoints; computed without torch."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch")
    return Path(torch_home) / "hub" / "checkpoints"


def load_torch_file(path: Path) -> dict:
    """``torch.load`` with ``weights_only=True``, also accepting dicts of numpy arrays (the PCA file's format).

    NumPy arrays pickled by NumPy 1 name ``numpy.core.multiarray._reconstruct``; NumPy 2 moved it to ``numpy._core``.
    Both spellings are allowed, and nothing else beyond torch's own safe set.
    """
    reconstruct = np._core.multiarray._reconstruct
    allowed = [np.ndarray, np.dtype, reconstruct, (reconstruct, "numpy.core.multiarray._reconstruct"),
               *{type(np.dtype(t)) for t in (np.float32, np.float64)}]
    try:
        with torch.serialization.safe_globals(allowed):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise AdapterError(f"{path}: cannot be read as a torch checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict):
        raise AdapterError(f"{path}: expected a dict (state dict), got {type(obj).__name__}")
    return obj


def read_pca_params(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(eigen_vectors (128, 128), means (128,)) float64 from the torch port's ``.pth`` or the release's ``.npz``."""
    if path.suffix == ".npz":
        with np.load(path) as data:
            params = {k: data[k] for k in data.files}
    else:
        params = load_torch_file(path)
    missing = [k for k in ("pca_eigen_vectors", "pca_means") if k not in params]
    if missing:
        raise AdapterError(f"{path}: missing {missing}; keys present: {sorted(params)}")
    vectors = np.asarray(params["pca_eigen_vectors"], dtype=np.float64)
    means = np.asarray(params["pca_means"], dtype=np.float64).reshape(-1)  # stored as (128,) or (128, 1)
    if vectors.shape != (EMBEDDING_SIZE, EMBEDDING_SIZE) or means.shape != (EMBEDDING_SIZE,):
        raise AdapterError(f"{path}: pca_eigen_vectors must be (128, 128) and pca_means 128 values, got "
                           f"{vectors.shape} and {means.shape}")
    return vectors, means


class VGGish(Embedder):
    """VGGish embeddings, one 128-d frame per 0.96 s of audio (fadtk's ``vggish``).

    Args:
        weights: ``source`` may be a folder holding ``vggish-10086976.pth`` (default: torch.hub's checkpoint
            folder, where the torch port and fadtk download it) or the checkpoint file itself.
        postprocess: apply the PCA + 8-bit quantisation (off by default, see the module docstring).
        final_relu: keep the torch port's ReLU after the last layer (off by default).
        resampler: how audio is brought to 16 kHz, a :data:`bench.resample.RESAMPLERS` name: ``"soxr"`` (default),
            ``"torchaudio-kaiser-best"`` (fadtk's since Oct 2023) or ``"torchaudio-default"``. Part of
            :meth:`identity`, so cached embeddings are keyed by it; the statistics key (:attr:`stats_key`) is not.
    """

    name = "vggish"
    sample_rate = VGGISH_FRONT_END.sample_rate
    dim = EMBEDDING_SIZE
    code_version = "1"

    def __init__(self, weights: WeightsChoice | None = None, *, device: str = "cpu", postprocess: bool = False,
                 final_relu: bool = False, resampler: str = DEFAULT_RESAMPLER) -> None:
        super().__init__(weights, device=device, resampler=resampler, postprocess=postprocess, final_relu=final_relu)
        self.postprocess = postprocess
        self.final_relu = final_relu
        self._net: VGGishNet | None = None
        self._pca: tuple[np.ndarray, np.ndarray] | None = None

    def resolve_weights(self) -> Resolved:
        how = (f"Download {CHECKPOINT_FILE} (and {PCA_FILE} for postprocess=True) from {RELEASE_URL} into "
               f"{torch_hub_checkpoints()}, or pass the folder or the .pth file as the weights source.")
        source = self.weights.source or str(torch_hub_checkpoints())
        if self.weights.mode != "random" and existing_path(source) is None and looks_like_path(source):
            # a path that is not there: say so, rather than also "looking up" a path in the Hugging Face cache
            raise WeightsNotFoundError(f"{self.name}: weights not found. Looked for {source} (no such file or "
                                       f"folder). {how} The network is never used.")
        resolved = self._resolve_hub(default_repo=source, marker_files=(CHECKPOINT_FILE,), how_to_get=how)
        if resolved.folder is None:
            return resolved
        checkpoint, pca = self._files(resolved.folder)
        digest = weights_digest(checkpoint)  # the file used, never the whole (shared) checkpoints folder
        if self.postprocess:
            if not pca.exists():
                raise WeightsNotFoundError(f"{self.name}: postprocess=True needs the PCA parameters {pca}. {how}")
            digest += f";pca={weights_digest(pca)}"
        return with_digest(resolved, digest)

    @staticmethod
    def _files(found: Path) -> tuple[Path, Path]:
        checkpoint = found / CHECKPOINT_FILE if found.is_dir() else found
        return checkpoint, checkpoint.parent / PCA_FILE

    def _load(self) -> None:
        folder = self._resolved.folder
        if folder is not None:
            checkpoint, pca = self._files(folder)
            state = load_torch_file(checkpoint)
            with torch.device("meta"):  # no init work for weights about to be replaced
                net = VGGishNet(final_relu=self.final_relu)
            try:
                net.load_state_dict(state, assign=True)
            except RuntimeError as err:  # missing / unexpected keys or shapes: not a VGGish checkpoint
                raise AdapterError(f"{checkpoint}: not a VGGish state dict ({err})") from None
            if self.postprocess:
                self._pca = read_pca_params(pca)
        else:
            with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's global RNG
                torch.manual_seed(RANDOM_SEED)
                net = VGGishNet(final_relu=self.final_relu)
            if self.postprocess:
                self._pca = (np.eye(EMBEDDING_SIZE), np.zeros(EMBEDDING_SIZE))  # identity PCA: the same work
        self._net = net.float().eval().to(self.device)

    def _embed(self, waveform: np.ndarray) -> np.ndarray:
        examples = vggish_examples(pad_to_length(waveform, round(MIN_SECONDS * self.sample_rate)))  # (N, 96, 64)
        outputs = []
        with torch.inference_mode():
            for start in range(0, examples.shape[0], BATCH_EXAMPLES):
                batch = torch.from_numpy(examples[start:start + BATCH_EXAMPLES]).unsqueeze(1).to(self.device)
                outputs.append(self._net(batch).float().cpu().numpy())
        embeddings = np.concatenate(outputs)  # (N, 128)
        return pca_quantize(embeddings, *self._pca) if self._pca is not None else embeddings

    def preprocessing(self) -> str:
        post = "pca-whiten+clip[-2,2]+uint8" if self.postprocess else "none (raw last linear layer)"
        return (f"mono mean; {self.resampling_step()}; pcm16; pad to {MIN_SECONDS:g} s; "
                f"{VGGISH_FRONT_END.describe()}; final_relu={self.final_relu}; postprocess={post}")

    @property
    def stats_key(self) -> str:
        extras = [flag for flag, on in (("pca", self.postprocess), ("relu", self.final_relu)) if on]
        return self.name if not extras else f"{self.name}[{','.join(extras)}]"
