import pytest
from imagejourney.reports.timing import measure_action


def record(click, paints, final):
    return {
        "click": click,
        "paints": [{"t": t, "method": "element-timing", "url": f"u{t}"} for t in paints],
        "final": None if final is None else {"t": final, "method": "element-timing", "url": f"u{final}"},
    }


def test_previews_are_paints_between_click_and_final():
    timing = measure_action(record(100.0, [150.0, 130.0, 180.0, 220.0], 220.0))
    assert timing.click_to_preview_ms == 30.0
    assert timing.click_to_final_ms == 120.0
    assert timing.previews_painted == 3
    assert timing.first_preview_paint_ts_ms == 130.0
    assert timing.paint_method == "element-timing"


def test_no_preview_gives_null_click_to_preview():
    timing = measure_action(record(100.0, [250.0], 250.0))
    assert timing.click_to_preview_ms is None
    assert timing.previews_painted == 0
    assert timing.click_to_final_ms == 150.0


def test_paints_before_the_click_are_not_previews():
    timing = measure_action(record(100.0, [90.0, 120.0, 200.0], 200.0))
    assert timing.previews_painted == 1
    assert timing.click_to_preview_ms == 20.0


def test_missing_click_or_final_is_an_error():
    with pytest.raises(ValueError, match="no trusted click"):
        measure_action(record(None, [], 10.0))
    with pytest.raises(ValueError, match="no image was painted"):
        measure_action(record(5.0, [], None))


def test_screencast_record_makes_the_last_change_the_final():
    from imagejourney.journeys.screencast import screencast_record

    timing = measure_action(screencast_record(100.0, [50.0, 180.0, 260.0, 340.0]))
    assert timing.click_to_final_ms == 240.0 and timing.previews_painted == 2
    assert timing.paint_method == "screencast"
    assert screencast_record(100.0, [50.0])["final"] is None


def test_new_content_is_a_paint_a_dimming_veil_or_spinner_is_not():
    import numpy as np
    from imagejourney.journeys.screencast import is_new_content

    rng = np.random.default_rng(0)
    picture = rng.integers(0, 255, (100, 400)).astype(np.int16)
    assert not is_new_content(picture, (picture * 0.45).astype(np.int16))  # dimmed
    assert not is_new_content(picture, (picture * 0.4 + 153).astype(np.int16))  # a 60 % white veil
    assert not is_new_content((picture * 0.4 + 153).astype(np.int16), picture)  # the veil lifted
    spinner = picture.copy()
    spinner[40:52, 40:52] = 30
    assert not is_new_content(picture, spinner)
    assert is_new_content(picture, rng.integers(0, 255, (100, 400)).astype(np.int16))  # another picture
    assert is_new_content(picture, np.zeros_like(picture))  # a black final (safety filter): the picture is gone
    assert is_new_content(np.full_like(picture, 255), picture)  # drawn onto an empty region


def test_old_content_gallery_images_and_repeated_pictures_are_not_previews():
    paints = [
        {"t": 105.0, "url": "final-1", "content": "A", "role": "final", "old": True},  # the old final re-mounted
        {"t": 110.0, "url": "thumb-0", "content": "Z", "role": "other", "old": False},  # a gallery image
        {"t": 300.0, "url": "p1", "content": "P1", "role": "preview", "old": False},
        {"t": 310.0, "url": "p1-thumb", "content": "P1", "role": "preview", "old": False},  # the same picture again
        {"t": 400.0, "url": "final-2-early", "content": "F", "role": "preview", "old": False},  # the final, shown early
        {"t": 500.0, "url": "final-2", "content": "F", "role": "final", "old": False},
    ]
    timing = measure_action(
        {
            "click": 100.0,
            "paints": paints,
            "final": {"t": 500.0, "method": "element-timing", "url": "final-2", "content": "F"},
        }
    )
    assert timing.click_to_preview_ms == 200.0 and timing.previews_painted == 1
