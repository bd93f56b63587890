"""AUDIT + REPORT: load run directories, compute metrics, render the Jinja HTML report."""
