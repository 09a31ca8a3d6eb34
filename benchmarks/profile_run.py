"""Where `parityspec run` spends its time on the benchmark spec: cProfile over one run.

    python benchmarks/profile_run.py                   # 1e6 rows, cold, top 25 cumulative
    python benchmarks/profile_run.py --rows 1e5 --warm --top 40 --stats run.prof

Prepares the model and data as benchmarks/run.py does, then profiles `parityspec run` in a
fresh process (the command itself, without the supervising parent, so every import the run
makes is in the profile) with an empty step cache; --warm profiles a second run on the filled
cache instead. Prints the entries with the largest cumulative time, then the largest own time.
Set PYTHONPATH to profile a snapshot of parityspec rather than the working tree.
"""

from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

from run import PYTHON, parityspec_command, prepare, sizes_arg, spec_for


def child(arguments: list[str], stats: str) -> None:
    import cProfile

    profile = cProfile.Profile()
    sys.argv = ["parityspec", *arguments]
    profile.enable()
    try:
        from parityspec.cli import main

        main()
    except SystemExit:
        pass
    finally:
        profile.disable()
        profile.dump_stats(stats)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[3:], sys.argv[2])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=lambda t: sizes_arg(t)[0], default=1_000_000)
    parser.add_argument("--warm", action="store_true", help="profile a warm run")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--stats", type=Path, help="also keep the pstats file here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parityspec-profile-") as folder:
        work = Path(folder)
        spec = spec_for(work, args.rows, prepare(work, [args.rows]))
        env = {**os.environ, "PARITYSPEC_CACHE_DIR": str(work / "cache")}
        arguments = ["run", str(spec), "--quiet"]
        if args.warm:  # fill the cache first
            subprocess.run([*parityspec_command(), *arguments], env=env, check=False)
        stats = str(args.stats or work / "run.prof")
        command = [PYTHON, __file__, "--child", stats, *arguments]
        subprocess.run(command, env=env, check=False)
        for order in ("cumulative", "tottime"):
            pstats.Stats(stats).sort_stats(order).print_stats(args.top)


if __name__ == "__main__":
    main()
