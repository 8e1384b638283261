"""The case view: text blocks, probability bars, frames, reference box, saliency, missing images, paging.

Tests drive the app with Textual's Pilot inside ``asyncio.run`` (no async plugin needed). The demo
workspace is shared and read-only; tests that need other rows copy only its DuckDB file (the
benchmark's image root is an absolute path, so the images still resolve from the copy).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from orienteer.data.queries.case import CaseDetail, case_detail
from orienteer.data.workspace import DB_FILENAME, Workspace
from orienteer.tui.screens.case import MAX_IMAGE_ROWS
from orienteer.tui.widgets.item_image import (
    BOX_COLOR,
    ItemImage,
    PreparedFrame,
    blend_saliency,
    draw_bbox,
    fit_cells,
    prepare_frame,
)

SIZE = (100, 40)


# --- helpers ------------------------------------------------------------------------------------------

def drive(app: Any, body: Callable[[Any], Awaitable[None]], size: tuple[int, int] = SIZE) -> list[str]:
    """Run ``body(pilot)`` on the app; returns the texts of the notifications it raised."""
    said: list[str] = []
    notify = app.notify

    def recording(message: str, *args: Any, **kwargs: Any) -> None:
        said.append(str(message))
        notify(message, *args, **kwargs)

    app.notify = recording

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await body(pilot)

    asyncio.run(main())
    return said


async def open_case(pilot: Any, run: str, item_id: str, siblings: list[tuple[str, str]] | None = None) -> Any:
    from orienteer.tui.screens.case import CaseScreen

    pilot.app.open_case(run, item_id, siblings)
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, CaseScreen)
    return screen


def text_of(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector).render())


def caption(screen: Any) -> str:
    return text_of(screen, "#item-image-caption")


def detail(ws: Workspace, run: str, item_id: str) -> CaseDetail:
    with ws.read() as con:
        return case_detail(con, run, item_id)


def pick(ws: Workspace, sql: str, *params: Any) -> Any:
    with ws.read() as con:
        row = con.execute(sql, list(params)).fetchone()
    assert row is not None, sql
    return row[0]


def wrong_single_image_item(ws: Workspace, run: str = "box-prompt") -> str:
    """An item the run got wrong (with a category), one image, a reference box."""
    return pick(ws, """SELECT i.item_id FROM items i JOIN predictions p USING (item_idx)
                       JOIN runs r ON r.run_id = p.run_id
                       WHERE r.name = ? AND p.outcome = 'wrong' AND p.category IS NOT NULL
                         AND len(i.images) = 1 AND i.bbox IS NOT NULL ORDER BY i.item_idx LIMIT 1""", run)


def multi_frame_item(ws: Workspace) -> str:
    return pick(ws, "SELECT item_id FROM items WHERE len(images) >= 3 ORDER BY item_idx LIMIT 1")


def copy_db(demo_ws: Workspace, dest: Path) -> Workspace:
    dest.mkdir(parents=True)
    shutil.copy2(demo_ws.root / DB_FILENAME, dest / DB_FILENAME)
    return Workspace(dest)


def red_mask_count(img: Image.Image, box: tuple[int, int, int, int]) -> int:
    """How many pixels on the box's outline are (nearly) pure red."""
    px = img.convert("RGB").load()
    x0, y0, x1, y1 = box
    edge = [(x, y0) for x in range(x0, x1 + 1)] + [(x, y1) for x in range(x0, x1 + 1)]
    edge += [(x0, y) for y in range(y0, y1 + 1)] + [(x1, y) for y in range(y0, y1 + 1)]
    return sum(1 for x, y in edge if px[x, y][0] > 200 and px[x, y][1] < 60 and px[x, y][2] < 60)


# --- the Pillow helpers ----------------------------------------------------------------------------------

