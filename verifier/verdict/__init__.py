"""The verdict: tolerances and detail rows, who is wrong (attribution), kinks, the failure text."""
