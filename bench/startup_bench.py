"""Start-up time of `ragql serve`: first start on an empty data dir, then restarts on it.

Prints one line per start and, last, one JSON object. The figure that matters is the
restart: it must reuse the embedded database (no initdb), run no migration work and keep
every account.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.serve_process import ServeProcess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--restarts", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ragql-startup-"))
    try:
        data_dir = root / "data"
        first = ServeProcess(data_dir).start()
        first.stop()
        print(f"first start (initdb, migrations, superadmin): {first.started_in_seconds:.2f} s")
        restarts = []
        for index in range(args.restarts):
            server = ServeProcess(data_dir).start()
            server.stop()
            assert "superadmin created" not in server.output()
            restarts.append(server.started_in_seconds)
            print(f"restart {index + 1}: {server.started_in_seconds:.2f} s")
        print(
            json.dumps(
                {
                    "first_start_seconds": round(first.started_in_seconds, 2),
                    "restart_seconds": [round(value, 2) for value in restarts],
                    "restart_median_seconds": round(statistics.median(restarts), 2),
                }
            )
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
