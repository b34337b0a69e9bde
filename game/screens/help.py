"""The help screen: the picture, and every key."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Markdown

from game.lifecycle import GameModal

HELP = """\
# How to play

A prompt is a **line of people**. Each holds one word and tries to guess the word of the
person in front. In each **round** every person may shout a **question** to everyone behind
them; whoever fits the question best **answers**. (A question is an attention head. A round
is a range of the model's layers that the puzzle names, such as `early` or `late`: the puzzle
screen lists each round with its layers, and every question placed in a round stands for the
heads of those layers that ask it. Layers listed as "played for you" work as the model plays
them. The tools work layer by layer and say which round each layer belongs to.)

You build the circuit: which person asks which question, in which round, and who answers.
The judge checks it against the model's real attention and patching results.

## Keys

| where | key | does |
| --- | --- | --- |
| menu | ↑ ↓ enter | choose and open a puzzle (a locked one says how to unlock it) |
| menu | o | open a circuit file |
| menu | x | sandbox: any text, looked inside |
| puzzle | a | add a question: round, asker, card, responder in one dialog |
| dialog | 1-9 ↑ ↓ enter | pick · backspace goes back a step · esc cancels |
| puzzle | m | move the selected question (the dialog names it) |
| puzzle | d | remove the selected question |
| puzzle | c | check the circuit (only esc cancels a running check) |
| puzzle | h | hint: rot13 first, h again decodes |
| puzzle | t | plain words / technical names |
| puzzle | s | save the circuit as a YAML file |
| puzzle | w | who answers: a head's attention |
| puzzle | l | what do you think now: the logit lens |
| puzzle | p | swap a person: activation patching |
| tools | [ ] , . | previous/next layer, previous/next head |
| who answers | f | find: heads ranked by how much the row hears the column; enter jumps |
| puzzle | ctrl+p | swap the question, who answers, the answer; silence a question (heatmaps) |
| swaps | r h q k v s · o · n | person, answer, question, keys, values, silence · where · numbers |
| anywhere | ctrl+p | command palette |
| anywhere | ? | this help · esc closes |
| anywhere | ctrl+q | quit |
"""


class HelpScreen(GameModal[None]):
    BINDINGS: ClassVar = [Binding("escape,q,question_mark", "dismiss(None)", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="help"):
            yield Markdown(HELP)
