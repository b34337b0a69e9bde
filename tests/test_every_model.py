"""Every tool on every model family: the toy, random-gpt2, a tiny random Llama and SmolLM2,
through the real `lineup` entry point and the TUI (Pilot), with the real engine."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Static

from tests.cli import lineup

IOI = "When Mary and John went to the store, John gave a drink to"


def smollm2_or_skip() -> str:
    from engine.smollm2 import converted_dir

    if converted_dir() is None:
        pytest.skip("SmolLM2 is not converted here (`lineup download smollm2`)")
    return "smollm2"


@pytest.fixture(params=["toy", "random-gpt2", "tiny-llama", "smollm2"])
def model_spec(request, tiny_llama_dir) -> str:
    if request.param == "tiny-llama":
        return str(tiny_llama_dir)
    if request.param == "smollm2":
        return smollm2_or_skip()
    return request.param


def test_model_facts_read_either_family(tiny_llama_dir):
    import json

    from engine.models import ModelFacts, load_model

    lm = load_model(str(tiny_llama_dir), device="cpu")
    facts = lm.facts
    assert (facts.family, facts.n_layers, facts.n_heads, facts.n_kv_heads, facts.d_head,
            facts.n_ctx) == ("llama", 2, 4, 2, 8, 128)
    on_disk = ModelFacts.of(json.loads((tiny_llama_dir / "config.json").read_text()))
    assert on_disk == facts  # the config file and the loaded config say the same
    gpt2 = ModelFacts.of({"model_type": "gpt2", "n_layer": 12, "n_head": 12, "n_embd": 768,
                          "n_positions": 1024, "vocab_size": 50257})
    assert (gpt2.n_kv_heads, gpt2.d_head, gpt2.n_ctx) == (12, 64, 1024)


def test_lens_runs_on_every_model(model_spec):
    text = "the cat sat on the mat" if model_spec == "toy" else IOI
    result = lineup("lens", "--model", model_spec, text)
    assert result.returncode == 0, result.stderr
    assert "Logit lens on" in result.stdout and "embed" in result.stdout
    assert "crash" not in result.stderr


@pytest.mark.parametrize("command", [["patch", "ioi-name-mover"], ["lens", "x"], ["heads"]])
def test_help_lists_the_real_models_and_default(command):
    from engine.models import DEFAULT_RULE, default_model_name, model_names

    result = lineup(*command, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for name in model_names():
        assert name in text
    assert f"default: {DEFAULT_RULE}; here: {default_model_name()}" in text


async def _sandbox_guesses(spec: str) -> str:
    from game.app import LineupApp
    from game.engine_bridge import Engine
    from game.screens.sandbox import SandboxScreen

    app = LineupApp(engine=Engine(spec, device="cpu"))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, SandboxScreen)
        app.screen.query_one("#sandbox-text").value = IOI
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()
        assert app.screen.query_one("#lens", DataTable).row_count > 0
        return str(app.screen.query_one("#prediction", Static).content)


async def test_sandbox_shows_guesses_on_a_tiny_llama(tiny_llama_dir):
    assert "%" in await _sandbox_guesses(str(tiny_llama_dir))


@pytest.mark.slow
async def test_sandbox_and_ask_show_guesses_on_smollm2():
    from game.app import LineupApp
    from game.engine_bridge import Engine
    from game.screens.tools import LensScreen

    spec = smollm2_or_skip()
    assert "Mary" in await _sandbox_guesses(spec)
    app = LineupApp(engine=Engine(spec, device="cpu"), puzzle="ioi-name-mover")
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await pilot.press("l")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, LensScreen)
        assert app.screen.query_one("#lens", DataTable).row_count > 0


async def test_ask_tool_on_a_tiny_llama(tiny_llama_dir):
    """The ask tool's screen itself (no puzzle plays a tiny random Llama)."""
    from game.app import LineupApp
    from game.engine_bridge import Engine
    from game.screens.tools import LensScreen

    app = LineupApp(engine=Engine(str(tiny_llama_dir), device="cpu"))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        app.push_screen(LensScreen(IOI))
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()
        assert app.screen.query_one("#lens", DataTable).row_count > 0


def test_rank_listening_finds_the_planted_heads():
    """On the toy, the previous-token head 0.1 is where a person listens to the one behind."""
    from engine.detectors import rank_listening
    from engine.models import load_model

    lm = load_model("toy", device="cpu")
    tokens = lm.tokenize(["the cat sat on the mat"])
    ranked = rank_listening(lm, tokens, [4], [3])
    assert len(ranked) == lm.n_layers * lm.n_heads
    assert (ranked[0].layer, ranked[0].head) == (0, 1)
    assert ranked[0].lift > 2 and ranked[0].baseline == pytest.approx(0.2)
    assert [r.attention for r in ranked] == sorted((r.attention for r in ranked), reverse=True)


@pytest.mark.parametrize("spec", ["fake", "toy"])
async def test_experiments_draw_heatmaps_and_find_jumps(spec):
    """Every experiment of the swap tools, then who answers' find, on the fake engine and on
    the toy model with the real engine."""
    from tui_helpers import plain

    from game.app import LineupApp
    from game.engine_bridge import Engine
    from game.screens.tools import AttentionScreen, ExperimentScreen
    from tests.fake_engine import FakeEngine

    engine = FakeEngine() if spec == "fake" else Engine("toy", device="cpu")
    app = LineupApp(engine=engine, puzzle="ioi-name-mover")
    async with app.run_test(size=(110, 50)) as pilot:
        await pilot.pause()
        app.screen.action_swap_query()
        await pilot.pause()
        assert isinstance(app.screen, ExperimentScreen)
        seen = []
        for key in ("q", "k", "v", "s", "r", "h"):
            await pilot.press(key)
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.pause()
            screen = app.screen
            assert screen.report is not None and screen.report.at == {
                "q": "query", "k": "key", "v": "value", "s": "silence", "r": "resid",
                "h": "head"}[key]
            assert not screen.report.estimate  # the exact grid replaced the estimate
            grid = plain(screen.query_one("#experiment-grid", Static).content)
            assert "share of the gap" in grid and screen.report.reading in grid
            seen.append(screen.report.reading)
        await pilot.press("o")  # where: at the first person instead of everywhere
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen.report.position == next(iter(app.screen.puzzle.roles))
        assert "at every position" not in app.screen.report.reading
        await pilot.press("escape")
        await pilot.pause()
        app.screen.action_attention()
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AttentionScreen)
        table = screen.query_one("#attention", DataTable)
        table.move_cursor(row=3, column=3)
        await pilot.press("f")
        await app.workers.wait_for_complete()
        await pilot.pause()
        ranking = screen.query_one("#ranking")
        assert ranking.display and ranking.option_count > 0
        first = ranking.get_option_at_index(0).id
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()
        assert f"{screen.layer_no}.{screen.head_no}" == first
        assert not ranking.display
