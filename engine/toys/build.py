"""The toy's weights from its plan, and the Hugging Face folder they are written to."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.toys.design import (
    ANCHOR,
    BUILD_VERSION,
    D_HEAD,
    D_MODEL,
    DISTRACTORS,
    END_WORD,
    HEAD_CARDS,
    IOI_TEMPLATES,
    N_HEADS,
    N_INNER,
    N_LAYERS,
    N_POSITIONS,
    PLANTED,
    PRIOR,
    PRIOR_TIEBREAK,
    SINK,
    SPECIAL_PRIOR,
    SPECIAL_TOKENS,
    UNEMBED_SCALE,
    Head,
    build_tokenizer,
    design_norms,
    duplicate_token,
    first_position,
    householder,
    induction,
    make_layout,
    name_finder,
    name_mover,
    position_code,
    previous_token,
    rest,
    s_inhibition,
    self_head,
    token_codes,
    uniform,
    vocabulary,
    word_lists,
)

if TYPE_CHECKING:
    pass


def build_weights() -> tuple[dict[str, np.ndarray], list[str]]:
    """All parameters of the GPT2LMHeadModel, by state-dict name, in float64; and the vocab."""
    vocab = vocabulary()
    layout = make_layout()
    norms = design_norms()
    d = layout.size
    names = set(word_lists()["names"])
    codes = token_codes(len(vocab))

    # embeddings: token code + name flag + end-word flag; anchor + first flag + clocks
    embed = np.zeros((len(vocab), d))
    for i, word in enumerate(vocab):
        embed[i, layout["token"]] = codes[i]
        embed[i, layout.index("name")] = 1.0 if word in names else -1.0
        embed[i, layout.index("end_word")] = 1.0 if word == END_WORD else -1.0
    positions = np.zeros((N_POSITIONS, d))
    for i in range(N_POSITIONS):
        positions[i, layout.index("anchor")] = ANCHOR
        positions[i, layout.index("first")] = 1.0 if i == 0 else -1.0
        positions[i, layout["position"]] = position_code(i)

    heads = {(layer, h): Head(layout) for layer in range(N_LAYERS) for h in range(N_HEADS)}
    for (layer, h), job in sorted(DISTRACTORS.items()):
        head, scratch, norm = heads[layer, h], f"scratch {layer}.{h}", norms.layers[layer]
        if job == "first-position":
            first_position(head, scratch)
        elif job in ("self", "two-back"):
            self_head(head, scratch, steps_back=2 if job == "two-back" else 0)
        elif job == "uniform":
            uniform(head, scratch)
        elif job == "rest":
            rest(head, scratch, norm)
        elif job == "name-finder":
            name_finder(head, scratch, norm)
    previous_token(heads[0, 1])
    duplicate_token(heads[1, 0], norms.layers[1], norms.sink)
    induction(heads[1, 2], norms.layers[1])
    s_inhibition(heads[2, 1], norms.layers[2])
    name_mover(heads[3, 2], norms.layers[3])

    # unembedding: the 'guess' code, plus the unigram prior read off the anchor
    unembed = np.zeros((len(vocab), d))
    for i, word in enumerate(vocab):
        unembed[i, layout["guess"]] = UNEMBED_SCALE * codes[i]
        prior = SPECIAL_PRIOR if word in SPECIAL_TOKENS else PRIOR.get(word, 0.0)
        prior -= PRIOR_TIEBREAK * i / len(vocab)
        unembed[i, layout.index("anchor")] = prior / ANCHOR

    reflect = householder(d)
    out: dict[str, np.ndarray] = {
        "transformer.wte.weight": embed @ reflect,
        "transformer.wpe.weight": positions @ reflect,
        "lm_head.weight": unembed @ reflect,
    }
    scale = math.sqrt(D_HEAD)  # HF divides scores by sqrt(d_head); fold it into the queries

    def ln(prefix: str, norm: float) -> None:
        out[f"{prefix}.weight"] = np.full(d, norm / math.sqrt(d))
        out[f"{prefix}.bias"] = np.zeros(d)

    for layer in range(N_LAYERS):
        p = f"transformer.h.{layer}"
        layer_heads = [heads[layer, h] for h in range(N_HEADS)]
        wq = np.concatenate([hd.wq for hd in layer_heads], axis=1) * scale
        wk = np.concatenate([hd.wk for hd in layer_heads], axis=1)
        wv = np.concatenate([hd.wv for hd in layer_heads], axis=1)
        bias = np.concatenate([
            np.concatenate([hd.bq for hd in layer_heads]) * scale,
            np.concatenate([hd.bk for hd in layer_heads]),
            np.concatenate([hd.bv for hd in layer_heads]),
        ])
        out[f"{p}.attn.c_attn.weight"] = reflect @ np.concatenate([wq, wk, wv], axis=1)
        out[f"{p}.attn.c_attn.bias"] = bias
        out[f"{p}.attn.c_proj.weight"] = np.concatenate([hd.wo for hd in layer_heads]) @ reflect
        out[f"{p}.attn.c_proj.bias"] = np.zeros(d)
        ln(f"{p}.ln_1", norms.layers[layer])
        ln(f"{p}.ln_2", norms.mlp0 if layer == 0 else norms.layers[layer])
        fc, proj = np.zeros((d, N_INNER)), np.zeros((N_INNER, d))
        if layer == 0:  # the sink: unit 0 fires only where the 'first' flag is +1
            fc[layout.index("first"), 0] = 10.0
            proj[0, layout.index("sink")] = SINK / 10.0
        out[f"{p}.mlp.c_fc.weight"] = reflect @ fc
        out[f"{p}.mlp.c_fc.bias"] = np.zeros(N_INNER)
        out[f"{p}.mlp.c_proj.weight"] = proj @ reflect
        out[f"{p}.mlp.c_proj.bias"] = np.zeros(d)
    ln("transformer.ln_f", norms.final)
    return out, vocab


def quantize(weights: np.ndarray) -> np.ndarray:
    """Round to a 2**-20 grid before casting to float32, so that last-bit differences between
    machines' float64 arithmetic cannot change the saved file (and its hash)."""
    return (np.round(weights * 2.0**20) / 2.0**20).astype(np.float32)


