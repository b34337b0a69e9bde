"""The bundled toy model: a real GPT-2 checkpoint whose circuits are planted by hand.

Real GPT-2 weights cannot be downloaded everywhere the game runs (or is tested), so the engine
needs a model whose mechanism is *known* in order to prove its own detectors, patching and
judge right. This module builds that model, weight by weight, and measures it::

    python -m engine.toys build   # writes engine/assets/toys/toy/ (about a second)
    python -m engine.toys check   # rebuild check + every figure in docs/toy-models.md

The model (``toy``) is a ``GPT2LMHeadModel`` with 4 layers of 4 heads that does two tasks by
the textbook circuits, with every other head doing a visibly different job that the tasks do
not use (so a player has heads to rule out):

==========  ==================  =======================================================
head        job                 the question, in the line of people
==========  ==================  =======================================================
0.1         previous-token      "who stands right behind me?" -- they answer with their word
1.2         induction           "who stood right after someone holding my word?" -- they
                                answer with their own word, which becomes my guess
1.0         duplicate-token     "does anyone behind me hold my word?" -- they answer "yes"
2.1         s-inhibition        "who holds a name and was told it is repeated?" -- they
                                answer with that name: the name *not* to say
3.2         name-mover          (asked only by the word "to") "who holds a name, other than
                                the one not to say?" -- they answer with their name
==========  ==================  =======================================================

Induction is 0.1 then 1.2 (K-composition: 1.2's keys read what 0.1 wrote). Indirect object
identification (IOI) is 1.0 at S2, then 2.1 at END reading 1.0's flag (K-composition), then
3.2 at END whose query reads 2.1's answer (Q-composition) and which copies IO into the logits.

Why hand-set weights: the mechanism is then exact and documented, the build is deterministic
and takes about a second, and a test can rebuild it and compare hashes. Training would give a
model whose circuit we would first have to find, which is the engine's job, not its premise.

How the weights are written. Every weight is first written in a *feature basis*: the residual
stream is a list of named slots (``Layout``): the token's code, the position's clocks, "the
previous token", "repeated", "the name not to say", "the output guess", and a few flags. Three
choices make GPT-2's layer norms harmless:

- the feature basis is the residual basis reflected (``householder``) so that no feature has
  any component along the all-ones direction, which a layer norm subtracts (the mean);
- a large constant ``ANCHOR`` slot and constant-norm codes (flags are +-1, clocks and token
  codes are unit vectors) keep every position's norm nearly the same, so each layer norm is a
  fixed scale, which its gain undoes;
- after layer 0, layer 0's MLP writes a huge vector at position 0 only (an *attention sink*,
  like a real model's first token): after a layer norm, position 0 then says almost nothing,
  so a head with nobody to ask rests its attention there and hears nothing back.

Tokens are coded by unit +-1/sqrt(48) vectors whose overlaps are bounded (at most 14/48);
positions by three "clocks" (position mod 2, mod 5 and mod 7, as sinusoids), so that moving
one step back in the line is one fixed rotation and two positions below 64 always differ on
at least one clock. The tokenizer is word-level with GPT-2-like special token
``<|endoftext|>`` (id 0, also the padding id) and ``[UNK]``; its vocabulary is every word of
``puzzles/words.yaml`` plus the IOI template words.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.paths import TOYS_DIR

if TYPE_CHECKING:
    import torch

    from engine.models import LoadedModel, Tokens

TOY_NAME = "toy"
WORDS_FILE = Path(__file__).resolve().parent.parent / "puzzles" / "words.yaml"
BUILD_VERSION = 1

# --------------------------------------------------------------------------- shapes
D_MODEL = 240
N_LAYERS = 4
N_HEADS = 4
D_HEAD = D_MODEL // N_HEADS
N_POSITIONS = 64
N_INNER = 4  # the MLPs are off except one unit of MLP 0 (the sink); no need for 4 * d_model
CODE_DIM = 48  # token codes: +-1/sqrt(48) vectors
CODE_MAX_OVERLAP = 14  # |<code a, code b>| <= 14/48 for distinct tokens (integer +-1 products)
CLOCKS = (2, 5, 7)  # positions are told apart by i mod 2, i mod 5, i mod 7: 70 > 64 positions

# --------------------------------------------------------------------------- strengths
ANCHOR = 10.0  # constant slot that keeps every residual's norm nearly the same
SINK = 400.0  # what MLP 0 writes at position 0: after a layer norm, its other slots shrink 40x
FLAG_NOTE = 0.25  # how loudly the distractor heads answer (into slots nobody reads)

# Attention strengths are in nats (the score difference between who answers and who does not).
PREV_SHARPNESS = 20.0  # 0.1: per clock on which a position differs from "right behind me"
SELF_SHARPNESS = 20.0  # self / two-back distractors, same kernel
FIRST_SHARPNESS = 10.0  # 0.0 first-position distractor
REST_SCORE = 10.0  # "rest" distractors: the sink scores this, everyone else 0
DUP_MATCH, DUP_ELSEWHERE, DUP_SINK = 60.0, 14.0, 67.0  # 1.0, see duplicate_token()
IND_MATCH, IND_SINK = 40.0, 26.0  # 1.2, see induction()
INH_REPEATED, INH_NAME, INH_SINK = 8.0, 8.0, 8.0  # 2.1, see inhibition()
MOVER_NAME, MOVER_AVOID, MOVER_SINK = 36.0, 25.0, 20.0  # 3.2, see name_mover()
FINDER_NAME, FINDER_SINK = 8.0, 4.0  # 2.0, the decoy name finder

# How strongly the two copying heads write their guess, and the unembedding's scale.
INDUCTION_WRITE = 1.5
MOVER_WRITE = 4.0
UNEMBED_SCALE = 3.0
# A small unigram prior (logits before any head has guessed): common words first, special
# tokens never. It also keeps the logit lens from reporting ties as "the answer is on top".
PRIOR = {"the": 1.0, ",": 0.8, "and": 0.6, "a": 0.5, "to": 0.4, ".": 0.3}
SPECIAL_PRIOR = -4.0
PRIOR_TIEBREAK = 0.01  # other words: 0 down to -0.01 in vocabulary order, so that no two
# logits are ever equal (ties would be broken by float rounding, differently per machine)

SPECIAL_TOKENS = ("<|endoftext|>", "[UNK]")
TEMPLATE_WORDS = ("When", "After", "and", "went", "met", "to", "at", "the", ",", "gave",
                  "handed", "a", ".")
END_WORD = "to"  # the word after which a name is expected: the name mover asks only there
IOI_TEMPLATES = (
    "When {IO} and {S} went to the {PLACE} , {S} gave a {OBJECT} to",
    "When {S} and {IO} went to the {PLACE} , {S} gave a {OBJECT} to",
    "After {IO} and {S} met at the {PLACE} , {S} handed a {OBJECT} to",
    "After {S} and {IO} met at the {PLACE} , {S} handed a {OBJECT} to",
)

PLANTED = {
    (0, 1): "previous-token",
    (1, 0): "duplicate-token",
    (1, 2): "induction",
    (2, 1): "s-inhibition",
    (3, 2): "name-mover",
}
DISTRACTORS = {
    (0, 0): "first-position",
    (0, 2): "self",
    (0, 3): "uniform",
    (1, 1): "two-back",
    (1, 3): "rest",
    (2, 0): "name-finder",
    (2, 2): "self",
    (2, 3): "uniform",
    (3, 0): "rest",
    (3, 1): "self",
    (3, 3): "uniform",
}

HEAD_CARDS: dict[str, dict[str, str]] = {
    "previous-token": {
        "question": "who stands right behind me?",
        "answer": "their word (into the 'previous word' slot)",
        "circuit": "induction",
    },
    "duplicate-token": {
        "question": "does anyone behind me hold my word?",
        "answer": "'yes, repeated' (no one: the first person answers 'no')",
        "circuit": "ioi",
    },
    "induction": {
        "question": "whose previous word is my word?",
        "answer": "their own word, which becomes my guess (reads 0.1's answers: K-composition)",
        "circuit": "induction",
    },
    "s-inhibition": {
        "question": "who holds a name and was told it is repeated?",
        "answer": "that name, as the name not to say (reads 1.0's flag: K-composition)",
        "circuit": "ioi",
    },
    "name-mover": {
        "question": "asked only by 'to': who holds a name other than the one not to say?",
        "answer": "their name, straight into the guess (reads 2.1's answer: Q-composition)",
        "circuit": "ioi",
    },
    "first-position": {
        "question": "who is first in line?",
        "answer": "whether they hold a name (never used)",
        "circuit": "none",
    },
    "self": {
        "question": "asks only itself",
        "answer": "whether it holds a name (never used)",
        "circuit": "none",
    },
    "uniform": {
        "question": "asks everyone and listens to all equally",
        "answer": "how many hold names (never used)",
        "circuit": "none",
    },
    "two-back": {
        "question": "who stands two places behind me?",
        "answer": "whether they hold a name (never used)",
        "circuit": "none",
    },
    "rest": {
        "question": "asks no one (rests on the first person)",
        "answer": "nothing",
        "circuit": "none",
    },
    "name-finder": {
        "question": "who holds a name? (a decoy: it cannot tell repeated names apart)",
        "answer": "that they hold a name (never used)",
        "circuit": "none",
    },
}


# --------------------------------------------------------------------------- vocabulary


def word_lists() -> dict[str, list[str]]:
    """The puzzle word lists (``puzzles/words.yaml``), which the vocabulary must cover."""
    import yaml

    data = yaml.safe_load(WORDS_FILE.read_text())
    return {key: [str(w) for w in words] for key, words in data.items()}


def vocabulary() -> list[str]:
    """Every token, in id order: special tokens, template words, then the word lists."""
    words: list[str] = [*SPECIAL_TOKENS, *TEMPLATE_WORDS]
    for group in word_lists().values():
        words += group
    return list(dict.fromkeys(words))


def build_tokenizer(vocab: list[str]) -> Any:
    """A word-level tokenizer; the Whitespace pre-tokenizer splits "park," into "park" ","."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL_TOKENS])
    return tokenizer


