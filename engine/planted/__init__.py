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

from engine.planted.build import build
from engine.planted.measure import induction_stats, ioi_stats, main, measure, role_attention
from engine.planted.plan import VARIANTS, PlantedSpec, spec, truth
from engine.planted.prompts import IOI_TEMPLATES, IOIBatch, ioi_batch, repeated_tokens

__all__ = ["IOI_TEMPLATES", "VARIANTS", "IOIBatch", "PlantedSpec", "build", "induction_stats",
           "ioi_batch", "ioi_stats", "main", "measure", "repeated_tokens", "role_attention",
           "spec", "truth"]
