"""Judge prompt_match on drawn portraits whose attributes are known, and its rows in judgements.csv."""

import json

import pytest
from imagejourney.reference_app import portrait_world as world
from imagejourney.reports import prompt_match as pm


@pytest.fixture(scope="module")
def judge():
    return pm.PromptMatch()


def drawn(count: int, offset: int = 90_000):
    """Portraits of seeds the judge never trained on, with their full attributes."""
    return [world.portrait(offset + seed) for seed in range(count)]


def test_heldout_accuracy_is_kept_with_the_weights_and_at_least_98_percent():
    record = json.loads((pm.JUDGE_DIR / "judge.json").read_text())
    assert set(record["heldout_accuracy"]) == set(world.ATTRIBUTES)
    assert min(record["heldout_accuracy"].values()) >= 0.98


def test_drawn_portraits_match_their_own_prompt_and_not_a_wrong_one(judge):
    portraits = drawn(40)
    images = [image for image, _ in portraits]
    right = judge.judge(images, [attrs for _, attrs in portraits])
    assert min(match.score for match in right) > 0.8
    assert sum(match.seen == attrs for match, (_, attrs) in zip(right, portraits)) >= 36
    wrong = [
        {name: next(v for v in world.ATTRIBUTES[name] if v != value) for name, value in attrs.items()}
        for _, attrs in portraits
    ]
    assert max(match.score for match in judge.judge(images, wrong)) < 0.2


def test_what_was_asked_and_seen(judge):
    image, attrs = world.portrait(7, {"hair_colour": "red", "glasses": "no glasses"})
    match = judge.judge([image], [{"hair_colour": "blond", "glasses": "no glasses"}])[0]
    assert match.seen["hair_colour"] == "red"
    assert match.probability["glasses"] > 0.9 and match.probability["hair_colour"] < 0.1
    assert match.summary() == "asked blond hair · saw red"


def finals_of(prompt: str, count: int = 3):
    portraits = [world.portrait(80_000 + seed, world.parse(prompt)) for seed in range(count)]
    finals = [
        {"image": f"images/p-{i}.png", "prompt": prompt, "action": "generate", "step_index": 1} for i in range(count)
    ]
    return finals, {final["image"]: image for final, (image, _) in zip(finals, portraits)}


def collect():
    rows = []
    return rows, lambda image, judge, value, model, calibrated: rows.append((image, judge, value, model, calibrated))


def test_rows_for_a_portrait_world_run_are_calibrated():
    finals, images = finals_of("portrait of a smiling person with black hair, green shirt")
    rows, add = collect()
    pm.judge_finals({"model": {"model": "portrait-world"}}, finals, images, add)
    judges = {judge for _, judge, *_ in rows}
    assert judges == {"prompt_match", "prompt_match:smile", "prompt_match:hair_colour", "prompt_match:shirt_colour"}
    assert all(calibrated for *_, calibrated in rows)
    assert all(value > 0.8 for _, judge, value, _, _ in rows if judge == "prompt_match")
    assert any(
        "asked black · saw black" in model for _, judge, _, model, _ in rows if judge == "prompt_match:hair_colour"
    )


def test_another_model_is_not_judged_out_of_domain_never_a_pass():
    finals, images = finals_of("portrait of a person with red hair")
    rows, add = collect()
    pm.judge_finals({"model": {"model": "tiny"}}, finals, images, add)
    assert [judge for _, judge, *_ in rows] == ["prompt_match"] * 3
    assert all(
        value is None and not calibrated and model.startswith("not judged: out of domain")
        for _, _, value, model, calibrated in rows
    )


def test_free_text_on_the_portrait_model_is_not_judged():
    finals, images = finals_of("portrait of a person")
    finals = [dict(final, prompt="close-up portrait of an old fisherman") for final in finals]
    rows, add = collect()
    pm.judge_finals({"model": {"model": "portrait-world"}}, finals, images, add)
    assert all(value is None and "unknown word" in model for _, _, value, model, _ in rows)


def test_an_edit_is_asked_for_its_prompt_changed_by_the_edit():
    manifest = {
        "journey": {"steps": ["prompt", "generate", {"edit": {"prompt": "the same portrait, now with glasses"}}]}
    }
    final = {"prompt": "portrait of a person with red hair and no glasses", "action": "edit", "step_index": 2}
    assert pm.asked_of(manifest, final) == {"hair_colour": "red", "glasses": "glasses"}


def test_an_edit_that_keeps_the_journeys_prompt_is_typed_and_asked_with_it():
    """`{prompt}` in an edit prompt is the journey's prompt: typed with it, asked for it and the change."""
    from imagejourney.journeys.pack import load_pack

    edit = next(step for step in load_pack("portrait").steps if step.kind == "edit")
    journey_prompt = "portrait of a smiling person with red hair, blue background"
    assert edit.edit_text(journey_prompt) == journey_prompt + ", now with glasses"
    manifest = {"journey": {"steps": ["prompt", "generate", {"edit": {"prompt": edit.prompt}}]}}
    final = {"prompt": journey_prompt, "action": "edit", "step_index": 2}
    assert pm.asked_of(manifest, final) == {
        "smile": "smiling",
        "hair_colour": "red",
        "background": "blue",
        "glasses": "glasses",
    }


def test_missing_weights_are_one_sentence_naming_the_file_and_the_rebuild(tmp_path):
    with pytest.raises(pm.JudgeMissing) as caught:
        pm.PromptMatch(tmp_path)
    message = str(caught.value)
    assert (
        "judge.safetensors" in message
        and "python -m imagejourney.reports.prompt_match" in message
        and "\n" not in message
    )


def test_a_pack_judged_by_prompt_match_with_an_unknown_word_is_one_sentence_with_file_and_line(tmp_path):
    from imagejourney.journeys.pack import load_pack
    from imagejourney.journeys.yaml_reader import ConfigError

    path = tmp_path / "pack.yaml"
    path.write_text("""name: odd
prompts:
  - id: one
    text: portrait of a person with red hair
    seed: 1
  - id: two
    text: portrait of a person with a top hat
    seed: 2
steps: [prompt, generate]
acceptance:
  rule: prompt_match
  min: 0.8
""")
    with pytest.raises(ConfigError) as caught:
        load_pack(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}:7: unknown word 'hat'") and "\n" not in message
    path.write_text(path.read_text().replace("rule: prompt_match\n  min: 0.8", "rule: not_blank\n  min_pixel_std: 8"))
    assert load_pack(str(path)).name == "odd"  # free text is fine when prompt_match does not judge it


def test_the_portrait_pack_is_in_the_worlds_words_and_judged_by_prompt_match():
    from imagejourney.journeys.pack import load_pack

    pack = load_pack("portrait")
    assert len(pack.prompts) >= 6
    assert pack.acceptance == {
        "all": [{"rule": "not_blank", "min_pixel_std": 8.0}, {"rule": "prompt_match", "min": 0.8}]
    }
    assert all(len(world.parse(prompt.text)) == 3 for prompt in pack.prompts)
    assert load_pack("portrait-freetext").acceptance == {"rule": "not_blank", "min_pixel_std": 8.0}