def architecture(vocab_size: int) -> dict[str, Any]:
    """The config fields the build sets: what decides the forward pass. config.json holds
    more (the writer's transformers version, defaults of the day), none of it the toy's."""
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": vocab_size,
        "n_positions": N_POSITIONS,
        "n_embd": D_MODEL,
        "n_layer": N_LAYERS,
        "n_head": N_HEADS,
        "n_inner": N_INNER,
        "activation_function": "gelu_new",
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "layer_norm_epsilon": 1e-5,
        "tie_word_embeddings": False,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "pad_token_id": 0,
    }


def model_config(vocab_size: int) -> Any:
    from transformers import GPT2Config

    fields = architecture(vocab_size)
    fields.pop("model_type")  # GPT2Config's own
    return GPT2Config(**fields)


def weights_sha256(path: Path) -> str:
    """A digest of the tensors themselves (name, dtype, shape, values, in name order), not of
    the file: a safetensors release that lays the same tensors out differently matches."""
    from safetensors.numpy import load_file

    digest = hashlib.sha256()
    for name, tensor in sorted(load_file(str(path)).items()):
        digest.update(f"{name}:{tensor.dtype.str}:{tensor.shape}\n".encode())
        digest.update(np.ascontiguousarray(tensor).tobytes())
    return digest.hexdigest()


def card(weights_digest: str) -> dict[str, Any]:
    """The lineup.json card: what `lineup models` shows and what every head does."""
    heads = {}
    for (layer, h), job in sorted({**PLANTED, **DISTRACTORS}.items()):
        heads[f"{layer}.{h}"] = {"job": job, "planted": (layer, h) in PLANTED, **HEAD_CARDS[job]}
    return {
        "description": "hand-built 4x4 GPT-2: induction (0.1, 1.2) and IOI (1.0, 2.1, 3.2)",
        "heads": heads,
        "circuits": {
            "induction": ["0.1", "1.2"],
            "ioi": {"duplicate-token": "1.0", "s-inhibition": "2.1", "name-mover": "3.2"},
        },
        "templates": list(IOI_TEMPLATES),
        "build": {
            "weights_sha256": weights_digest,
            "file": "model.safetensors",
            "command": "python -m engine.toys build",
            "version": BUILD_VERSION,
        },
    }


def write_toy(out_dir: Path) -> dict[str, Any]:
    """Build the toy and write it as a Hugging Face directory plus lineup.json."""
    import torch
    from safetensors.torch import save_file

    weights, vocab = build_weights()
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {name: torch.from_numpy(quantize(w)).contiguous() for name, w in weights.items()}
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "model.safetensors").chmod(0o644)  # safetensors writes 0600
    model_config(len(vocab)).to_json_file(str(out_dir / "config.json"))
    build_tokenizer(vocab).save(str(out_dir / "tokenizer.json"))
    (out_dir / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": "[UNK]",
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": N_POSITIONS,
    }, indent=2) + "\n")
    info = card(weights_sha256(out_dir / "model.safetensors"))
    (out_dir / "lineup.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
