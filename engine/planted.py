"""Planted GPT-2-small-shaped models: hand-set weights whose IOI and induction circuits are known.

The judge must be right on real GPT-2, whose heads are noisy and redundant, but real weights
cannot be downloaded where the tests run. These models have GPT-2 small's exact shape (12 x 12
heads, d_model 768, d_head 64, 50,257 tokens, 1,024 positions) and its real tokenizer, and they
do IOI and induction by circuits planted where the papers found them in GPT-2:

=====================  ====================================================================
job                    heads in ``planted-gpt2``
=====================  ====================================================================
previous-token         2.2 (noisy: about half its attention on i-1), 4.11
duplicate-token        0.1, 3.0 (noisy)
induction              5.5, 6.9
s-inhibition           7.3, 7.9, 8.6, 8.10 (S2 gets well under all of their attention)
name-mover             9.9, 9.6, 10.0
negative-name-mover    10.7, 11.10
backup-name-mover      10.1, 10.2, 10.6, 10.10, 11.2, 11.9
=====================  ====================================================================

Every other head has small random weights, and some of them do a visible job of their own
(attend to themselves, two back, every name, END's names, ...) that nothing downstream uses.
Every head, planted or not, also has random query/key weights, so no pattern is crisp.

``build(name)`` makes one variant in memory in a few seconds (see ``VARIANTS``): the circuit
above, a redundant one, the same circuit in other layers, one step missing, and heads doing a
job by another mechanism. ``truth(name)`` says which head does which job.

How the weights are written: as in ``engine.toys``, every weight is first written in a feature
basis (named slots of the residual stream: the token's code, the position's clocks, "the
previous token", "repeated", "the name not to say", "the guess"), then reflected so that no
feature has a mean (layer norms subtract it). A large constant anchor keeps every position's
norm nearly the same, so a layer norm is a fixed scale that its gain undoes. Position 0 carries
a huge "sink" feature from its position embedding: after a layer norm it says almost nothing,
so a head with nobody to ask rests there (real GPT-2 uses its first token the same way).

The mechanisms (scores in nats, before the random jitter):

- previous-token: the query is my position's clocks turned one step back, the key each
  position's clocks; the answer is the token's code, into "previous".
- duplicate-token: query my token's code, key theirs (a copy scores 60), minus a penalty for
  asking myself; the sink scores just below a copy. The answer is +1 into "repeated" (the
  sink answers 0).
- induction: query my token's code, key their "previous" slot (K-composition with the
  previous-token heads); the answer is their token (into "guess", the next-token guess) and
  +1 into "repeated". So at S2 an induction head attends S1+1 and also marks S2 as repeated.
- MLP 6 (the only working MLP): "repeated_clean" = clip((repeated - 0.4) / 0.35, 0, 1), so
  S2 counts as repeated only when both the duplicate-token and the induction path fired.
- s-inhibition: key 9 * repeated_clean + 2 * name, the sink about as high as S2: S2 gets
  about half, IO and S1 almost nothing. The answer is S2's token, into "avoid". With either
  path gone, the clean flag at S2 falls to about 0.3 and S2 loses about 6 nats.
- name-mover: only the word " to" asks; names score +mu there, and the query subtracts
  nu * <avoid, token> (Q-composition): S loses, IO wins. The answer is IO's token into "guess".
- negative-name-mover: the same question, answering minus the token.
- backup-name-mover: the same question, but the query also subtracts kappa * <guess, token>:
  while the name movers have already put IO into the guess, IO scores below the sink and the
  backup is silent; with the name movers knocked out, it attends IO and copies it.

Every planted head's sink score and output scale are then calibrated on a few prompts
(``calibrate``), so that the random jitter does not decide which heads work.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import toys

if TYPE_CHECKING:
    import torch

    from engine.models import LoadedModel, Tokens

BUILD_VERSION = 1

# --------------------------------------------------------------------------- shapes
D_MODEL = 768
N_LAYERS = 12
N_HEADS = 12
D_HEAD = 64
VOCAB_SIZE = 50257
N_POSITIONS = 1024
N_INNER = 3072
CODE_DIM = 56  # token codes: +-1/sqrt(56); a code and a few terms fit in one 64-wide head
MATCH_DIM = 40  # duplicate-token heads match on the code's first 40 coordinates (room for
# their self-penalty clocks in the same 64 dimensions)
NAME_MAX_OVERLAP = 16  # names: |<code a, code b>| <= 16/56
CLOCKS = (3, 5, 7, 11)  # 1,155 > 1,024 positions; one step back is a fixed rotation
SELF_CLOCKS = (7, 11)  # the duplicate-token heads' "not myself" penalty
SCRATCH = 24  # flags the distractors write and nobody reads

# --------------------------------------------------------------------------- strengths
ANCHOR = 20.0
SINK = 1000.0  # position 0's sink feature: after a layer norm its other features shrink 50x
QK_NOISE = 0.04  # std of the random query/key weights every head gets (feature basis)
OV_NOISE = 0.01  # std of the random value weights of the distractors
OV_OUT_NOISE = 0.015  # and of their output weights: each writes a norm of about 0.1
UNEMBED = 3.0  # logit = UNEMBED * <guess, code>
PRIOR_TIEBREAK = 1e-3  # tiny per-token prior so no two logits are exactly equal

PREV_SHARP = 10.0
PREV_TWO_BACK = 0.95  # i-2 then scores 4 * 10 * 0.05 = 2 nats below i-1
DUP_MATCH, DUP_SELF = 60.0, 10.0
IND_MATCH = 25.0
INH_REPEATED, INH_NAME = 9.0, 2.0
REPEATED_RAMP = (0.4, 0.75)  # the MLP's clean flag goes from 0 to 1 over this "repeated"
MOVER_NAME, MOVER_AVOID = 10.0, 5.0
INDUCTION_GUESS = 3.0  # total guess written by the induction heads
AVOID_TOTAL = 1.0  # total "avoid" written at END by the s-inhibition heads (planned)
MOVER_TOTAL = 2.0  # total guess written by the name movers (planned)

NAME_JOBS = ("name-mover", "negative-name-mover", "backup-name-mover", "silent-io-attender")
CARD_JOBS = ("previous-token", "duplicate-token", "induction", "s-inhibition", "name-mover",
             "negative-name-mover", "backup-name-mover")


@dataclass(frozen=True)
class Job:
    """What one head does. ``sink`` is the sink's score minus the responder's planned score
    (nats): 0 splits the attention about evenly between the responder and the sink, -3 gives
    the responder about 95%. ``gain`` scales what it writes. The planned share of the
    responder, 1 / (1 + e^sink), sets the default write so that a noisy head writes as much
    on average as a crisp one would."""

    kind: str
    sink: float = -3.0
    gain: float = 1.0

    @property
    def focus(self) -> float:
        return 1.0 / (1.0 + math.exp(self.sink))


@dataclass(frozen=True)
class PlantedSpec:
    name: str
    description: str
    jobs: dict[tuple[int, int], Job] = field(default_factory=dict)
    mover_avoid: float = MOVER_AVOID  # nu: how strongly name movers avoid "avoid"
    backup_name: float = MOVER_NAME  # mu for the backups
    backup_guess: float = 6.0  # kappa: how strongly a backup avoids what is already guessed
    backup_avoid: float = 8.0  # nu for the backups: S stays below the sink even when on
    calibrate_as: str | None = None  # reuse that variant's calibration (see calibrate())
    mlp_layer: int = 6  # the MLP that cleans the "repeated" flag (after its last writer)

    def heads(self, kind: str) -> list[tuple[int, int]]:
        return sorted(h for h, j in self.jobs.items() if j.kind == kind)


# --------------------------------------------------------------------------- variants

DISTRACTOR_KINDS = ("self", "two-back", "rest", "uniform", "name-finder", "end-names",
                    "repeated-finder", "random")


def _gpt2_jobs() -> dict[tuple[int, int], Job]:
    return {
        (2, 2): Job("previous-token", sink=0.2, gain=0.5),
        (4, 11): Job("previous-token", sink=-3.0, gain=1.5),
        (0, 1): Job("duplicate-token", sink=-1.5),
        (3, 0): Job("duplicate-token", sink=0.0),
        (5, 5): Job("induction", sink=-4.0),
        (6, 9): Job("induction", sink=-2.5),
        (7, 3): Job("s-inhibition", sink=0.0),
        (7, 9): Job("s-inhibition", sink=0.8),
        (8, 6): Job("s-inhibition", sink=0.0),
        (8, 10): Job("s-inhibition", sink=0.8),
        (9, 9): Job("name-mover", sink=-2.5),
        (9, 6): Job("name-mover", sink=-0.5),
        (10, 0): Job("name-mover", sink=-1.5),
        (10, 7): Job("negative-name-mover", sink=-1.0, gain=0.25),
        (11, 10): Job("negative-name-mover", sink=-0.5, gain=0.15),
        **{h: Job("backup-name-mover", sink=-3.2, gain=0.2)
           for h in ((10, 1), (10, 2), (10, 6), (10, 10), (11, 2), (11, 9))},
    }


def _with_distractors(jobs: dict[tuple[int, int], Job]) -> dict[tuple[int, int], Job]:
    """Fill every unplanted head: a few visible jobs, the rest random weights only."""
    out = dict(jobs)
    visible = DISTRACTOR_KINDS[:-1]
    for layer in range(N_LAYERS):
        for head in range(N_HEADS):
            if (layer, head) in out:
                continue
            rng = random.Random(7_000 + 100 * layer + head)  # per head: the same in every
            kind = rng.choice(visible) if rng.random() < 0.45 else "random"  # variant
            out[layer, head] = Job(kind, sink=0.0)
    return out


def _moved(jobs: dict[tuple[int, int], Job], layer_map: dict[int, int]
           ) -> dict[tuple[int, int], Job]:
    return {(layer_map[layer], head): job for (layer, head), job in jobs.items()}


def _without(jobs: dict[tuple[int, int], Job], *kinds: str) -> dict[tuple[int, int], Job]:
    return {h: j for h, j in jobs.items() if j.kind not in kinds}


def _redundant_jobs() -> dict[tuple[int, int], Job]:
    jobs = _gpt2_jobs()
    # four s-inhibition heads that each write the whole avoid signal's worth: saturated, so
    # one alone barely matters and all four together carry the task
    for h in ((7, 3), (7, 9), (8, 6), (8, 10)):
        jobs[h] = Job("s-inhibition", sink=jobs[h].sink, gain=1.9)
    # name movers: six sharing the job (each a sixth of the guess), plus backups in layer 11
    # whose gate opens as the guess falls short
    for h in ((10, 1), (10, 2), (10, 6), (10, 10)):
        jobs.pop(h)
    for h in ((9, 9), (9, 6), (10, 0), (9, 0), (9, 7), (10, 1)):
        jobs[h] = Job("name-mover", sink=-2.5, gain=0.5)
    for h in ((11, 2), (11, 9), (11, 3), (11, 5)):
        jobs[h] = Job("backup-name-mover", sink=-15.0, gain=0.25)
    return jobs


# induction in layers 1-3, s-inhibition in 4-5, name movers in 6-7, backups in 7-8
MOVED_LAYERS = {0: 0, 2: 1, 3: 1, 4: 1, 5: 2, 6: 3, 7: 4, 8: 5, 9: 6, 10: 7, 11: 8}


def _moved_jobs() -> dict[tuple[int, int], Job]:
    jobs = _gpt2_jobs()
    jobs.pop((3, 0))
    jobs[(1, 0)] = Job("duplicate-token", sink=0.0)  # 3.0 -> 1.0: it must precede induction
    moved = {}
    for (layer, head), job in jobs.items():
        if (layer, head) == (1, 0):
            moved[layer, head] = job
            continue
        moved[MOVED_LAYERS[layer], head] = job
    return moved


def _othermech_jobs() -> dict[tuple[int, int], Job]:
    jobs = _gpt2_jobs()
    jobs[(8, 6)] = Job("s2-copier", sink=0.0, gain=0.3)  # attends END->S2, copies S
    jobs[(9, 9)] = Job("silent-io-attender", sink=-2.5)  # attends END->IO, says nothing
    for h in ((7, 3), (7, 9), (8, 10)):  # the three true ones carry the job
        jobs[h] = Job("s-inhibition", sink=jobs[h].sink, gain=4 / 3)
    for h in ((9, 6), (10, 0)):
        jobs[h] = Job("name-mover", sink=jobs[h].sink, gain=1.5)
    return jobs


MISSING_STEPS = {
    "s-inhibition": ("s-inhibition",),
    "duplicate-token": ("duplicate-token",),
    "previous-token": ("previous-token",),
    "induction": ("induction",),
    "name-mover": ("name-mover", "backup-name-mover"),
}


def spec(name: str) -> PlantedSpec:
    """The plan of one variant: which head does which job."""
    from engine.errors import UsageError

    if name == "planted-gpt2":
        return PlantedSpec(name, "planted GPT-2 small: IOI and induction where the papers put "
                           "them", _with_distractors(_gpt2_jobs()))
    if name == "planted-redundant":
        return PlantedSpec(name, "planted GPT-2 small with redundant s-inhibition heads and "
                           "name movers", _with_distractors(_redundant_jobs()),
                           backup_name=30.0, backup_guess=10.0, backup_avoid=30.0)
    if name == "planted-moved":
        return PlantedSpec(name, "planted GPT-2 small with the circuit in earlier layers",
                           _with_distractors(_moved_jobs()), mlp_layer=MOVED_LAYERS[6])
    if name == "planted-othermech":
        return PlantedSpec(name, "planted GPT-2 small where 8.6 copies S2 and 9.9 attends IO "
                           "but says nothing", _with_distractors(_othermech_jobs()))
    if name.startswith("planted-missing-") and name[len("planted-missing-"):] in MISSING_STEPS:
        step = name[len("planted-missing-"):]
        jobs = _without(_gpt2_jobs(), *MISSING_STEPS[step])
        return PlantedSpec(name, f"planted GPT-2 small without its {step} heads",
                           _with_distractors(jobs), calibrate_as="planted-gpt2")
    raise UsageError(f"no planted model called {name!r}; known: {', '.join(VARIANTS)}")


VARIANTS = ("planted-gpt2", "planted-redundant", "planted-moved", "planted-othermech",
            *(f"planted-missing-{s}" for s in MISSING_STEPS))


def truth(name: str) -> dict[str, list[str]]:
    """The planted circuit: job -> heads as "L.H", for every non-distractor job."""
    out: dict[str, list[str]] = {}
    for (layer, head), job in sorted(spec(name).jobs.items()):
        if job.kind in DISTRACTOR_KINDS:
            continue
        out.setdefault(job.kind, []).append(f"{layer}.{head}")
    return out


# --------------------------------------------------------------------------- layout


def make_layout() -> toys.Layout:
    layout = toys.Layout(size=D_MODEL)
    for scalar in ("anchor", "first", "name", "end_word", "sink", "repeated", "repeated_clean"):
        layout.take(scalar)
    layout.take("position", len(toys.clock_harmonics(CLOCKS)))
    for block in ("token", "previous", "avoid", "guess"):
        layout.take(block, CODE_DIM)
    layout.take("scratch", SCRATCH)
    return layout


def self_clock_rows(layout: toys.Layout) -> slice:
    """The rows of the position slot that hold the SELF_CLOCKS harmonics."""
    start = layout["position"].start
    harmonics = toys.clock_harmonics(CLOCKS)
    idx = [i for i, (m, _, _) in enumerate(harmonics) if m in SELF_CLOCKS]
    return slice(start + idx[0], start + idx[-1] + 1)


def reflect_vector(d: int) -> np.ndarray:
    """u of the Householder reflection I - 2uu^T (see toys.householder)."""
    u = np.zeros(d)
    u[0] = 1.0
    u -= np.full(d, 1.0 / math.sqrt(d))
    return u / np.linalg.norm(u)


def reflect_rows(a: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """a @ R in place, without forming R (a is [n, d]): a - 2 (a u) u^T."""
    return a.addr_(a @ u, u, alpha=-2.0)


def reflect_cols(a: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """R @ a in place (a is [d, n])."""
    return a.addr_(u, u @ a, alpha=-2.0)


def layer_noise(layout: toys.Layout, layer: int, distractors: list[int],
                planned_qk: dict[int, int]) -> dict[str, Any]:
    """Seeded random weights added to one layer (feature basis, float32): query and key
    weights for every head, value and output weights for the distractors only. A planted
    head's noise stays out of the query/key columns its plan uses (``planned_qk``: head ->
    columns used), where the plan's large weights would amplify it into several nats.

    Keys get no noise on the features that are constant off the sink (anchor, first, name,
    end word) or live only at the sink: such noise would move a head's sink score by a
    head-wide constant of several nats instead of jittering who answers."""
    import torch

    gen = torch.Generator().manual_seed(1_000 + layer)
    d, width = layout.size, N_HEADS * D_HEAD
    wq = torch.randn(d, width, generator=gen) * QK_NOISE
    wk = torch.randn(d, width, generator=gen) * QK_NOISE
    wv = torch.randn(d, width, generator=gen) * OV_NOISE
    wo = torch.randn(width, d, generator=gen) * OV_OUT_NOISE
    quiet = [0, layout.index("sink")]
    wq[quiet] = 0.0
    wk[[*quiet, *(layout.index(k) for k in ("anchor", "first", "name", "end_word"))]] = 0.0
    wv[[*quiet, layout.index("anchor")]] = 0.0
    for head, used in planned_qk.items():
        wq[:, head * D_HEAD:head * D_HEAD + used] = 0.0
        wk[:, head * D_HEAD:head * D_HEAD + used] = 0.0
    keep = torch.zeros(N_HEADS, dtype=torch.bool)
    keep[distractors] = True
    cols = keep.repeat_interleave(D_HEAD)
    wv[:, ~cols] = 0.0
    wo[~cols] = 0.0
    return {"wq": wq, "wk": wk, "wv": wv, "wo": wo}


# --------------------------------------------------------------------------- tokens


def name_token_ids() -> list[int]:
    from engine.models import gpt2_tokenizer

    tokenizer = gpt2_tokenizer()
    ids = []
    for word in toys.word_lists()["names"]:
        piece = tokenizer.encode(" " + word, add_special_tokens=False)
        if len(piece) == 1:
            ids.append(int(piece[0]))
    return ids


def end_token_id() -> int:
    from engine.models import gpt2_tokenizer

    return int(gpt2_tokenizer().encode(" to", add_special_tokens=False)[0])


_CODES: np.ndarray | None = None


def token_codes() -> np.ndarray:
    """[vocab, CODE_DIM] +-1/sqrt(56) codes: seeded random signs, with the names replaced by
    codes whose pairwise overlap is bounded (so "the name not to say" never hits IO hard)."""
    global _CODES
    if _CODES is None:
        rng = np.random.default_rng(1234)
        codes = (rng.integers(0, 2, size=(VOCAB_SIZE, CODE_DIM)) * 2 - 1).astype(np.float64)
        codes /= math.sqrt(CODE_DIM)
        names = name_token_ids()
        codes[names] = toys.token_codes(len(names), CODE_DIM, NAME_MAX_OVERLAP)
        _CODES = codes
    return _CODES


# --------------------------------------------------------------------------- heads


class Head(toys.Head):
    """A toy head 64 wide, plus the score the sink gets (random jitter is added per layer,
    see ``layer_noise``)."""

    def __init__(self, layout: toys.Layout, layer: int, head: int) -> None:
        super().__init__(layout, d_head=D_HEAD)
        self.layer, self.head = layer, head

    sink_col: int | None = None

    def sink_score(self, score: float) -> None:
        """The sink (position 0) scores ``score``; everyone else 0 from this term. After a
        layer norm the sink slot at position 0 is about the design norm, ~ANCHOR."""
        self.sink_col = self.qk_used
        self.score({"bias": score}, {"sink": 1.0 / ANCHOR})


def position_terms(steps_back: int, sharp: float, clocks: tuple[int, ...] = CLOCKS
                   ) -> tuple[np.ndarray, np.ndarray]:
    q = sharp * (np.diag(toys.clock_weights(clocks)) @ toys.clock_shift(steps_back, clocks))
    return q, np.eye(len(toys.clock_harmonics(clocks)))


def previous_token(h: Head, job: Job) -> None:
    peak = toys.kernel_peak(CLOCKS)
    q, k = position_terms(1, PREV_SHARP)
    # a noisy head (sink > -1) also asks two back, 2 nats less than one back, like real heads
    noisy = job.sink > -1
    q2, _ = position_terms(2, PREV_SHARP * PREV_TWO_BACK)
    h.score({"position": q + (q2 if noisy else 0)}, {"position": k}, width=len(k))
    target = PREV_SHARP * peak + (
        PREV_SHARP * PREV_TWO_BACK * (peak - len(CLOCKS)) if noisy else 0.0)
    h.sink_score(target + job.sink)
    h.value("token", "previous", 0.5 * job.gain / job.focus)


def duplicate_token(h: Head, job: Job) -> None:
    layout = h.layout
    scale = CODE_DIM / MATCH_DIM  # |code[:40]|^2 = 40/56 for every token
    match = slice(layout["token"].start, layout["token"].start + MATCH_DIM)
    cols = h._slots(MATCH_DIM)
    h.wq[match, cols] += DUP_MATCH * scale * np.eye(MATCH_DIM)
    h.wk[match, cols] += np.eye(MATCH_DIM)
    rows = self_clock_rows(layout)
    n = rows.stop - rows.start
    weights = toys.clock_weights(SELF_CLOCKS)
    cols = h._slots(n)
    h.wq[rows, cols] += -DUP_SELF * np.diag(weights)
    h.wk[rows, cols] += np.eye(n)
    # a copy at distance d scores 60 - 10 * (peak - clocks missed): 60 + 10 (2 - peak) unless
    # d is a multiple of 7 or 11 (then 10 less: such copies mostly go unnoticed)
    copy = DUP_MATCH - DUP_SELF * (toys.kernel_peak(SELF_CLOCKS) - 2)
    h.sink_score(copy + job.sink)
    h.flag({"anchor": 0.25 * job.gain / job.focus / ANCHOR}, "repeated")


def induction(h: Head, job: Job) -> None:
    h.score({"token": IND_MATCH * np.eye(CODE_DIM)}, {"previous": np.eye(CODE_DIM)}, CODE_DIM)
    h.sink_score(IND_MATCH + job.sink)
    h.value("token", "guess", 0.5 * INDUCTION_GUESS * job.gain / job.focus)
    h.flag({"anchor": 0.25 * job.gain / job.focus / ANCHOR}, "repeated")


def s2_attention(h: Head, job: Job) -> None:
    """Key: 6 * repeated + 2 * name. S2 (repeated, a name) scores 8."""
    h.score({"bias": INH_REPEATED}, {"repeated_clean": 1.0})
    h.score({"bias": INH_NAME}, {"name": 1.0})
    h.sink_score(INH_REPEATED + INH_NAME + job.sink)


def s_inhibition(h: Head, job: Job) -> None:
    s2_attention(h, job)
    h.value("token", "avoid", 0.25 * AVOID_TOTAL * job.gain / job.focus)


def s2_copier(h: Head, job: Job) -> None:
    s2_attention(h, job)
    h.value("token", "guess", job.gain / job.focus)


def io_attention(h: Head, job: Job, spec_: PlantedSpec, *, backup: bool = False) -> None:
    """Only " to" asks: names +mu there (-mu for other words); minus nu * <avoid, token>;
    backups also minus kappa * <guess, token>."""
    mu = spec_.backup_name if backup else MOVER_NAME
    h.score({"bias": mu / 2, "end_word": mu / 2}, {"name": 1.0})
    query = {"avoid": -(spec_.backup_avoid if backup else spec_.mover_avoid) * np.eye(CODE_DIM)}
    if backup:
        query["guess"] = -spec_.backup_guess * np.eye(CODE_DIM)
    h.score(query, {"token": np.eye(CODE_DIM)}, CODE_DIM)
    h.sink_score(mu + job.sink)


def name_mover(h: Head, job: Job, spec_: PlantedSpec, sign: float = 1.0,
               backup: bool = False) -> None:
    io_attention(h, job, spec_, backup=backup)
    h.value("token", "guess", sign * MOVER_TOTAL / 3 * job.gain / job.focus)


def distractor(h: Head, job: Job, slot: int) -> None:
    """A visible job nothing reads: it answers with a flag into one scratch coordinate."""
    layout = h.layout
    target = layout["scratch"].start + slot
    kind = job.kind
    if kind in ("self", "two-back"):
        q, k = position_terms(2 if kind == "two-back" else 0, 4.0)
        h.score({"position": q}, {"position": k}, width=len(k))
    elif kind == "rest":
        h.sink_score(4.0)
    elif kind == "name-finder":
        h.score({"bias": 3.0}, {"name": 1.0})
    elif kind == "end-names":
        h.score({"bias": 2.0, "end_word": 2.0}, {"name": 1.0})
    elif kind == "repeated-finder":
        h.score({"bias": 3.0}, {"repeated": 1.0})
    cols = h._slots(1, value=True)
    h.wv[layout.index("name"), cols] = 0.3
    h.wo[cols, target] = 1.0


# --------------------------------------------------------------------------- weights


def _head_weights(spec_: PlantedSpec, layout: toys.Layout) -> dict[tuple[int, int], Head]:
    heads = {}
    for layer in range(N_LAYERS):
        for hd in range(N_HEADS):
            h = Head(layout, layer, hd)
            job = spec_.jobs.get((layer, hd), Job("random"))
            kind = job.kind
            if kind == "previous-token":
                previous_token(h, job)
            elif kind == "duplicate-token":
                duplicate_token(h, job)
            elif kind == "induction":
                induction(h, job)
            elif kind == "s-inhibition":
                s_inhibition(h, job)
            elif kind == "s2-copier":
                s2_copier(h, job)
            elif kind == "name-mover":
                name_mover(h, job, spec_)
            elif kind == "negative-name-mover":
                name_mover(h, job, spec_, sign=-1.0)
            elif kind == "backup-name-mover":
                name_mover(h, job, spec_, backup=True)
            elif kind == "silent-io-attender":
                io_attention(h, job, spec_)
                cols = h._slots(1, value=True)
                h.wv[layout.index("name"), cols] = 1.0
                h.wo[cols, layout["scratch"].start] = 1.0
            elif kind != "random":
                distractor(h, job, (layer * N_HEADS + hd) % SCRATCH)
            heads[layer, hd] = h
    return heads


_SHARED: dict[str, Any] = {}


def _shared_tensors() -> dict[str, Any]:
    """Embeddings, unembedding and the (zero) MLPs: the same in every variant, built once and
    shared read-only between the variants' models (they are 2/3 of GPT-2 small's size)."""
    if _SHARED:
        return _SHARED
    import torch

    layout = make_layout()
    u = torch.from_numpy(reflect_vector(D_MODEL)).float()
    codes = torch.from_numpy(token_codes()).float()
    names = torch.tensor(name_token_ids())
    embed = torch.zeros(VOCAB_SIZE, D_MODEL)
    embed[:, layout["token"]] = codes
    embed[:, layout.index("name")] = -1.0
    embed[names, layout.index("name")] = 1.0
    embed[:, layout.index("end_word")] = -1.0
    embed[end_token_id(), layout.index("end_word")] = 1.0
    unembed = torch.zeros(VOCAB_SIZE, D_MODEL)
    unembed[:, layout["guess"]] = UNEMBED * codes
    unembed[:, layout.index("anchor")] = (
        -PRIOR_TIEBREAK * torch.arange(VOCAB_SIZE, dtype=torch.float32) / VOCAB_SIZE / ANCHOR)
    positions = np.zeros((N_POSITIONS, D_MODEL))
    for i in range(N_POSITIONS):
        positions[i, layout.index("anchor")] = ANCHOR
        positions[i, layout.index("first")] = 1.0 if i == 0 else -1.0
        positions[i, layout["position"]] = toys.position_code(i, CLOCKS)
    positions[0, layout.index("sink")] = SINK
    _SHARED.update({
        "wte": reflect_rows(embed, u),
        "wpe": reflect_rows(torch.from_numpy(positions).float(), u),
        "lm_head": reflect_rows(unembed, u),
        "fc": torch.zeros(D_MODEL, N_INNER),
        "fc_bias": torch.zeros(N_INNER),
        "proj": torch.zeros(N_INNER, D_MODEL),
        "zero": torch.zeros(D_MODEL),
    })
    return _SHARED


def design_norm() -> float:
    """The residual norm every layer norm is set for (non-sink positions): the anchor
    dominates, so the other features move it by a percent or two."""
    return math.sqrt(ANCHOR**2 + 3 + len(CLOCKS) + 1 + 2)


def config() -> Any:
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=VOCAB_SIZE, n_positions=N_POSITIONS, n_embd=D_MODEL, n_layer=N_LAYERS,
        n_head=N_HEADS, n_inner=None, activation_function="gelu_new", resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5, tie_word_embeddings=False,
        bos_token_id=50256, eos_token_id=50256, attn_implementation="eager",
        architectures=["GPT2LMHeadModel"],
    )


def _model(spec_: PlantedSpec) -> tuple[Any, dict[tuple[int, int], Head]]:
    import torch
    from torch import nn
    from transformers import GPT2LMHeadModel

    layout = make_layout()
    u = torch.from_numpy(reflect_vector(D_MODEL)).float()
    shared = _shared_tensors()
    heads = _head_weights(spec_, layout)
    with torch.device("meta"):
        model = GPT2LMHeadModel(config())

    def put(module: Any, name: str, tensor: torch.Tensor) -> None:
        setattr(module, name, nn.Parameter(tensor, requires_grad=False))

    t = model.transformer
    put(t.wte, "weight", shared["wte"])
    put(t.wpe, "weight", shared["wpe"])
    put(model.lm_head, "weight", shared["lm_head"])
    norm = design_norm()
    gain = torch.full((D_MODEL,), norm / math.sqrt(D_MODEL))
    scale = math.sqrt(D_HEAD)
    for layer in range(N_LAYERS):
        block = t.h[layer]
        hs = [heads[layer, h] for h in range(N_HEADS)]
        kinds = [spec_.jobs[layer, h].kind for h in range(N_HEADS)]
        noise = layer_noise(layout, layer,
                            [h for h in range(N_HEADS) if kinds[h] in DISTRACTOR_KINDS],
                            {h: hs[h].qk_used for h in range(N_HEADS)
                             if kinds[h] not in DISTRACTOR_KINDS})

        def cat(name: str, axis: int, hs: list[Head] = hs,
                noise: dict[str, Any] = noise) -> torch.Tensor:
            joined = np.concatenate([getattr(h, name) for h in hs], axis=axis)
            return torch.from_numpy(joined).float() + noise[name]

        bias = np.concatenate([np.concatenate([h.bq for h in hs]) * scale,
                               np.concatenate([h.bk for h in hs]),
                               np.concatenate([h.bv for h in hs])])
        c_attn = torch.cat([cat("wq", 1) * scale, cat("wk", 1), cat("wv", 1)], dim=1)
        put(block.attn.c_attn, "weight", reflect_cols(c_attn, u))
        put(block.attn.c_attn, "bias", torch.from_numpy(bias).float())
        put(block.attn.c_proj, "weight", reflect_rows(cat("wo", 0), u))
        put(block.attn.c_proj, "bias", shared["zero"])
        put(block.ln_1, "weight", gain.clone())
        put(block.ln_1, "bias", shared["zero"])
        put(block.ln_2, "weight", gain.clone())
        put(block.ln_2, "bias", shared["zero"])
        if layer == spec_.mlp_layer:
            fc, fc_bias, proj = repeated_mlp(layout, u)
            put(block.mlp.c_fc, "weight", fc)
            put(block.mlp.c_fc, "bias", fc_bias)
            put(block.mlp.c_proj, "weight", proj)
        else:
            put(block.mlp.c_fc, "weight", shared["fc"])
            put(block.mlp.c_fc, "bias", shared["fc_bias"])
            put(block.mlp.c_proj, "weight", shared["proj"])
        put(block.mlp.c_proj, "bias", shared["zero"])
    put(t.ln_f, "weight", gain.clone())
    put(t.ln_f, "bias", shared["zero"])
    model.config._attn_implementation = "eager"
    model.eval()
    return model, heads


def repeated_mlp(layout: toys.Layout, u: torch.Tensor) -> tuple[Any, Any, Any]:
    """The one working MLP: "repeated_clean" = clip((repeated - 0.4) / 0.35, 0, 1), from two
    steep GELU units. The duplicate-token and induction heads each add about 0.5 to
    "repeated" at S2; with both, the clean flag is 1 despite their noise, and with either
    path gone it is about 0.3, which the s-inhibition heads' keys feel as 6 nats."""
    import torch

    steep = 20.0
    low, high = REPEATED_RAMP
    fc = torch.zeros(D_MODEL, N_INNER)
    fc_bias = torch.zeros(N_INNER)
    proj = torch.zeros(N_INNER, D_MODEL)
    row = layout.index("repeated")
    fc[row, 0] = fc[row, 1] = steep
    fc_bias[0], fc_bias[1] = -steep * low, -steep * high
    out = layout.index("repeated_clean")
    proj[0, out] = 1.0 / (steep * (high - low))
    proj[1, out] = -1.0 / (steep * (high - low))
    return reflect_cols(fc, u), fc_bias, reflect_rows(proj, u)


