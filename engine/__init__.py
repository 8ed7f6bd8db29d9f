"""qi's engine: one module per pipeline stage.

source (load YAML with positions) → models + validate (check shapes and vocabulary) → framework /
sample (the inputs qi knows) → … Diagnostics (engine.base.diagnostics) are how every stage reports a
problem in its input.
"""