def test_draw_bbox_draws_red_edges_on_a_copy() -> None:
    img = Image.new("RGB", (200, 100), (40, 120, 40))
    boxed = draw_bbox(img, [20, 10, 80, 60])
    assert boxed is not img and img.getpixel((20, 10)) == (40, 120, 40)
    assert red_mask_count(boxed, (20, 10, 80, 60)) >= 0.95 * 2 * (61 + 51)
    assert boxed.getpixel((50, 35)) == (40, 120, 40)  # inside untouched
    # Box given in original pixels, image downscaled by 2: the box is scaled with it.
    half = draw_bbox(Image.new("RGB", (100, 50), (0, 0, 0)), [20, 10, 80, 60], original_size=(200, 100))
    assert half.getpixel((10, 5)) == BOX_COLOR and half.getpixel((40, 30)) == BOX_COLOR
    # Out-of-image coordinates are clipped, not an error.
    draw_bbox(img, [-10, -10, 500, 500])


def test_prepare_frame_downscales_and_boxes(demo_ws: Workspace) -> None:
    item = wrong_single_image_item(demo_ws)
    d = detail(demo_ws, "box-prompt", item)
    path = Path(d.image_root or "") / d.images[0]
    frame = prepare_frame(path, bbox=d.bbox, max_side=160)
    assert frame.problem is None and frame.image is not None and frame.original_size is not None
    assert max(frame.image.size) <= 160
    sx = frame.image.width / frame.original_size[0]
    sy = frame.image.height / frame.original_size[1]
    x0, y0, x1, y1 = (round(v * s) for v, s in zip(d.bbox or [], (sx, sy, sx, sy)))
    assert red_mask_count(frame.image, (x0, y0, x1, y1)) > (x1 - x0 + y1 - y0)
    missing = prepare_frame(path.parent / "nope.jpg", bbox=d.bbox)
    assert missing.image is None and missing.problem == "image not found"
    header_only = prepare_frame(path, decode=False)
    assert header_only.image is None and header_only.original_size == frame.original_size


def test_blend_saliency_grayscale_rgb_and_rgba(tmp_path: Path) -> None:
    base = Image.new("RGB", (64, 48), (0, 0, 255))
    gray = Image.linear_gradient("L").resize((128, 96))  # original size: twice the thumbnail
    gray.save(tmp_path / "gray.png")
    out = blend_saliency(base, tmp_path / "gray.png")
    assert out.size == base.size and out.mode == "RGB"
    assert out.getpixel((32, 2)) != out.getpixel((32, 45))  # coloured by the map
    rgb = blend_saliency(base, Image.new("RGB", (64, 48), (255, 0, 0)))
    assert rgb.getpixel((0, 0)) == (128, 0, 128) or rgb.getpixel((0, 0)) == (127, 0, 127)
    rgba = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    rgba.paste((255, 255, 0, 255), (0, 0, 10, 10))
    comp = blend_saliency(base, rgba)
    assert comp.getpixel((5, 5)) == (255, 255, 0) and comp.getpixel((40, 40)) == (0, 0, 255)


def test_fit_cells_keeps_the_shape() -> None:
    assert fit_cells((640, 480), 200, 16, cell=(10, 20)) == (43, 16)
    cols, rows = fit_cells((640, 480), 20, 16, cell=(10, 20))
    assert cols == 20 and rows == 8
    assert fit_cells((0, 0), 10, 10) == (0, 0)


# --- the screen ------------------------------------------------------------------------------------------

def test_case_shows_question_options_reply_category_and_other_runs(app_factory, demo_ws: Workspace) -> None:
    item = wrong_single_image_item(demo_ws)
    d = detail(demo_ws, "box-prompt", item)
    gold_label = dict(d.options)[d.answer_letter]

    async def body(pilot: Any) -> None:
        screen = await open_case(pilot, "box-prompt", item)
        assert screen.detail.item_id == item
        assert d.question.strip() in text_of(screen, "#case-question")
        options = text_of(screen, "#case-options").splitlines()
        gold_line = next(line for line in options if line.strip().startswith(d.answer_letter + " "))
        pred_line = next(line for line in options if line.strip().startswith(f"{d.letter} "))
        assert gold_label in gold_line and "✓ gold" in gold_line and "predicted" not in gold_line
        assert "◀ predicted" in pred_line and "gold" not in pred_line
        assert sum("gold" in line for line in options) == 1
        reply = text_of(screen, "#case-reply")
        assert reply.startswith("Reply") and (d.reply or "").strip() in reply
        verdict = text_of(screen, "#case-verdict")
        from orienteer.tui.labels import category_name

        assert "wrong" in verdict and category_name(d.category) in verdict
        assert d.reference_object and d.reference_object in verdict
        others = text_of(screen, "#case-others")
        for o in d.other_runs:
            line = next(line for line in others.splitlines() if line.strip().startswith(o.run))
            assert (o.letter or "-") in line
            assert ("✓" in line) == bool(o.correct)
        assert item in text_of(screen, "#case-title")

    drive(app_factory(), body)


