"""Every figure of docs/toy-models.md, measured with the engine's own tools, and the
``python -m engine.toys build|check`` command."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.paths import TOYS_DIR
from engine.toys.build import weights_sha256, write_toy
from engine.toys.design import DISTRACTORS, PLANTED, TOY_NAME, word_lists
from engine.toys.prompts import IOIPrompts, ioi_prompts, ioi_roles, prefix, repeated_sequences

if TYPE_CHECKING:
    import torch

    from engine.loaded import LoadedModel, Tokens


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

    from engine.metrics import PuzzleMetric

    io_ids = [lm.token_id(w) for w in prompts.io]
    diff = PuzzleMetric("logit_diff", [[i] for i in io_ids],
                        [[lm.token_id(w)] for w in prompts.s])(last_logits)
    io = torch.tensor(io_ids, device=last_logits.device)
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
    parser = argparse.ArgumentParser(
        prog="python -m engine.toys",
        description="Build the bundled toy model, or check it against a rebuild and print "
                    "every figure of docs/toy-models.md.")
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
