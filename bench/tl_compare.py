"""Shared set-up for comparing Lineup's engine with TransformerLens 4.x on the same model.

TransformerLens boots from a directory, so the model is saved to a temporary one first and
the bridge wraps the very same HF module (no weight processing: raw HF weights on both sides).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from engine.paths import GPT2_TOKENIZER_DIR

IOI_CLEAN = "When John and Mary went to the shops, John gave a bag to"
IOI_CORRUPTED = "When Alice and Bob went to the shops, Carl gave a bag to"
IOI_CLEAN_8 = [
    "When John and Mary went to the shops, John gave a bag to",
    "When Tom and Anna went to the park, Tom gave a ball to",
    "When Mark and Lisa went to the store, Mark gave a drink to",
    "When Paul and Kate went to the school, Paul gave a book to",
    "When Sarah and Dan went to the beach, Sarah gave a ring to",
    "When Emma and Mike went to the house, Emma gave a pen to",
    "When Jack and Laura went to the office, Jack gave a key to",
    "When Adam and Jane went to the church, Adam gave a letter to",
]
IOI_CORRUPTED_8 = [
    "When Alice and Bob went to the shops, Carl gave a bag to",
    "When Sam and Kate went to the park, Ben gave a ball to",
    "When Eric and Ruth went to the store, Chris gave a drink to",
    "When Lucy and Joe went to the school, Steve gave a book to",
    "When Frank and Helen went to the beach, Henry gave a ring to",
    "When Kevin and Peter went to the house, George gave a pen to",
    "When David and Rose went to the office, Amy gave a key to",
    "When Alex and Mary went to the church, James gave a letter to",
]
IOI_ANSWERS_8 = [(" Mary", " John"), (" Anna", " Tom"), (" Lisa", " Mark"), (" Kate", " Paul"),
                 (" Dan", " Sarah"), (" Mike", " Emma"), (" Laura", " Jack"), (" Jane", " Adam")]


def boot_bridge(lm: Any) -> Any:
    """A TransformerLens TransformerBridge over ``lm``'s own HF model, in compatibility mode."""
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import GPT2Tokenizer

    folder = tempfile.mkdtemp(prefix="lineup-tl-")
    with contextlib.redirect_stderr(io.StringIO()):
        lm.model.save_pretrained(folder)
        lm.tokenizer.save_pretrained(folder)
        for name in ("vocab.json", "merges.txt"):  # GPT2Tokenizer.from_pretrained reads these
            shutil.copy(GPT2_TOKENIZER_DIR / name, folder)
        bridge = TransformerBridge.boot_transformers(
            folder, hf_model=lm.model, tokenizer=GPT2Tokenizer.from_pretrained(folder)
        )
        bridge.enable_compatibility_mode()
    return bridge


def tl_head_grid(bridge: Any, clean_ids: Any, corrupted_ids: Any,
                 metric: Callable[[Any], Any]) -> Any:
    """TransformerLens's denoising head-output grid, all positions: [layer, head]."""
    from transformer_lens import patching

    _, clean_cache = bridge.run_with_cache(clean_ids)
    with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar
        return patching.get_act_patch_attn_head_out_all_pos(
            bridge, corrupted_ids, clean_cache, lambda logits: metric(logits[:, -1]).mean()
        )