def test_probability_bars_only_for_scored_runs(app_factory, demo_ws: Workspace) -> None:
    item = wrong_single_image_item(demo_ws)
    assert detail(demo_ws, "box-prompt", item).probs
    assert detail(demo_ws, "qwen3b-base", item).probs is None

    async def body(pilot: Any) -> None:
        scored = await open_case(pilot, "box-prompt", item)
        lines = text_of(scored, "#case-options").splitlines()
        assert sum("%" in line for line in lines) == len(scored.detail.options)
        assert any("█" in line for line in lines)
        await pilot.press("escape")
        await pilot.pause()
        plain = await open_case(pilot, "qwen3b-base", item)
        assert "%" not in text_of(plain, "#case-options") and "█" not in text_of(plain, "#case-options")

    drive(app_factory(), body)


def test_frames_page_with_brackets(app_factory, demo_ws: Workspace) -> None:
    item = multi_frame_item(demo_ws)
    n = len(detail(demo_ws, "box-prompt", item).images)

    async def body(pilot: Any) -> None:
        screen = await open_case(pilot, "box-prompt", item)
        assert f"frame 1/{n}" in caption(screen)
        first = screen.shown_image().tobytes()
        picture = screen.item_image.picture
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert f"frame 2/{n}" in caption(screen)
        assert screen.shown_image().tobytes() != first
        assert picture.image is screen.shown_image()  # the widget got the new frame
        await pilot.press("right")
        await pilot.pause()
        assert f"frame 3/{n}" in caption(screen)
        await pilot.press("left_square_bracket", "left")
        await pilot.pause()
        assert f"frame 1/{n}" in caption(screen)
        assert screen.shown_image().tobytes() == first
        await pilot.press("left_square_bracket")  # already the first: stays
        await pilot.pause()
        assert f"frame 1/{n}" in caption(screen)

    said = drive(app_factory(), body)
    assert any("first frame" in s for s in said)


def test_widget_image_has_the_red_box(app_factory, demo_ws: Workspace) -> None:
    item = wrong_single_image_item(demo_ws)
    d = detail(demo_ws, "box-prompt", item)

    async def body(pilot: Any) -> None:
        screen = await open_case(pilot, "box-prompt", item)
        shown = screen.item_image.picture.image
        assert isinstance(shown, Image.Image)
        frame: PreparedFrame = screen.item_image.frame
        sx = shown.width / frame.original_size[0]
        sy = shown.height / frame.original_size[1]
        x0, y0, x1, y1 = (round(v * s) for v, s in zip(d.bbox, (sx, sy, sx, sy)))
        assert red_mask_count(shown, (x0, y0, x1, y1)) > (x1 - x0 + y1 - y0)
        assert "red box" in caption(screen)

    drive(app_factory(), body)


@pytest.fixture
def saliency_ws(demo_ws: Workspace, tmp_path: Path) -> tuple[Workspace, str]:
    """A copy of the demo workspace with a grayscale saliency map for one box-prompt item."""
    ws = copy_db(demo_ws, tmp_path / "ws")
    item = wrong_single_image_item(demo_ws)
    d = detail(demo_ws, "box-prompt", item)
    with Image.open(Path(d.image_root or "") / d.images[0]) as im:
        size = im.size
    heat = Image.radial_gradient("L").resize(size)
    rel = Path("artifacts") / "saliency" / f"{item}_0.png"
    (ws.root / rel).parent.mkdir(parents=True, exist_ok=True)
    heat.save(ws.root / rel)
    with ws.write() as con:
        run_id = con.execute("SELECT run_id FROM runs WHERE name = 'box-prompt'").fetchone()[0]
        con.execute(
            """INSERT INTO artifacts
                   (artifact_id, run_id, item_idx, kind, path, frame, metrics, created_by_job, created_at)
               VALUES (1, ?, ?, 'saliency', ?, 0, ?, 'test-job', current_timestamp)""",
            [run_id, d.item_idx, rel.as_posix(), json.dumps({"mass_in_bbox": 0.42})])
    return ws, item


