"""The reference app's diffusion side, on the tiny random-weight pipeline (no download)."""

import numpy as np
import pytest
from PIL import Image

from reference_app.app import ReferenceApp, Settings, validate_prompt
from reference_app.pipeline import latents_to_preview, load_model, run_diffusion, tiny_clip_tokenizer


@pytest.fixture(scope="module")
def model():
    return load_model("tiny", "cpu")


def test_tokenizer_is_built_in_memory_with_77_positions():
    tokenizer = tiny_clip_tokenizer()
    ids = tokenizer("a portrait", padding="max_length", max_length=tokenizer.model_max_length).input_ids
    assert tokenizer.model_max_length == 77 and len(ids) == 77


def test_generate_streams_one_preview_per_step(model):
    previews = []
    image = run_diffusion(model, prompt="a portrait", seed=1, steps=3, size=64, guidance=0.0, on_preview=previews.append)
    assert image.size == (64, 64)
    assert len(previews) == 3 and all(p.size == (8, 8) for p in previews)  # latent size: 1/8 of the image


def test_same_seed_same_image_and_img2img_runs(model):
    first = run_diffusion(model, prompt="x", seed=5, steps=2, size=64, guidance=0.0, on_preview=lambda p: None)
    again = run_diffusion(model, prompt="x", seed=5, steps=2, size=64, guidance=0.0, on_preview=lambda p: None)
    assert first.tobytes() == again.tobytes()
    edited = run_diffusion(model, prompt="blue", seed=5, steps=4, size=64, guidance=0.0, on_preview=lambda p: None,
                           init_image=first, strength=0.5)
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
    from reference_app.app import Holds

    settings = Settings(steps=2, size=64, guidance=0.0)
    app = ReferenceApp(model, settings, Holds(preview_ms=50, final_ms=400))
    frames = list(app.stream("generate", "a cat", 1, settings))
    assert frames[-1][1].endswith("job 1")
    times = app.jobs[1]
    assert times["action"] == "generate" and len(times["previews_produced"]) == 2
    assert times["final_produced"] - times["request_received"] >= 400
    assert times["previews_produced"][0] - times["inference_start"] >= 50
    assert times["request_received"] <= times["inference_start"] <= times["previews_produced"][0] <= times["final_produced"]


@pytest.mark.parametrize("name, cross_attention, text_layers", [("sd15-random", 768, 12), ("sd-turbo-random", 1024, 23)])
def test_full_size_architectures_build_without_weights(name, cross_attention, text_layers):
    """Built on the meta device: the shapes and sizes are real, no memory is used."""
    import torch

    from reference_app.pipeline import sd_models

    with torch.device("meta"):
        unet, text_encoder, vae = sd_models(name)
    assert 850e6 < sum(p.numel() for p in unet.parameters()) < 870e6  # SD's UNet is ~860M parameters
    assert unet.config.cross_attention_dim == cross_attention
    assert text_encoder.config.num_hidden_layers == text_layers
    assert vae.config.latent_channels == 4 and len(vae.config.block_out_channels) == 4


def test_taesd_previews_from_a_local_directory(tmp_path):
    """A random AutoencoderTiny saved to disk stands in for TAESD's weights (no download)."""
    from diffusers import AutoencoderTiny

    from reference_app.pipeline import ModelNotAvailable

    AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8)).save_pretrained(tmp_path / "taesd")
    model = load_model("tiny", "cpu", taesd=str(tmp_path / "taesd"))
    assert model.preview_method == "taesd"
    previews = []
    run_diffusion(model, prompt="a cat", seed=1, steps=2, size=64, guidance=0.0, on_preview=previews.append)
    assert len(previews) == 2 and previews[0].size == (64, 64)
    with pytest.raises(ModelNotAvailable, match="is not a local AutoencoderTiny directory"):
        load_model("tiny", "cpu", taesd=str(tmp_path / "nothing"))


def test_jobs_queue_for_the_model_and_history_grows(model):
    """With one model copy, a second job waits for the first: its queue wait is the first's
    inference time. Finals collect in the history, newest first."""
    import threading

    settings = Settings(steps=3, size=64, guidance=0.0)
    app = ReferenceApp(model, settings, concurrency=1)
    runs = [threading.Thread(target=lambda s=seed: list(app.stream("generate", "a cat", s, settings))) for seed in (1, 2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    first, second = sorted(app.jobs.values(), key=lambda t: t["inference_start"])
    assert second["inference_start"] - second["request_received"] > 0
    assert second["inference_start"] >= first["inference_end"]  # it waited for the first job's model
    frames = list(app.stream("reroll", "a cat", 3, settings, negative="blurry",
                             history=[(None, "older")]))
    current = frames[-1][3]
    assert [caption for _, caption in current["history"]] == ["reroll · seed 3", "older"]
