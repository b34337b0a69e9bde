"""A loaded model and its inputs: ``LoadedModel`` (a Hugging Face causal LM with its
tokenizer and the shape facts of either family), ``Tokens`` (padded rows of ids) and GPT-2's
bundled tokenizer. The run layer (hooks, interventions, detectors, lens), the metric and the
test models build on this module; where a model comes from (``engine.models``) sits above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ModelError, UsageError
from engine.paths import GPT2_TOKENIZER_DIR

if TYPE_CHECKING:
    import torch
    from transformers import GPT2LMHeadModel, LlamaForCausalLM, PreTrainedTokenizerBase

SMOLLM2 = "smollm2"  # the --model name and the puzzle block of SmolLM2-135M
FAMILIES = {"gpt2": "gpt2", "llama": "llama"}  # config.model_type -> family
GPT2_SMALL_SHAPE = {"n_layer": 12, "n_head": 12, "n_embd": 768, "vocab_size": 50257}


@dataclass
class Tokens:
    """A right-padded batch: real tokens never see padding, so positions and results match
    running each prompt alone."""

    ids: torch.Tensor  # [batch, pos] int64
    lengths: list[int]

    @property
    def last(self) -> torch.Tensor:
        """Index of each prompt's final real token, [batch]."""
        import torch

        return torch.tensor([n - 1 for n in self.lengths], device=self.ids.device)

    def __len__(self) -> int:
        return len(self.lengths)


@dataclass
class LoadedModel:
    """A model ready for the engine, with what the UI needs to say about it."""

    name: str  # the --model value: gpt2, smollm2, random-gpt2, toy, toy-ioi, or a path
    kind: str  # gpt2 | smollm2 | random-gpt2 | toy | directory
    label: str  # one line for humans; random weights always say so
    model: GPT2LMHeadModel | LlamaForCausalLM
    tokenizer: PreTrainedTokenizerBase
    fingerprint: str
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def facts(self) -> ModelFacts:
        """The model's shape, read once from its config (``ModelFacts.of``)."""
        facts = self.extra.get("facts")
        if facts is None or facts.source is not self.config:
            facts = self.extra["facts"] = ModelFacts.of(self.config)
        return facts

    @property
    def family(self) -> str:
        """``gpt2`` or ``llama``: which per-family adapter the hooked forward uses."""
        return self.facts.family

    @property
    def n_layers(self) -> int:
        return self.facts.n_layers

    @property
    def n_heads(self) -> int:
        """Query heads per layer (per-head activation names count these)."""
        return self.facts.n_heads

    @property
    def n_kv_heads(self) -> int:
        """Key/value heads per layer; fewer than ``n_heads`` when query heads share them."""
        return self.facts.n_kv_heads

    @property
    def d_model(self) -> int:
        return self.facts.d_model

    @property
    def d_head(self) -> int:
        return self.facts.d_head

    @property
    def n_ctx(self) -> int:
        """The longest sequence the model's positions cover."""
        return self.facts.n_ctx

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def block(self) -> str | None:
        """Which puzzle block this model plays: ``gpt2`` for GPT-2-small-shaped models with
        GPT-2's tokenizer, ``toy`` for the bundled toys, otherwise none."""
        if self.kind == "toy":
            return "toy"
        if self.kind == SMOLLM2:
            return SMOLLM2
        if self.family == "llama":
            from engine.smollm2 import looks_like_smollm2

            return SMOLLM2 if looks_like_smollm2(self.config.to_dict()) else None
        return "gpt2" if is_gpt2_small_shape(self.config, self.tokenizer) else None

    def tokenize(self, texts: Sequence[str]) -> Tokens:
        """Tokenize without special tokens and right-pad into one batch."""

        if not texts:
            raise UsageError("no text to run")
        rows = [self.tokenizer.encode(text, add_special_tokens=False) for text in texts]
        for text, row in zip(texts, rows, strict=True):
            if not row:
                raise UsageError(f"the text {text!r} has no tokens")
        return pad_rows(rows, device=self.device)

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return [self.tokenizer.decode([int(i)]) for i in ids]

    def token_id(self, word: str) -> int:
        """The id of a word that must be exactly one token."""
        ids = self.tokenizer.encode(word, add_special_tokens=False)
        if len(ids) != 1:
            raise UsageError(f"{word!r} is {len(ids)} tokens for {self.name}, not one")
        return int(ids[0])


