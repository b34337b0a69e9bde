"""How every screen of the game starts: its first drawing runs only when it can.

Why: keys are routed when Textual gets round to them, not when they were typed, so a screen
can be pushed after the player pressed ``q`` (``q x`` typed together) or popped before it
was ever drawn (``x esc``). In both cases Textual still sends the screen its ``Mount`` event,
but its ``compose`` widgets were never mounted (``Widget.mount_all`` mounts nothing once the
app is exiting or the screen is being removed), so an ``on_mount`` that queries them crashed
the game with ``NoMatches``. Textual calls ``on_mount`` of every class in the MRO, so a guard
in a base class cannot stop a subclass's own ``on_mount``: screens therefore never define
``on_mount`` (a test enforces it). They define ``set_up`` (and ``resumed``), which the base
calls only while the screen is really on the stack of a running app.

Leaving has the mirror problem: ``Screen.dismiss`` (and ``app.pop_screen``) pops whatever
screen is on top, so a second close from keys queued before the first one took effect
(``enter enter`` in the command palette, ``esc esc``) popped the screen beneath, down to
Textual's blank default screen. Every screen leaves through ``dismiss``, which closes once and
only while that screen is on top.

Keys have the same problem in between: a key queued before the screen's ``set_up`` ran (``a``
typed while the puzzle screen is being pushed) reached an action that reads what ``set_up``
fills in. ``check_action`` therefore refuses every action of the screen until ``set_up`` has
run, except the ways out (``EARLY_ACTIONS``), which only dismiss.
"""

from __future__ import annotations

from typing import Any, TypeVar

from textual.await_complete import AwaitComplete
from textual.screen import ModalScreen, Screen

ResultType = TypeVar("ResultType")


class Guarded:
    """Mixin for a Screen: ``set_up`` once its widgets exist, ``resumed`` when it is shown
    again; neither while the app is quitting or once the screen has left the stack."""

    set_up_done = False
    leaving = False
    # Actions that only close the screen: safe before ``set_up`` (``x esc`` typed together).
    EARLY_ACTIONS = frozenset({"leave_screen", "back", "cancel", "leave", "dismiss"})

    @property
    def live(self) -> bool:
        """On the running app's screen stack, with its composed widgets mounted.
        ``is_attached`` is False once the app has begun to exit; a popped screen is off
        ``screen_stack`` before it is removed."""
        screen: Any = self
        try:
            return bool(screen.is_attached and screen in screen.app.screen_stack)
        except Exception:  # no app (any more)
            return False

    @property
    def is_top(self) -> bool:
        """The screen keys go to (``is_current`` is also true under a dialog)."""
        screen: Any = self
        try:
            return bool(screen.app.screen is screen)
        except Exception:  # no app, or an empty stack while the app closes
            return False

    def on_mount(self) -> None:
        if self.live:
            self.set_up_done = True
            self.set_up()
            screen: Any = self
            screen.refresh_bindings()  # the footer shows the actions now allowed

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Textual asks this before running a key's action: none but a way out until
        ``set_up`` has filled the screen in."""
        if not self.set_up_done and action not in self.EARLY_ACTIONS:
            return False
        return super().check_action(action, parameters)  # type: ignore[misc]

    def on_screen_resume(self) -> None:
        if self.set_up_done and self.live:
            self.resumed()

    def dismiss(self, result: Any = None) -> AwaitComplete:
        """Close this screen with ``result``: once, and only while it is the top screen (a
        no-op otherwise)."""
        if self.leaving or not self.is_top:
            return AwaitComplete.nothing()
        self.leaving = True
        return super().dismiss(result)  # type: ignore[misc]

    def action_leave_screen(self) -> None:
        """The escape key of a screen that just closes."""
        self.dismiss(None)

    def set_up(self) -> None:
        """Fill in and focus the composed widgets (what ``on_mount`` would do)."""

    def resumed(self) -> None:
        """The screen is on top again (a screen above it closed)."""


class GameScreen(Guarded, Screen[ResultType]):
    """A full screen of the game."""


class GameModal(Guarded, ModalScreen[ResultType]):
    """A dialog of the game."""
