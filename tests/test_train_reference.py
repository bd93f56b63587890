"""train-reference: a word-level tokenizer, a saved StableDiffusionPipeline, and a resume that
continues exactly where a killed run stopped."""

import pytest
import torch
from imagejourney.reference_app import portrait_world as world
from imagejourney.reference_app import train
from imagejourney.reference_app.pipeline import ModelNotAvailable, load_model, load_trained, run_diffusion
from safetensors.torch import load_file

TINY = dict(steps=8, seed=3, images=32, batch=4)


def test_every_world_word_is_one_token():
    tokenizer = train.word_tokenizer()
    for word in world.VOCABULARY:
        assert tokenizer.tokenize(word) == [f"{word}</w>"], word
    prompt = world.describe(world.portrait(1)[1])
    assert len(tokenizer(prompt).input_ids) == len(prompt.replace(",", " ,").split()) + 2  # + start and end
    assert len(tokenizer(prompt).input_ids) <= train.MAX_TOKENS


def unet_weights(directory):
    return load_file(directory / "unet" / "diffusion_pytorch_model.safetensors")


def test_a_killed_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    whole = train.train_reference(tmp_path / "whole", **TINY)
    assert (tmp_path / "whole-early" / "model_index.json").is_file()

    monkeypatch.setattr(train, "CHECKPOINT_EVERY", 2)
    after_step = train.Trainer.after_step

    def killed_at_step_5(self, stage, done, window, bar):
        after_step(self, stage, done, window, bar)
        if stage == "denoiser" and done == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(train.Trainer, "after_step", killed_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        train.train_reference(tmp_path / "resumed", **TINY)
    monkeypatch.setattr(train.Trainer, "after_step", after_step)
    train.train_reference(tmp_path / "resumed", resume=True, **TINY)

    first, second = unet_weights(whole), unet_weights(tmp_path / "resumed")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_resume_without_a_checkpoint_or_with_other_steps_is_one_sentence(tmp_path):
    with pytest.raises(train.TrainingError, match="no checkpoint at .*start without --resume"):
        train.train_reference(tmp_path / "none", resume=True, **TINY)
    train.train_reference(tmp_path / "once", **TINY)
    with pytest.raises(train.TrainingError, match="another --seed or --steps"):
        train.train_reference(tmp_path / "once", resume=True, **dict(TINY, steps=9))


def test_the_trained_preview_decoder_gives_full_size_previews(tmp_path, monkeypatch):
    """train-reference's last stage saves a TAESD-shaped decoder in taesd/; --preview-method taesd
    finds it, and its previews have the final's size where the linear ones have the latent's."""
    train.train_reference(tmp_path / "portrait-world", **TINY)
    monkeypatch.setattr("imagejourney.reference_app.pipeline.MODELS_DIR", tmp_path)
    sizes = {}
    for method in ("latent-rgb", "taesd"):
        model = load_model("portrait-world", "cpu", preview_method=method)
        assert model.preview_method == method
        previews = []
        final = run_diffusion(
            model,
            prompt="portrait of a person",
            seed=1,
            steps=2,
            width=64,
            height=64,
            guidance=0.0,
            on_preview=previews.append,
        )
        sizes[method] = (previews[0].size, final.size)
    assert sizes == {"latent-rgb": ((16, 16), (64, 64)), "taesd": ((64, 64), (64, 64))}
    weights = tmp_path / "portrait-world" / "taesd" / "diffusion_pytorch_model.safetensors"
    weights.unlink()
    with pytest.raises(ModelNotAvailable, match=f"no preview decoder \\({weights} is missing\\); rebuild it with"):
        load_model("portrait-world", "cpu", preview_method="taesd")


def test_missing_or_corrupt_weights_name_the_file_and_the_rebuild(tmp_path, monkeypatch):
    train.train_reference(tmp_path / "portrait-world", **TINY)
    monkeypatch.setattr("imagejourney.reference_app.pipeline.MODELS_DIR", tmp_path)
    assert load_trained("portrait-world", "cpu", torch.float32)[0].unet is not None
    weights = tmp_path / "portrait-world" / "vae" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelNotAvailable, match=f"{weights} is corrupt .*imagejourney train-reference --out"):
        load_trained("portrait-world", "cpu", torch.float32)
    weights.unlink()
    with pytest.raises(ModelNotAvailable, match=f"{weights} is missing; rebuild it with: imagejourney train-reference"):
        load_trained("portrait-world", "cpu", torch.float32)
