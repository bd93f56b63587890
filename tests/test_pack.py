import pytest
from imagejourney.journeys.pack import available_packs, load_pack
from imagejourney.journeys.profile import check_compatible, load_profile
from imagejourney.journeys.yaml_reader import ConfigError

GOOD = """name: p
prompts:
  - {id: a, text: t, seed: 1}
steps: [prompt, generate]
acceptance: {rule: not_blank, min_pixel_std: 1}
"""


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def error_of(loader, path) -> str:
    with pytest.raises(ConfigError) as info:
        loader(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_builtin_packs_load():
    assert set(available_packs()) >= {"portrait", "stylized", "marketing", "edit", "failure-probes"}
    for name in available_packs():
        pack = load_pack(name)
        assert pack.prompts and any(s.kind == "generate" for s in pack.steps)


def test_portrait_pack_has_three_prompts_and_five_actions():
    pack = load_pack("portrait")
    assert len(pack.prompts) >= 3
    assert [s.kind for s in pack.steps] == ["prompt", "generate", "reroll", "reroll", "edit", "export"]
    assert pack.steps[4].prompt and 0 < pack.steps[4].strength <= 1


def test_unknown_journey_names_the_available_ones():
    message = error_of(load_pack, "nosuch")
    assert "unknown journey 'nosuch'" in message
    for name in available_packs():
        assert name in message


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "name: x\nprompts: [\n  - id: a\n")
    assert error_of(load_pack, path).startswith(f"{path} is not valid YAML at line ")


def test_unknown_field_names_file_line_and_the_allowed_ones(tmp_path):
    path = write(tmp_path, GOOD.replace("steps: [prompt", "stesp: 3\nsteps: [prompt"))
    message = error_of(load_pack, path)
    assert message.startswith(f"{path}:4: unknown field 'stesp' in the journey pack; allowed: name,")


def test_unknown_field_in_a_prompt(tmp_path):
    path = write(tmp_path, GOOD.replace("{id: a, text: t, seed: 1}", "{id: a, text: t, sed: 1}"))
    assert (
        error_of(load_pack, path)
        == f"{path}:3: unknown field 'sed' in prompts[0]; allowed: id, text, negative, seed, seeds, settings, cohort"
    )


def test_missing_and_mistyped_fields(tmp_path):
    path = write(tmp_path, GOOD.replace(", seed: 1", ""))
    assert error_of(load_pack, path) == f"{path}:3: the field 'seed' is missing from prompts[0]"
    path = write(tmp_path, GOOD.replace("seed: 1", "seed: one"))
    assert "the field 'seed' in prompts[0] must be a int, not str" in error_of(load_pack, path)


def test_unknown_step_and_bad_strength(tmp_path):
    path = write(tmp_path, GOOD.replace("[prompt, generate]", "[prompt, generate, upscale]"))
    assert "steps[2]: unknown step 'upscale'" in error_of(load_pack, path)
    path = write(tmp_path, GOOD.replace("[prompt, generate]", "[prompt, generate, edit: {prompt: x, strength: 3}]"))
    assert "edit strength in steps[2] must be above 0 and at most 1" in error_of(load_pack, path)


def test_seeds_reroll_times_think_and_budgets(tmp_path):
    text = (
        GOOD.replace(
            "{id: a, text: t, seed: 1}", "{id: a, text: t, seeds: [5, 6], settings: {aspect: '9:16'}}"
        ).replace("[prompt, generate]", "[prompt, generate, think: {ms: 250}, reroll: {times: 3}, export]")
        + "budgets: {generate.click_to_final_ms.p95: 5000, ttui_ms.p50: 2000}\n"
    )
    pack = load_pack(write(tmp_path, text))
    assert [(p.id, p.seed, p.settings) for p in pack.prompts] == [
        ("a-5", 5, {"aspect": "9:16"}),
        ("a-6", 6, {"aspect": "9:16"}),
    ]
    assert [s.kind for s in pack.steps] == ["prompt", "generate", "think", "reroll", "reroll", "reroll", "export"]
    assert pack.steps[2].ms == 250
    assert pack.budgets == {"generate.click_to_final_ms.p95": 5000, "ttui_ms.p50": 2000}


def test_bad_budget_is_explained(tmp_path):
    path = write(tmp_path, GOOD + "budgets: {generate.speed: 5}\n")
    assert "budget 'generate.speed' must read ACTION.METRIC.p50|p95" in error_of(load_pack, path)


def test_reference_profile_loads():
    profile = load_profile("reference")
    assert set(profile.controls) == {"generate", "reroll", "edit", "export"}
    assert profile.done == [{"kind": "text", "selector": "#status", "text_matches": "^Done"}]


PROFILE = """name: x
ready: "#go"
fields: {prompt: "#p"}
controls: {generate: "#go"}
output: "#out"
done: {hidden: "#spinner"}
"""


