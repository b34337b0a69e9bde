"""One Screen per view of the game."""
