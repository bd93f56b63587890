from pathlib import Path

from imagejourney.journeys.manifest import build_manifest, config_hash, degradations
from imagejourney.journeys.pack import load_pack
from imagejourney.journeys.profile import load_profile

ROOT = Path(__file__).resolve().parent.parent


def test_config_hash_is_stable_and_sensitive():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert len(config_hash({})) == 10


def test_manifest_records_conditions_and_degradations():
    app_info = {"model": "tiny", "random_weights": True, "device": "cpu", "steps": 4, "size": 128}
    browser = {"name": "chromium", "version": "156.0", "source": "system", "viewport": {"width": 1, "height": 1}}
    m = build_manifest(
        pack=load_pack("portrait"),
        profile=load_profile("reference"),
        target_name="reference",
        target_url="http://127.0.0.1:1/",
        app_info=app_info,
        browser=browser,
        tracing="off",
        repo=ROOT,
    )
    assert m["journey"]["name"] == "portrait" and len(m["journey"]["prompts"]) == 6
    assert m["target"]["url"] == "http://127.0.0.1:1/"
    assert m["browser"]["version"] == "156.0"
    for package in ("python", "torch", "diffusers", "gradio", "playwright"):
        assert package in m["versions"]
    assert m["hardware"]["cpu"]
    assert any("CPU" in d for d in m["degraded"]) and any("random weights" in d for d in m["degraded"])
    # The hash ignores versions and hardware but not the experiment.
    other = build_manifest(
        pack=load_pack("portrait"),
        profile=load_profile("reference"),
        target_name="reference",
        target_url="http://127.0.0.1:2/",
        app_info=app_info,
        browser=browser,
        tracing="off",
        repo=ROOT,
    )
    assert other["config_hash"] != m["config_hash"]


def test_no_degradation_on_gpu_with_real_weights_and_managed_browser():
    assert degradations({"device": "cuda", "random_weights": False}, "playwright") == []
