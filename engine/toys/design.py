"""The toy's plan: its shapes and strengths, vocabulary, token and position codes, the
residual layout and what each head is set to do (see the package docstring)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    pass


TOY_NAME = "toy"
WORDS_FILE = Path(__file__).resolve().parents[2] / "puzzles" / "words.yaml"
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
    """The puzzle word lists (``puzzles/words.yaml``), which the vocabulary must cover.
    Tables (lists of rows, filled a row at a time) are left out: no toy plays them."""
    import yaml

    data = yaml.safe_load(WORDS_FILE.read_text())
    return {key: [str(w) for w in words] for key, words in data.items()
            if not any(isinstance(w, list) for w in words)}


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
