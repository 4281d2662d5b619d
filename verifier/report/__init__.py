"""What a user reads: result tables, CSV/HTML reports, heat maps, diff, terminal output, explain."""
