"""The portrait world: seeded drawing, the prompt grammar and its one-sentence errors."""

import itertools

import numpy as np
import pytest
from imagejourney.reference_app import portrait_world as world


def test_the_world_is_big_enough():
    assert len(world.ATTRIBUTES) >= 6
    assert world.COMBINATIONS >= 2000


def test_same_seed_same_pixels():
    first, attrs = world.portrait(42)
    second, again = world.portrait(42)
    assert attrs == again
    assert np.array_equal(np.asarray(first), np.asarray(second))
    assert first.size == (64, 64) and first.mode == "RGB"


def test_seeds_vary_pose_and_free_attributes():
    named = {"hair_colour": "red", "glasses": "glasses"}
    drawn = [world.portrait(seed, named) for seed in range(12)]
    assert all(attrs["hair_colour"] == "red" and attrs["glasses"] == "glasses" for _, attrs in drawn)
    free = {name: {attrs[name] for _, attrs in drawn} for name in world.ATTRIBUTES if name not in named}
    assert all(len(values) > 1 for values in free.values()), free
    # The same attributes at two seeds are not the same picture: pose, size and position vary.
    attrs = drawn[0][1]
    a, b = (np.asarray(world.draw(attrs, seed), dtype=float) for seed in (1, 2))
    assert np.abs(a - b).mean() > 1.0


def test_describe_parse_round_trip_for_every_subset_shape():
    rng = np.random.default_rng(0)
    names = list(world.ATTRIBUTES)
    for count in range(len(names) + 1):
        for subset in itertools.islice(itertools.combinations(names, count), 12):
            attrs = {name: world.sample_attributes(rng)[name] for name in subset}
            assert world.parse(world.describe(attrs)) == attrs, world.describe(attrs)


def test_an_edit_clause_names_its_attribute_after_the_kept_prompt():
    kept = {"hair_colour": "red", "background": "blue"}
    for name, values in world.ATTRIBUTES.items():
        for value in values:
            text = f"{world.describe({'smile': 'serious'})}, {world.edit_clause(name, value)}"
            assert world.parse(text) == {"smile": "serious", name: value}, text
    assert world.edit_clause("glasses", "glasses") == "now with glasses"
    assert world.edit_clause("background", "orange") == "now with orange background"
    assert world.parse(
        ", ".join(
            world.phrase(name, "glasses" if name == "glasses" else values[-1])
            for name, values in world.ATTRIBUTES.items()
            if name != "hair_length"
        )
    ) == {
        name: values[-1] if name != "glasses" else "glasses"
        for name, values in world.ATTRIBUTES.items()
        if name != "hair_length"
    }
    assert world.parse(f"{world.describe(kept)}, {world.edit_clause('glasses', 'glasses')}") == {
        **kept,
        "glasses": "glasses",
    }
    with pytest.raises(world.UnknownWord):
        world.edit_clause("glasses", "monocle")


def test_describe_reads_like_a_prompt():
    attrs = {
        "smile": "smiling",
        "hair_length": "long",
        "hair_colour": "red",
        "glasses": "glasses",
        "shirt_colour": "blue",
        "background": "green",
        "light": "warm",
    }
    text = "portrait of a smiling person with long red hair and glasses, blue shirt, green background, warm light"
    assert world.describe(attrs) == text
    assert world.parse(text) == attrs
    assert world.parse("the same portrait, now with no glasses") == {"glasses": "no glasses"}


@pytest.mark.parametrize(
    "text, word",
    [
        ("portrait of a person with purple hair", "purple"),
        ("portrait of a person with a hat", "hat"),
        ("portrait of a person, striped shirt", "striped"),
    ],
)
def test_unknown_word_is_one_sentence_naming_it(text, word):
    with pytest.raises(world.UnknownWord) as caught:
        world.parse(text)
    message = str(caught.value)
    assert f"'{word}'" in message and "\n" not in message
    assert "known" in message
