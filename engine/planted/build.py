"""A planted model's weights from its plan, calibrated and loaded as a GPT-2."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.planted.plan import (
    ANCHOR,
    AVOID_TOTAL,
    BUILD_VERSION,
    CLOCKS,
    CODE_DIM,
    D_HEAD,
    D_MODEL,
    DISTRACTOR_KINDS,
    DUP_MATCH,
    DUP_SELF,
    IND_MATCH,
    INDUCTION_GUESS,
    INH_NAME,
    INH_REPEATED,
    MATCH_DIM,
    MOVER_NAME,
    MOVER_TOTAL,
    N_HEADS,
    N_INNER,
    N_LAYERS,
    N_POSITIONS,
    NAME_MAX_OVERLAP,
    OV_NOISE,
    OV_OUT_NOISE,
    PREV_SHARP,
    PREV_TWO_BACK,
    PRIOR_TIEBREAK,
    QK_NOISE,
    REPEATED_RAMP,
    SCRATCH,
    SELF_CLOCKS,
    SINK,
    UNEMBED,
    VOCAB_SIZE,
    Job,
    PlantedSpec,
    spec,
    truth,
)
from engine.planted.prompts import ioi_batch, repeated_tokens
from engine.toys import design as toys

if TYPE_CHECKING:
    import torch

    from engine.loaded import LoadedModel


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
    from engine.loaded import gpt2_tokenizer

    tokenizer = gpt2_tokenizer()
    ids = []
    for word in toys.word_lists()["names"]:
        piece = tokenizer.encode(" " + word, add_special_tokens=False)
        if len(piece) == 1:
            ids.append(int(piece[0]))
    return ids


def end_token_id() -> int:
    from engine.loaded import gpt2_tokenizer

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
    from engine.loaded import LoadedModel, gpt2_tokenizer

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
