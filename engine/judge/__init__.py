"""The judge: grades a player's circuit against the model's own attention and patching.

``grade(puzzle, circuit, lm) -> Report``. The rules are written out for players and teachers
in ``docs/how-grading-works.md``; in short:

0. Runs (cached on disk per model weights x prompts x judge version, see ``engine.cache``):
   the clean prompts and their corrupted twins, once each.
1. The task: the model must do the puzzle's task (the clean-minus-corrupted gap well above
   its noise, and at least ``TASK_ACCURACY`` of the prompts answered right). Otherwise
   nothing is graded: the report says so, with the numbers, and gives no star.
2. Each question (round, asker, card, responder) is first checked against the card's claim
   about positions, on the puzzle's own prompts and without any run (previous-token: the
   responder stands right behind the asker; duplicate-token: it holds the asker's word;
   induction: it stands right after an earlier copy of the asker's word; movers: it holds a
   word the guess is about; movers and s-inhibition: asked where the guess is made); false,
   it is no-such-question. Then it is judged **as a group**: its heads are the round's heads
   that (a) listen to the responder from the asker (more than to anyone else behind the
   asker and ``UNIFORM_MULT`` times an even spread) and (b) fit the card by what they are
   (attention pattern on repeated random tokens; in-context copying of the responder's
   token). The group's effect (its outputs at the asker replaced, together, by the corrupted
   run's) and the card's mechanism (direct effect on the guess for movers; effect through
   the movers' queries, by path patching, for s-inhibition) decide the verdict: confirmed;
   not-measurable (inside the noise even on ``WIDEN_MAX`` times the prompts); not-needed (a
   true question whose effect is shown to be small; it adds no heads); no-such-question
   (also for a group that works against the guess); wrong-responder; wrong-round. Backup
   name movers are measured with the primary name movers (a different set of heads)
   silenced. Given questions keep their heads whatever their verdict.
3. Faithfulness: every head that no holding question uses is mean-ablated
   (``engine.interventions.group_means``: per template and position over the corrupted
   prompts). ``F = (m(circuit) - m(no heads)) / (m(full) - m(no heads))``.
4. Minimality: a confirmed question placed by the player whose heads change faithfulness by
   less than ``NEED_LOSS`` either way (and whose loss does not cross the pass line) is
   not-needed. A head that genuinely acts, e.g. a negative name mover whose removal *raises*
   faithfulness, is needed.
5. Stars: ``engine.report.stars_for``. Given questions are the puzzle's: never held against
   the player.

The patched runs are ``engine.interventions.run_edits`` (the one runner) and the metric is
``engine.metrics.PuzzleMetric`` (the one metric). The reference solution is not consulted.
"""


from engine.judge.grading import LastMetric, grade, load_for, model_spec_for
from engine.judge.runs import RUNS
from engine.judge.scores import _head_scores, _heads_key
from engine.report import VERDICTS, HeadEvidence, QuestionReport, Report

__all__ = ["RUNS", "VERDICTS", "HeadEvidence", "LastMetric", "QuestionReport", "Report",
           "_head_scores", "_heads_key", "grade", "load_for", "model_spec_for"]
