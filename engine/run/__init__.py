"""Run: the stages composed — one case (pipeline) and a whole sample (run)."""
