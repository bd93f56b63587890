"""The audits, one concern per module (as Lighthouse keeps one audit per file). Each has an
`audit(run, …)` that returns its part of the summary; reports/summary.py runs each once."""
