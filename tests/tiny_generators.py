"""Tiny random twins of every generator's weights, saved in each one's real format, and test audio files.

Shared by the conformance suite (test_generator_conformance.py) and the adapter-specific tests
(test_baseline_*.py). Each builder runs the real architecture code at toy width with a fixed seed, so the adapters'
real loading code reads them exactly as it reads published weights; nothing here touches the network.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run tiny models on one thread: they gain nothing from intra-op parallelism, and on a busy 2-core machine
    OpenMP's spinning threads made a 13-step tiny MusicGen take 17 s instead of 0.3 s."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ---- audio -----------------------------------------------------------------------------------------------------
NOTE_S = 0.1  # one note per 0.1 s: different windows of a file hold different pitch classes


def note_signal(seconds: float, rate: int = 44_100, channels: int = 2, seed: int = 0) -> np.ndarray:
    """(frames, channels) float32: a note sequence (a new pitch class every 0.1 s, so that windows differ in
    melody) plus a little seeded noise; channel k is scaled by 1 - 0.1 k so that channels differ."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    note = np.floor(t / NOTE_S).astype(int)
    freq = 220.0 * 2.0 ** (((note * 5 + 3 * seed) % 12) / 12)
    tone = 0.3 * np.sin(2 * np.pi * freq * t)
    rng = np.random.default_rng(seed)
    gains = 1.0 - 0.1 * np.arange(channels)
    return (tone[:, None] * gains[None] + 0.02 * rng.standard_normal((n, channels))).astype(np.float32)


def write_signal(path: Path, seconds: float, rate: int = 44_100, channels: int = 2, seed: int = 0) -> Path:
    """:func:`note_signal` written as a FLOAT WAV (read back bit-exactly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, note_signal(seconds, rate, channels, seed), rate, subtype="FLOAT")
    return path


# ---- SAMUeL: a safetensors checkpoint with a training record, and a diffusers Oobleck folder -----------------------
def save_tiny_samuel(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """(checkpoint, vae folder): SAMUeLConfig.tiny() saved by ``save_model`` with a training record (so the adapter
    reads it as trained weights) and :func:`samuel.codec.save_tiny_random_oobleck`'s VAE without its random marker
    (so the adapter reads it as found weights)."""
    from samuel.checkpoint import TRAINING_KEY, save_model
    from samuel.codec import save_tiny_random_oobleck
    from samuel.codec_spec import RANDOM_MARKER
    from samuel.config import SAMUeLConfig
    from samuel.model import SAMUeL, fill_zero_init_layers

    folder.mkdir(parents=True, exist_ok=True)
    checkpoint, vae = folder / "samuel-tiny.safetensors", folder / "vae"
    if not checkpoint.exists():
        torch.manual_seed(seed)
        model = fill_zero_init_layers(SAMUeL(SAMUeLConfig.tiny()), seed=seed)
        save_model(model, checkpoint, extra_metadata={TRAINING_KEY: json.dumps({"steps": 1, "ema": False})})
    if not vae.exists():
        save_tiny_random_oobleck(vae, seed=seed)
        # It stands in for a trained VAE in the real format; marked random, the row would be random (as it must be)
        (vae / RANDOM_MARKER).unlink()
    return checkpoint, vae


# ---- MusicGen: transformers' save_pretrained folder with a tokenizer ------------------------------------------------
WORDS = ["<pad>", "</s>", "<unk>", "calm", "piano", "with", "soft", "drums", "a", "song", "upbeat", "guitar"]
MUSICGEN_PAD = 64  # 64 codes per codebook, then the pad / start token


def musicgen_tiny_config(melody: bool = False) -> Any:
    """The real code path at toy width (baselines.musicgen.tiny_config, the adapter's ``preset=tiny``): T5 (2
    layers, 16 wide, a vocabulary of WORDS), EnCodec at 32 kHz with the real hop of 640 and 4 codebooks of 64 codes,
    a 2-layer decoder over 64 codes + pad 64."""
    from baselines.musicgen import tiny_config

    config = tiny_config(melody)
    assert config.text_encoder.vocab_size == len(WORDS) and config.decoder.pad_token_id == MUSICGEN_PAD
    return config


def musicgen_tiny_tokenizer() -> Any:
    """A word-level tokenizer with T5's conventions (pad 0, </s> 1 appended, unk 2), built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


