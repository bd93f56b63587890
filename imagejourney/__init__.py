"""imagejourney: browser end-to-end workflow tester for image-generation products."""


class BenchFailed(Exception):
    """A benchmark could not take its figures; the message says why in one sentence."""