# --------------------------------------------------------------------------- codes


def token_codes(n: int, dim: int = CODE_DIM, max_overlap: int = CODE_MAX_OVERLAP) -> np.ndarray:
    """``n`` unit codes of +-1/sqrt(dim) entries, any two overlapping by at most
    ``max_overlap / dim``.

    Greedy: candidates come from SHA-256 of a counter (the same bits on every machine and
    numpy version) and are kept when their integer overlap with every kept code is small.
    Integer arithmetic, so the result is exact and reproducible.
    """
    kept = np.zeros((0, dim), dtype=np.int64)
    counter = 0
    while len(kept) < n:
        bits = hashlib.sha256(f"lineup-toy-code:{counter}".encode()).digest()
        counter += 1
        sign = np.unpackbits(np.frombuffer(bits, dtype=np.uint8))[:dim].astype(np.int64) * 2 - 1
        if len(kept) and np.abs(kept @ sign).max() > max_overlap:
            continue
        kept = np.vstack([kept, sign])
    return kept.astype(np.float64) / math.sqrt(dim)


def clock_harmonics(clocks: tuple[int, ...] = CLOCKS) -> list[tuple[int, int, str]]:
    """The position code's coordinates as (modulus, harmonic, "cos"|"sin")."""
    out: list[tuple[int, int, str]] = []
    for m in clocks:
        for r in range(1, m // 2 + 1):
            out.append((m, r, "cos"))
            if 2 * r != m:  # the mod-2 clock's sine is always 0
                out.append((m, r, "sin"))
    return out


def position_code(i: int, clocks: tuple[int, ...] = CLOCKS) -> np.ndarray:
    """Position ``i`` as three clocks; each clock is a unit vector, so the code's norm is
    sqrt(3) everywhere and <code(i), code(j)> = 3 exactly when i = j (mod 70)."""
    parts = []
    for m, r, kind in clock_harmonics(clocks):
        scale = 1.0 / math.sqrt(m // 2)  # m // 2 harmonics, each a (cos, sin) of norm 1
        angle = 2.0 * math.pi * r * i / m
        parts.append(scale * (math.cos(angle) if kind == "cos" else math.sin(angle)))
    return np.array(parts)


def clock_weights(clocks: tuple[int, ...] = CLOCKS) -> np.ndarray:
    """Per-coordinate weights making a position *kernel* <W code(i), code(j)> drop by exactly
    1 for every clock on which i and j differ (a clock's own kernel is 1 when equal and
    -1/(m-1) when not, so its weight is (m-1)/m)."""
    return np.array([(m - 1) / m for m, _, _ in clock_harmonics(clocks)])


def kernel_peak(clocks: tuple[int, ...] = CLOCKS) -> float:
    """The weighted position kernel at distance 0: sum over clocks of (m-1)/m."""
    return sum((m - 1) / m for m in clocks)


def clock_shift(steps: int, clocks: tuple[int, ...] = CLOCKS) -> np.ndarray:
    """The fixed rotation taking code(i) to code(i - steps): [n_pos, n_pos]."""
    harmonics = clock_harmonics(clocks)
    out = np.zeros((len(harmonics), len(harmonics)))
    for a, (m, r, kind) in enumerate(harmonics):
        phi = 2.0 * math.pi * r * steps / m
        if 2 * r == m:  # cos(pi (i - s)) = cos(pi i) cos(pi s)
            out[a, a] = math.cos(phi)
            continue
        if kind == "cos":  # cos(x - phi) = cos x cos phi + sin x sin phi
            out[a, a], out[a, a + 1] = math.cos(phi), math.sin(phi)
        else:  # sin(x - phi) = sin x cos phi - cos x sin phi
            out[a, a], out[a, a - 1] = math.cos(phi), -math.sin(phi)
    return out


# --------------------------------------------------------------------------- layout


@dataclass
class Layout:
    """Which residual slots (feature coordinates) hold what. Coordinate 0 is kept empty: it
    is the all-ones direction after the reflection, which layer norms subtract."""

    size: int = D_MODEL
    used: int = 1
    slots: dict[str, slice] = field(default_factory=dict)

    def take(self, name: str, width: int = 1) -> slice:
        block = slice(self.used, self.used + width)
        self.used += width
        if self.used > self.size:
            raise ValueError("the residual stream is too narrow for the layout")
        self.slots[name] = block
        return block

    def __getitem__(self, name: str) -> slice:
        return self.slots[name]

    def index(self, name: str) -> int:
        return self.slots[name].start


def make_layout() -> Layout:
    layout = Layout()
    for scalar in ("anchor", "first", "name", "end_word", "sink", "repeated"):
        layout.take(scalar)
    layout.take("position", len(clock_harmonics()))
    for layer, head in sorted(DISTRACTORS):  # one slot each, which nothing reads
        layout.take(f"scratch {layer}.{head}")
    for block in ("token", "previous", "avoid", "guess"):
        layout.take(block, CODE_DIM)
    return layout


def householder(d: int) -> np.ndarray:
    """The symmetric orthogonal reflection swapping e_0 and the all-ones direction / sqrt(d).
    Feature vectors with coordinate 0 empty map to residual vectors with zero mean."""
    u = np.zeros(d)
    u[0] = 1.0
    u -= np.full(d, 1.0 / math.sqrt(d))
    u /= np.linalg.norm(u)
    return np.eye(d) - 2.0 * np.outer(u, u)


# --------------------------------------------------------------------------- heads


class Head:
    """One head's weights in the feature basis, built term by term.

    An attention score is a sum of terms <query part, key part>, each over its own slots of
    the head's 60 dimensions; ``score`` adds one. A value path copies feature slots into other
    feature slots; ``value`` adds one. The layer-norm output is written ``x``.
    """

    def __init__(self, layout: Layout, d_head: int = D_HEAD) -> None:
        d = layout.size
        self.layout = layout
        self.d_head = d_head
        self.wq, self.bq = np.zeros((d, d_head)), np.zeros(d_head)
        self.wk, self.bk = np.zeros((d, d_head)), np.zeros(d_head)
        self.wv, self.bv = np.zeros((d, d_head)), np.zeros(d_head)
        self.wo = np.zeros((d_head, d))
        self.qk_used = 0
        self.ov_used = 0

    def _slots(self, width: int, *, value: bool = False) -> slice:
        start = self.ov_used if value else self.qk_used
        if start + width > self.d_head:
            raise ValueError(f"a head has only {self.d_head} dimensions")
        if value:
            self.ov_used += width
        else:
            self.qk_used += width
        return slice(start, start + width)

    def score(self, query: dict[str, Any], key: dict[str, Any], width: int = 1) -> None:
        """Add <q, k> to the score, where q = sum(query[slot] applied to x[slot]) and likewise
        k. A part is a matrix [width, slot width], a number (scalar slots), or, under the key
        "bias", a constant vector/number."""
        cols = self._slots(width)
        for weights, bias, part in ((self.wq, self.bq, query), (self.wk, self.bk, key)):
            for slot, m in part.items():
                if slot == "bias":
                    bias[cols] += m
                    continue
                rows = self.layout[slot]
                m = np.asarray(m, dtype=np.float64)
                weights[rows, cols] += m.T if m.ndim == 2 else m

    def value(self, source: str, target: str, gain: float = 1.0) -> None:
        """Answer with slot ``source`` (times ``gain``) written into slot ``target``."""
        rows, out = self.layout[source], self.layout[target]
        width = rows.stop - rows.start
        if out.stop - out.start != width:
            raise ValueError(f"{source} and {target} differ in width")
        cols = self._slots(width, value=True)
        self.wv[rows, cols] = np.eye(width)
        self.wo[cols, out] = gain * np.eye(width)

    def flag(self, reads: dict[str, float], target: str) -> None:
        """Answer with one number, sum(coef * x[slot]), written into the scalar ``target``."""
        cols = self._slots(1, value=True)
        for slot, coef in reads.items():
            self.wv[self.layout.index(slot), cols] = coef
        self.wo[cols, self.layout[target]] = 1.0


@dataclass
class Norms:
    """The design norm of the residual at the input of each layer norm (non-sink positions).
    Each layer norm's gain is set so that it returns its input at exactly this norm."""

    layers: list[float]
    mlp0: float
    final: float
    sink: float  # the norm at position 0 once MLP 0 has written the sink


def design_norms() -> Norms:
    """Norms by construction: the embedding is anchor + 3 flags + 3 clocks + a token code;
    layer 0 adds the previous word, layer 1 the repeated flag and often an induction guess,
    layer 2 often a name to avoid. (Distractors add at most FLAG_NOTE**2 each.)"""
    embed = ANCHOR**2 + 3 + len(CLOCKS) + 1
    after0 = embed + 1
    after1 = after0 + 1 + 0.5 * INDUCTION_WRITE**2
    after2 = after1 + 0.5
    final = after2 + 1
    return Norms(
        layers=[math.sqrt(n) for n in (embed, after0, after1, after2)],
        mlp0=math.sqrt(after0),
        final=math.sqrt(final),
        sink=math.sqrt(after0 + SINK**2),
    )


def sink_key(norm: float) -> dict[str, float]:
    """A key part that is ~1 at the sink (position 0) and 0 elsewhere."""
    return {"sink": 1.0 / norm}


def position_kernel(steps_back: int, sharpness: float) -> tuple[dict, dict]:
    """Query/key parts scoring key position j from query position i by sharpness times
    (kernel_peak() - the number of clocks on which j and i - steps_back differ): the target
    position scores highest, and every differing clock costs ``sharpness``."""
    query = {"position": sharpness * (np.diag(clock_weights()) @ clock_shift(steps_back))}
    key = {"position": np.eye(len(clock_harmonics()))}
    return query, key


def first_position(head: Head, scratch: str) -> None:
    """Distractor: everyone asks the first person (by the 'first' flag)."""
    head.score({"bias": FIRST_SHARPNESS / 2}, {"first": 1.0})
    head.value("name", scratch, FLAG_NOTE)


def self_head(head: Head, scratch: str, steps_back: int = 0) -> None:
    """Distractor: everyone asks themselves (or the person ``steps_back`` behind)."""
    q, k = position_kernel(steps_back, SELF_SHARPNESS)
    head.score(q, k, width=len(clock_harmonics()))
    head.value("name", scratch, FLAG_NOTE)


def uniform(head: Head, scratch: str) -> None:
    """Distractor: a question everyone answers equally (all scores 0)."""
    head.value("name", scratch, FLAG_NOTE)


def rest(head: Head, scratch: str, norm: float) -> None:
    """Distractor: rests on the sink; what the sink says back is ~0."""
    head.score({"bias": REST_SCORE}, sink_key(norm))
    head.value("name", scratch, FLAG_NOTE)


def previous_token(head: Head) -> None:
    """0.1. Query: my position moved one step back; key: each position. Anyone but the
    person right behind me differs from them on at least one clock and loses 20 per clock,
    so attention to i - 1 is 1 - 1e-8 (position 0 can only ask itself). Value: their token
    code, written into 'previous'."""
    q, k = position_kernel(1, PREV_SHARPNESS)
    head.score(q, k, width=len(clock_harmonics()))
    head.value("token", "previous")


def duplicate_token(head: Head, norm: float, sink_norm: float) -> None:
    """1.0. Score = 60 <my code, their code> + 14 * (clocks on which they differ from me),
    and the sink scores 67. So: an earlier copy of my word scores >= 74, myself 60, another
    word <= 60 * 14/48 + 42 = 59.5, and the sink 67 -- an earlier copy wins by >= 7 nats,
    otherwise the sink wins by >= 7. Value: +1 from anyone but the sink, -1 from the sink,
    written into 'repeated' (so the flag is +1 at a repeat, -1 elsewhere)."""
    n_pos = len(clock_harmonics())
    head.score({"token": DUP_MATCH * np.eye(CODE_DIM)}, {"token": np.eye(CODE_DIM)}, CODE_DIM)
    q, k = position_kernel(0, -DUP_ELSEWHERE)
    head.score(q, k, width=n_pos)
    # the position term is -14 * (kernel peak - clocks missed); the sink's clocks are ~0
    # after the layer norm, so it is moved by the same constant to keep the scores above.
    head.score({"bias": DUP_SINK - DUP_ELSEWHERE * kernel_peak()}, sink_key(norm))
    # value: anchor/ANCHOR is 1 off the sink; at the sink the anchor shrinks by norm/sink_norm
    # and the sink slot is SINK * norm/sink_norm, so this coefficient makes the sink say -1.
    head.flag({"anchor": 1.0 / ANCHOR, "sink": (-sink_norm / norm - 1.0) / SINK}, "repeated")


def induction(head: Head, norm: float) -> None:
    """1.2. Query: my token code; key: the 'previous' slot that 0.1 wrote (K-composition).
    The person whose previous word is my word scores 40, others <= 40 * 14/48 = 11.7, the
    sink 26: with no earlier copy of my word the head rests. Value: their token code, into
    'guess' -- the word that followed my word last time becomes my guess."""
    head.score({"token": IND_MATCH * np.eye(CODE_DIM)}, {"previous": np.eye(CODE_DIM)},
               CODE_DIM)
    head.score({"bias": IND_SINK}, sink_key(norm))
    head.value("token", "guess", INDUCTION_WRITE)


def s_inhibition(head: Head, norm: float) -> None:
    """2.1. Key: 8 * repeated + 8 * name (both +-1); the sink scores 8. A repeated name
    scores 16, a name or a repeated word alone 0, so it finds S2 or rests. Value: their
    token code, into 'avoid' -- the name not to say."""
    head.score({"bias": INH_REPEATED}, {"repeated": 1.0})
    head.score({"bias": INH_NAME}, {"name": 1.0})
    head.score({"bias": INH_SINK}, sink_key(norm))
    head.value("token", "avoid")


def name_mover(head: Head, norm: float) -> None:
    """3.2. Only the word 'to' asks: the query's name part is 36 * (1 + end_word)/2, so at
    'to' names score +36 and other words -36, elsewhere all score 0. The query also carries
    -25 * 'avoid' against the key's token code (Q-composition with 2.1): the name to avoid
    loses 25, another name at most 25 * 14/48 = 7.3. The sink scores 20: IO (>= 28.7) wins,
    S (11) loses, and off 'to' everyone (<= 7.3) loses to the sink. Value: their token code,
    into 'guess'."""
    head.score({"bias": MOVER_NAME / 2, "end_word": MOVER_NAME / 2}, {"name": 1.0})
    head.score({"avoid": -MOVER_AVOID * np.eye(CODE_DIM)}, {"token": np.eye(CODE_DIM)},
               CODE_DIM)
    head.score({"bias": MOVER_SINK}, sink_key(norm))
    head.value("token", "guess", MOVER_WRITE)


def name_finder(head: Head, scratch: str, norm: float) -> None:
    """2.0, a decoy: asks for names like the name mover but cannot tell a repeated one
    apart, and what it hears goes into a slot nobody reads."""
    head.score({"bias": FINDER_NAME}, {"name": 1.0})
    head.score({"bias": FINDER_SINK}, sink_key(norm))
    head.value("name", scratch, FLAG_NOTE)


# --------------------------------------------------------------------------- weights


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


# --------------------------------------------------------------------------- prompts


@dataclass
class IOIPrompts:
    texts: list[str]
    io: list[str]
    s: list[str]
    template: list[int]


def ioi_prompts(n: int = 64, *, seed: int = 0, abc: bool = False,
                templates: tuple[str, ...] = IOI_TEMPLATES) -> IOIPrompts:
    """``n`` prompts cycling through the templates, names distinct. With ``abc`` the second
    S is a third name (the corrupted distribution): same fills otherwise, so the i-th ABC
    prompt is the i-th clean prompt's twin."""
    lists = word_lists()
    rng = random.Random(seed)
    texts, ios, ss, which = [], [], [], []
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
    return IOIPrompts(texts, ios, ss, which)


def repeated_sequences(lm: LoadedModel, *, n: int = 32, half: int = 20, seed: int = 0,
                       pool: str = "nouns", repeat: bool = True) -> Tokens:
    """Random words (distinct within a sequence) repeated twice; ``repeat=False`` gives
    unrepeated sequences of the same length (the reference for mean ablation). ``pool`` is
    a words.yaml list or "vocab" (every ordinary token)."""
    import torch

    from engine.models import Tokens

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


# --------------------------------------------------------------------------- measuring


def induction_accuracy(logits: torch.Tensor, tokens: Tokens) -> float:
    """Share of second-half positions whose top guess is the word that followed the current
    word in the first half."""
    half = tokens.ids.shape[1] // 2
    first = tokens.ids[:, :half]
    target = first.roll(-1, dims=1)  # position j of the second half: first half's j + 1
    guess = logits[:, half:].argmax(-1)
    return float((guess == target).float().mean())


@dataclass
class IOIResult:
    accuracy: float  # top-1 over the vocabulary is IO
    io_over_s: float  # logit(IO) > logit(S)
    logit_diff: float  # mean logit(IO) - logit(S)


def ioi_result(lm: LoadedModel, last_logits: torch.Tensor, prompts: IOIPrompts) -> IOIResult:
    import torch

    io = torch.tensor([lm.token_id(w) for w in prompts.io], device=last_logits.device)
    s = torch.tensor([lm.token_id(w) for w in prompts.s], device=last_logits.device)
    rows = torch.arange(len(io), device=last_logits.device)
    diff = last_logits[rows, io] - last_logits[rows, s]
    return IOIResult(
        accuracy=float((last_logits.argmax(-1) == io).float().mean()),
        io_over_s=float((diff > 0).float().mean()),
        logit_diff=float(diff.mean()),
    )


def last_logits(lm: LoadedModel, tokens: Tokens) -> torch.Tensor:
    import torch

    from engine.hooks import forward

    with torch.inference_mode():
        return forward(lm, tokens, logits="last").logits


def measure(lm: LoadedModel, *, n: int = 64) -> dict[str, Any]:
    """Every figure of docs/toy-models.md, measured with the engine's own tools."""
    import torch

    from engine.detectors import head_scores
    from engine.hooks import act_name, forward
    from engine.interventions import ablate_heads, mean_z
    from engine.lens import answer_ranks

    report: dict[str, Any] = {}
    # induction
    seqs = {pool: repeated_sequences(lm, pool=pool, n=n // 2) for pool in ("nouns", "vocab")}
    refs = {pool: repeated_sequences(lm, pool=pool, n=n // 2, seed=1, repeat=False)
            for pool in ("nouns", "vocab")}
    with torch.inference_mode():
        for pool, tokens in seqs.items():
            logits = forward(lm, tokens).logits
            report[f"induction_accuracy_{pool}"] = induction_accuracy(logits, tokens)
    # IOI
    clean, abc = ioi_prompts(n), ioi_prompts(n, abc=True)
    clean_tokens, abc_tokens = lm.tokenize(clean.texts), lm.tokenize(abc.texts)
    result = ioi_result(lm, last_logits(lm, clean_tokens), clean)
    report["ioi"] = result.__dict__
    report["ioi_abc"] = ioi_result(lm, last_logits(lm, abc_tokens), abc).__dict__
    # ablation of every head, one at a time
    ioi_means = mean_z(lm, abc_tokens)
    ind_means = mean_z(lm, refs["nouns"])
    ablations = {}
    for layer in range(lm.n_layers):
        for head in range(lm.n_heads):
            ind = ablate_heads(lm, seqs["nouns"], [(layer, head)], means=ind_means)
            ioi = ablate_heads(lm, clean_tokens, [(layer, head)], means=ioi_means, logits="last")
            ablations[f"{layer}.{head}"] = {
                "induction_accuracy": induction_accuracy(ind, seqs["nouns"]),
                **{f"ioi_{k}": v for k, v in ioi_result(lm, ioi, clean).__dict__.items()},
            }
    report["ablations"] = ablations
    # attention from the IOI roles, and the detectors
    with torch.inference_mode():
        run = forward(lm, clean_tokens, record=["pattern"], logits="none")
    roles = ioi_roles(lm, clean)
    rows = torch.arange(len(clean.texts))
    attention: dict[str, dict[str, float]] = {}
    for layer in range(lm.n_layers):
        pattern = run.cache[act_name("pattern", layer)]
        for head in range(lm.n_heads):
            p = pattern[:, head]
            attention[f"{layer}.{head}"] = {
                f"{a}->{b}": round(float(p[rows, roles[a], roles[b]].mean()), 3)
                for a, b in ATTENTION_ROLES
            }
    report["ioi_attention"] = attention
    report["head_scores"] = {s.name: {k: getattr(s, k) for k in
                                      ("previous_token", "duplicate_token", "induction", "copy")}
                             for s in head_scores(lm)}
    # logit lens: rank of the answer after each layer (0 = embeddings)
    tokens = seqs["nouns"]
    cut = prefix(tokens, tokens.ids.shape[1] - 1)
    answers = tokens.ids[:, -1]
    report["lens_induction_median_rank"] = [
        float(r.float().median()) for r in answer_ranks(lm, cut, answers)]
    io = torch.tensor([lm.token_id(w) for w in clean.io])
    report["lens_ioi_median_rank"] = [
        float(r.float().median()) for r in answer_ranks(lm, clean_tokens, io)]
    return report


def prefix(tokens: Tokens, length: int) -> Tokens:
    """The first ``length`` positions of a batch of equal-length sequences."""
    from engine.models import Tokens

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


# --------------------------------------------------------------------------- command line


def build(out_root: Path = TOYS_DIR) -> dict[str, Any]:
    info = write_toy(out_root / TOY_NAME)
    size = sum(p.stat().st_size for p in (out_root / TOY_NAME).iterdir())
    print(f"wrote {out_root / TOY_NAME} ({size / 1e6:.2f} MB), "
          f"weights sha256 {info['build']['weights_sha256']}")
    return info


def check(out_root: Path = TOYS_DIR) -> int:
    """Verify the bundled checkpoint (hash, rebuild, vocabulary) and print its figures."""
    import tempfile

    from engine.models import load_model

    folder = out_root / TOY_NAME
    problems = []
    recorded = json.loads((folder / "lineup.json").read_text())["build"]["weights_sha256"]
    actual = weights_sha256(folder / "model.safetensors")
    if recorded != actual:
        problems.append(f"the weights' hash {actual} differs from lineup.json {recorded}")
    with tempfile.TemporaryDirectory() as tmp:
        rebuilt = write_toy(Path(tmp) / TOY_NAME)["build"]["weights_sha256"]
    if rebuilt != actual:
        problems.append(f"a rebuild gives {rebuilt}, not the bundled {actual}: run build")
    lm = load_model(TOY_NAME if out_root == TOYS_DIR else str(folder))
    vocab = set(lm.tokenizer.get_vocab())
    missing = sorted({w for ws in word_lists().values() for w in ws} - vocab)
    if missing:
        problems.append(f"words.yaml words missing from the vocabulary: {missing}")
    report = measure(lm)
    print(format_report(report))
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


ATTENTION_ROLES = (("S1+1", "S1"), ("S2", "S1"), ("S2", "S1+1"), ("END", "S2"), ("END", "IO"),
                   ("END", "S1"), ("END", "first"))


def format_report(r: dict[str, Any]) -> str:
    """The figures as plain text: tasks, then one row per head."""
    ioi, abc = r["ioi"], r["ioi_abc"]
    lines = [
        f"induction accuracy, repeated nouns (20 + 20): {r['induction_accuracy_nouns']:.3f}",
        f"induction accuracy, repeated vocabulary words: {r['induction_accuracy_vocab']:.3f}",
        f"IOI: IO is the top guess {ioi['accuracy']:.3f}, IO above S {ioi['io_over_s']:.3f}, "
        f"logit diff {ioi['logit_diff']:.2f}",
        f"IOI on ABC prompts (three names): logit diff {abc['logit_diff']:.2f}",
        "logit lens, median rank of the answer (embeddings, after layer 0, 1, 2, 3): "
        f"induction {r['lens_induction_median_rank']}, IOI {r['lens_ioi_median_rank']}",
        "",
        "detector scores (engine.detectors.head_scores) and mean attention on IOI prompts:",
        "head  job              prev   dup    ind    copy  | "
        + " ".join(f"{a}->{b}" for a, b in ATTENTION_ROLES),
    ]
    for name, scores in r["head_scores"].items():
        layer, head = (int(x) for x in name.split("."))
        job = {**PLANTED, **DISTRACTORS}[(layer, head)]
        att = r["ioi_attention"][name]
        lines.append(
            f"{name:5} {job:16} "
            + " ".join(f"{scores[k]:.3f}" for k in ("previous_token", "duplicate_token",
                                                    "induction", "copy"))
            + " | " + " ".join(f"{att[f'{a}->{b}']:>{len(a) + len(b) + 2}.3f}"
                               for a, b in ATTENTION_ROLES)
        )
    lines += ["", "one head mean-ablated (engine.interventions; means over unrepeated words "
              "and over ABC prompts):",
              "head  job              induction acc | IOI top-1  IO>S   logit diff"]
    for name, ab in r["ablations"].items():
        layer, head = (int(x) for x in name.split("."))
        job = {**PLANTED, **DISTRACTORS}[(layer, head)]
        lines.append(f"{name:5} {job:16} {ab['induction_accuracy']:13.3f} | "
                     f"{ab['ioi_accuracy']:9.3f} {ab['ioi_io_over_s']:6.3f} "
                     f"{ab['ioi_logit_diff']:8.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.toys", description=__doc__.split(
        "\n")[0])
    parser.add_argument("command", choices=["build", "check"])
    parser.add_argument("--json", action="store_true", help="check: print the figures as JSON")
    args = parser.parse_args(argv)
    if args.command == "build":
        build()
        return 0
    if args.json:
        from engine.models import load_model

        print(json.dumps(measure(load_model(TOY_NAME)), indent=2))
        return 0
    return check()


if __name__ == "__main__":
    sys.exit(main())
