"""The `imagejourney` command: report, serve, journeys."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_report(args) -> int:
    from reports.audit import RunDirError
    from reports.render import render_report

    try:
        report, breaches = render_report(Path(args.run_dir))
    except RunDirError as exc:
        print(f"imagejourney report: {exc}", file=sys.stderr)
        return 2
    for breach in breaches:
        print(f"budget breached: {breach}")
    print(report)
    return 1 if breaches else 0


def cmd_serve(args) -> int:
    from reference_app.server import AppCannotStart, serve

    try:
        serve(args)
    except AppCannotStart as exc:
        print(f"imagejourney serve: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_journeys(args) -> int:
    from journeys.pack import available_packs, load_pack

    for name in available_packs():
        pack = load_pack(name)
        print(f"{name:16} {len(pack.prompts)} prompts  {pack.description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from reference_app.server import add_serve_arguments

    parser = argparse.ArgumentParser(prog="imagejourney", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    report = commands.add_parser("report", help="render report.html from a run directory")
    report.add_argument("run_dir")
    report.set_defaults(func=cmd_report)

    serve = commands.add_parser("serve", help="run the reference app")
    add_serve_arguments(serve)
    serve.set_defaults(func=cmd_serve)

    journeys = commands.add_parser("journeys", help="list the built-in journey packs")
    journeys.set_defaults(func=cmd_journeys)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
