"""qi's engine: one module per pipeline stage.

source (load YAML with positions) → models + validate (check shapes and vocabulary) → framework /
sample (the inputs qi knows) → … Diagnostics (engine.base.diagnostics) are how every stage reports a
problem in its input.
"""


def main() -> None:
    """The ``qi`` command (the console entry point). Its click layer is ``cli.py`` at the top of a
    source checkout; an installed wheel carries that same file as ``engine/cli.py``, so qi installs
    no top-level module named ``cli`` that could clash with another package's."""
    import importlib
    import importlib.util

    name = "engine.cli" if importlib.util.find_spec("engine.cli") is not None else "cli"
    importlib.import_module(name).main()
