"""Running cases: the runner (one case x dtype through every side) and isolated worker processes."""
