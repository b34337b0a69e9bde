"""The planted models' figures (docs/toy-models.md), measured with the engine's own tools,
and ``python -m engine.planted check``."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from engine.planted.build import _BUILT, build
from engine.planted.plan import DISTRACTOR_KINDS, VARIANTS, spec
from engine.planted.prompts import IOIBatch, ioi_batch, repeated_tokens

if TYPE_CHECKING:
    import torch

    from engine.loaded import LoadedModel, Tokens





def ioi_stats(lm: LoadedModel, batch: IOIBatch, logits: torch.Tensor) -> dict[str, float]:
    """Mean logit(IO) - logit(S), share of prompts with IO above S, share with IO on top."""
    import torch

    from engine.metrics import PuzzleMetric

    diff = PuzzleMetric("logit_diff", [[i] for i in batch.io], [[s] for s in batch.s])(logits)
    io = torch.tensor(batch.io, device=logits.device)
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
    parser = argparse.ArgumentParser(
        prog="python -m engine.planted",
        description="Build each planted GPT-2-small-shaped model and print its figures.")
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
