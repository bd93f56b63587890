"""The history store on SQLite and on a real PostgreSQL that this test starts itself."""

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from imagejourney.reports.compare import resolve_side
from imagejourney.reports.history import HistoryStore, StoreError
from imagejourney.reports.summary import started_at
from sqlalchemy import create_engine, text

FORMAT_1_RUN = Path(__file__).parent / "data" / "run-format-1"


def postgres_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL cluster in a temporary directory on a free loopback port, run as an
    unprivileged user (initdb refuses root), stopped afterwards."""
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; ./setup.sh installs Debian's postgresql when run as root")
        pytest.skip("PostgreSQL is not installed (./setup.sh installs it as root)")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="imagejourney-pg-"))
    data = root / "data"
    if as_user:
        shutil.chown(root, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust"], check=True, capture_output=True
    )
    subprocess.run(
        [
            *as_user,
            pg_ctl,
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-w",
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    url = request.getfixturevalue("postgres_url")
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as db:  # each test starts from an empty store
        db.execute(text("DROP TABLE IF EXISTS steps, baseline, runs, imagejourney_schema"))
    return url


def copy_run(tmp_path, name):
    run = tmp_path / name
    shutil.copytree(FORMAT_1_RUN, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["run_id"] = name
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def test_add_list_show_and_pin(store_url, tmp_path):
    store = HistoryStore(store_url)
    assert store.runs() == []
    first, second = copy_run(tmp_path, "night-1"), copy_run(tmp_path, "night-2")
    assert store.add(first) == ("night-1", True)
    assert store.add(first) == ("night-1", False)  # the same run twice: a no-op
    store.add(second)
    runs = store.runs(journey="portrait")
    assert [r.run_id for r in runs] == ["night-1", "night-2"] and all(r.passed for r in runs)
    assert runs[0].summary["schema"] == "imagejourney.summary/1" and runs[0].summary["ttui_ms"]["n"] == 3
    steps = store.steps("night-1")
    assert len(steps) == 15 and {s["action"] for s in steps} == {"generate", "reroll", "edit", "export"}
    assert all(s["image"].startswith("images/") for s in steps)  # paths, never bytes
    assert store.runs(target="staging") == []
    store.set_baseline("night-1")
    assert [r.run_id for r in store.resolve("pinned")] == ["night-1"]
    assert [r.run_id for r in store.resolve("last")] == ["night-2"]
    assert [r.run_id for r in store.resolve("last", before="night-2")] == ["night-1"]
    with pytest.raises(StoreError, match="no run 'night-9'"):
        store.get("night-9")


def test_compare_resolves_store_references(store_url, tmp_path):
    store = HistoryStore(store_url)
    for night in ("night-1", "night-2", "night-3"):
        store.add(copy_run(tmp_path, night))
    new = resolve_side(str(tmp_path / "night-3"), store_url)
    last_passing = resolve_side("last-passing", store_url, journey="portrait", exclude="night-3")
    assert last_passing.name == "night-2"
    # The window ends a day after the stored runs started, whatever today's date is.
    events = [json.loads(line) for line in (FORMAT_1_RUN / "events.jsonl").read_text().splitlines()]
    runs_started = datetime.fromisoformat(started_at(events))
    pooled = resolve_side(
        "last", store_url, since="7d", journey="portrait", exclude="night-3", now=runs_started + timedelta(days=1)
    )
    assert len(pooled.runs) == 2 and pooled.name.startswith("2 runs since 7d")
    assert resolve_side("night-1", store_url).name == "night-1" and new.runs


def test_a_schema_1_store_is_migrated_to_64_bit_seeds(store_url, tmp_path):
    """Products draw seeds such as 156680208700286, past PostgreSQL's 32-bit integer."""
    HistoryStore(store_url)
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as db:  # as a store made by schema 1 left it
        if db.dialect.name == "postgresql":
            db.execute(text("ALTER TABLE steps ALTER COLUMN seed TYPE INTEGER"))
        db.execute(text("UPDATE imagejourney_schema SET version = 1"))
    store = HistoryStore(store_url)
    with engine.begin() as db:
        assert db.execute(text("SELECT version FROM imagejourney_schema")).scalar() == 2
        db.execute(text("INSERT INTO runs (run_id) VALUES ('r')"))
        db.execute(text("INSERT INTO steps (run_id, seed) VALUES ('r', 156680208700286)"))
    assert store.steps("r")[0]["seed"] == 156680208700286


