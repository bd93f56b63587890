"""Judges on images whose answers are known, acceptance rules that compose, labels as the
final word, and the `judge` command's one-sentence errors."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from imagejourney.journeys.rundir import RunDirectory
from imagejourney.reports.judges import LPIPS, judge_run
from imagejourney.reports.render import render_report
from imagejourney.reports.run import load_run
from imagejourney.reports.summary import summarize
from PIL import Image

MANIFEST = {
    "journey": {
        "name": "judged",
        "prompts": [{"id": "cat"}],
        "steps": ["prompt", "generate", "reroll", "repeat", "edit"],
        "acceptance": {"rule": "not_blank", "min_pixel_std": 8.0},
    },
    "config_hash": "judge00000",
    "target": {"name": "t", "url": "http://127.0.0.1:1/"},
    "ui_profile": {"name": "p"},
    "browser": {"name": "chromium", "version": "1", "source": "system", "viewport": {"width": 1, "height": 1}},
    "hardware": {"cpu": "c", "cpu_count": 2},
    "versions": {},
    "degraded": [],
}


def noise(seed: int, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (size, size, 3), np.uint8)


def probe(click):
    return {
        "click": click,
        "final": {"t": click + 100, "method": "element-timing", "url": ""},
        "paints": [{"t": click + 100, "method": "element-timing", "url": ""}],
    }


def write_run(tmp_path, manifest=MANIFEST, generate_pixels=None):
    """generate (seed 1) → reroll (seed 2, other noise) → repeat of the generate (identical
    pixels) → masked edit of the centre (outside kept pixel for pixel)."""
    run = RunDirectory.create(tmp_path, manifest)
    first = noise(1) if generate_pixels is None else generate_pixels
    edited = first.copy()
    edited[16:48, 16:48] = noise(9)[16:48, 16:48]
    images = [
        ("generate", 1, first, None),
        ("reroll", 2, noise(2), None),
        ("repeat", 1, first.copy(), None),
        ("edit", 2, edited, "center"),
    ]
    for index, (action, seed, pixels, mask) in enumerate(images, start=1):
        Image.fromarray(pixels).save(run.images / f"cat-{index:02d}-{action}.png")
        run.event(
            "action",
            journey="judged",
            prompt_id="cat",
            prompt="a cat",
            seed=seed,
            step_index=index,
            action=action,
            mask=mask,
            image=f"images/cat-{index:02d}-{action}.png",
            probe=probe(1000.0 * index),
            **({"repeats": 1} if action == "repeat" else {}),
        )
    run.event("run_finished")
    return run.path


def values(judgements, judge):
    rows = judgements[judgements["judge"] == judge]
    return dict(zip(rows["image"], rows["value"]))


def test_judges_on_known_images(tmp_path):
    run = write_run(tmp_path)
    judgements = judge_run(run)
    assert list(judgements.columns) == ["image", "judge", "value", "model", "calibrated"]
    same_seed = values(judgements, "same_seed_lpips")
    assert same_seed == {"images/cat-03-repeat.png": 0.0}  # identical pixels → 0
    diversity = values(judgements, "reroll_diversity")
    assert set(diversity) == {"images/cat-01-generate.png", "images/cat-02-reroll.png"}
    assert all(v > 0 for v in diversity.values())  # two different seeds → > 0
    assert values(judgements, "edit_outside_mask_max") == {"images/cat-04-edit.png": 0.0}  # masked edit → 0 outside
    assert values(judgements, "edit_inside_mask_mean")["images/cat-04-edit.png"] > 10
    assert values(judgements, "edit_consistency")["images/cat-04-edit.png"] > 0
    lpips_rows = judgements[judgements["judge"].isin(["reroll_diversity", "same_seed_lpips", "edit_consistency"])]
    # No backbone weights on this machine: said in every LPIPS row, never passed off as calibrated.
    assert (lpips_rows["calibrated"] == "no").all()
    assert lpips_rows["model"].str.contains("LPIPS uncalibrated (backbone weights not available)", regex=False).all()
    again = judge_run(run)
    assert again.equals(judgements)  # judging twice gives the same figures


def test_drift_against_a_baseline_run(tmp_path):
    baseline = write_run(tmp_path / "base")
    same = write_run(tmp_path / "same")
    changed = write_run(tmp_path / "changed", generate_pixels=noise(5))
    assert values(judge_run(same, baseline=baseline), "drift_vs_baseline")["images/cat-01-generate.png"] == 0.0
    assert values(judge_run(changed, baseline=baseline), "drift_vs_baseline")["images/cat-01-generate.png"] > 0


def test_lpips_distance_is_zero_for_identical_images_and_batches_mixed_sizes():
    lpips = LPIPS("alex")
    a, b = Image.fromarray(noise(1)), Image.fromarray(noise(2, 32))
    distances = lpips.distances([(a, a.copy()), (a, b), (b, b.copy())])
    assert distances[0] == 0.0 and distances[2] == 0.0 and distances[1] > 0


def test_report_and_summary_show_the_judges(tmp_path):
    run = write_run(tmp_path)
    judge_run(run)
    html = render_report(run)[0].read_text()
    assert "LPIPS uncalibrated (backbone weights not available)" in html and 'id="quality"' in html
    assert "reroll diversity 0." in html and "largest change outside the mask 0.00" in html  # contact-sheet captions
    assert '<td class="n">0.0000</td>' in html  # the same-seed LPIPS of the repeat
    summary = json.loads((run / "summary.json").read_text())
    quality = summary["quality"]
    assert quality["lpips_weights"] == "uncalibrated" and quality["same_seed_lpips_max"] == 0.0
    assert quality["edit_outside_mask_max"] == 0.0 and quality["reroll_diversity_p50"] > 0
    assert any("LPIPS uncalibrated" in c for c in summary["conditions"])


def test_a_blank_final_is_never_useful(tmp_path):
    manifest = {
        **MANIFEST,
        "journey": {**MANIFEST["journey"], "acceptance": {"rule": "not_blank", "min_pixel_std": 0.0}},
    }
    run = write_run(tmp_path, manifest, generate_pixels=np.zeros((64, 64, 3), np.uint8))
    candidates = {c["action"]: c for c in summarize(load_run(run))["candidates"]}
    assert candidates["generate"]["verdict"] == "blank" and not candidates["generate"]["accepted"]
    assert candidates["reroll"]["verdict"] == "accepted"


def test_composed_rules_and_a_missing_judge_is_not_judged_not_passed(tmp_path):
    both = {"all": [{"rule": "not_blank", "min_pixel_std": 8.0}, {"rule": "clip_score", "min": 0.25}]}
    either = {"any": [{"rule": "clip_score", "min": 0.25}, {"rule": "not_blank", "min_pixel_std": 8.0}]}
    run = load_run(write_run(tmp_path))
    run.manifest["journey"]["acceptance"] = both
    summary = summarize(run)
    assert {c["verdict"] for c in summary["candidates"]} == {"not judged"}  # no CLIP score: never a silent pass
    assert summary["ttui_reached"] == 0 and summary["not_judged"] == 3
    run.manifest["journey"]["acceptance"] = either
    assert {c["verdict"] for c in summarize(run)["candidates"]} == {"accepted"}
    run.manifest["journey"]["acceptance"] = {
        "all": [{"rule": "not_blank", "min_pixel_std": 1000.0}, {"rule": "clip_score", "min": 0}]
    }
    assert {c["verdict"] for c in summarize(run)["candidates"]} == {"rejected"}  # one False decides `all`


def test_labels_are_the_final_word(tmp_path):
    run = write_run(tmp_path)
    with open(run / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "useful", "reviewer", "labelled_at", "note"])
        writer.writerow(["images/cat-01-generate.png", "no", "ana", "2026-11-23T10:00:00Z", "hands, again"])
        writer.writerow(["images/cat-02-reroll.png", "yes", "ana", "2026-11-23T10:00:05Z", ""])
    summary = summarize(load_run(run))
    verdicts = {c["action"]: c["verdict"] for c in summary["candidates"]}
    assert verdicts == {"generate": "not useful (label)", "reroll": "useful (label)", "edit": "accepted"}
    journey = summary["journeys"][0]
    assert journey["iterations_to_useful"] == 2 and journey["ttui_ms"] == 2100.0 - 1000.0
    assert summary["labels"] == {"labelled": 2, "useful": 1, "not_useful": 1}


@pytest.mark.parametrize(
    "content, sentence",
    [
        ("image,useful\nimages/x.png,yes\n", "the header must be image,useful,reviewer,labelled_at,note"),
        (
            "image,useful,reviewer,labelled_at,note\nimages/x.png,maybe,ana,t,\n",
            "line 2: useful must be yes or no, not 'maybe'",
        ),
        (
            "image,useful,reviewer,labelled_at,note\nimages/x.png,yes,ana,t,a note, with a comma\n",
            "line 2: 6 cells where the header has 5",
        ),
    ],
)
def test_malformed_labels_are_one_sentence(tmp_path, content, sentence):
    run = write_run(tmp_path)
    (run / "labels.csv").write_text(content)
    proc = subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "report", str(run)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and sentence in proc.stderr


def tiny_clip(path):
    """A CLIP with random weights built in code, saved as a local model directory."""
    from imagejourney.reference_app.pipeline import tiny_clip_tokenizer
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = tiny_clip_tokenizer()
    small = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
    config = CLIPConfig(
        text_config={
            **small,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 77,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={**small, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    config.random_weights = True
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(path)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path


def test_clip_score_with_a_tiny_random_clip_is_labelled_uncalibrated(tmp_path):
    run = write_run(tmp_path / "run")
    model = tiny_clip(tmp_path / "tiny-clip")
    judgements = judge_run(run, clip_model=str(model))
    clip = judgements[judgements["judge"] == "clip_score"]
    assert len(clip) == 3 and clip["value"].between(-1, 1).all()  # generate, reroll, edit
    assert (clip["calibrated"] == "no").all() and clip["model"].str.contains("random weights").all()
    summary = json.loads((render_report(run)[0].parent / "summary.json").read_text())
    assert summary["quality"]["clip"]["calibrated"] is False
    assert any("CLIP score uncalibrated" in c for c in summary["conditions"])


# Real weights where they can be had: a local file stands in for the cache, never a network call.


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch hub cache (TORCH_HOME), and a download that fails as it does offline,
    recording what was asked for."""
    import urllib.error

    from imagejourney.reports import judges

    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(judges, "BACKBONE_UNAVAILABLE", set())
    asked = []

    def offline(url, dst, *args, **kwargs):
        asked.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return home, asked


