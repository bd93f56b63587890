import pytest

from journeys.pack import ConfigError, available_packs, load_pack, load_profile


def test_portrait_pack_has_three_prompts_and_five_actions():
    pack = load_pack("portrait")
    assert len(pack.prompts) >= 3
    assert all(isinstance(p.seed, int) for p in pack.prompts)
    assert [s.kind for s in pack.steps] == ["prompt", "generate", "reroll", "reroll", "edit", "export"]
    edit = pack.steps[4]
    assert edit.prompt and 0 < edit.strength <= 1


def test_unknown_journey_names_the_available_ones():
    with pytest.raises(ConfigError) as info:
        load_pack("nosuch")
    message = str(info.value)
    assert "unknown journey 'nosuch'" in message
    for name in available_packs():
        assert name in message


def test_malformed_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nprompts: [\n  - id: a\n")
    with pytest.raises(ConfigError, match=r"bad.yaml is not valid YAML at line \d+"):
        load_pack(str(bad))


def test_unknown_step_is_named(tmp_path):
    pack = tmp_path / "p.yaml"
    pack.write_text(
        "name: p\nprompts: [{id: a, text: t, seed: 1}]\nsteps: [prompt, upscale]\nacceptance: {rule: not_blank, min_pixel_std: 1}\n"
    )
    with pytest.raises(ConfigError, match=r"steps\[1\]: unknown step 'upscale'"):
        load_pack(str(pack))


def test_missing_field_is_named(tmp_path):
    pack = tmp_path / "p.yaml"
    pack.write_text("name: p\nprompts: [{id: a, text: t}]\nsteps: [generate]\nacceptance: {rule: not_blank}\n")
    with pytest.raises(ConfigError, match=r"prompts\[0\]: the field 'seed' is missing"):
        load_pack(str(pack))


def test_reference_profile_loads():
    profile = load_profile("reference")
    assert set(profile.controls) == {"generate", "reroll", "edit", "export"}
    assert profile.done["selector"] and profile.output
