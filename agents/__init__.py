"""Agents: evaluation and scoreboards over any policy (SB3 model or baseline)."""
from agents.evaluation import evaluate, format_scoreboard, held_out_seeds, scoreboard, write_scoreboard

__all__ = ["evaluate", "format_scoreboard", "held_out_seeds", "scoreboard", "write_scoreboard"]