def test_lpips_backbone_comes_from_the_torch_hub_cache(torch_home):
    import torchvision
    from imagejourney.reports.judges import backbone_checkpoint

    home, asked = torch_home
    torch.manual_seed(7)
    weights = torchvision.models.alexnet().state_dict()  # a random network, saved where torchvision looks
    checkpoint = backbone_checkpoint("alex")
    assert checkpoint.parent == home / "hub" / "checkpoints"
    checkpoint.parent.mkdir(parents=True)
    torch.save(weights, checkpoint)
    lpips = LPIPS("alex")
    assert lpips.calibrated and lpips.name == "lpips-alex" and asked == []  # loaded, nothing downloaded
    assert torch.equal(lpips.model.net.slice1[0].weight, weights["features.0.weight"])


def test_lpips_offline_with_an_empty_cache_stays_uncalibrated(torch_home, tmp_path):
    from imagejourney.reports.judges import LPIPS_UNCALIBRATED, backbone_checkpoint

    home, asked = torch_home
    lpips = LPIPS("alex")
    assert asked == ["https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"]  # tried the normal way
    assert not lpips.calibrated and LPIPS_UNCALIBRATED in lpips.name
    assert not LPIPS("alex").calibrated and len(asked) == 1  # not tried again in this process
    run = write_run(tmp_path / "run")
    lpips_rows = judge_run(run).query("judge == 'reroll_diversity'")
    assert (lpips_rows["calibrated"] == "no").all()
    assert lpips_rows["model"].str.contains(LPIPS_UNCALIBRATED, regex=False).all()
    # Once the weights are in the cache (downloaded by hand, copied in), they are used.
    backbone_checkpoint("alex").parent.mkdir(parents=True, exist_ok=True)
    import torchvision

    torch.save(torchvision.models.alexnet().state_dict(), backbone_checkpoint("alex"))
    assert LPIPS("alex").calibrated and len(asked) == 1


