"""GATHER: journey packs, UI profiles, the runner that drives Playwright, the in-page timing
probe and the run-directory writer."""
