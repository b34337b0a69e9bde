"""Per-question verdicts: a question is judged as the group of heads that fit it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.judge.faithfulness import Faithfulness
from engine.judge.positions import answers_are_texts, position_problem
from engine.judge.runs import _all_heads, _ensure, _Split, _values
from engine.judge.silenced import SilencedView
from engine.judge.task import TaskCheck, _mean_se
from engine.judge.thresholds import (
    ATTENTION_DETECTORS,
    COPY_SAMPLE,
    COPY_SIGN,
    COPY_Z,
    DETECTOR_UNIFORM_MULT,
    EFFECT_MIN,
    MAX_EVIDENCE,
    NOISE_Z,
    PATTERN_CARDS,
    PRIMARY_MIN,
    SCORE_INDEX,
    SHARE_MIN,
    UNIFORM_MULT,
    WIDEN_MAX,
    Head,
    _pct,
)
from engine.report import HeadEvidence, QuestionReport

if TYPE_CHECKING:
    import torch

    from engine.interventions import Edit
    from engine.loaded import LoadedModel
    from engine.puzzle import ModelBlock, PromptSet, Puzzle, Question


@dataclass
class _Group:
    """A question's heads in one round and what they do together."""

    heads: list[Head]
    effect: float = 0.0  # noising them at the asker, fraction of the gap (sign: helps)
    noise: float = math.inf  # its standard error
    direct: float = 0.0  # the same change reaching the guess by the direct path only
    queries: float = 0.0  # the same change reaching only later heads' queries
    ablate: frozenset = frozenset()
    passes: bool = False  # the card's mechanism holds (sign and share)
    why: str = ""  # in words, when it does not


