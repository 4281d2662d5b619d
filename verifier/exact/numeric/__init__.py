"""The numeric-exact route: decompositions evaluated at 60 digits, derivatives by Richardson extrapolation.

See docs/numeric-exact.md. ``model.NumericModel`` stands in for a compiled model for cases whose
expression calls a decomposition without a closed form (mirror/decompositions.py).
"""
