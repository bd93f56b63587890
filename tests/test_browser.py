import pytest
from imagejourney.journeys import browser
from imagejourney.journeys.browser import NoBrowser, resolve_chromium


def test_managed_browser_is_preferred(tmp_path):
    exe = tmp_path / "chrome"
    exe.write_text("")
    assert resolve_chromium(str(exe)) == (None, "playwright")


def test_system_chromium_when_managed_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: "/usr/bin/chromium" if name == "chromium" else None)
    assert resolve_chromium(str(tmp_path / "missing")) == ("/usr/bin/chromium", "system")


def test_no_browser_says_how_to_install_one(tmp_path, monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    with pytest.raises(NoBrowser, match="apt-get install -y chromium"):
        resolve_chromium(str(tmp_path / "missing"))
