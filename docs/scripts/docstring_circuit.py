"""Measure SmolLM2-135M's docstring circuit on the docstring ladder's own prompts.

Prints, for a docstring puzzle's play prompts (default: docstring-fetch-argument):

* the task: logit(C) - logit(B), logit(C) - logit(A), P(C), how often C is the top guess,
  clean and corrupted (the puzzle's corruption: every argument name replaced, all different);
* per head at END (the last person, holding "param"): its attention to each role, the change
  in the metric when its output at END is replaced by its mean over the corrupted prompts
  (per template, as the judge's ablation), as logits and as a fraction of the clean -
  corrupted gap, and its direct effect (clean minus corrupted output at END through the
  final norm, on the unembedding's C - B direction);
* attention from the documented names (A2, B2) back to their first copies (A1, B1), per head,
  for the heads that give them at least 0.3.

Plain transformers (eager attention), one forward per head: about 4 minutes on two CPU cores.

    HF_HUB_OFFLINE=1 .venv/bin/python docs/scripts/docstring_circuit.py [PUZZLE_ID] [--split play]
"""

from __future__ import annotations

import argparse
import os

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from transformers import AutoTokenizer, LlamaForCausalLM

    from engine import smollm2
    from engine.puzzle import find_puzzle

    ap = argparse.ArgumentParser()
    ap.add_argument("puzzle", nargs="?", default="docstring-fetch-argument")
    ap.add_argument("--split", default="play")
    ap.add_argument("--layers", default="0-29", help="layers to noise, e.g. 15-29")
    args = ap.parse_args()
    torch.manual_seed(0)
    where = smollm2.converted_dir()
    assert where is not None, "SmolLM2-135M is not converted here"
    tok = AutoTokenizer.from_pretrained(where)
    model = LlamaForCausalLM.from_pretrained(where, attn_implementation="eager").eval()
    cfg = model.config
    n_layers, n_heads = cfg.num_hidden_layers, cfg.num_attention_heads
    d_head = cfg.hidden_size // n_heads

    puzzle = find_puzzle(args.puzzle)
    ps = puzzle.build_prompts(tok, split=args.split)
    n = len(ps.texts)
    clean = torch.tensor(ps.token_ids)
    corrupt = torch.tensor(ps.corrupted_ids)
    assert corrupt.shape == clean.shape, "corrupted prompts must keep the length"
    roles = {r: torch.tensor(p) for r, p in ps.roles.items()}
    end = roles["END"]
    rows = torch.arange(n)
    ids = {r: clean[rows, roles[r]] for r in roles}
    c_id, b_id, a_id = ids["C"], ids["B1"], ids["A1"]
    templates = torch.tensor(ps.templates)

    def logits_at_end(tokens: torch.Tensor, hooks=()) -> torch.Tensor:
        handles = [m.register_forward_pre_hook(h) for m, h in hooks]
        try:
            with torch.no_grad():
                out = model(tokens)
        finally:
            for h in handles:
                h.remove()
        return out.logits[rows, end]

    def above(lg: torch.Tensor) -> float:
        c = lg[rows, c_id]
        return ((c > lg[rows, b_id]) & (c > lg[rows, a_id])).float().mean().item()

    def metric(lg: torch.Tensor, correct: torch.Tensor, wrong: torch.Tensor) -> float:
        return (lg[rows, correct] - lg[rows, wrong]).mean().item()

    # clean and corrupted runs, recording each layer's o_proj input (per-head outputs)
    z: dict[str, list[torch.Tensor]] = {"clean": [], "corrupt": []}
    attn_clean: list[torch.Tensor] = []

    def recorder(store: list[torch.Tensor]):
        def hook(_m, inp):
            store.append(inp[0].detach().clone())
        return hook

    for name, tokens in (("clean", clean), ("corrupt", corrupt)):
        hooks = [(layer.self_attn.o_proj, recorder(z[name])) for layer in model.model.layers]
        handles = [m.register_forward_pre_hook(h) for m, h in hooks]
        with torch.no_grad():
            out = model(tokens, output_attentions=(name == "clean"))
        for h in handles:
            h.remove()
        if name == "clean":
            attn_clean = [a[rows, :, end] for a in out.attentions]  # [n, heads, pos]
        lg = out.logits[rows, end]
        p = lg.softmax(-1)
        print(f"{name}: logit(C)-logit(B) {metric(lg, c_id, b_id):.2f}  "
              f"logit(C)-logit(A) {metric(lg, c_id, a_id):.2f}  "
              f"P(C) {p[rows, c_id].mean().item():.3f}  "
              f"C top-1 {(lg.argmax(-1) == c_id).float().mean().item():.1%}  "
              f"C above A and B {above(lg):.1%}")
        if name == "clean":
            clean_m = metric(lg, c_id, b_id)
        else:
            corrupt_m = metric(lg, c_id, b_id)
    gap = clean_m - corrupt_m
    print(f"gap (clean - corrupted) {gap:.2f}; metric below: logit(C)-logit(B) at END")

    # mean over corrupted prompts per template, at END, per layer: [templates, hidden]
    means = []
    for layer in range(n_layers):
        zc = z["corrupt"][layer][rows, end]  # [n, hidden]
        means.append(torch.stack([zc[templates == t].mean(0) for t in templates.unique()]))

    # direct effect: final-norm scale frozen from the clean run (rms of the pre-norm residual)
    norm_w = model.model.norm.weight
    pre = model.model.norm  # the final RMSNorm: direct(head) = w * W_O[h] z_h / rms(clean)
    unembed = model.lm_head.weight  # [vocab, hidden]
    direction = unembed[c_id] - unembed[b_id]  # [n, hidden]

    # clean pre-norm residual at END, for the scale
    pre_norm: list[torch.Tensor] = []
    h = pre.register_forward_pre_hook(lambda _m, inp: pre_norm.append(inp[0][rows, end]))
    with torch.no_grad():
        model(clean)
    h.remove()
    x = pre_norm[0]
    inv_rms = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg.rms_norm_eps)

    lo, hi = (int(v) for v in args.layers.split("-"))
    role_names = [r for r in ("C", "A1", "B1", "A2", "B2") if r in roles]
    print("\nhead   " + " ".join(f"{r:>5}" for r in role_names)
          + "   noised(logit)  noised(gap)  direct")
    results = []
    for layer in range(lo, hi + 1):
        o_proj = model.model.layers[layer].self_attn.o_proj
        for head in range(n_heads):
            sl = slice(head * d_head, (head + 1) * d_head)

            def ablate(_m, inp, sl=sl, layer=layer):
                zz = inp[0].clone()
                zz[rows, end, sl] = means[layer][templates][:, sl]
                return (zz,)

            lg = logits_at_end(clean, [(o_proj, ablate)])
            delta = metric(lg, c_id, b_id) - clean_m
            with torch.no_grad():
                diff = (z["clean"][layer][rows, end, sl] - means[layer][templates][:, sl])
                write = diff @ o_proj.weight[:, sl].T  # [n, hidden]
                direct = ((write * inv_rms * norm_w) * direction).sum(-1).mean().item()
            att = attn_clean[layer][:, head]  # [n, pos]
            shares = [att[rows, roles[r]].mean().item() for r in role_names]
            results.append((layer, head, shares, delta, direct))
            if abs(delta) >= 0.1 or abs(direct) >= 0.2 or max(shares) >= 0.3:
                print(f"{layer:>2}.{head:<2} " + " ".join(f"{s:5.2f}" for s in shares)
                      + f"   {delta:+13.2f}  {delta / gap:+11.2f}  {direct:+6.2f}")

    print("\nlargest effects when noised at END:")
    for layer, head, _shares, delta, direct in sorted(results, key=lambda r: r[3])[:10]:
        print(f"  {layer}.{head}: {delta:+.2f} ({delta / gap:+.2f} of the gap), "
              f"direct {direct:+.2f}")

    # duplicate-token attention: A2 -> A1 and B2 -> B1, per head (clean run)
    with torch.no_grad():
        out = model(clean, output_attentions=True)
    print("\nheads with attention >= 0.3 from a documented name back to its first copy:")
    for layer in range(n_layers):
        a = out.attentions[layer]  # [n, heads, q, k]
        for head in range(n_heads):
            s_a = a[rows, head, roles["A2"], roles["A1"]].mean().item() if "A2" in roles else 0
            s_b = a[rows, head, roles["B2"], roles["B1"]].mean().item() if "B2" in roles else 0
            if max(s_a, s_b) >= 0.3:
                print(f"  {layer}.{head}: A2->A1 {s_a:.2f}  B2->B1 {s_b:.2f}")


if __name__ == "__main__":
    main()