def test_saliency_toggle(app_factory, saliency_ws: tuple[Workspace, str]) -> None:
    ws, item = saliency_ws

    async def body(pilot: Any) -> None:
        screen = await open_case(pilot, "box-prompt", item)
        verdict = text_of(screen, "#case-verdict")
        assert "Saliency" in verdict and "mass_in_bbox=0.42" in verdict
        plain = screen.shown_image().tobytes()
        await pilot.press("v")
        await pilot.pause()
        assert screen.show_saliency and "saliency overlay on" in caption(screen)
        overlaid = screen.shown_image()
        assert overlaid.tobytes() != plain
        assert screen.item_image.picture.image is overlaid
        assert screen.item_image.frame.notes == []
        await pilot.press("v")
        await pilot.pause()
        assert screen.shown_image().tobytes() == plain
        # Another run's case of the same item has no map: v says so.
        await pilot.press("escape")
        await pilot.pause()
        await open_case(pilot, "qwen3b-base", item)
        await pilot.press("v")
        await pilot.pause()
        assert not pilot.app.screen.show_saliency

    said = drive(app_factory(ws), body)
    assert "no saliency map for this item" in said


@pytest.fixture
def frame2_ws(demo_ws: Workspace, tmp_path: Path) -> tuple[Workspace, str, list[float]]:
    """A copy of the demo workspace where a 3+-frame item's box is on frame 2 (the third), with a saliency
    map of that frame recording the 3 px ring its box numbers left out."""
    ws = copy_db(demo_ws, tmp_path / "ws")
    item = multi_frame_item(demo_ws)
    d = detail(demo_ws, "box-prompt", item)
    with Image.open(Path(d.image_root or "") / d.images[2]) as im:
        w, h = im.size
    box = [round(w * 0.25), round(h * 0.25), round(w * 0.75), round(h * 0.75)]
    rel = Path("artifacts") / "saliency" / f"{item}_2.png"
    (ws.root / rel).parent.mkdir(parents=True, exist_ok=True)
    Image.radial_gradient("L").resize((w, h)).save(ws.root / rel)
    metrics = {"mass_in_bbox": 0.31, "bbox_area": 0.22, "ring_px": 3, "mass_on_ring": 0.05, "bbox_frame": 2}
    with ws.write() as con:
        run_id, bench_id = con.execute("SELECT run_id, bench_id FROM runs WHERE name = 'box-prompt'").fetchone()
        con.execute("UPDATE items SET bbox = ?, bbox_frame = 2, reference_object = 'lamp' "
                    "WHERE bench_id = ? AND item_id = ?", [box, bench_id, item])
        con.execute(
            """INSERT INTO artifacts
                   (artifact_id, run_id, item_idx, kind, path, frame, metrics, created_by_job, created_at)
               VALUES (1, ?, ?, 'saliency', ?, 2, ?, 'test-job', current_timestamp)""",
            [run_id, d.item_idx, rel.as_posix(), json.dumps(metrics)])
    return ws, item, [float(v) for v in box]


def _exact(img: Image.Image, color: tuple[int, int, int], box: tuple[int, int, int, int]) -> int:
    """How many pixels on the rectangle ``box``'s 1 px outline are exactly ``color``."""
    px = img.convert("RGB").load()
    x0, y0, x1, y1 = box
    edge = {(x, y) for x in range(x0, x1 + 1) for y in (y0, y1)} | {(x, y) for y in range(y0, y1 + 1) for x in (x0, x1)}
    return sum(1 for x, y in edge if px[x, y] == color)


