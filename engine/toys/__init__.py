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

from engine.toys.build import architecture, card, model_config, weights_sha256, write_toy
from engine.toys.design import (
    DISTRACTORS,
    IOI_TEMPLATES,
    PLANTED,
    TOY_NAME,
    Head,
    Layout,
    clock_harmonics,
    clock_shift,
    clock_weights,
    householder,
    kernel_peak,
    position_code,
    token_codes,
    vocabulary,
    word_lists,
)
from engine.toys.measure import induction_accuracy, ioi_result, main, measure
from engine.toys.prompts import IOIPrompts, ioi_prompts, ioi_roles, prefix, repeated_sequences

__all__ = ["DISTRACTORS", "IOI_TEMPLATES", "PLANTED", "TOY_NAME", "Head", "IOIPrompts", "Layout",
           "architecture", "card", "clock_harmonics", "clock_shift", "clock_weights",
           "householder", "induction_accuracy", "ioi_prompts", "ioi_result", "ioi_roles",
           "kernel_peak", "main", "measure", "model_config", "position_code", "prefix",
           "repeated_sequences", "token_codes", "vocabulary", "weights_sha256", "word_lists",
           "write_toy"]