# Config field names per family: the only place that reads them (config.json or a loaded
# config; GPT-2 configs loaded by transformers also answer the Llama names, files do not).
_FIELDS = {
    "gpt2": {"n_layers": "n_layer", "n_heads": "n_head", "d_model": "n_embd",
             "n_ctx": "n_positions", "n_kv_heads": None, "d_head": None, "d_mlp": "n_inner"},
    "llama": {"n_layers": "num_hidden_layers", "n_heads": "num_attention_heads",
              "d_model": "hidden_size", "n_ctx": "max_position_embeddings",
              "n_kv_heads": "num_key_value_heads", "d_head": "head_dim",
              "d_mlp": "intermediate_size"},
}


@dataclass(frozen=True)
class ModelFacts:
    """What every tool needs to know about a model's shape, for either family, from its
    config alone (no weights): so nothing else reads ``n_positions`` or
    ``max_position_embeddings`` and gets it wrong for the other family."""

    family: str  # gpt2 | llama
    n_layers: int  # rounds
    n_heads: int  # query heads per layer
    n_kv_heads: int  # key/value heads per layer (fewer when query heads share them)
    d_model: int
    d_head: int
    n_ctx: int  # the longest sequence the positions cover
    vocab_size: int
    d_mlp: int = 0  # the MLP's hidden width (GPT-2's default: 4 x d_model)
    source: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, config: Any) -> ModelFacts:
        """Facts of a config: a dict read from config.json, or a transformers config."""
        as_dict = config if isinstance(config, dict) else None

        def get(name: str | None) -> Any:
            if name is None:
                return None
            value = as_dict.get(name) if as_dict is not None else getattr(config, name, None)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        model_type = (as_dict.get("model_type") if as_dict is not None
                      else getattr(config, "model_type", None))
        family = family_of(model_type)
        names = _FIELDS[family]
        n_layers, n_heads, d_model = (get(names[k]) for k in ("n_layers", "n_heads", "d_model"))
        n_ctx = get(names["n_ctx"]) or (get("n_ctx") if family == "gpt2" else None)
        if not (n_layers and n_heads and d_model and n_ctx):
            raise ModelError(f"the {family} config lacks its shape "
                             f"({', '.join(v for k, v in names.items() if v and k != 'd_mlp')})")
        return cls(family=family, n_layers=n_layers, n_heads=n_heads,
                   n_kv_heads=get(names["n_kv_heads"]) or n_heads, d_model=d_model,
                   d_head=get(names["d_head"]) or d_model // n_heads, n_ctx=n_ctx,
                   vocab_size=get("vocab_size") or 0,
                   d_mlp=get(names["d_mlp"]) or 4 * d_model, source=config)

    @property
    def heads(self) -> int:
        """Every query head of the model."""
        return self.n_layers * self.n_heads

    def shape(self) -> str:
        """One line for humans: ``30 layers x 9 questions (3 key/value heads), 8192 tokens``."""
        shared = f" ({self.n_kv_heads} key/value heads)" if self.n_kv_heads != self.n_heads else ""
        return (f"{self.n_layers} layers x {self.n_heads} questions{shared}, "
                f"reads up to {self.n_ctx} tokens")


def pad_rows(rows: Sequence[Sequence[int]], *, device: Any = None, pad_id: int = 0) -> Tokens:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(list(row), dtype=torch.long)
    return Tokens(ids=ids.to(device) if device is not None else ids, lengths=[len(r) for r in rows])


def family_of(model_type: str | None) -> str:
    """The family of a config's ``model_type`` (None means an old GPT-2 config)."""
    if model_type is None:
        return "gpt2"
    if model_type not in FAMILIES:
        raise ModelError(f"model type {model_type!r} is not supported (GPT-2 or Llama family)")
    return FAMILIES[model_type]


def is_gpt2_small_shape(config: Any, tokenizer: Any = None) -> bool:
    shape_ok = all(getattr(config, k, None) == v for k, v in GPT2_SMALL_SHAPE.items())
    if tokenizer is None:
        return shape_ok
    return shape_ok and len(tokenizer) == GPT2_SMALL_SHAPE["vocab_size"]


_GPT2_TOKENIZER: Any = None


def gpt2_tokenizer() -> PreTrainedTokenizerBase:
    """GPT-2's byte-level BPE from the files shipped in the package (loaded once)."""
    global _GPT2_TOKENIZER
    if _GPT2_TOKENIZER is None:
        from transformers import GPT2Tokenizer

        _GPT2_TOKENIZER = GPT2Tokenizer(
            vocab=str(GPT2_TOKENIZER_DIR / "vocab.json"),
            merges=str(GPT2_TOKENIZER_DIR / "merges.txt"),
        )
    return _GPT2_TOKENIZER