# which attention each planted job is calibrated on: (batch, asker, responder)
CALIBRATION = {
    "previous-token": (("ioi", "S1+1", "S1"), ("rep", "any", "prev")),
    "duplicate-token": (("ioi", "S2", "S1"), ("rep", "second", "dup")),
    "induction": (("ioi", "S2", "S1+1"), ("rep", "second", "ind")),
    "s-inhibition": (("ioi", "END", "S2"),),
    "s2-copier": (("ioi", "END", "S2"),),
    "name-mover": (("ioi", "END", "IO"),),
    "negative-name-mover": (("ioi", "END", "IO"),),
    "silent-io-attender": (("ioi", "END", "IO"),),
}


Calibration = dict[tuple[int, int], tuple[str, float, float]]  # head -> (job, bias, factor)
_CALIBRATIONS: dict[str, Calibration] = {}


def apply_calibration(lm: LoadedModel, spec_: PlantedSpec, heads: dict[tuple[int, int], Head],
                      calibration: Calibration) -> None:
    """Apply another variant's calibration to the heads that do the same job here. A variant
    with a step missing uses the full model's: calibrating it on its own would move the
    later heads' sinks to make up for the missing step."""
    blocks = lm.model.transformer.h
    import torch

    with torch.no_grad():
        for (layer, h), (kind, bias, factor) in calibration.items():
            job = spec_.jobs.get((layer, h))
            if job is None or job.kind != kind:
                continue
            blocks[layer].attn.c_attn.bias[h * D_HEAD + heads[layer, h].sink_col] += bias
            blocks[layer].attn.c_proj.weight[h * D_HEAD:(h + 1) * D_HEAD] *= factor


