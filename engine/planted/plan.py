"""What each planted variant is made of: shapes, strengths, the jobs of its heads, and the
circuit a judge should find in it (``truth``)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


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
