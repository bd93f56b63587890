"""The benchmarks behind `imagejourney bench NAME`: one module per benchmark, each with
`run(...)` returning its figures and `format_table(result)` printing them beside a baseline."""


class BenchFailed(Exception):
    """A benchmark could not take its figures; the message says why in one sentence."""
