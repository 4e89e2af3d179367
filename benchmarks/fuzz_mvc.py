"""Long fuzzing run of ``mvcodec info`` / ``mvcodec decode`` (the harness of tests/test_fuzz.py, more inputs).

    OMP_NUM_THREADS=1 python benchmarks/fuzz_mvc.py --examples 2000 [--codecs x264,mv-mginr] [--seed 1]

For every available codec: one small valid seed file, then ``--examples`` raw-byte mutations and as many
structure-aware ones (CRCs and index recomputed, so the damage reaches the codec's decoder).  Unlike the test,
a failing input does not stop the run: every failure is collected.  Prints the inputs run per codec and kind
and each failure (one line; the mutation that caused it is in brackets); exit status 1 if anything failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import test_fuzz as harness  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hyp_seed


def fuzz(codec_id: str, seed_path: Path, examples: int, seed: int) -> tuple[Counter, list[str]]:
    counts: Counter = Counter()
    failures: list[str] = []
    data = seed_path.read_bytes()
    parsed = harness.ParsedMvc.parse(seed_path)
    conf = settings(max_examples=examples, deadline=None, database=None, phases=(Phase.generate,),
                    suppress_health_check=list(HealthCheck))

    @hyp_seed(seed)
    @conf
    @given(harness.raw_mutation())
    def raw(mutate) -> None:
        counts["raw"] += 1
        problem = harness.check_input(mutate(data), f"{codec_id} raw {mutate.__doc__}")
        if problem:
            failures.append(problem)

    @hyp_seed(seed)
    @conf
    @given(harness.structured_mutation(parsed))
    def structured(case) -> None:
        counts["structured"] += 1
        what, blob = case
        problem = harness.check_input(blob, f"{codec_id} structured: {what}")
        if problem:
            failures.append(problem)

    raw()
    structured()
    return counts, failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=500, help="inputs per codec and mutation kind")
    ap.add_argument("--codecs", help="comma-separated ids (default: every available codec)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    codecs = args.codecs.split(",") if args.codecs else harness.available_codecs()
    total, all_failures = 0, []
    with tempfile.TemporaryDirectory(prefix="fuzz-seeds-") as tmp:
        for codec_id in codecs:
            start = time.perf_counter()
            seed_path = harness.make_seed(codec_id, Path(tmp))
            counts, failures = fuzz(codec_id, seed_path, args.examples, args.seed)
            total += sum(counts.values())
            all_failures += failures
            print(f"{codec_id:10s} raw {counts['raw']:6d}  structured {counts['structured']:6d}  "
                  f"failures {len(failures):4d}  {time.perf_counter() - start:7.1f} s", flush=True)
    print(f"{total} inputs, each through info, info --json, decode and decode --skip-damaged; "
          f"{len(all_failures)} failures")
    for f in all_failures:
        print("FAIL", f)
    return 1 if all_failures else 0


if __name__ == "__main__":
    sys.exit(main())
