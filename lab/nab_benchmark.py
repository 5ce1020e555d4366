"""The NAB numbers of BENCHMARKS.md: scores, a tuned/held-out split, time and state per series.

    python lab/nab_benchmark.py [--jobs 2]

Runs :class:`models.anomaly.AnomalyDetector` (default parameters, as the flow and
``python -m lab.score_csv`` run it) over every labelled NAB file found under
``$CITYHEART_NAB_DIR`` (default ``../shared/nab`` next to the repo; the data stays there) and
prints, as Markdown:

- the standard, reward_low_FP and reward_low_FN scores on all files (NAB convention: one
  threshold per profile, chosen over the files scored);
- a split check: files alternate, per NAB category, into halves A and B; thresholds are tuned on
  one half and the other half is scored with them (and the other way round);
- CPU time per point (process time of the detector loop only) and the pickled size of each
  series' detector after its last point (what a Bytewax snapshot stores).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pickle
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from models.anomaly import AnomalyDetector  # noqa: E402


def load_scorer(nab_dir: Path):
    spec = importlib.util.spec_from_file_location("nab_score", nab_dir / "nab_score.py")
    if spec is None or spec.loader is None:
        msg = f"no nab_score.py in {nab_dir} (set CITYHEART_NAB_DIR)"
        raise SystemExit(msg)
    module = importlib.util.module_from_spec(spec)
    sys.modules["nab_score"] = module
    spec.loader.exec_module(module)
    return module


def score_file(args: tuple[str, list[float], list[float]]) -> tuple[str, list[float], float, int]:
    name, stamps, values = args
    detector = AnomalyDetector()
    update = detector.update
    started = time.process_time()
    scores = [update(ts, value).score for ts, value in zip(stamps, values, strict=True)]
    elapsed = time.process_time() - started
    return name, scores, elapsed, len(pickle.dumps(detector))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    nab_dir = Path(os.environ.get("CITYHEART_NAB_DIR", REPO.parent / "shared" / "nab"))
    nab = load_scorer(nab_dir)
    windows = nab_dir / "data" / "labels" / "combined_windows.json"
    corpus = nab.load_corpus(None, str(nab_dir / "data"), str(windows))
    work = []
    for f in sorted(corpus, key=len, reverse=True):
        stamps = [t.replace(tzinfo=UTC).timestamp() for t, _ in f.series()]
        work.append((f.name, stamps, f.values.tolist()))
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        done = list(pool.map(score_file, work))
    scores = {name: s for name, s, _, _ in done}
    points = sum(len(s) for s in scores.values())
    seconds = sum(e for _, _, e, _ in done)
    sizes = [b for _, _, _, b in done]

    full = nab.score_corpus(corpus, scores)
    halves: dict[str, list] = {"A": [], "B": []}
    by_category: dict[str, list] = {}
    for f in sorted(corpus, key=lambda f: f.name):
        by_category.setdefault(f.name.split("/")[0], []).append(f)
    for files in by_category.values():
        for index, f in enumerate(files):
            halves["AB"[index % 2]].append(f)
    n_windows = sum(len(f.windows) for f in corpus)
    print(f"NAB files: {len(corpus)}, windows: {n_windows}, points: {points}\n")
    print("| scored on | thresholds tuned on | standard | reward_low_FP | reward_low_FN |")
    print("|---|---|---|---|---|")
    row = " | ".join(f"{full[p].normalized:.1f}" for p in nab.PROFILES)
    print(f"| all {len(corpus)} files | the same files | {row} |")
    for scored, tuned in (("A", "A"), ("B", "B"), ("B", "A"), ("A", "B")):
        res = nab.score_corpus(halves[scored], scores, tune_corpus=halves[tuned])
        row = " | ".join(f"{res[p].normalized:.1f}" for p in nab.PROFILES)
        print(f"| half {scored} ({len(halves[scored])} files) | half {tuned} | {row} |")
    std = full["standard"]
    print(f"\nstandard threshold {std.threshold:.4f}: {std.detected_windows}/{std.n_windows} "
          f"windows, {std.fp_rows} false-positive rows")
    print(f"CPU time: {1e6 * seconds / points:.1f} us per point ({points} points, {seconds:.1f} s)")
    print(f"pickled detector after the last point: median {statistics.median(sizes):.0f} B, "
          f"max {max(sizes)} B")
    return 0


if __name__ == "__main__":
    sys.exit(main())
