"""The history store: run summaries and per-step rows across nights, in a real database.

SQLite file by default (`journey-results/history.db`); a team points `--store` (or
IMAGEJOURNEY_STORE) at PostgreSQL (`postgresql://user@host/db`). SQLAlchemy Core, one schema
for both, with its version kept in the store: a store written by a newer schema is refused.
Steps keep image paths, never image bytes. Summaries keep the summary.json schema name, so a
changed definition can be recomputed from the stored steps.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from .run import load_run
from .summary import summarize, summary_json

SCHEMA_VERSION = 2  # 2: steps.seed is a 64-bit integer (products draw seeds up to 2**53 and beyond)
DEFAULT_STORE = "sqlite:///journey-results/history.db"
STEP_FIELDS = (
    "prompt_id",
    "step_index",
    "action",
    "status",
    "seed",
    "click_to_preview_ms",
    "click_to_final_ms",
    "click_to_export_ms",
    "image",
)

metadata = MetaData()
schema_table = Table("imagejourney_schema", metadata, Column("version", Integer, nullable=False))
runs_table = Table(
    "runs",
    metadata,
    Column("run_id", String(200), primary_key=True),
    Column("target", String(200)),
    Column("journey", String(200)),
    Column("config_hash", String(40)),
    Column("started_at", String(40)),
    Column("finished_at", String(40)),
    Column("complete", Boolean),
    Column("passed", Boolean),  # no failed step, every budget held, no regression
    Column("path", Text),
    Column("summary_schema", String(60)),
    Column("summary", Text),  # summary.json as written by the audit
)
steps_table = Table(
    "steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(200), ForeignKey("runs.run_id"), nullable=False, index=True),
    Column("prompt_id", String(200)),
    Column("step_index", Integer),
    Column("action", String(40)),
    Column("status", String(20)),
    Column("seed", BigInteger),
    Column("click_to_preview_ms", Float),
    Column("click_to_final_ms", Float),
    Column("click_to_export_ms", Float),
    Column("image", Text),
)
baseline_table = Table(
    "baseline",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("run_id", String(200), ForeignKey("runs.run_id")),
)


class StoreError(Exception):
    """One sentence: what is wrong with the store or the request."""


@dataclass
class StoredRun:
    run_id: str
    target: str
    journey: str
    started_at: str
    complete: bool
    passed: bool
    path: str
    summary: dict


def store_url(explicit: str | None) -> str:
    return explicit or os.environ.get("IMAGEJOURNEY_STORE") or DEFAULT_STORE


class HistoryStore:
    def __init__(self, url: str | None = None):
        self.url = store_url(url)
        engine_url = self.url
        try:
            if self.url.startswith("sqlite:///"):
                Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            if self.url.startswith("postgresql://"):  # the psycopg 3 driver
                engine_url = "postgresql+psycopg://" + self.url.removeprefix("postgresql://")
            self.engine: Engine = create_engine(engine_url)
            with self.engine.begin() as db:
                metadata.create_all(db)
                version = db.execute(select(schema_table.c.version)).scalar()
                if version is None:
                    db.execute(insert(schema_table).values(version=SCHEMA_VERSION))
                elif version == 1:
                    migrate_to_2(db)
                elif version > SCHEMA_VERSION:
                    raise StoreError(
                        f"the history store {shown(self.url)} has schema version {version}, newer than this "
                        f"imagejourney's ({SCHEMA_VERSION}); upgrade imagejourney to use it"
                    )
        except (ArgumentError, NoSuchModuleError):
            raise StoreError(
                f"'{shown(self.url)}' is not a store URL; use sqlite:///PATH or postgresql://USER@HOST/DB"
            ) from None
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "no answer"
            raise StoreError(f"the history store {shown(self.url)} cannot be reached ({reason})") from None

    def add(self, run_dir: Path) -> tuple[str, bool]:
        """Add a run directory (its audit's summary and steps); (run_id, added). The same run
        twice is a no-op."""
        run = load_run(Path(run_dir))
        written = run.path / "summary.json"  # the audit's own result, with its comparison when there was one
        summary = json.loads(written.read_text()) if written.is_file() else summary_json(summarize(run))
        run_id = summary["run_id"] or run.path.name
        with self.engine.begin() as db:
            if db.execute(select(runs_table.c.run_id).where(runs_table.c.run_id == run_id)).first():
                return run_id, False
            db.execute(
                insert(runs_table).values(
                    run_id=run_id,
                    target=summary["target"]["name"],
                    journey=summary["journey"],
                    config_hash=summary["config_hash"],
                    started_at=summary["started_at"],
                    finished_at=summary["finished_at"],
                    complete=summary["complete"],
                    passed=passed(summary),
                    path=str(run.path.resolve()),
                    summary_schema=summary["schema"],
                    summary=json.dumps(summary),
                )
            )
            rows = run.steps[list(STEP_FIELDS)].astype(object).where(run.steps[list(STEP_FIELDS)].notna(), None)
            if len(rows):
                db.execute(insert(steps_table), [{"run_id": run_id, **row} for row in rows.to_dict("records")])
        return run_id, True

    def runs(
        self, target: str | None = None, journey: str | None = None, since: datetime | None = None
    ) -> list[StoredRun]:
        """Stored runs, oldest first."""
        query = select(runs_table).order_by(runs_table.c.started_at, runs_table.c.run_id)
        if target:
            query = query.where(runs_table.c.target == target)
        if journey:
            query = query.where(runs_table.c.journey == journey)
        with self.engine.connect() as db:
            found = [
                StoredRun(
                    r.run_id, r.target, r.journey, r.started_at, r.complete, r.passed, r.path, json.loads(r.summary)
                )
                for r in db.execute(query)
            ]
        if since is not None:
            found = [r for r in found if r.started_at and datetime.fromisoformat(r.started_at) >= since]
        return found

    def get(self, run_id: str) -> StoredRun:
        for run in self.runs():
            if run.run_id == run_id:
                return run
        raise StoreError(
            f"no run '{run_id}' in the history store {shown(self.url)}; `imagejourney history list` shows them"
        )

    def steps(self, run_id: str) -> list[dict]:
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(select(steps_table).where(steps_table.c.run_id == run_id))]

    def set_baseline(self, run_id: str) -> None:
        self.get(run_id)
        with self.engine.begin() as db:
            if db.execute(select(baseline_table).where(baseline_table.c.name == "pinned")).first():
                db.execute(update(baseline_table).where(baseline_table.c.name == "pinned").values(run_id=run_id))
            else:
                db.execute(insert(baseline_table).values(name="pinned", run_id=run_id))

    def pinned_baseline(self) -> str | None:
        with self.engine.connect() as db:
            return db.execute(select(baseline_table.c.run_id).where(baseline_table.c.name == "pinned")).scalar()

    def resolve(
        self,
        ref: str,
        journey: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        before: str | None = None,
    ) -> list[StoredRun]:
        """A baseline reference → the stored runs it names: a run id, `last`, `last-passing`,
        `pinned`, or (with `since`) every run of the window, pooled."""
        runs = [r for r in self.runs(target, journey, since) if r.run_id != before]
        if not runs:
            where = " ".join(x for x in (journey and f"journey {journey}", target and f"target {target}") if x)
            raise StoreError(
                f"the history store {shown(self.url)} holds no run{' for ' + where if where else ''}"
                f"{' in that window' if since else ''}; add one with `imagejourney history add RUN_DIR`"
            )
        if since is not None and ref in ("last", "window"):
            return runs
        if ref == "last":
            return [runs[-1]]
        if ref == "last-passing":
            passing = [r for r in runs if r.passed]
            if not passing:
                raise StoreError(f"no passing run in the history store {shown(self.url)} to compare with")
            return [passing[-1]]
        if ref == "pinned":
            pinned = self.pinned_baseline()
            if pinned is None:
                raise StoreError("no baseline is pinned; pin one with `imagejourney history baseline set RUN_ID`")
            return [self.get(pinned)]
        return [self.get(ref)]


def migrate_to_2(db) -> None:
    """Schema 1 → 2: a seed such as 156680208700286 does not fit PostgreSQL's 32-bit integer.
    (SQLite's integers are 64-bit already.)"""
    if db.dialect.name == "postgresql":
        db.execute(text("ALTER TABLE steps ALTER COLUMN seed TYPE BIGINT"))
    db.execute(update(schema_table).values(version=2))


def passed(summary: dict) -> bool:
    comparison = summary.get("comparison") or {}
    return (
        summary["complete"]
        and summary["failed_steps"] == 0
        and all(b["held"] for b in summary["budgets"])
        and not comparison.get("regressions")
    )


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`7d`, `36h` → the moment that long before `now` (default: the wall clock, UTC)."""
    units = {"d": "days", "h": "hours"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise StoreError(f"--since '{text}' must read like 7d or 36h")
    return (now or datetime.now(UTC)) - timedelta(**{units[text[-1]]: int(text[:-1])})


def shown(url: str) -> str:
    """A store URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':')[0]}@{host}"
    return url