def calibrate(lm: LoadedModel, spec_: PlantedSpec, heads: dict[tuple[int, int], Head]
              ) -> Calibration:
    """Undo the random jitter's drift, layer by layer: move each planted head's sink score so
    that the sink scores ``job.sink`` above the responder on average (over calibration
    prompts), then scale what the head writes so that it writes, on average, what a head
    with the planned focus would. Backups are left as designed (their gate is the point).
    Returns what it changed, per head."""
    import torch
    from torch import nn

    from engine.hooks import act_name, forward

    class ZeroMLP(nn.Module):
        """Stands in for the all-zero MLPs meanwhile: same result, no 3072-wide matmuls."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros_like(x)

    ioi = ioi_batch(lm, 16, seed=991)
    rep = repeated_tokens(lm, 8, seed=991)
    tokens_of = {"ioi": ioi.tokens, "rep": rep}
    half = (rep.ids.shape[1] - 1) // 2
    every = torch.arange(2, rep.ids.shape[1])
    second = torch.arange(half + 1, 2 * half + 1)
    rep_pairs = {("any", "prev"): (every, every - 1), ("second", "dup"): (second, second - half),
                 ("second", "ind"): (second, second - half + 1)}
    rows = torch.arange(len(ioi.texts))
    scale = math.sqrt(D_HEAD)
    blocks = lm.model.transformer.h
    mlps = [block.mlp for block in blocks]
    resid: dict[str, torch.Tensor] = {}
    done: Calibration = {}

    def run_layer(layer: int, key: str) -> Any:
        names = [act_name("attn_scores", layer), act_name("pattern", layer),
                 act_name("resid_post", layer)]
        return forward(lm, tokens_of[key], start_layer=layer, resid=resid[key],
                       stop_layer=layer + 1, record=names)

    try:
        for block in blocks:
            if not bool(block.mlp.c_fc.weight.any()):
                block.mlp = ZeroMLP()
        with torch.inference_mode():
            for key, tokens in tokens_of.items():
                run = forward(lm, tokens, stop_layer=1, record=[act_name("resid_pre", 0)])
                resid[key] = run[act_name("resid_pre", 0)]
            for layer in range(N_LAYERS):
                planted = [(h, spec_.jobs[layer, h]) for h in range(N_HEADS)
                           if spec_.jobs[layer, h].kind in CALIBRATION]
                runs = {key: run_layer(layer, key) for key in resid}
                for step in ("sink", "gain") if planted else ():
                    for h, job in planted:
                        resp_s, sink_s, resp_p = [], [], []
                        for batch, asker, responder in CALIBRATION[job.kind]:
                            scores = runs[batch][act_name("attn_scores", layer)][:, h].float()
                            pattern = runs[batch][act_name("pattern", layer)][:, h].float()
                            if batch == "ioi":
                                q, k = ioi.roles[asker], ioi.roles[responder]
                                pick = (rows, q, k)
                                at_sink = (rows, q, torch.zeros_like(q))
                            else:
                                q, k = rep_pairs[asker, responder]
                                pick = (slice(None), q, k)
                                at_sink = (slice(None), q, torch.zeros_like(q))
                            resp_s.append(scores[pick].flatten())
                            sink_s.append(scores[at_sink].flatten())
                            resp_p.append(pattern[pick].flatten())
                        if step == "sink":
                            gap = float(torch.cat(sink_s).mean() - torch.cat(resp_s).mean())
                            col = h * D_HEAD + heads[layer, h].sink_col
                            delta = scale * (job.sink - gap) / 1.02
                            blocks[layer].attn.c_attn.bias[col] += delta
                            done[layer, h] = (job.kind, delta, 1.0)
                        else:
                            share = float(torch.cat(resp_p).mean())
                            factor = min(3.0, max(0.5, job.focus / max(share, 1e-3)))
                            rows_o = slice(h * D_HEAD, (h + 1) * D_HEAD)
                            blocks[layer].attn.c_proj.weight[rows_o] *= factor
                            done[layer, h] = (job.kind, done[layer, h][1], factor)
                    runs = {key: run_layer(layer, key) for key in resid}
                for key in resid:
                    resid[key] = runs[key][act_name("resid_post", layer)]
    finally:
        for block, mlp in zip(blocks, mlps, strict=True):
            block.mlp = mlp
    return done


_BUILT: dict[tuple[str, str], LoadedModel] = {}


def build(name: str, *, device: str = "cpu") -> LoadedModel:
    """One planted variant as a LoadedModel (built in memory, kept for the process)."""
    from engine.models import LoadedModel, gpt2_tokenizer

    key = (name, device)
    if key not in _BUILT:
        spec_ = spec(name)
        started = time.perf_counter()
        model, heads = _model(spec_)
        lm = LoadedModel(
            name=name,
            kind="planted",
            label=f"{name}: {spec_.description} (hand-set weights, not real GPT-2)",
            model=model,
            tokenizer=gpt2_tokenizer(),
            fingerprint=f"planted:{name}:v{BUILD_VERSION}",
            extra={"planted": truth(name)},
        )
        if spec_.calibrate_as:
            if spec_.calibrate_as not in _CALIBRATIONS:
                build(spec_.calibrate_as, device="cpu")
            apply_calibration(lm, spec_, heads, _CALIBRATIONS[spec_.calibrate_as])
        else:
            _CALIBRATIONS[name] = calibrate(lm, spec_, heads)
        lm.model.to(device)
        lm.extra["build_seconds"] = time.perf_counter() - started
        _BUILT[key] = lm
    return _BUILT[key]


# --------------------------------------------------------------------------- prompts

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
    """``n`` IOI prompts over the four puzzle templates; with ``abc`` the second S is a third
    name (the corrupted distribution), otherwise the same fills (the i-th prompts are twins).
    Roles are found as the judge finds them: IO and S1 by first occurrence, S2 the second."""
    import torch

    lists = toys.word_lists()
    rng = random.Random(seed)
    texts, ios, ss = [], [], []
    roles: dict[str, list[int]] = {k: [] for k in ("IO", "S1", "S1+1", "S2", "END")}
    for i in range(n):
        io, s, c = rng.sample(lists["names"], 3)
        place, obj = rng.choice(lists["places"]), rng.choice(lists["objects"])
        template = IOI_TEMPLATES[i % len(IOI_TEMPLATES)]
        text = template.format(IO=io, S="{S}", PLACE=place, OBJECT=obj)
        head, tail = text.split("{S}", 1)
        text = head + s + tail.replace("{S}", c if abc else s)
        ids = lm.tokenizer.encode(text, add_special_tokens=False)
        io_id, s_id, c_id = (lm.token_id(" " + w) for w in (io, s, c))
        s_at = [j for j, t in enumerate(ids) if t == s_id]
        roles["IO"].append(ids.index(io_id))
        roles["S1"].append(s_at[0])
        roles["S1+1"].append(s_at[0] + 1)
        roles["S2"].append(ids.index(c_id) if abc else s_at[-1])
        roles["END"].append(len(ids) - 1)
        texts.append(text)
        ios.append(io_id)
        ss.append(s_id)
    return IOIBatch(texts, lm.tokenize(texts), ios, ss,
                    {k: torch.tensor(v) for k, v in roles.items()})


def repeated_tokens(lm: LoadedModel, n: int = 16, half: int = 20, *, seed: int = 0,
                    repeat: bool = True) -> Tokens:
    """Random ordinary tokens (distinct within a row) after <|endoftext|>, the half repeated;
    ``repeat=False`` gives unrepeated rows of the same length (mean-ablation reference)."""
    import torch

    from engine.models import Tokens

    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        picks = torch.randperm(VOCAB_SIZE - 1, generator=gen)[: 2 * half]
        body = torch.cat([picks[:half], picks[:half]]) if repeat else picks
        rows.append(torch.cat([torch.tensor([VOCAB_SIZE - 1]), body]))
    ids = torch.stack(rows).to(lm.device)
    return Tokens(ids=ids, lengths=[ids.shape[1]] * n)


# --------------------------------------------------------------------------- measuring


def ioi_stats(lm: LoadedModel, batch: IOIBatch, logits: torch.Tensor) -> dict[str, float]:
    """Mean logit(IO) - logit(S), share of prompts with IO above S, share with IO on top."""
    import torch

    io = torch.tensor(batch.io, device=logits.device)
    s = torch.tensor(batch.s, device=logits.device)
    rows = torch.arange(len(io), device=logits.device)
    diff = logits[rows, io] - logits[rows, s]
    return {"logit_diff": float(diff.mean()), "io_over_s": float((diff > 0).float().mean()),
            "top1": float((logits.argmax(-1) == io).float().mean())}


def induction_stats(tokens: Tokens, logits: torch.Tensor) -> dict[str, float]:
    """Second half: share of positions whose top guess is the token that came next last
    time, and the mean log-probability of that token."""
    import torch

    half = (tokens.ids.shape[1] - 1) // 2
    target = tokens.ids[:, 2:half + 1]  # what followed positions 1..half-1
    guess = logits[:, half + 1:2 * half]  # positions half+1 .. 2 half - 1
    logp = torch.log_softmax(guess.float(), -1).gather(-1, target[..., None])[..., 0]
    return {"accuracy": float((guess.argmax(-1) == target).float().mean()),
            "logprob": float(logp.mean())}


def role_attention(lm: LoadedModel, batch: IOIBatch, heads: list[tuple[int, int]]
                   ) -> dict[str, dict[str, float]]:
    """Mean attention between IOI roles for the given heads."""
    import torch

    from engine.hooks import act_name, forward

    with torch.inference_mode():
        run = forward(lm, batch.tokens, record=["pattern"], logits="none")
    rows = torch.arange(len(batch.texts))
    r = batch.roles
    pairs = (("S1+1", "S1"), ("S2", "S1"), ("S2", "S1+1"), ("END", "S2"), ("END", "IO"),
             ("END", "S1"))
    out = {}
    for layer, head in heads:
        p = run.cache[act_name("pattern", layer)][:, head].float()
        row = {f"{a}->{b}": round(float(p[rows, r[a], r[b]].mean()), 3) for a, b in pairs}
        row["END->sink"] = round(float(p[rows, r["END"], 0].mean()), 3)
        out[f"{layer}.{head}"] = row
    return out


def measure(lm: LoadedModel, *, n: int = 32) -> dict[str, Any]:
    """The figures of docs/toy-models.md for one planted model, with the engine's tools."""
    import torch

    from engine.detectors import head_scores, top_heads
    from engine.hooks import forward
    from engine.interventions import ablate_heads, mean_z

    name = lm.name
    spec_ = spec(name) if name in VARIANTS else None
    report: dict[str, Any] = {"name": name, "build_seconds": lm.extra.get("build_seconds")}
    clean, abc = ioi_batch(lm, n), ioi_batch(lm, n, abc=True)
    with torch.inference_mode():
        report["ioi"] = ioi_stats(lm, clean, forward(lm, clean.tokens, logits="last").logits)
        report["ioi_abc"] = ioi_stats(lm, abc, forward(lm, abc.tokens, logits="last").logits)
        rep = repeated_tokens(lm)
        report["induction"] = induction_stats(rep, forward(lm, rep).logits)
    scores = head_scores(lm)
    report["top_heads"] = {k: [(s.name, s.__dict__[k]) for s in top_heads(scores, k, 3)]
                           for k in ("previous_token", "duplicate_token", "induction", "copy",
                                     "negative_copy")}
    if spec_ is None:
        return report
    means = mean_z(lm, abc.tokens)

    def ablated(heads: list[tuple[int, int]]) -> float:
        logits = ablate_heads(lm, clean.tokens, heads, means=means, logits="last")
        return ioi_stats(lm, clean, logits)["logit_diff"]

    base = report["ioi"]["logit_diff"]
    groups: dict[str, Any] = {}
    for kind in ("s-inhibition", "name-mover", "backup-name-mover", "negative-name-mover",
                 "duplicate-token", "induction", "previous-token"):
        heads = spec_.heads(kind)
        if not heads:
            continue
        groups[kind] = {
            "all": round(ablated(heads), 3),
            "each": {f"{la}.{h}": round(ablated([(la, h)]), 3) for la, h in heads},
        }
    report["ablated_logit_diff"] = groups
    movers = spec_.heads("name-mover")
    backups = spec_.heads("backup-name-mover")
    if movers and backups:
        report["movers_and_backups_ablated"] = round(ablated(movers + backups), 3)
    report["base_logit_diff"] = base
    planted = sorted(h for h, j in spec_.jobs.items() if j.kind not in DISTRACTOR_KINDS)
    report["attention"] = role_attention(lm, clean, planted)
    return report


