"""Circuit files written by the game must read back exactly, whatever the role names."""

from __future__ import annotations

from engine.puzzle import Circuit, Question, load_circuit


def test_exported_circuit_reads_back_even_with_names_yaml_would_misread(tmp_path):
    questions = [
        Question("on", "No", "name-mover", "null"),
        Question("early", "S2", "duplicate-token", "S1"),
    ]
    path = tmp_path / "circuit.yaml"
    path.write_text(Circuit("ioi-name-mover", questions, model="toy").to_yaml())
    again = load_circuit(path)
    assert again.puzzle == "ioi-name-mover"
    assert [(q.round, q.asker, q.card, q.responder) for q in again.questions] == [
        ("on", "No", "name-mover", "null"),
        ("early", "S2", "duplicate-token", "S1"),
    ]
