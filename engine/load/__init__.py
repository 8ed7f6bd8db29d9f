"""Load: YAML files read into plain data with a line and column for every node, within limits."""