def format_report(r: dict[str, Any]) -> str:
    ioi, ind = r["ioi"], r["induction"]
    lines = [f"== {r['name']} (built in {r['build_seconds']:.1f} s)",
             f"IOI: logit diff {ioi['logit_diff']:.2f}, IO above S {ioi['io_over_s']:.2f}, "
             f"IO top-1 {ioi['top1']:.2f}; ABC prompts: {r['ioi_abc']['logit_diff']:.2f}",
             f"induction (repeated random tokens): accuracy {ind['accuracy']:.2f}, "
             f"log p {ind['logprob']:.2f}"]
    for k, top in r["top_heads"].items():
        lines.append(f"top {k}: " + ", ".join(f"{h} {v:.2f}" for h, v in top))
    for kind, g in r.get("ablated_logit_diff", {}).items():
        each = ", ".join(f"{h} {v:.2f}" for h, v in g["each"].items())
        lines.append(f"ablate {kind}: all {g['all']:.2f}; each: {each}")
    if "movers_and_backups_ablated" in r:
        lines.append(f"ablate name movers and backups: {r['movers_and_backups_ablated']:.2f}")
    for head, att in r.get("attention", {}).items():
        lines.append(f"  {head:6} " + " ".join(f"{k} {v:.2f}" for k, v in att.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.planted",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["check"])
    parser.add_argument("names", nargs="*", help="variants (default: all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    reports = []
    for name in args.names or VARIANTS:
        lm = build(name)
        report = measure(lm)
        reports.append(report)
        if not args.json:
            print(format_report(report), flush=True)
        _BUILT.pop((name, "cpu"), None)
    if args.json:
        print(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
