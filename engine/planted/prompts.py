"""Prompts for building and measuring the planted models: IOI sentences (from
``engine.toys.ioi_prompts``, the one generator) with their roles, and repeated random tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.planted.plan import VOCAB_SIZE
from engine.toys import prompts as toy_prompts

if TYPE_CHECKING:
    import torch

    from engine.loaded import LoadedModel, Tokens


IOI_TEMPLATES = (
    "When {IO} and {S} went to the {PLACE}, {S} gave a {OBJECT} to",
    "When {S} and {IO} went to the {PLACE}, {S} gave a {OBJECT} to",
    "After {IO} and {S} met at the {PLACE}, {S} handed a {OBJECT} to",
    "After {S} and {IO} met at the {PLACE}, {S} handed a {OBJECT} to",
)


@dataclass
class IOIBatch:
    texts: list[str]
    tokens: Tokens
    io: list[int]  # token ids
    s: list[int]
    roles: dict[str, torch.Tensor]  # IO, S1, S1+1, S2, END: positions per prompt


def ioi_batch(lm: LoadedModel, n: int = 32, *, seed: int = 0, abc: bool = False) -> IOIBatch:
    """``n`` IOI prompts over the four puzzle templates (``engine.toys.ioi_prompts``, the one
    generator); with ``abc`` the second S is a third name (the corrupted distribution),
    otherwise the same fills (the i-th prompts are twins). Roles are found as the judge
    finds them: IO and S1 by first occurrence, S2 the second."""
    import torch

    prompts = toy_prompts.ioi_prompts(n, seed=seed, abc=abc, templates=IOI_TEMPLATES)
    ios, ss = [], []
    roles: dict[str, list[int]] = {k: [] for k in ("IO", "S1", "S1+1", "S2", "END")}
    for text, io, s, s2 in zip(prompts.texts, prompts.io, prompts.s, prompts.s2, strict=True):
        ids = lm.tokenizer.encode(text, add_special_tokens=False)
        io_id, s_id, s2_id = (lm.token_id(" " + w) for w in (io, s, s2))
        s_at = [j for j, t in enumerate(ids) if t == s_id]
        roles["IO"].append(ids.index(io_id))
        roles["S1"].append(s_at[0])
        roles["S1+1"].append(s_at[0] + 1)
        roles["S2"].append(ids.index(s2_id) if abc else s_at[-1])
        roles["END"].append(len(ids) - 1)
        ios.append(io_id)
        ss.append(s_id)
    return IOIBatch(prompts.texts, lm.tokenize(prompts.texts), ios, ss,
                    {k: torch.tensor(v) for k, v in roles.items()})


def repeated_tokens(lm: LoadedModel, n: int = 16, half: int = 20, *, seed: int = 0,
                    repeat: bool = True) -> Tokens:
    """Random ordinary tokens (distinct within a row) after <|endoftext|>, the half repeated;
    ``repeat=False`` gives unrepeated rows of the same length (mean-ablation reference)."""
    import torch

    from engine.loaded import Tokens

    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        picks = torch.randperm(VOCAB_SIZE - 1, generator=gen)[: 2 * half]
        body = torch.cat([picks[:half], picks[:half]]) if repeat else picks
        rows.append(torch.cat([torch.tensor([VOCAB_SIZE - 1]), body]))
    ids = torch.stack(rows).to(lm.device)
    return Tokens(ids=ids, lengths=[ids.shape[1]] * n)