MUSICGEN_DECODER_STD = 0.2


def save_tiny_musicgen(folder: Path, melody: bool = False, with_tokenizer: bool = True) -> tuple[Any, Any]:
    """(model, tokenizer) of :func:`musicgen_tiny_config`, seeded, saved with ``save_pretrained`` into ``folder``.

    The decoder's and the projections' weight matrices are drawn with std :data:`MUSICGEN_DECODER_STD`: at
    transformers' init (0.02) the text and the chroma move the tiny decoder's logits by ~1e-4, so sampling never
    changes with them and no test could tell whether the adapter passed them at all.
    """
    from baselines.musicgen import draw_codebooks_, model_class

    torch.manual_seed(0)
    model = model_class(melody)(musicgen_tiny_config(melody)).eval()
    draw_codebooks_(model)  # transformers inits codebooks to 0: every code would decode to the same sound
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim == 2 and not name.startswith(("audio_encoder.", "text_encoder.")):
                param.normal_(0.0, MUSICGEN_DECODER_STD)
    model.generation_config.decoder_start_token_id = MUSICGEN_PAD
    model.generation_config.pad_token_id = MUSICGEN_PAD
    model.save_pretrained(folder)
    tokenizer = musicgen_tiny_tokenizer()
    if with_tokenizer:
        tokenizer.save_pretrained(folder)
    return model, tokenizer


# ---- Stable Audio Open: diffusers' StableAudioPipeline folder ------------------------------------------------------
def save_tiny_stable_audio(folder: Path) -> Path:
    """``build_random_pipeline(TINY_CONFIGS, seed=0).save_pretrained(folder)``: the published repo's layout."""
    from baselines import stable_audio as sa

    sa.build_random_pipeline(sa.TINY_CONFIGS, seed=0).save_pretrained(folder)
    return folder


# ---- Jukebox: jukebox-infer's checkpoint layout, {"model": state_dict} per file --------------------------------------
# A tiny 3-level Jukebox through jukebox-infer's own hparams mechanism (setup_hparams overrides of the 5b_lyrics
# sets): hops 2/4/8 samples, 16-token windows, a top prior with a lyrics encoder and one encoder-decoder attention
# layer (attn_order 6 = row, column, previous-row, encoder-decoder), upsamplers with conditioners.
_UPSAMPLER = dict(n_ctx=16, prior_width=16, prior_depth=1, heads=1, attn_order=2, blocks=4, cond_width=8,
                  cond_depth=1)
JUKEBOX_TINY: dict[str, dict[str, Any]] = {
    "vqvae": dict(levels=3, downs_t=(1, 1, 1), strides_t=(2, 2, 2), emb_width=8, l_bins=32, width=8, depth=1,
                  hvqvae_multipliers=(1, 1, 1)),
    "upsampler_level_0": _UPSAMPLER,
    "upsampler_level_1": _UPSAMPLER,
    "prior_5b_lyrics": dict(n_ctx=16, prior_width=16, prior_depth=4, heads=2, attn_order=6, blocks=4, prime_width=8,
                            prime_depth=1, prime_heads=1, prime_blocks=2, n_tokens=8, alignment_layer=None,
                            alignment_head=None),
}
JUKEBOX_TINY_HOP = 8  # top-level samples per token
JUKEBOX_SETS = ("vqvae", "upsampler_level_0", "upsampler_level_1", "prior_5b_lyrics")