def test_clip_loads_from_the_hugging_face_cache_as_transformers_does(tmp_path):
    """A model in the Hugging Face cache layout, found by its Hub id with HF_HUB_OFFLINE=1 (so a
    request would fail the test rather than reach the network)."""
    import os

    snapshot = tmp_path / "hf-cache" / "models--local--tiny-clip" / "snapshots" / ("0" * 40)
    tiny_clip(snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hf-cache"), "HF_HUB_OFFLINE": "1"}
    code = (
        "from imagejourney.reports.judges import CLIPScore; c = CLIPScore('local/tiny-clip'); "
        "print(c.name, c.calibrated)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "clip tiny-clip (random weights) False"
    env["HF_HUB_CACHE"] = str(tmp_path / "empty-cache")
    code = (
        "from imagejourney.reports.judges import CLIPScore, JudgeUnavailable\n"
        "try: CLIPScore('local/tiny-clip')\nexcept JudgeUnavailable as exc: print(exc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.stdout.startswith("no CLIP model 'local/tiny-clip': not a local directory, not in the Hugging Face")


def test_clip_not_in_the_cache_is_fetched_by_from_pretrained(tmp_path, monkeypatch):
    """Not in the cache: transformers' own from_pretrained fetches it (the download stood in for
    by a local directory), instead of the judge giving up."""
    from imagejourney.reports.judges import CLIPScore
    from transformers import CLIPModel, CLIPProcessor

    local = tiny_clip(tmp_path / "downloaded")
    calls = []

    def stand_in(original):
        def from_pretrained(name, local_files_only=False, **kwargs):
            calls.append((original.__self__.__name__, name, local_files_only))
            if local_files_only:
                raise OSError(f"{name} is not in the cache")
            return original(str(local), **kwargs)

        return from_pretrained

    monkeypatch.setattr(CLIPModel, "from_pretrained", stand_in(CLIPModel.from_pretrained))
    monkeypatch.setattr(CLIPProcessor, "from_pretrained", stand_in(CLIPProcessor.from_pretrained))
    clip = CLIPScore("someone/clip")
    assert calls == [
        ("CLIPModel", "someone/clip", True),
        ("CLIPModel", "someone/clip", False),
        ("CLIPProcessor", "someone/clip", False),
    ]
    assert clip.name == "clip clip (random weights)"


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_judge_command_and_its_one_sentence_errors(tmp_path):
    run = write_run(tmp_path)
    ok = cli("judge", str(run), "--json", str(tmp_path / "q.json"))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().endswith("report.html") and (run / "judgements.csv").is_file()
    assert json.loads((tmp_path / "q.json").read_text())["lpips_weights"] == "uncalibrated"
    for args, sentence in [
        (
            ("judge", str(run), "--lpips-net", "resnet"),
            "unknown LPIPS network 'resnet'; use --lpips-net alex|vgg|squeeze",
        ),
        (("judge", str(run), "--clip-model", str(tmp_path / "no-clip")), "no CLIP model"),
        (("judge", str(tmp_path / "nowhere")), "is not a run directory"),
        (("judge", str(run), "--baseline", str(tmp_path / "nowhere")), "is not a run directory"),
    ]:
        proc = cli(*args)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and sentence in proc.stderr, proc.stderr


@pytest.mark.browser
def test_review_page_appends_labels_and_the_report_recomputes_ttui(tmp_path, page):
    from imagejourney.reports.local_server import TOKEN_HEADER
    from imagejourney.reports.review import ReviewServer

    run = write_run(tmp_path)
    before = json.loads((render_report(run)[0].parent / "summary.json").read_text())
    assert before["ttui_ms"]["p50"] == 100.0 and before["labels"]["labelled"] == 0  # the generate was accepted
    with ReviewServer(run, reviewer="ana") as server:
        page.goto(server.url)
        first = page.locator("figure").nth(0)
        first.get_by_role("button", name="Not useful (n)").click()
        page.wait_for_function("document.getElementById('count').textContent === '1'")
        page.locator("figure").nth(1).focus()
        page.keyboard.press("y")
        page.wait_for_function("document.getElementById('count').textContent === '2'")
        own_page = {"Origin": server.origin, TOKEN_HEADER: server.token}  # as the page's script sends it
        assert (
            page.request.post(
                server.origin + "/label", data={"image": "../manifest.json", "useful": "yes"}, headers=own_page
            ).status
            == 400
        )
        assert page.request.get(server.origin + "/manifest.json").status == 404  # only candidate images are served
    rows = list(csv.DictReader(open(run / "labels.csv")))
    assert [(r["image"], r["useful"], r["reviewer"]) for r in rows] == [
        ("images/cat-01-generate.png", "no", "ana"),
        ("images/cat-02-reroll.png", "yes", "ana"),
    ]
    after = json.loads((render_report(run)[0].parent / "summary.json").read_text())
    assert after["ttui_ms"]["p50"] == 1100.0 and after["iterations_to_useful"]["max"] == 2
    assert after["labels"] == {"labelled": 2, "useful": 1, "not_useful": 1}
    assert "2 of 3 candidates were labelled by a person" in (run / "report.html").read_text()


def test_review_port_in_use_is_one_sentence(tmp_path):
    import socket

    run = write_run(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = cli("review", str(run), "--port", str(port))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"port {port} on 127.0.0.1 is not free" in proc.stderr


def test_visual_progress_arithmetic_on_known_distances():
    from imagejourney.reports.judges import visual_progress

    # click at 0, previews at 100 / 200 / 300 ms whose LPIPS to the final falls 0.8 → 0.4 → 0.2, final at 400.
    found = visual_progress(0.0, 400.0, [(100.0, 0.8), (200.0, 0.4), (300.0, 0.2)], recognisable=0.3)
    assert found["progress"] == [0.0, 0.5, 0.75]
    # 100 ms at 1, 100 at 1 − 0, 100 at 1 − 0.5, 100 at 1 − 0.75
    assert found["generation_speed_index_ms"] == pytest.approx(100 + 100 + 50 + 25)
    assert found["time_to_recognisable_preview_ms"] == 300.0
    nothing = visual_progress(0.0, 400.0, [], recognisable=0.3)
    assert nothing["generation_speed_index_ms"] == 400.0 and nothing["time_to_recognisable_preview_ms"] == 400.0
    farther = visual_progress(0.0, 400.0, [(100.0, 0.5), (200.0, 0.9)], recognisable=0.1)
    assert farther["progress"] == [0.0, 0.0]  # moving away from the final is no progress


def test_previews_that_blend_towards_the_final_give_rising_progress(tmp_path):
    """Synthetic previews: the final blended with noise, 25 / 50 / 75 % of the way, painted at
    known times. Progress must rise, and the speed index lie below click-to-final."""
    run = RunDirectory.create(tmp_path, MANIFEST)
    final = noise(1)
    (run.images / "previews").mkdir()
    previews = []
    for k, share in enumerate((0.25, 0.5, 0.75)):
        pixels = (share * final + (1 - share) * noise(50)).astype(np.uint8)
        Image.fromarray(pixels).save(run.images / "previews" / f"p{k}.jpg", quality=95)
        previews.append({"t": 1100.0 + 100 * k, "image": f"images/previews/p{k}.jpg"})
    Image.fromarray(final).save(run.images / "final.png")
    paints = [{"t": p["t"], "method": "element-timing", "url": ""} for p in previews] + [
        {"t": 1400.0, "method": "element-timing", "url": ""}
    ]
    run.event(
        "action",
        journey="judged",
        prompt_id="cat",
        prompt="a cat",
        seed=1,
        step_index=1,
        action="generate",
        image="images/final.png",
        previews=previews,
        probe={"click": 1000.0, "final": paints[-1], "paints": paints},
    )
    run.event("run_finished")
    judgements = judge_run(run.path)
    progress = [values(judgements, "visual_progress")[p["image"]] for p in previews]
    assert progress[0] == 0.0 and progress[0] < progress[1] < progress[2] <= 1.0
    index = values(judgements, "generation_speed_index_ms")["images/final.png"]
    assert 100 + 100 < index < 400  # at least the 100 ms before the first preview and the first preview's 100 ms
    stats = {row["action"]: row["metrics"] for row in summarize(load_run(run.path))["action_stats"]}
    assert stats["generate"]["generation_speed_index_ms"]["p50"] == index