class _Judge(Faithfulness, SilencedView):
    def __init__(self, puzzle: Puzzle, block: ModelBlock, lm: LoadedModel, play: _Split,
                 heads: dict[str, Any], roles: list[str], *, ps: PromptSet | None = None,
                 factor: int = 1) -> None:
        self.puzzle, self.block, self.lm = puzzle, block, lm
        self.play = play
        self._ps = ps  # the split's prompts (built from the puzzle when first needed)
        self.factor = factor  # prompts as a multiple of the puzzle's count (see ``wider``)
        self.scores = heads["scores"]
        self.heads_data = heads
        self.roles = roles
        self.r = {name: i for i, name in enumerate(roles)}
        self.gap = play.clean - play.corrupted
        self.att = play.data["att"]  # [L, H, R, R]
        self.uniform = play.data["uniform"]  # [R]
        self._copy: dict[tuple, float] = {}
        self.silenced_heads: list[Head] = []  # set on a view made by ``without``
        # the heads a circuit is judged over: those of the puzzle's rounds (kept layers play
        # as usual and are never silenced)
        self.round_heads = [h for h in _all_heads(lm) if not block.is_kept(h[0])]

    @property
    def ps(self) -> PromptSet:
        if self._ps is None:
            self._ps = self.puzzle.build_prompts(self.lm.tokenizer, self.play.name)
        return self._ps

    def position_problem(self, card: str, asker: str, responder: str) -> str | None:
        return position_problem(card, asker, responder, self.ps)

    def movers(self) -> frozenset[Head]:
        """The heads that move a name into the guess, whichever round (kept layers too): at
        the metric position they listen to someone holding a word the guess is about and copy
        that word (the name-mover test). An s-inhibition warning is what changes their
        questions, so its path test sends to their queries only."""
        if not hasattr(self, "_movers"):
            at = self.puzzle.metric.at
            answer = {r for r in self.visible(at)
                      if position_problem("name-mover", at, r, self.ps) is None}
            self._movers = frozenset(
                h for h, role in self.listeners(range(self.lm.n_layers), at).items()
                if role in answer and self.fits("name-mover", *h, at, role)[0])
        return self._movers

    def widened(self) -> _Judge | None:
        """This judge on twice as many prompts (the puzzle's seed, ``count`` doubled), up to
        ``WIDEN_MAX`` times the puzzle's count; None when that is as far as it goes or the
        bigger split does not fit in memory here. Kept once made."""
        if self.factor * 2 > WIDEN_MAX or self.play.name != "play":
            return None
        if "_wider" in self.__dict__:
            return self.__dict__["_wider"]
        from engine.errors import UsageError
        from engine.judge.runs import _load_split

        spec = self.puzzle.prompts
        factor = self.factor * 2
        bigger = dataclasses.replace(self.puzzle, prompts=dataclasses.replace(
            spec, count=spec.count * factor))  # self.puzzle is always the puzzle's own
        wide: _Judge | None
        try:
            ps = bigger.build_prompts(self.lm.tokenizer, "play")
            split, _ = _load_split(self.lm, ps, self.roles, play=True, cancelled=None)
            wide = _Judge(self.puzzle, self.block, self.lm, split, self.heads_data, self.roles,
                          ps=ps, factor=factor)
        except UsageError:
            wide = None
        self.__dict__["_wider"] = wide
        return wide

    # ---- attention -------------------------------------------------------------------
    def visible(self, asker: str) -> list[str]:
        """Roles standing behind the asker in every prompt (the asker excluded)."""
        pos = self.play.pos
        a = self.r[asker]
        return [r for r in self.roles if r != asker
                and bool((pos[self.r[r]] < pos[a]).all())]

    def attention(self, layer: int, head: int, asker: str, responder: str) -> float:
        return float(self.att[layer, head, self.r[asker], self.r[responder]])

    def even(self, asker: str) -> float:
        return float(self.uniform[self.r[asker]])

    def top_role(self, layer: int, head: int, asker: str) -> str | None:
        """The role this head, at the asker, listens to most, if it beats an even spread by
        UNIFORM_MULT and every other role."""
        vis = self.visible(asker)
        if not vis:
            return None
        values = sorted(((self.attention(layer, head, asker, r), r) for r in vis), reverse=True)
        best, role = values[0]
        runner_up = values[1][0] if len(values) > 1 else 0.0
        if best >= UNIFORM_MULT * self.even(asker) and best > runner_up:
            return role
        return None

    def listeners(self, layers: Sequence[int], asker: str) -> dict[Head, str]:
        out = {}
        for layer in layers:
            for h in range(self.lm.n_heads):
                role = self.top_role(layer, h, asker)
                if role is not None:
                    out[(layer, h)] = role
        return out

    # ---- what a head is ----------------------------------------------------------------
    def ratio(self, det: str, layer: int, head: int) -> float:
        score = float(self.scores[SCORE_INDEX[det], layer, head])
        base = self.heads_data["uniform_every" if det == "previous_token" else "uniform_second"]
        return score / base if base > 0 else 0.0

    def copy_z(self, layer: int, head: int, asker: str, responder: str) -> float:
        """In-context copying: how far the head's write at the asker raises the logit of the
        responder's own token, in standard deviations of its effect on every token (mean over
        the prompts). A null baseline: a head writing noise scores about 0. When the metric's
        answers are answer texts (a pronoun nobody in the line holds), the right answer's
        token is read instead: what the head carries from the responder is that answer."""
        key = (layer, head, asker, responder)
        if key in self._copy:
            return self._copy[key]
        import torch

        from engine.hooks import final_norm, w_out

        p = self.play
        a, r = self.r[asker], self.r[responder]
        rows = torch.arange(p.n, device=p.tokens.ids.device)
        tok = p.tokens.ids[rows, p.pos[r]]
        if answers_are_texts(self.ps):  # the answer is no token of the prompt: its own id
            tok = torch.tensor(self.ps.correct_ids[:p.n], device=tok.device)
        w_u, _bias = self.vocab_sample()
        with torch.no_grad():
            write = p.data["z_roles"][layer, a, :, head] @ w_out(self.lm, layer)[head]
            base = p.data["final_roles"][a]
            # the write's effect on the logits of the sampled words (the null) and of the
            # responder's own word, through the final norm
            diff = final_norm(self.lm, base) - final_norm(self.lm, base - write)  # [N, d]
            delta = (diff @ w_u.T).float()  # [N, sample]; the bias cancels
            own = (diff * self.lm_rows(tok)).sum(-1).float()  # [N]
            z = (own - delta.mean(-1)) / delta.std(-1).clamp(min=1e-12)
        value = float(z.mean())
        self._copy[key] = value
        return value

    def vocab_sample(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Unembedding rows of a fixed sample of ordinary words (``COPY_SAMPLE``): the null
        against which a head's boost to the responder's word is measured."""
        if not hasattr(self, "_sample"):
            import torch

            from engine.detectors import candidate_token_ids
            from engine.hooks import unembed_weight

            w_u, bias = unembed_weight(self.lm)
            pool = candidate_token_ids(self.lm)
            pick = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(0))
                        [:COPY_SAMPLE]].to(w_u.device)
            self._sample = (w_u[pick], None if bias is None else bias[pick])
        return self._sample

    def lm_rows(self, tok: torch.Tensor) -> torch.Tensor:
        from engine.hooks import unembed_weight

        return unembed_weight(self.lm)[0][tok]

    def fits(self, card: str, layer: int, head: int, asker: str, responder: str
             ) -> tuple[bool, float, str]:
        """Whether a listening head is the card's kind of head, its score, and why not."""
        if card in PATTERN_CARDS:
            det = PATTERN_CARDS[card]
            ratios = {d: self.ratio(d, layer, head) for d in ATTENTION_DETECTORS}
            score = float(self.scores[SCORE_INDEX[det], layer, head])
            if ratios[det] < DETECTOR_UNIFORM_MULT:
                return False, score, (f"on repeated random words it scores only "
                                      f"{ratios[det]:.1f}x an even head as a "
                                      f"{det.replace('_', '-')} head")
            best = max(ratios, key=lambda d: ratios[d])
            if best != det:
                return False, score, (f"on repeated random words it looks more like a "
                                      f"{best.replace('_', '-')} head ({ratios[best]:.1f}x "
                                      f"an even head, against {ratios[det]:.1f}x)")
            return True, score, ""
        z = self.copy_z(layer, head, asker, responder)
        if card in COPY_SIGN:
            sign = COPY_SIGN[card]
            if sign * z >= COPY_Z:
                return True, z, ""
            if sign > 0:
                return False, z, (f"what it says does not carry {responder}'s word into the "
                                  f"guess (copy score {z:.1f}; a copier scores {COPY_Z:.0f} "
                                  "or more)")
            return False, z, (f"what it says does not push against {responder}'s word "
                              f"(copy score {z:.1f}; it needs -{COPY_Z:.0f} or less)")
        if card == "s-inhibition":
            if z >= COPY_Z:
                return False, z, (f"it says {responder}'s word into the guess itself (copy "
                                  f"score {z:.1f}): that is moving a name, not warning "
                                  "the others off it")
            return True, z, ""
        return False, math.nan, "this card has no test"

    # ---- effects -----------------------------------------------------------------------
    def need(self, edits: Sequence[Edit]) -> None:
        _ensure(self.lm, self.play, edits)

    def noise_edit(self, heads: Sequence[Head], asker: str, ablate: frozenset = frozenset()
                   ) -> Edit:
        from engine.interventions import Edit

        return Edit.of(ablate=ablate, z=[(l_, h, asker) for l_, h in heads])

    def base_edit(self, ablate: frozenset = frozenset()) -> Edit:
        from engine.interventions import Edit

        return Edit.of(ablate=ablate)

    def change(self, edit: Edit, ablate: frozenset = frozenset()) -> tuple[float, float]:
        """(mean, standard error) of (base - patched) / gap over the prompts."""
        base = _values(self.play, self.base_edit(ablate))
        new = _values(self.play, edit)
        mean, se = _mean_se([a - b for a, b in zip(base, new, strict=True)])
        g = abs(self.gap) if abs(self.gap) > 0 else 1.0
        return mean / g, se / g

    def direct(self, heads: Sequence[Head], asker: str) -> float:
        """Noising the heads at the asker, with the change reaching the guess by the direct
        path only (exact: the final norm is recomputed). Zero unless the asker is where the
        guess is read."""
        import torch

        from engine.hooks import w_out

        p = self.play
        pos = p.pos[self.r[asker]]
        same = pos == p.at
        if not heads or not bool(same.any()) or abs(self.gap) == 0:
            return 0.0
        rows = torch.arange(p.n, device=pos.device)
        a = self.r[asker]
        with torch.no_grad():
            delta = torch.zeros_like(p.data["final_at"])
            for layer, h in heads:
                dz = p.data["z_src"][layer][rows, pos, h] - p.data["z_roles"][layer, a, :, h]
                delta = delta + dz @ w_out(self.lm, layer)[h]
            delta = delta * same[:, None].to(delta.dtype)
            base = p.metric(p.data["final_at"])
            new = p.metric(p.data["final_at"] + delta)
        return float((base - new).mean()) / abs(self.gap)

    def holds_wrong(self, role: str) -> bool:
        """Whether the role holds the metric's wrong answer (IOI: S1 and S2 hold S) in most
        prompts: moving its word into the guess then *lowers* the metric."""
        if self.play.wrong is None:
            return False
        toks = self.play.tokens.ids[range(self.play.n), self.play.pos[self.r[role]]].tolist()
        return sum(t == w for t, w in zip(toks, self.play.wrong, strict=True)) * 2 > self.play.n

    def metric_sign(self, card: str, responder: str | None) -> float:
        """+1 when the card's heads, doing their job, raise the metric: a mover of the right
        answer, or a negative mover of the wrong one; -1 otherwise."""
        sign = -1.0 if card == "negative-name-mover" else 1.0
        if card in COPY_SIGN and responder is not None and self.holds_wrong(responder):
            sign = -sign
        return sign

    def measure(self, card: str, heads: list[Head], asker: str,
                ablate: frozenset = frozenset(), sign: float = 1.0) -> _Group:

        g = _Group(heads=heads, ablate=ablate)
        if not heads:
            return g
        edits = [self.base_edit(ablate), self.noise_edit(heads, asker, ablate)]
        movers = self.movers() if card == "s-inhibition" else frozenset()
        if movers:
            edits.append(self.q_path_edit(heads, asker))
        self.need(edits)
        g.effect, g.noise = self.change(edits[1], ablate)
        if card == "s-inhibition":
            g.queries = self.change(edits[2])[0] if movers else 0.0
            g.direct = self.direct(heads, asker)
            if g.queries < EFFECT_MIN or g.queries < SHARE_MIN * g.effect \
                    or g.queries <= abs(g.direct):
                at = self.puzzle.metric.at
                g.why = ((f"they change the guess by {_pct(g.effect)} of the gap, but only "
                          f"{_pct(g.queries)} of it through the questions of the people who "
                          f"say a name into the guess at {at}"
                          + (f" ({_pct(g.direct)} directly)" if g.direct else ""))
                         if movers else
                         f"nobody after them at {at} says a name into the guess") \
                    + ": a warning works by changing what those people ask"
            else:
                g.passes = True
        elif card in ("name-mover", "copy", "negative-name-mover"):
            g.direct = self.direct(heads, asker)
            if sign * g.direct < EFFECT_MIN or sign * g.direct < SHARE_MIN * sign * g.effect:
                where = ("" if self.direct_reaches(asker) else
                         f": what is said at {asker} does not reach the guess, "
                         f"which is made at {self.puzzle.metric.at}")
                g.why = (f"their words reach the guess directly by only "
                         f"{_pct(sign * g.direct)} of the gap{where}")
            else:
                g.passes = True
        else:
            g.passes = True
        return g

    def q_path_edit(self, heads: Sequence[Head], asker: str) -> Edit:
        """The heads' changed write at the asker reaching only the movers' queries there."""
        from engine.interventions import Edit

        return Edit.of(q_path=[(l_, h, asker) for l_, h in heads],
                       q_receivers=self.movers())

    def direct_reaches(self, asker: str) -> bool:
        return bool((self.play.pos[self.r[asker]] == self.play.at).any())

    def measurable(self, g: _Group, sign: float) -> bool:
        value = sign * g.effect
        return value >= NOISE_Z * g.noise or (g.direct and abs(g.direct) >= EFFECT_MIN
                                              and math.isfinite(g.noise) and sign * g.direct
                                              >= NOISE_Z * g.noise)

    # ---- candidates ------------------------------------------------------------------
    def fitting(self, layers: Sequence[int], asker: str, card: str, responder: str
                ) -> tuple[list[Head], list[tuple[Head, str]]]:
        """The round's heads that listen to the responder and fit the card, and the
        listeners that do not fit (with why)."""
        fit, misfit = [], []
        for h, role in self.listeners(layers, asker).items():
            if role != responder:
                continue
            ok, _score, why = self.fits(card, *h, asker, responder)
            (fit if ok else misfit).append(h if ok else (h, why))
        return fit, misfit

    def primaries(self, asker: str, responder: str) -> list[Head]:
        """Name movers that do the job while everyone is there: in any round, listening to
        the responder, copying its word, with their own direct effect above PRIMARY_MIN."""
        out = []
        layers = [layer for rnd in self.block.rounds for layer in self.block.layers(rnd)]
        for h, role in self.listeners(layers, asker).items():
            if role == responder and self.fits("name-mover", *h, asker, responder)[0] \
                    and self.direct([h], asker) >= PRIMARY_MIN:
                out.append(h)
        return out

    def group_for(self, card: str, layers: Sequence[int], asker: str, responder: str
                  ) -> tuple[_Group, list[tuple[Head, str]]]:
        ablate: frozenset = frozenset()
        judge: _Judge = self
        if card == "backup-name-mover":
            primary = self.silenced_heads or self.primaries(asker, responder)
            judge = self.without(primary)
            ablate = frozenset(primary)
        fit, misfit = judge.fitting(layers, asker, card, responder)
        fit = [h for h in fit if h not in ablate]
        g = judge.measure(card, fit, asker, ablate, self.metric_sign(card, responder))
        if judge.play.dirty:
            self.play.dirty = True
        return g, misfit

    def evidence(self, g: _Group, card: str, asker: str, responder: str | None
                 ) -> list[HeadEvidence]:
        """Each head of the group alone, measured like the group (the same mechanism), with
        its share of the group's value."""

        heads = sorted(g.heads, key=lambda h: -self.attention(*h, asker, responder)
                       if responder else 0.0)[:MAX_EVIDENCE]
        sends = card == "s-inhibition" and bool(self.movers())
        if sends:
            self.need([self.q_path_edit([(l_, h)], asker) for l_, h in heads])
        else:
            self.need([self.noise_edit([h], asker, g.ablate) for h in heads])
        out = []
        for layer, h in heads:
            if card == "s-inhibition":
                own = self.change(self.q_path_edit([(layer, h)], asker))[0] if sends else 0.0
                group = g.queries
            elif card in ("name-mover", "copy", "negative-name-mover"):
                own, group = self.direct([(layer, h)], asker), g.direct
            else:
                own = self.change(self.noise_edit([(layer, h)], asker, g.ablate), g.ablate)[0]
                group = g.effect
            det = PATTERN_CARDS.get(card)
            score = (float(self.scores[SCORE_INDEX[det], layer, h]) if det else
                     self.copy_z(layer, h, asker, responder) if responder else math.nan)
            effect = self.change(self.noise_edit([(layer, h)], asker, g.ablate), g.ablate)[0] \
                if card not in ("s-inhibition",) else own
            out.append(HeadEvidence(
                head=f"{layer}.{h}", layer=layer, index=h,
                attention=self.attention(layer, h, asker, responder) if responder else math.nan,
                detector=score, effect=effect,
                share=own / group if abs(group) > 1e-9 else math.nan))
        return out

    # ---- the verdict -----------------------------------------------------------------
    def judge_question(self, q: Question, given: bool, task: TaskCheck
                       ) -> tuple[QuestionReport, list[Head]]:
        """The question's verdict and the heads it adds to the circuit. A verdict inside its
        noise is measured again on more prompts (``widened``, up to ``WIDEN_MAX`` times the
        puzzle's count) before it is called not-measurable, so it does not flip with the
        prompts' seed."""
        rep, heads, undecided = self._judge_once(q, given, task)
        judge: _Judge = self
        while undecided:
            wide = judge.widened()
            if wide is None:
                break
            judge = wide
            rep, heads, undecided = wide._judge_once(q, given, task)
            if wide.play.dirty:  # its new runs are saved with its own split
                from engine.judge.runs import _save_effects

                _save_effects(wide.play)
            rep.numbers["prompts"] = float(wide.play.n)
            rep.message += (f" (measured on {wide.play.n} sentences: on {self.play.n} it was "
                            "inside the noise)")
        return rep, heads

    def _judge_once(self, q: Question, given: bool, task: TaskCheck
                    ) -> tuple[QuestionReport, list[Head], bool]:
        """(report, heads it adds to the circuit, whether the verdict is inside its noise).

        In order: the card's claim about positions (no run needed); the round's heads that
        listen to the responder and are the card's kind; their effect and mechanism. Only a
        true question (position, kind and mechanism hold) whose effect is measured to be small
        is not-needed; a group that moves the guess the wrong way works against it. A placed
        question adds heads only when confirmed; a given one keeps its heads whatever its
        verdict."""
        from engine.puzzle import CARDS

        card = CARDS[q.card]
        rep = QuestionReport(q.round, q.asker, q.card, q.responder, given, "invalid", "")
        layers = list(self.block.layers(q.round))
        if not task.ok:
            rep.verdict = "not-measurable"
            rep.message = "not graded: " + task.message
            return rep, [], False
        if not card.responder:
            rep, heads = self.judge_think(q, rep, layers)
            return rep, heads, False
        a, p = q.asker, q.responder
        assert p is not None
        sign = self.metric_sign(q.card, p)
        even = self.even(a)

        where = self.position_problem(q.card, a, p)
        if where is not None:
            # the card says who answers and where it is asked: false here, whatever heads do
            rep.verdict = "no-such-question"
            rep.message = f"in round {q.round}, {a} cannot ask {p} this: {where}"
            return rep, [], False
        g, misfit = self.group_for(q.card, layers, a, p)
        rep.effect = g.effect
        rep.numbers = {"effect": g.effect, "noise": g.noise, "direct": g.direct,
                       "through_queries": g.queries}
        names = [f"{l_}.{h}" for l_, h in g.heads]
        if g.heads:
            keep = list(g.heads) if given else []  # a given question keeps its heads
            seen_by = (self.without(self.primaries(a, p)) if q.card == "backup-name-mover"
                       else self)
            rep.heads = seen_by.evidence(g, q.card, a, p)
            if seen_by.play.dirty:  # a view's new runs are this split's to save
                self.play.dirty = True
            best = max(rep.heads, key=lambda e: e.attention)
            listen = (f"in round {q.round}, {a} asks {p} this: "
                      + (f"{len(g.heads)} heads listen to {p} (the most attentive gives it "
                         f"{best.attention:.2f} of its attention" if len(g.heads) > 1 else
                         f"a head gives {p} {best.attention:.2f} of its attention")
                      + (")" if len(g.heads) > 1 else "")
                      + f", an even spread would give {even:.2f}")
            together = "together they move" if len(g.heads) > 1 else "it moves"
            moved = f"{together} the guess by {_pct(g.effect)} of the gap"
            backup = (" with the main name movers silenced" if q.card == "backup-name-mover"
                      else "")
            # the card's own mechanism: the direct path for movers, the movers' queries for
            # s-inhibition, the whole effect for the pattern cards
            part = (g.direct if q.card in COPY_SIGN else
                    g.queries if q.card == "s-inhibition" else g.effect)
            strong = sign * g.effect >= EFFECT_MIN or (
                q.card in COPY_SIGN and sign * g.direct >= EFFECT_MIN)
            inside = f"inside the noise of these prompts ({_pct(g.noise)} either way)"
            if g.passes and strong:
                if not self.measurable(g, sign):
                    rep.verdict = "not-measurable"
                    rep.message = f"{listen}; {moved}{backup}, but that is {inside}"
                    return rep, keep, True
                rep.verdict = "confirmed"
                rep.message = f"{listen}; {moved}{backup}" + self._mechanism_words(q.card, g)
                return rep, list(g.heads), False
            against = min(sign * g.effect, sign * part)
            if against <= -EFFECT_MIN:
                # the card says they help the guess; they push it the other way
                if -against < NOISE_Z * g.noise:
                    rep.verdict = "not-measurable"
                    rep.message = (f"{listen}; {moved}{backup}, against the guess, but that "
                                   f"is {inside}")
                    return rep, keep, True
                if sign * g.effect <= -EFFECT_MIN:
                    how = (f"{together} the guess the wrong way, by {_pct(-sign * g.effect)} "
                           f"of the gap{backup}")
                else:
                    how = ({"s-inhibition": "what they change in the movers' questions"}.get(
                        q.card, "what they say straight into the guess")
                        + f" pushes it the wrong way, by {_pct(-sign * part)} of the gap")
                rep.verdict = "no-such-question"
                rep.message = (f"{listen}; but they work against the guess: {how}, and this "
                               "card says they help it")
                rep.reveal = {"heads": names}
                return rep, keep, False
            if not g.passes and sign * g.effect >= EFFECT_MIN:
                # real listeners with an effect, but not by this card's mechanism
                rep.verdict = "no-such-question"
                rep.message = (f"in round {q.round}, the heads through which {a} listens to "
                               f"{p} do not do what this card says: {g.why}")
                rep.reveal = {"heads": names}
                return rep, keep, False
            if sign * g.effect + NOISE_Z * g.noise >= EFFECT_MIN:
                # small, but not shown to be small: it may yet matter
                rep.verdict = "not-measurable"
                rep.message = (f"{listen}; {moved}{backup}: too close to "
                               f"{EFFECT_MIN:.0%} to tell whether the guess depends on it "
                               f"({_pct(g.noise)} of noise either way)")
                return rep, keep, True
            rep.verdict = "not-needed"
            rep.message = (f"{listen}; but the guess hardly depends on it: {moved}"
                           f"{backup} (a question that matters moves it by "
                           f"{EFFECT_MIN:.0%} or more)")
            return rep, keep, False

        # no head of this round fits: whom do the card's heads here listen to instead?
        others: dict[str, list[Head]] = {}
        for h, role in self.listeners(layers, a).items():
            if role != p and self.position_problem(q.card, a, role) is None \
                    and self.fits(q.card, *h, a, role)[0]:
                others.setdefault(role, []).append(h)
        for role, hs in sorted(others.items(), key=lambda kv: -len(kv[1])):
            o_sign = self.metric_sign(q.card, role)
            og = self.measure(q.card, hs, a, sign=o_sign)
            if og.passes and o_sign * og.effect >= EFFECT_MIN:
                best_p = max(self.attention(*h, a, p) for h in hs)
                rep.verdict = "wrong-responder"
                rep.message = (f"in round {q.round}, the heads that let {a} ask this "
                               f"listen to someone else: they give {p} at most "
                               f"{best_p:.2f} of their attention (an even spread gives "
                               f"{even:.2f})")
                rep.reveal = {"responder": role, "heads": [f"{l_}.{h}" for l_, h in hs]}
                rep.numbers = {"attention": best_p, "even": even}
                return rep, [], False

        # the same question in another round?
        for other in self.block.rounds:
            if other == q.round:
                continue
            og, _ = self.group_for(q.card, list(self.block.layers(other)), a, p)
            if og.heads and og.passes and sign * og.effect >= EFFECT_MIN:
                near = max((self.attention(layer, h, a, p), (layer, h)) for layer in layers
                           for h in range(self.lm.n_heads))
                rep.verdict = "wrong-round"
                rep.message = (f"in round {q.round}, no head lets {a} ask {p} this (the "
                               f"closest gives {p} {near[0]:.2f} of its attention, an even "
                               f"spread {even:.2f}); the line does ask it, but in another "
                               "round")
                rep.reveal = {"round": other, "heads": [f"{l_}.{h}" for l_, h in og.heads]}
                rep.numbers = {"attention": near[0], "even": even}
                return rep, [], False

        rep.verdict = "no-such-question"
        if misfit:
            (layer, h), why = max(misfit, key=lambda m: self.attention(*m[0], a, p))
            rep.message = (f"in round {q.round}, {a} does listen to {p} (a head gives it "
                           f"{self.attention(layer, h, a, p):.2f} of its attention), but not "
                           f"with this question: {why}")
            rep.reveal = {"heads": [f"{l_}.{h_}" for (l_, h_), _ in misfit]}
            return rep, [], False
        near = max((self.attention(layer, h, a, p), (layer, h)) for layer in layers
                   for h in range(self.lm.n_heads))
        rep.message = (f"in round {q.round}, nobody lets {a} ask {p} this: the closest head "
                       f"gives {p} {near[0]:.2f} of its attention (an even spread gives "
                       f"{even:.2f}), not clearly more than it gives the others")
        rep.numbers = {"attention": near[0], "even": even}
        return rep, [], False

    @staticmethod
    def _mechanism_words(card: str, g: _Group) -> str:
        if card == "s-inhibition":
            return (f"; {_pct(g.queries)} of the gap goes through what later heads ask, "
                    f"{_pct(g.direct)} directly")
        if card in ("name-mover", "copy", "negative-name-mover"):
            return f" ({_pct(g.direct)} directly into the guess)"
        return ""

    def judge_think(self, q: Question, rep: QuestionReport, layers: Sequence[int]
                    ) -> tuple[QuestionReport, list[Head]]:
        from engine.interventions import Edit

        edit = Edit.of(mlp=[(layer, q.asker) for layer in layers])
        self.need([self.base_edit(), edit])
        effect, noise = self.change(edit)
        rep.effect = effect
        rep.numbers = {"effect": effect, "noise": noise}
        if effect >= EFFECT_MIN and effect >= NOISE_Z * noise:
            rep.verdict = "confirmed"
            rep.message = (f"in round {q.round}, what {q.asker} thinks matters: replacing it "
                           f"moves the guess by {_pct(effect)} of the gap")
        elif effect >= EFFECT_MIN:
            rep.verdict = "not-measurable"
            rep.message = (f"in round {q.round}, replacing what {q.asker} thinks moves the "
                           f"guess by {_pct(effect)} of the gap, inside the noise ({_pct(noise)})")
        else:
            rep.verdict = "not-needed"
            rep.message = (f"in round {q.round}, what {q.asker} thinks barely matters "
                           f"(the guess moves by {_pct(effect)} of the gap)")
        return rep, []


def _invalid(q: Question, puzzle: Puzzle, block: ModelBlock, roles: list[str],
             ps: PromptSet) -> str | None:
    """Why a question cannot be graded at all, or None (``engine.puzzle.question_problem``,
    the one rule the validator uses too)."""
    from engine.puzzle import question_problem

    return question_problem(q, puzzle, block, ps.roles)


def _normalise(q: Question) -> Question:
    from engine.puzzle import card_id

    return type(q)(q.round, q.asker, card_id(q.card), q.responder, q.line, q.col)
