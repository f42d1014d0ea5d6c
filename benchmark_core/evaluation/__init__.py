"""Evaluation beyond the clean test split: the stress grid, EMAP and the robustness summaries."""
