"""Gendered pronouns on SmolLM2-135M: "So Mary is a great friend, isn't" -> " she" / " he".

Prints, for 48 prompts (4 templates x the first 12 rows of the ``gendered_names`` table of
puzzles/words.yaml, 6 women's names and 6 men's):

* the task: mean logit(right pronoun) - logit(other pronoun) at the last token, and how often
  the right one is above the other;
* mean ablation of every head (its input to ``o_proj``) at "is" and at the last token, one
  at a time: the heads that move the metric most (the metric's change);
* mean ablation of every MLP's output at the name, at "is" and at the last token;
* for the top heads: where they look (attention from "is" and from the last token) and, at the
  last token, their direct effect (their output through the final norm's clean scale onto
  the pronoun pair's unembedding difference).

Means are taken per template and position over its 12 prompts (half women, half men), so an
ablated head or MLP says nothing about the name's gender. Plain transformers, eager
attention, offline. About 10-15 minutes on 2 busy CPU cores (a patched run computes only
the positions from the edit on, and only the last position's logits).

    HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python docs/scripts/pronoun_circuit.py

With ``--quick`` (about a minute) it prints only the task, and for the heads and MLP the
field notes name (26.2 at the last token, 25.2 at "is", MLP24 at the name) their mean-ablation
effect, their attention and 26.2's direct effect, instead of sweeping every head and MLP.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import yaml
from transformers import AutoTokenizer, LlamaForCausalLM

MODEL_DIR = Path.home() / ".cache/lineup/models/smollm2-135m"
ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = [
    "So {NAME} is a great friend, isn't",
    "So {NAME} is a good cook, isn't",
    "So {NAME} is a true hero, isn't",
    "So {NAME} is a fast runner, isn't",
]
NAME, IS, END = 1, 2, -1  # token positions (checked below)
TOP = 12


def rows() -> list[list[str]]:
    """The table the pronoun puzzles fill from: [name, pronoun, other pronoun] per row."""
    words = yaml.safe_load((ROOT / "puzzles" / "words.yaml").read_text())
    return [list(map(str, r)) for r in words["gendered_names"]]


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    tok = AutoTokenizer.from_pretrained(MODEL_DIR)
    model = LlamaForCausalLM.from_pretrained(MODEL_DIR, attn_implementation="eager").eval()
    cfg = model.config
    n_layers, n_heads = cfg.num_hidden_layers, cfg.num_attention_heads
    d_head = cfg.hidden_size // n_heads
    table = rows()[:12]
    texts, right, wrong, template_of = [], [], [], []
    for t, template in enumerate(TEMPLATES):
        for name, pronoun, other in table:
            texts.append(template.replace("{NAME}", name))
            right.append(tok.encode(" " + pronoun)[0])
            wrong.append(tok.encode(" " + other)[0])
            template_of.append(t)
    ids = [tok.encode(t) for t in texts]
    assert len({len(i) for i in ids}) == 1, "templates must give the same number of tokens"
    x = torch.tensor(ids)
    n = len(texts)
    right_t, wrong_t = torch.tensor(right), torch.tensor(wrong)
    groups = [torch.tensor([i for i in range(n) if template_of[i] == t])
              for t in range(len(TEMPLATES))]
    print(f"{n} prompts, {x.shape[1]} tokens each; e.g. {texts[0]!r}: "
          f"{tok.convert_ids_to_tokens(ids[0])}")

    def metric(logits: torch.Tensor) -> torch.Tensor:
        last = logits[:, -1]
        return last[torch.arange(n), right_t] - last[torch.arange(n), wrong_t]

    # clean run, recording each head's o_proj input and each MLP's output
    z: dict[int, torch.Tensor] = {}
    mlp: dict[int, torch.Tensor] = {}
    hooks = []
    for L, layer in enumerate(model.model.layers):
        hooks.append(layer.self_attn.o_proj.register_forward_pre_hook(
            lambda m, a, L=L: z.__setitem__(L, a[0].detach().clone())))
        hooks.append(layer.mlp.register_forward_hook(
            lambda m, a, o, L=L: mlp.__setitem__(L, o.detach().clone())))
    out = model(x, output_attentions=True, output_hidden_states=True)
    for h in hooks:
        h.remove()
    clean = metric(out.logits)
    base = float(clean.mean())
    print(f"\ntask: logit(right) - logit(other) at the last token {base:.2f}; right above "
          f"other in {float((clean > 0).float().mean()) * 100:.1f}% of prompts")
    attn = out.attentions  # per layer [n, heads, seq, seq]

    def per_template_mean(a: torch.Tensor) -> torch.Tensor:
        m = torch.empty_like(a)
        for g in groups:
            m[g] = a[g].mean(0, keepdim=True)
        return m

    zmean = {L: per_template_mean(v) for L, v in z.items()}
    mmean = {L: per_template_mean(v) for L, v in mlp.items()}

    caches: dict[int, object] = {}

    def from_pos(pos: int) -> torch.Tensor:
        """Logits of a run of the tokens from ``pos`` on, the earlier ones' keys and values
        from the clean run (causality: an edit at ``pos`` cannot change them)."""
        if pos not in caches:
            caches[pos] = model(x[:, :pos], use_cache=True).past_key_values
        cache = caches[pos]
        try:
            return model(x[:, pos:], past_key_values=cache, use_cache=True,
                         logits_to_keep=1).logits
        finally:
            cache.crop(pos - x.shape[1])  # drop the tokens this run added

    def run_head(L: int, H: int, pos: int) -> float:
        sl = slice(H * d_head, (H + 1) * d_head)

        def pre(m: torch.nn.Module, a: tuple) -> tuple:
            v = a[0].clone()
            v[:, 0, sl] = zmean[L][:, pos, sl]  # the run starts at pos
            return (v,)

        h = model.model.layers[L].self_attn.o_proj.register_forward_pre_hook(pre)
        try:
            return float(metric(from_pos(pos)).mean()) - base
        finally:
            h.remove()

    def run_mlp(L: int, pos: int) -> float:
        def post(m: torch.nn.Module, a: tuple, o: torch.Tensor) -> torch.Tensor:
            o = o.clone()
            o[:, 0] = mmean[L][:, pos]
            return o

        h = model.model.layers[L].mlp.register_forward_hook(post)
        try:
            return float(metric(from_pos(pos)).mean()) - base
        finally:
            h.remove()

    for pos in (NAME, IS, x.shape[1] - 1):  # the clean prefixes, built before any hook
        from_pos(pos)
    check = float(metric(from_pos(IS)).mean())
    assert abs(check - base) < 1e-3, (check, base)  # the cached run equals the full one

    seq = x.shape[1]
    where = {"NAME": NAME, "IS": IS, "END": seq - 1}
    if "--quick" in sys.argv:
        is_heads, end_heads = [(25, 2)], [(26, 2)]
        print(f"\nmean-ablated alone (change of the metric {base:.2f}): 26.2 at END "
              f"{run_head(26, 2, seq - 1):+.2f}; 25.2 at IS {run_head(25, 2, IS):+.2f}; "
              f"MLP24 at NAME {run_mlp(24, NAME):+.2f}", flush=True)
        where = {}
    for label, pos in reversed(list(where.items())):
        mlps = {L: run_mlp(L, pos) for L in range(n_layers)}
        top = sorted(mlps.items(), key=lambda kv: kv[1])[:6]
        print(f"\nMLPs mean-ablated at {label}: " + ", ".join(f"MLP{L} {e:+.2f}" for L, e in top),
              flush=True)
        if label == "NAME":
            continue
        effects = {(L, H): run_head(L, H, pos) for L in range(n_layers) for H in range(n_heads)}
        worst = sorted(effects.items(), key=lambda kv: kv[1])[:TOP]
        print(f"heads mean-ablated at {label} alone (change of the metric {base:.2f}):")
        print("  " + ", ".join(f"{L}.{H} {e:+.2f}" for (L, H), e in worst), flush=True)
        if label == "END":
            end_heads = [k for k, _ in worst[:6]]
        if label == "IS":
            is_heads = [k for k, _ in worst[:6]]

    p = [NAME, IS, seq - 1]
    print("\nattention of the top heads (mean over prompts): from IS to NAME; from END to "
          "NAME, IS")
    for L, H in dict.fromkeys(is_heads + end_heads):
        a = attn[L][:, H]
        print(f"  {L}.{H}: IS->NAME {float(a[:, p[1], p[0]].mean()):.2f}; END->NAME "
              f"{float(a[:, p[2], p[0]].mean()):.2f}, END->IS {float(a[:, p[2], p[1]].mean()):.2f}")

    # direct effect at END: the head's write through the final norm's clean scale
    norm = model.model.norm
    unembed = model.lm_head.weight  # [vocab, d]
    direction = (unembed[right_t] - unembed[wrong_t]) * norm.weight  # [n, d]
    before = _residual_before_norm(model, x)
    rms = before.pow(2).mean(-1, keepdim=True).add(cfg.rms_norm_eps).rsqrt()  # [n, 1]
    print("\ndirect effect at END (through the final norm's clean scale):")
    for L, H in end_heads:
        sl = slice(H * d_head, (H + 1) * d_head)
        w = model.model.layers[L].self_attn.o_proj.weight[:, sl]  # [d, d_head]
        write = z[L][:, -1, sl] @ w.T - zmean[L][:, -1, sl] @ w.T
        direct = float(((write * rms) * direction).sum(-1).mean())
        print(f"  {L}.{H}: {direct:+.2f} (its write minus its mean write)")


def _residual_before_norm(model: LlamaForCausalLM, x: torch.Tensor) -> torch.Tensor:
    """The residual stream at the last token just before the final norm."""
    got: dict[str, torch.Tensor] = {}
    h = model.model.norm.register_forward_pre_hook(
        lambda m, a: got.__setitem__("x", a[0][:, -1].detach().clone()))
    try:
        model(x)
    finally:
        h.remove()
    return got["x"]


if __name__ == "__main__":
    main()
