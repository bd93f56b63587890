"""The reference app's diffusion side, on the tiny random-weight pipeline (no download)."""

import numpy as np
import pytest
from imagejourney.reference_app.app import UPLOAD_MAX_BYTES, ReferenceApp, Settings, read_upload, validate_prompt
from imagejourney.reference_app.pipeline import (
    latents_to_preview,
    load_model,
    region_mask,
    run_diffusion,
    tiny_clip_tokenizer,
)
from PIL import Image


@pytest.fixture(scope="module")
def model():
    return load_model("tiny", "cpu")


def test_tokenizer_is_built_in_memory_with_77_positions():
    tokenizer = tiny_clip_tokenizer()
    ids = tokenizer("a portrait", padding="max_length", max_length=tokenizer.model_max_length).input_ids
    assert tokenizer.model_max_length == 77 and len(ids) == 77


def test_generate_streams_one_preview_per_step(model):
    previews = []
    image = run_diffusion(
        model, prompt="a portrait", seed=1, steps=3, width=64, height=64, guidance=0.0, on_preview=previews.append
    )
    assert image.size == (64, 64)
    assert len(previews) == 3 and all(p.size == (8, 8) for p in previews)  # latent size: 1/8 of the image


def test_same_seed_same_image_and_img2img_runs(model):
    first = run_diffusion(
        model, prompt="x", seed=5, steps=2, width=64, height=64, guidance=0.0, on_preview=lambda p: None
    )
    again = run_diffusion(
        model, prompt="x", seed=5, steps=2, width=64, height=64, guidance=0.0, on_preview=lambda p: None
    )
    assert first.tobytes() == again.tobytes()
    edited = run_diffusion(
        model,
        prompt="blue",
        seed=5,
        steps=4,
        width=64,
        height=64,
        guidance=0.0,
        on_preview=lambda p: None,
        init_image=first,
        strength=0.5,
    )
    assert edited.size == (64, 64) and edited.tobytes() != first.tobytes()


def test_preview_is_a_linear_map_of_the_latent():
    import torch

    preview = latents_to_preview(torch.zeros(1, 4, 8, 8))
    assert preview.size == (8, 8)
    assert (np.asarray(preview) == 127).all()


def test_export_embeds_generation_parameters(model, tmp_path):
    settings = Settings(steps=2, size=64, guidance=0.0)
    frames = list(ReferenceApp(model, settings).stream("generate", "a portrait of a cat", 9, settings))
    image, status, export_path, current, seed = frames[-1]
    assert status.startswith("Done · generate · seed 9")
    with Image.open(export_path) as exported:
        assert exported.format == "PNG"
        assert exported.text["prompt"] == "a portrait of a cat"
        assert exported.text["seed"] == "9" and exported.text["model"] == "tiny"
        assert exported.text["sampler"] == "EulerDiscreteScheduler"


def test_settings_bounds_are_one_sentence_each():
    assert isinstance(Settings.from_ui(4, 128, 0.0), Settings)
    assert Settings.from_ui(0, 128, 0.0) == "steps must be between 1 and 100"
    assert "multiple of 8" in Settings.from_ui(4, 130, 0.0)
    assert "guidance must be between" in Settings.from_ui(4, 128, 99.0)


def test_prompt_validation_messages():
    assert "empty" in validate_prompt("  ")
    assert "limit" in validate_prompt("x" * 5000)
    assert validate_prompt("a cat") is None


def test_holds_delay_previews_and_final_and_times_are_recorded(model):
    from imagejourney.reference_app.app import Holds

    settings = Settings(steps=2, size=64, guidance=0.0)
    app = ReferenceApp(model, settings, Holds(preview_ms=50, final_ms=400))
    frames = list(app.stream("generate", "a cat", 1, settings))
    assert frames[-1][1].endswith("job 1")
    times = app.jobs[1]
    assert times["action"] == "generate" and len(times["previews_produced"]) == 2
    assert times["final_produced"] - times["request_received"] >= 400
    assert times["previews_produced"][0] - times["inference_start"] >= 50
    assert (
        times["request_received"]
        <= times["inference_start"]
        <= times["previews_produced"][0]
        <= times["final_produced"]
    )