def test_a_box_on_frame_3_is_drawn_there_with_its_ring_over_the_saliency_map(app_factory, frame2_ws) -> None:
    from orienteer.tui.widgets.item_image import RING_COLOR, load_image

    ws, item, box = frame2_ws
    d = detail(ws, "box-prompt", item)
    assert d.bbox == box and d.bbox_frame == 2

    async def body(pilot: Any) -> None:
        screen = await open_case(pilot, "box-prompt", item)
        verdict = text_of(screen, "#case-verdict")
        assert f"box [{', '.join(f'{v:g}' for v in box)}] on frame 3" in verdict
        assert "Saliency  frame 3" in verdict and "ring_px=3" in verdict and "bbox_frame=" not in verdict
        assert "red box:" not in caption(screen) and "the red box is on frame 3" in caption(screen)
        plain, _ = load_image(screen.image_path(0))
        assert screen.shown_image().tobytes() == plain.tobytes()  # frame 1: nothing drawn on it
        await pilot.press("right_square_bracket", "right_square_bracket")
        await pilot.pause()
        assert "frame 3/" in caption(screen) and "red box: lamp" in caption(screen)
        shown = screen.shown_image()
        frame: PreparedFrame = screen.item_image.frame
        sx, sy = shown.width / frame.original_size[0], shown.height / frame.original_size[1]
        x0, y0, x1, y1 = (round(v * s) for v, s in zip(box, (sx, sy, sx, sy)))
        assert red_mask_count(shown, (x0, y0, x1, y1)) > (x1 - x0 + y1 - y0)
        assert "ring" not in caption(screen)  # the ring is shown with the map only
        await pilot.press("v")
        await pilot.pause()
        assert "saliency overlay on" in caption(screen)
        assert "cyan: inside edge of the 3 px ring left out of mass_in_bbox" in caption(screen)
        overlaid = screen.shown_image()
        inner = tuple(round(v * s) for v, s in zip((box[0] + 3, box[1] + 3, box[2] - 3, box[3] - 3), (sx, sy, sx, sy)))
        assert _exact(overlaid, RING_COLOR, inner) >= 0.95 * 2 * (inner[2] - inner[0] + inner[3] - inner[1])
        assert red_mask_count(overlaid, (x0, y0, x1, y1)) > (x1 - x0 + y1 - y0)

    drive(app_factory(ws), body, size=(140, 50))


def test_v_without_saliency_notifies(app_factory, demo_ws: Workspace) -> None:
    item = wrong_single_image_item(demo_ws)

    async def body(pilot: Any) -> None:
        screen = await open_case(pilot, "box-prompt", item)
        before = screen.shown_image().tobytes()
        await pilot.press("v")
        await pilot.pause()
        assert screen.shown_image().tobytes() == before

    assert drive(app_factory(), body) == ["no saliency map for this item"]


def test_missing_images_show_the_expected_path(app_factory, demo_ws: Workspace, tmp_path: Path) -> None:
    ws = copy_db(demo_ws, tmp_path / "ws")
    empty = tmp_path / "no-images"
    empty.mkdir()
    with ws.write() as con:
        con.execute("UPDATE benchmarks SET image_root = ?", [str(empty)])
    single, multi = wrong_single_image_item(demo_ws), multi_frame_item(demo_ws)
    d = detail(ws, "box-prompt", multi)

    async def body(pilot: Any) -> None:
        screen = await open_case(pilot, "box-prompt", single, [("box-prompt", single), ("box-prompt", multi)])
        placeholder = text_of(screen, "#item-image-placeholder")
        assert "image not found" in placeholder
        assert str(empty / detail(ws, "box-prompt", single).images[0]) in placeholder.replace("\n", "")
        assert screen.query_one("#item-image-placeholder").display
        assert not screen.item_image.picture.display
        assert screen.shown_image() is None
        await pilot.press("n", "right_square_bracket")
        await pilot.pause()
        assert f"frame 2/{len(d.images)}" in caption(screen)
        assert str(empty / d.images[1]) in text_of(screen, "#item-image-placeholder").replace("\n", "")

    drive(app_factory(ws), body)


