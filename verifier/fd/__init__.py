"""Finite differences: complex step and Richardson extrapolation, each value with its own error estimate."""