def test_profile_errors_name_file_and_line(tmp_path):
    assert load_profile(write(tmp_path, PROFILE, "x.yaml")).done == [{"kind": "hidden", "hidden": "#spinner"}]
    path = write(tmp_path, PROFILE.replace("{prompt:", "{promt:"), "x.yaml")
    assert error_of(load_profile, path).startswith(f"{path}:3: unknown field 'promt' in fields; allowed: prompt,")
    path = write(tmp_path, PROFILE.replace("{hidden:", "{hiden:"), "x.yaml")
    assert "a done condition needs one of" in error_of(load_profile, path)
    path = write(tmp_path, PROFILE + 'login: {fill: {"#pw": hunter2}, submit: "#in", success: "#app"}\n', "x.yaml")
    assert "login values must name an environment variable ($VAR), never the secret itself" in error_of(
        load_profile, path
    )
    assert "unknown UI profile 'nope'" in error_of(load_profile, "nope")


def test_a_drag_step_needs_how_far_in_two_whole_numbers(tmp_path):
    dragged = load_profile(write(tmp_path, PROFILE + 'open: [{drag: "#graph", by: [-400, 0], at: [5, 5]}]\n', "x.yaml"))
    assert (dragged.open[0].by, dragged.open[0].at) == ((-400, 0), (5, 5))
    for bad, sentence in (
        ('{drag: "#graph"}', "the field 'by' is missing from the UI profile open[0]"),
        ('{drag: "#graph", by: [1.5, 0]}', "by in the UI profile open[0] must be two whole numbers of pixels"),
        ('{drag: "#graph", by: [-400]}', "by in the UI profile open[0] must be two whole numbers of pixels"),
    ):
        path = write(tmp_path, PROFILE + f"open: [{bad}]\n", "x.yaml")
        assert sentence in error_of(load_profile, path), bad


def test_masked_edit_needs_a_mask_field_in_the_profile(tmp_path):
    pack = load_pack(
        write(
            tmp_path,
            GOOD.replace(
                "[prompt, generate]", "[prompt, generate, edit: {prompt: x, mask: center}, edit: {prompt: y}]"
            ),
        )
    )
    assert [(s.kind, s.mask) for s in pack.steps[2:]] == [("edit", "center"), ("edit", None)]
    check_compatible(pack, load_profile("reference"))  # the reference profile has a mask choice
    plain = load_profile("reference")
    plain.fields.pop("mask")
    with pytest.raises(
        ConfigError, match="has edit steps with a mask but the UI profile 'reference' names no mask field"
    ):
        check_compatible(pack, plain)


@pytest.mark.parametrize("bad", ["../../escape-attempt", "a/b", ".hidden", "two words", "x\\y", ""])
def test_prompt_ids_and_pack_names_must_be_safe_file_names(tmp_path, bad):
    path = write(tmp_path, GOOD.replace("{id: a,", f"{{id: '{bad}',"))
    message = error_of(load_pack, path)
    assert message.startswith(f"{path}:3: the id of prompts[0] '{bad}' may hold only letters, digits")
    path = write(tmp_path, GOOD.replace("name: p", f"name: '{bad}'"))
    assert error_of(load_pack, path).startswith(f"{path}:1: the pack name '{bad}' may hold only letters")
    assert load_pack(write(tmp_path, GOOD.replace("{id: a,", "{id: v1.2_final-A,"))).prompts[0].id == "v1.2_final-A"


def test_acceptance_rules_compose_and_unknown_ones_are_named(tmp_path):
    composed = "acceptance: {all: [{rule: not_blank, min_pixel_std: 8}, {any: [{rule: clip_score, min: 0.25}, {rule: not_blank, min_pixel_std: 30}]}]}"
    pack = load_pack(write(tmp_path, GOOD.replace("acceptance: {rule: not_blank, min_pixel_std: 1}", composed)))
    assert pack.acceptance["all"][1]["any"][0] == {"rule": "clip_score", "min": 0.25}
    path = write(tmp_path, GOOD.replace("{rule: not_blank, min_pixel_std: 1}", "{any: [{rule: aesthetic, min: 5}]}"))
    assert error_of(load_pack, path) == (
        f"{path}:5: unknown acceptance rule 'aesthetic' in acceptance.any[0]; known: "
        "not_blank, clip_score, prompt_match (combine them with all: or any:)"
    )
    path = write(tmp_path, GOOD.replace("{rule: not_blank, min_pixel_std: 1}", "{rule: clip_score, min_pixel_std: 1}"))
    assert "unknown field 'min_pixel_std' in acceptance (clip_score); allowed: rule, min" in error_of(load_pack, path)
    path = write(tmp_path, GOOD.replace("{rule: not_blank, min_pixel_std: 1}", "{all: []}"))
    assert "'all' in acceptance needs at least one rule" in error_of(load_pack, path)


def test_repeat_needs_a_generate_before_it_and_a_seed_field(tmp_path):
    pack = load_pack(write(tmp_path, GOOD.replace("steps: [prompt, generate]", "steps: [prompt, generate, repeat]")))
    assert [s.kind for s in pack.steps] == ["prompt", "generate", "repeat"]
    path = write(tmp_path, GOOD.replace("steps: [prompt, generate]", "steps: [prompt, repeat, generate]"))
    assert "a repeat step repeats the last generate or reroll with its seed; put one before it" in error_of(
        load_pack, path
    )
    plain = load_profile(str(__import__("pathlib").Path(__file__).parent / "plain_ui" / "profile.yaml"))
    no_seed = plain.__class__(**{**plain.__dict__, "fields": {"prompt": "#idea"}})
    with pytest.raises(ConfigError, match="has repeat steps .* names no seed field"):
        check_compatible(pack, no_seed)
