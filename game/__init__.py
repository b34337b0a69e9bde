"""Lineup's terminal front end: the `lineup` command and the Textual game."""
