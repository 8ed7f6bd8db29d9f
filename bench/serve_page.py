"""How fast the workspace's pages are on a 1,000-case run (the target: a run page under a second).

Generates a 1,000-case sample, records one run in a scratch store, and times the run page (first
and later requests, first and last page of cases), the runs list and a case page through the app,
as a browser would ask for them. Prints the figures; writes nothing outside a temporary folder.

    .venv/bin/python bench/serve_page.py [--cases 1000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner
from starlette.testclient import TestClient

import cli
from engine.serve import app


def timed(client: TestClient, url: str) -> tuple[float, int]:
    start = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return time.perf_counter() - start, len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=1000)
    count = parser.parse_args().cases
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        runner = CliRunner()
        runner.invoke(cli.cli, ["sample", "generate", "--cases", str(count), "--seed", "1", "--out", str(root / "s")])
        result = runner.invoke(cli.cli, ["run", str(root / "s"), "--out", str(root / "out"),
                                         "--db", str(root / "qi.db")])
        assert result.exit_code == 0, result.output
        new = lambda: TestClient(app.create(root / "qi.db"), base_url="http://127.0.0.1")  # noqa: E731
        last = (count + 49) // 50
        client = new()
        rows = [("run page, first request (store opened, report parsed; verify starts)", *timed(client, "/runs/1"))]
        client.app.state.workspace.reader._verifying.join()
        warm = [timed(client, f"/runs/1?page={n}")[0] for n in (1, 2, last, 1, 2, last)]
        rows.append(("run page, later requests (median of 6)", statistics.median(warm), 0))
        rows.append(("runs list, verify known", *timed(client, "/")))
        reference = sorted(p.stem for p in (root / "s" / "cases").glob("*.yaml"))[count // 2]
        rows.append((f"case page ({reference})", *timed(client, f"/runs/1/cases/{reference}")))
        rows.append(("runs list, first request (waits for verify)", *timed(new(), "/")))
        fresh = new()
        rows.append((f"run page {last} (the last), first request", *timed(fresh, f"/runs/1?page={last}")))
        fresh.app.state.workspace.reader._verifying.join()
    print(f"{count}-case run:")
    for name, seconds, size in rows:
        print(f"  {name:<62} {seconds * 1000:7.0f} ms" + (f"  ({size / 1024:.0f} KiB)" if size else ""))


if __name__ == "__main__":
    main()