def test_n_p_page_siblings_and_escape_goes_back(app_factory, demo_ws: Workspace) -> None:
    items = [pick(demo_ws, "SELECT item_id FROM items WHERE item_idx = ?", i) for i in (3, 4, 5)]
    siblings = [("box-prompt", items[0]), ("qwen3b-base", items[1]), ("flip-aug", items[2])]

    async def body(pilot: Any) -> None:
        under = pilot.app.screen
        screen = await open_case(pilot, "qwen3b-base", items[1], siblings)
        assert "item 2/3" in text_of(screen, "#case-title")
        await pilot.press("n")
        await pilot.pause()
        assert (screen.detail.run, screen.detail.item_id) == ("flip-aug", items[2])
        assert "item 3/3" in text_of(screen, "#case-title") and items[2] in text_of(screen, "#case-title")
        await pilot.press("n")  # the end of the list: stays
        await pilot.pause()
        assert screen.detail.item_id == items[2]
        await pilot.press("p", "p")
        await pilot.pause()
        assert (screen.detail.run, screen.detail.item_id) == ("box-prompt", items[0])
        assert pilot.app.screen is screen  # paging replaces the content, it does not stack screens
        await pilot.press("escape")
        await pilot.pause()
        assert pilot.app.screen is under

    said = drive(app_factory(), body)
    assert "last item of the list" in said


def test_image_mode_none_shows_paths_not_pictures(app_factory, demo_ws: Workspace) -> None:
    from textual_image.widget._base import Image as PictureWidget

    item = wrong_single_image_item(demo_ws)
    d = detail(demo_ws, "box-prompt", item)

    async def body(pilot: Any) -> None:
        screen = await open_case(pilot, "box-prompt", item)
        assert not list(screen.query(PictureWidget))
        assert screen.item_image.picture is None
        text = caption(screen).replace("\n", "")
        assert d.images[0] in text and str(Path(d.image_root or "") / d.images[0]) in text
        with Image.open(Path(d.image_root or "") / d.images[0]) as im:
            assert f"{im.width}x{im.height}" in text

    drive(app_factory(image_mode="none"), body)


def test_unknown_run_reports_and_pops(app_factory) -> None:
    errors: list[str] = []

    async def body(pilot: Any) -> None:
        under = pilot.app.screen
        pilot.app.report_error = lambda exc: errors.append(str(exc))
        pilot.app.open_case("no-such-run", "demo_000000")
        await pilot.pause()
        await pilot.pause()
        assert pilot.app.screen is under

    drive(app_factory(), body)
    assert errors and "no-such-run" in errors[0]


@pytest.mark.parametrize(("size", "wide"), [((80, 24), False), ((140, 40), True)])
def test_layout_stacks_when_narrow(app_factory, demo_ws: Workspace, size: tuple[int, int], wide: bool) -> None:
    item = wrong_single_image_item(demo_ws)

    async def body(pilot: Any) -> None:
        screen = await open_case(pilot, "box-prompt", item)
        await pilot.pause()
        assert screen.has_class("-wide") == wide
        text, media = screen.query_one("#case-text"), screen.query_one("#case-media")
        if wide:
            assert media.region.x > text.region.x and media.region.y == text.region.y
        else:
            assert media.region.y > text.region.y
        picture = screen.query_one(ItemImage).picture
        # stacked: short enough to keep the text in view; side by side: up to the height left
        assert 0 < picture.size.width <= media.size.width
        assert 8 <= picture.size.height <= (min(MAX_IMAGE_ROWS, size[1] - 8) if wide else 14)
        await pilot.press("G")
        await pilot.pause()
        assert screen.body.scroll_y == screen.body.max_scroll_y

    drive(app_factory(), body, size=size)


def test_keys_are_in_help_and_palette(app_factory, demo_ws: Workspace) -> None:
    from orienteer.tui.screens.help import HelpScreen

    item = wrong_single_image_item(demo_ws)

    async def body(pilot: Any) -> None:
        screen = await open_case(pilot, "box-prompt", item)
        titles = [c.title for c in pilot.app.get_system_commands(screen)]
        for name in ("Back", "Prev frame", "Next frame", "Next item", "Prev item", "Saliency", "Scroll down"):
            assert name in titles
        await pilot.press("question_mark")
        await pilot.pause()
        help_screen = pilot.app.screen
        assert isinstance(help_screen, HelpScreen)
        text = help_screen.plain_text()
        assert "Next frame" in text and "Saliency" in text and "]" in text
        await pilot.press("escape")
        await pilot.pause()
        assert pilot.app.screen is screen

    drive(app_factory(), body)