def tiny_jukebox_modules() -> tuple[Any, list[Any]]:
    """(vqvae, [upsampler 0, upsampler 1, top prior]) of :data:`JUKEBOX_TINY`, seeded, built by jukebox-infer."""
    import jukebox_infer.make_models as mm
    from jukebox_infer.hparams import setup_hparams

    # restore paths "": nothing is read, and auto_download=False besides, so jukebox-infer never downloads
    torch.manual_seed(123)
    vqvae_hps = setup_hparams("vqvae", dict(JUKEBOX_TINY["vqvae"], sample_length=16 * JUKEBOX_TINY_HOP,
                                            restore_vqvae=""))
    vqvae = mm.make_vqvae(vqvae_hps, "cpu", auto_download=False)
    for block in vqvae.bottleneck.level_blocks:
        block.k.normal_()
    priors = [mm.make_prior(setup_hparams(n, dict(JUKEBOX_TINY[n], restore_prior="")), vqvae, "cpu",
                            auto_download=False) for n in JUKEBOX_SETS[1:]]
    return vqvae, priors


def save_tiny_jukebox(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Write :func:`tiny_jukebox_modules` in jukebox-infer's layout and format under ``folder`` (the top prior with
    DDP ``module.`` keys) and return the state dicts by hparam-set name."""
    from baselines.jukebox import checkpoint_names

    vqvae, priors = tiny_jukebox_modules()
    states = dict(zip(JUKEBOX_SETS, [m.state_dict() for m in (vqvae, *priors)], strict=True))
    names = checkpoint_names("5b_lyrics")
    for name, state in states.items():
        path = folder / names[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        model = {f"module.{k}": v for k, v in state.items()} if name == "prior_5b_lyrics" else state
        torch.save({"model": model, "step": 7}, path)
    return states


def quiet_jukebox_infer(monkeypatch: Any) -> None:
    """Make jukebox-infer fail on any download and skip its per-window gc.collect() + cuda.empty_cache() (a GPU
    memory helper costing ~0.3 s a call in a test process; the tiny models need no such thing)."""
    import jukebox_infer.make_models as mm
    import jukebox_infer.prior.autoregressive as ar
    import jukebox_infer.sample as sample

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"jukebox-infer tried to download {args}")

    monkeypatch.setattr(mm, "download", no_download)  # make_models imported it by name
    monkeypatch.setattr(sample, "empty_cache", lambda: None)
    monkeypatch.setattr(ar, "empty_cache", lambda: None)


# ---- ACE-Step 1.5: diffusers' AceStepPipeline folder ---------------------------------------------------------------
def save_tiny_ace_step(folder: Path) -> Path:
    """``build_random_pipeline(TINY_CONFIGS, seed=0).save_pretrained(folder)``: the layout of the published diffusers
    repos (model_index.json, transformer/, condition_encoder/, text_encoder/ (Qwen3Model), tokenizer/, vae/,
    scheduler/, audio_tokenizer/, audio_token_detokenizer/), at 48 kHz with the real 1920-sample hop. The tokenizer is
    the adapter's offline byte-level stand-in (ids inside the tiny Qwen3's 300-token vocabulary)."""
    from baselines import ace_step

    ace_step.build_random_pipeline(ace_step.TINY_CONFIGS, seed=0).save_pretrained(folder)
    return folder


def diffusers_pipeline(pipeline_class: str, folder: Path, *, fast_vae: bool) -> Any:
    """A saved tiny pipeline loaded by diffusers itself (``pipeline_class``: "StableAudioPipeline",
    "AceStepPipeline"), progress bar off. ``fast_vae``: its VAE's Snake layers fused and weight norm computed once,
    as the adapters do (samuel.codec), so a parity test compares like with like."""
    import warnings

    import diffusers

    from samuel.codec import speed_up_oobleck_

    with warnings.catch_warnings():  # diffusers' Oobleck uses the deprecated torch weight_norm
        warnings.simplefilter("ignore", FutureWarning)
        pipe = getattr(diffusers, pipeline_class).from_pretrained(str(folder), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    if fast_vae:
        speed_up_oobleck_(pipe.vae)
    return pipe