def test_a_newer_schema_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'history.db'}"
    HistoryStore(url)
    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(text("UPDATE imagejourney_schema SET version = 99"))
    with pytest.raises(StoreError, match="has schema version 99, newer than this imagejourney's"):
        HistoryStore(url)


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_history_cli_and_its_one_sentence_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    run = copy_run(tmp_path, "night-1")
    empty = cli("history", "--store", url, "list")
    assert empty.returncode == 0 and "holds no run yet" in empty.stdout
    assert cli("history", "add", str(run), "--store", url).stdout.startswith("added night-1")  # after, as git takes it
    assert "is already in" in cli("history", "--store", url, "add", str(run)).stdout  # and before, as it always did
    assert "examples:" in cli("history", "--help").stdout
    listed = json.loads(cli("history", "list", "--json", env={"IMAGEJOURNEY_STORE": url}).stdout)
    assert [r["run_id"] for r in listed] == ["night-1"] and listed[0]["passed"] is True
    assert json.loads(cli("history", "show", "night-1", "--store", url).stdout)["steps"] == 15
    for args, sentence in [
        (("history", "--store", url, "show", "nope"), "no run 'nope' in the history store"),
        (("history", "--store", "postgresql://u@127.0.0.1:1/db", "list"), "cannot be reached"),
        (("history", "--store", "mysql+nothing://x", "list"), "is not a store URL"),
        (("history", "--store", url, "add", str(tmp_path / "none")), "is not a run directory"),
        (("compare", "last-passing", str(run), "--store", f"sqlite:///{tmp_path / 'empty.db'}"), "holds no run"),
    ]:
        proc = cli(*args)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and sentence in proc.stderr, proc.stderr


@pytest.mark.browser
def test_dashboard_lists_stored_runs_draws_the_trend_and_links_each_report(tmp_path, page):
    from imagejourney.reports.dashboard import Dashboard
    from imagejourney.reports.render import render_report

    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = HistoryStore(url)
    for night in ("night-1", "night-2"):
        run = copy_run(tmp_path, night)
        render_report(run)
        store.add(run)
    with Dashboard(url) as dashboard:
        page.goto(dashboard.url)
        assert page.locator("h2").first.inner_text() == "portrait on reference"
        rows = page.locator("table tr td code").all_inner_texts()
        assert rows == ["night-2", "night-1"]  # newest first
        assert page.locator("figure.chart svg").count() == 1
        assert "Trend over the history store" in page.locator("figure.chart svg").text_content()
        page.get_by_role("link", name="report").first.click()
        page.wait_for_load_state()
        assert page.title().startswith("imagejourney · portrait · ")
        assert page.request.get(dashboard.url + "runs/night-1/../../etc/passwd").status == 404
        assert page.request.get(dashboard.url + "runs/nobody/report.html").status == 404


def test_dashboard_errors_are_one_sentence(tmp_path):
    proc = cli("dashboard", "--store", "postgresql://u@127.0.0.1:1/db")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "cannot be reached" in proc.stderr


def test_a_report_compared_through_the_store_shows_the_trend(tmp_path):
    from imagejourney.reports.render import render_report

    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = HistoryStore(url)
    for night in ("night-1", "night-2"):
        store.add(copy_run(tmp_path, night))
    new = copy_run(tmp_path, "night-3")
    html = render_report(new, baseline="last-passing", store=url)[0].read_text()
    assert 'id="trend"' in html and "Trend over the history store" in html and "this run" in html and "baseline" in html
    summary = json.loads((new / "summary.json").read_text())
    assert summary["comparison"]["baseline"] == "night-2"
