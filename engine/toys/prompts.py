"""Prompts for measuring the test models: IOI sentences (the one generator, also the planted
models'), repeated sequences, and where each IOI role stands."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.toys.design import IOI_TEMPLATES, SPECIAL_TOKENS, word_lists

if TYPE_CHECKING:
    import torch

    from engine.loaded import LoadedModel, Tokens


@dataclass
class IOIPrompts:
    texts: list[str]
    io: list[str]
    s: list[str]
    template: list[int]
    s2: list[str]  # the name standing at S2: S itself, or with ``abc`` a third name


def ioi_prompts(n: int = 64, *, seed: int = 0, abc: bool = False,
                templates: tuple[str, ...] = IOI_TEMPLATES) -> IOIPrompts:
    """``n`` prompts cycling through the templates, names distinct. With ``abc`` the second
    S is a third name (the corrupted distribution): same fills otherwise, so the i-th ABC
    prompt is the i-th clean prompt's twin. The one IOI prompt generator of the test models:
    the planted models use it with their own (BPE-spaced) templates."""
    lists = word_lists()
    rng = random.Random(seed)
    texts, ios, ss, which, s2s = [], [], [], [], []
    for i in range(n):
        io, s, c = rng.sample(lists["names"], 3)
        place, obj = rng.choice(lists["places"]), rng.choice(lists["objects"])
        template = templates[i % len(templates)]
        text = template.format(IO=io, S="{S}", PLACE=place, OBJECT=obj)
        first, rest_ = text.split("{S}", 1)
        text = first + s + rest_.replace("{S}", c if abc else s)
        texts.append(text)
        ios.append(io)
        ss.append(s)
        which.append(i % len(templates))
        s2s.append(c if abc else s)
    return IOIPrompts(texts, ios, ss, which, s2s)


def repeated_sequences(lm: LoadedModel, *, n: int = 32, half: int = 20, seed: int = 0,
                       pool: str = "nouns", repeat: bool = True) -> Tokens:
    """Random words (distinct within a sequence) repeated twice; ``repeat=False`` gives
    unrepeated sequences of the same length (the reference for mean ablation). ``pool`` is
    a words.yaml list or "vocab" (every ordinary token)."""
    import torch

    from engine.loaded import Tokens

    if pool == "vocab":
        ids = [i for i in range(len(lm.tokenizer)) if i >= len(SPECIAL_TOKENS)]
    else:
        ids = [lm.token_id(w) for w in word_lists()[pool]]
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        if repeat:
            first = rng.sample(ids, half)
            rows.append(first + first)
        else:
            rows.append(rng.sample(ids, 2 * half) if 2 * half <= len(ids)
                        else [rng.choice(ids) for _ in range(2 * half)])
    return Tokens(ids=torch.tensor(rows, device=lm.device), lengths=[2 * half] * n)



def prefix(tokens: Tokens, length: int) -> Tokens:
    """The first ``length`` positions of a batch of equal-length sequences."""
    from engine.loaded import Tokens

    return Tokens(ids=tokens.ids[:, :length], lengths=[length] * len(tokens))


def ioi_roles(lm: LoadedModel, prompts: IOIPrompts) -> dict[str, torch.Tensor]:
    """Per prompt, the positions of IO, S1, S1+1, S2, END and the first person."""
    import torch

    roles: dict[str, list[int]] = {k: [] for k in ("IO", "S1", "S1+1", "S2", "END", "first")}
    for text, io, s in zip(prompts.texts, prompts.io, prompts.s, strict=True):
        words = lm.token_strings(lm.tokenizer.encode(text, add_special_tokens=False))
        s_positions = [i for i, w in enumerate(words) if w == s]
        roles["IO"].append(words.index(io))
        roles["S1"].append(s_positions[0])
        roles["S1+1"].append(s_positions[0] + 1)
        roles["S2"].append(s_positions[-1])
        roles["END"].append(len(words) - 1)
        roles["first"].append(0)
    return {k: torch.tensor(v) for k, v in roles.items()}