@pytest.mark.parametrize(
    "name, cross_attention, text_layers", [("sd15-random", 768, 12), ("sd-turbo-random", 1024, 23)]
)
def test_full_size_architectures_build_without_weights(name, cross_attention, text_layers):
    """Built on the meta device: the shapes and sizes are real, no memory is used."""
    import torch
    from imagejourney.reference_app.pipeline import sd_models

    with torch.device("meta"):
        unet, text_encoder, vae = sd_models(name)
    assert 850e6 < sum(p.numel() for p in unet.parameters()) < 870e6  # SD's UNet is ~860M parameters
    assert unet.config.cross_attention_dim == cross_attention
    assert text_encoder.config.num_hidden_layers == text_layers
    assert vae.config.latent_channels == 4 and len(vae.config.block_out_channels) == 4


def test_taesd_previews_from_a_local_directory(tmp_path):
    """A random AutoencoderTiny saved to disk stands in for TAESD's weights (no download)."""
    from diffusers import AutoencoderTiny
    from imagejourney.reference_app.pipeline import ModelNotAvailable

    AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8)).save_pretrained(
        tmp_path / "taesd"
    )
    model = load_model("tiny", "cpu", taesd=str(tmp_path / "taesd"))
    assert model.preview_method == "taesd"
    previews = []
    run_diffusion(model, prompt="a cat", seed=1, steps=2, width=64, height=64, guidance=0.0, on_preview=previews.append)
    assert len(previews) == 2 and previews[0].size == (64, 64)
    with pytest.raises(ModelNotAvailable, match="is not a local AutoencoderTiny directory"):
        load_model("tiny", "cpu", taesd=str(tmp_path / "nothing"))
    with pytest.raises(
        ModelNotAvailable, match="model 'tiny' has no preview decoder trained with it; pass .*--taesd DIR"
    ):
        load_model("tiny", "cpu", preview_method="taesd")


