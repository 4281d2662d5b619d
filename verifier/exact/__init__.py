"""The exact side: the mirror (function definitions), the SymPy model, its tape and sweeps, kinks, the tape cache."""
