"""One image loader everywhere (data.images.open_rgb), equal to how upstream's evaluation loads images.

Upstream's Qwen path passes each path to ``qwen_vl_utils.fetch_image``: ``Image.open``, no EXIF
rotation, ``to_rgb`` (RGBA on white, else ``convert("RGB")``), then a resize. The fixtures are sized
to multiples of 28, so asking fetch_image for the image's own size leaves its pixels untouched and
the two loaders can be compared pixel for pixel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orienteer.data.images import open_rgb, open_rgb_sized

W, H = 84, 56  # multiples of 28: fetch_image at this size does not resize


def _rgba(path: Path) -> Path:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(H, W, 4), dtype=np.uint8)
    pixels[:, : W // 3, 3] = 0  # fully transparent band: white after compositing, not its RGB values
    Image.fromarray(pixels, "RGBA").save(path)
    return path


def _palette(path: Path) -> Path:
    image = Image.new("P", (W, H))
    image.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    image.putdata([(x * 3 + y) % 256 for y in range(H) for x in range(W)])
    image.info["transparency"] = 5
    image.save(path, transparency=5)
    return path


def _exif_rotated_jpeg(path: Path) -> Path:
    pixels = np.zeros((H, W, 3), dtype=np.uint8)
    pixels[:, : W // 2] = (250, 10, 10)  # red left half: a rotation would move it
    pixels[:, W // 2:] = (10, 10, 250)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(pixels, "RGB").save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


FIXTURES = {"rgba": _rgba, "palette": _palette, "exif-jpeg": _exif_rotated_jpeg}


@pytest.mark.parametrize("kind", sorted(FIXTURES))
def test_loader_matches_qwen_vl_utils_fetch_image(tmp_path: Path, kind: str) -> None:
    fetch_image = pytest.importorskip("qwen_vl_utils").fetch_image  # the ml extra; upstream's own loader
    path = FIXTURES[kind](tmp_path / f"{kind}.{'jpg' if kind == 'exif-jpeg' else 'png'}")
    ours = open_rgb(path)
    theirs = fetch_image({"image": str(path), "resized_height": H, "resized_width": W})
    assert ours.mode == theirs.mode == "RGB"
    assert ours.size == theirs.size == (W, H)  # the EXIF tag is not applied: still W x H, not H x W
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))


def test_rgba_is_composited_on_white_and_exif_is_ignored(tmp_path: Path) -> None:
    rgba = np.asarray(open_rgb(_rgba(tmp_path / "a.png")))
    assert (rgba[:, : W // 3] == 255).all()
    jpeg = np.asarray(open_rgb(_exif_rotated_jpeg(tmp_path / "r.jpg"))).astype(int)
    assert jpeg[H // 2, 5, 0] > 200 and jpeg[H // 2, W - 5, 2] > 200  # red stays left, blue right: not rotated


def test_the_app_shows_the_pixels_the_model_gets(tmp_path: Path) -> None:
    from orienteer.tui.widgets.item_image import load_image

    path = _exif_rotated_jpeg(tmp_path / "r.jpg")
    shown, original = load_image(path, max_side=640)
    assert original == (W, H) and shown.size == (W, H)
    assert np.array_equal(np.asarray(shown), np.asarray(open_rgb(path)))
    small, size = open_rgb_sized(path, draft_side=20)  # a JPEG draft decodes smaller; the size stays the file's
    assert size == (W, H) and max(small.size) < W


def test_a_flip_of_an_exif_rotated_image_is_the_mirrored_raw_pixels_without_an_orientation_tag(tmp_path: Path) -> None:
    from orienteer.jobs.augment.flip import flip_image_file, image_width

    src = _exif_rotated_jpeg(tmp_path / "r.jpg")
    dst = tmp_path / "flipped" / "r.png"
    assert flip_image_file(src, dst) == W == image_width(src)
    with Image.open(dst) as flipped:
        assert flipped.getexif().get(0x0112) is None and "exif" not in flipped.info
        assert flipped.size == (W, H)
    assert np.array_equal(np.asarray(open_rgb(dst)), np.asarray(open_rgb(src))[:, ::-1])
    back = tmp_path / "back.png"
    flip_image_file(dst, back)
    assert np.array_equal(np.asarray(open_rgb(back)), np.asarray(open_rgb(src)))  # twice flipped = the original
