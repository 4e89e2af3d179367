"""The harness behind ``mvcodec eval``: run codecs at several rate points, decode every file, tabulate, plot."""

from mvcodec.eval.harness import EvalPoint, run_eval  # noqa: F401