def test_jobs_queue_for_the_model_and_history_grows(model):
    """With one model copy, a second job waits for the first: its queue wait is the first's
    inference time. Finals collect in the history, newest first."""
    import threading

    settings = Settings(steps=3, size=64, guidance=0.0)
    app = ReferenceApp(model, settings, concurrency=1)
    runs = [
        threading.Thread(target=lambda s=seed: list(app.stream("generate", "a cat", s, settings))) for seed in (1, 2)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    first, second = sorted(app.jobs.values(), key=lambda t: t["inference_start"])
    assert second["inference_start"] - second["request_received"] > 0
    assert second["inference_start"] >= first["inference_end"]  # it waited for the first job's model
    frames = list(app.stream("reroll", "a cat", 3, settings, negative="blurry", history=[(None, "older")]))
    current = frames[-1][3]
    assert [caption for _, caption in current["history"]] == ["reroll · seed 3", "older"]


def test_inpainting_repaints_only_the_masked_region(model):
    source = run_diffusion(
        model, prompt="a room", seed=3, steps=2, width=64, height=64, guidance=0.0, on_preview=lambda p: None
    )
    previews = []
    painted = run_diffusion(
        model,
        prompt="a vase",
        seed=4,
        steps=4,
        width=64,
        height=64,
        guidance=0.0,
        on_preview=previews.append,
        init_image=source,
        strength=0.8,
        mask_region="center",
    )
    inside = np.asarray(region_mask("center", 64, 64)) > 0
    changed = np.abs(np.asarray(painted, int) - np.asarray(source, int)).max(axis=2) > 0
    assert not changed[~inside].any()  # every kept pixel is the source's
    assert changed[inside].mean() > 0.5
    assert len(previews) == 3  # strength 0.8 of 4 steps
    assert (np.asarray(region_mask("background", 64, 64)) == 255 - np.asarray(region_mask("center", 64, 64))).all()


def write_image(path, size, fmt):
    Image.new("RGB", size, (200, 40, 40)).save(path, format=fmt)
    return str(path)


def test_upload_is_checked_by_content_type_and_size(tmp_path):
    assert read_upload(write_image(tmp_path / "ok.jpg", (300, 200), "JPEG")).size == (300, 200)
    assert (
        read_upload(write_image(tmp_path / "gif.png", (300, 200), "GIF"))
        == "the uploaded image is GIF; upload a PNG, JPEG or WebP image"
    )
    assert (
        read_upload(write_image(tmp_path / "wide.png", (5000, 100), "PNG"))
        == "the uploaded image is 5000×100 px; each side must be 64 to 4096 px"
    )
    (tmp_path / "text.png").write_text("not a picture")
    assert (
        read_upload(str(tmp_path / "text.png")) == "the uploaded file is not an image; upload a PNG, JPEG or WebP image"
    )
    (tmp_path / "big.png").write_bytes(b"\0" * (UPLOAD_MAX_BYTES + 1))
    assert read_upload(str(tmp_path / "big.png")) == "the uploaded file is 10.0 MB; the limit is 10 MB"


def test_an_uploaded_image_becomes_the_current_one_and_can_be_inpainted(model, tmp_path):
    settings = Settings(steps=2, size=64, guidance=0.0)
    app = ReferenceApp(model, settings)
    shown, status, export_path, current, _ = app.on_upload(write_image(tmp_path / "photo.png", (96, 64), "PNG"), None)
    assert status.startswith("Done · upload · 96×64 px · job 1") and current["image"].size == (96, 64)
    frames = list(
        app.stream("edit", "a vase", 1, settings, init_image=current["image"], strength=1.0, mask_region="left")
    )
    image, status, export_path, current, seed = frames[-1]
    assert status.startswith("Done · edit")
    with Image.open(export_path) as exported:
        assert exported.text["mask"] == "left" and exported.text["strength"] == "1.0"
    assert app.jobs[2]["mask"] == "left"


def test_aspect_ratio_sets_the_short_side(model):
    story = Settings.from_ui(4, 128, 0.0, "9:16")
    assert (story.width, story.height) == (72, 128)
    assert (Settings(4, 128, 0.0, "16:9").width, Settings(4, 128, 0.0, "16:9").height) == (128, 72)
    assert Settings.from_ui(4, 128, 0.0, "2:1") == "unknown aspect ratio '2:1'; choose one of 1:1, 4:5, 9:16, 16:9"
    frames = list(ReferenceApp(model, story).stream("generate", "a story", 1, story))
    image, status, export_path, current, seed = frames[-1]
    with Image.open(export_path) as exported:
        assert exported.size == (72, 128) and exported.text["aspect"] == "9:16" and exported.text["size"] == "72x128"


def test_a_missing_model_is_one_sentence(monkeypatch, tmp_path):
    from imagejourney.reference_app.pipeline import ModelNotAvailable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailable, match=r"^model directory '.*nothing' does not exist; pass a local"):
        load_model(str(tmp_path / "nothing"), "cpu")
    with pytest.raises(ModelNotAvailable, match=r"^model 'someone/no-such-model' is not available locally \(") as info:
        load_model("someone/no-such-model", "cpu")
    assert "\n" not in str(info.value)


def test_a_full_queue_answers_busy_and_frees_its_place(model):
    settings = Settings(steps=2, size=64, guidance=0.0)
    app = ReferenceApp(model, settings, max_jobs=1)
    first = app.stream("generate", "a cat", 1, settings)
    next(first)  # the first job holds the only place
    busy = list(app.stream("generate", "a dog", 2, settings))
    assert (
        len(busy) == 1
        and busy[0][1] == "Error · generate · busy: 1 jobs are already running or waiting; try again in a moment"
    )
    list(first)  # done: its place is free again
    assert list(app.stream("generate", "a dog", 2, settings))[-1][1].startswith("Done · generate · seed 2")
    assert app.jobs_in_flight == 0


def test_seed_is_checked(model):
    settings = Settings(steps=2, size=64, guidance=0.0)
    app = ReferenceApp(model, settings)
    for seed in (-1, 2**32, 1.5):
        frames = list(app.checked("generate", "a cat", "", seed, (2, 64, 0.0, "1:1"), None))
        assert frames[0][1] == f"Error · generate · seed must be a whole number from 0 to 4294967295, not {seed:g}"
    assert list(app.checked("generate", "a cat", "", 2**32 - 1, (2, 64, 0.0, "1:1"), None))[-1][1].startswith("Done")


def test_exports_stay_bounded(model):
    settings = Settings(steps=1, size=64, guidance=0.0)
    app = ReferenceApp(model, settings)
    app.KEPT_EXPORTS = 3
    for seed in range(5):
        list(app.stream("generate", "a cat", seed, settings))
    kept = sorted(app.export_dir.glob("*.png"))
    assert len(kept) == 3 and kept[-1].name == "imagejourney-job5-generate.png"
