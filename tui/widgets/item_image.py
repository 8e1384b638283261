"""An item's image in the terminal: Pillow preparation (downscale, reference box, saliency) and the widget.

The preparation is plain Pillow and never raises: a missing or unreadable file becomes a
``PreparedFrame`` with a ``problem`` the widget shows as a placeholder with the expected path.
The widget draws with textual-image; which renderer depends on the app's image mode:

- ``auto``: ``textual_image.widget.Image`` (kitty graphics / sixel when the terminal has them,
  else half-cell blocks);
- ``halfcell``: coloured half blocks (tmux, plain SSH); ``unicode``: shaded unicode blocks;
- ``none``: no picture at all, only the path and the image size.

textual-image asks the terminal what it supports when it is first imported, which only works
before Textual owns the terminal: call :func:`preload_image_support` before ``App.run()``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from PIL import ImageDraw, ImageOps, UnidentifiedImageError
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from orienteer.core.box_geometry import drawn_box
from orienteer.data.images import open_rgb_sized
from orienteer.tui.safe_text import text, visible

MAX_SIDE = 640
BOX_COLOR = (255, 0, 0)
RING_COLOR = (0, 255, 255)  # inside edge of the ring saliency leaves out of the box (cyan: apart from red and the map)
SALIENCY_ALPHA = 0.5
IMAGE_MODES = ("auto", "halfcell", "unicode", "none")

# "inferno"-like stops: dark purple -> red -> orange -> pale yellow, readable over photos.
_STOPS = [(0.0, (0, 0, 4)), (0.25, (87, 16, 110)), (0.5, (188, 55, 84)), (0.75, (249, 142, 9)),
          (1.0, (252, 255, 164))]


def _palette() -> list[int]:
    out: list[int] = []
    for i in range(256):
        t = i / 255
        for (t0, c0), (t1, c1) in zip(_STOPS, _STOPS[1:]):
            if t <= t1:
                f = (t - t0) / (t1 - t0)
                out.extend(round(a + (b - a) * f) for a, b in zip(c0, c1))
                break
    return out


PALETTE = _palette()


@dataclass
class PreparedFrame:
    """One image, ready for the widget (``image``), or why it cannot be shown (``problem``)."""

    path: Path
    image: PILImage.Image | None = None
    original_size: tuple[int, int] | None = None
    problem: str | None = None
    notes: list[str] = field(default_factory=list)


# --- Pillow helpers ---------------------------------------------------------------------------------

def load_image(path: Path | str, max_side: int = MAX_SIDE) -> tuple[PILImage.Image, tuple[int, int]]:
    """The image as the model loads it (``data.images``: raw pixels, no EXIF rotation, RGBA on white),
    downscaled to fit ``max_side`` (JPEGs decode at reduced scale), and its original size."""
    img, original = open_rgb_sized(path, draft_side=max_side)
    img.thumbnail((max_side, max_side))
    return img, original


def draw_bbox(img: PILImage.Image, bbox: list[float] | tuple[float, ...], original_size: tuple[int, int] | None = None,
              color: tuple[int, int, int] = BOX_COLOR, width: int | None = None) -> PILImage.Image:
    """A copy of ``img`` with the box ``[x0, y0, x1, y1]`` (in ``original_size`` pixels) drawn in red."""
    out = img.convert("RGB") if img.mode != "RGB" else img.copy()
    ow, oh = original_size or img.size
    sx, sy = img.width / ow, img.height / oh
    x0, y0, x1, y1 = (float(v) for v in bbox[:4])
    x0, x1 = sorted((x0 * sx, x1 * sx))
    y0, y1 = sorted((y0 * sy, y1 * sy))
    x0, y0 = max(0.0, x0), max(0.0, y0)
    x1, y1 = min(img.width - 1.0, x1), min(img.height - 1.0, y1)
    if x1 < x0 or y1 < y0:
        return out
    line = width or (3 if max(img.size) >= 320 else 2)
    ImageDraw.Draw(out).rectangle([round(x0), round(y0), round(x1), round(y1)], outline=color, width=line)
    return out


def draw_ring(img: PILImage.Image, bbox: list[float] | tuple[float, ...], ring: int,
              original_size: tuple[int, int] | None = None, color: tuple[int, int, int] = RING_COLOR) -> PILImage.Image:
    """A copy of ``img`` with the inside edge of the box's ``ring`` (original pixels) drawn 1 px wide.

    The band between the red box and this line is the drawn border's ring, which saliency's
    ``mass_in_bbox`` leaves out, found by ``core.box_geometry.drawn_box`` as box-prompt draws it.
    """
    out = img.convert("RGB") if img.mode != "RGB" else img.copy()
    ow, oh = original_size or img.size
    interior = drawn_box(bbox[:4], (ow, oh), ring).interior
    if interior is None:
        return out  # the ring fills the box: nothing inside is measured
    ix0, iy0, ix1, iy1 = interior
    sx, sy = img.width / ow, img.height / oh
    ImageDraw.Draw(out).rectangle([round(ix0 * sx), round(iy0 * sy), round(ix1 * sx), round(iy1 * sy)],
                                  outline=color, width=1)
    return out


def _to_gray8(sal: PILImage.Image) -> PILImage.Image:
    """A single-channel heatmap stretched to 0-255 (saliency maps have no absolute scale)."""
    if sal.mode in ("I", "I;16", "F"):
        import numpy as np

        arr = np.asarray(sal, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        return PILImage.fromarray(scaled.astype("uint8"), mode="L")
    return ImageOps.autocontrast(sal.convert("L"))


def colorize(gray: PILImage.Image) -> PILImage.Image:
    """A grayscale heatmap in the colour map (dark = low, pale yellow = high)."""
    indexed = _to_gray8(gray).convert("P")
    indexed.putpalette(PALETTE)
    return indexed.convert("RGB")


def blend_saliency(img: PILImage.Image, saliency: Path | str | PILImage.Image,
                   alpha: float = SALIENCY_ALPHA) -> PILImage.Image:
    """``img`` with a saliency map over it.

    A grayscale map is coloured and blended at ``alpha``; an RGB overlay is blended at ``alpha``;
    an RGBA overlay with real transparency is composited with its own alpha. The map is resized
    to the image (it has the original image's size; ``img`` may be downscaled).
    """
    if isinstance(saliency, PILImage.Image):
        sal = saliency
    else:
        with PILImage.open(saliency) as opened:
            opened.load()
            sal = opened.copy()
    base = img.convert("RGB")
    if sal.mode == "P":
        sal = sal.convert("RGBA" if "transparency" in sal.info else "RGB")
    if sal.mode in ("RGBA", "LA"):
        a_min, _ = sal.getchannel("A").getextrema()  # one band: (min, max) of ints
        if isinstance(a_min, (int, float)) and a_min < 255:
            rgb = colorize(sal.getchannel("L")) if sal.mode == "LA" else sal.convert("RGB")
            overlay = rgb.convert("RGBA")
            overlay.putalpha(sal.getchannel("A"))
            overlay = overlay.resize(base.size, PILImage.Resampling.BILINEAR)
            return PILImage.alpha_composite(base.convert("RGBA"), overlay).convert("RGB")
        sal = sal.convert("L" if sal.mode == "LA" else "RGB")
    if sal.mode in ("1", "L", "I", "I;16", "F"):
        heat = colorize(sal)
    else:
        heat = sal.convert("RGB")
    heat = heat.resize(base.size, PILImage.Resampling.BILINEAR)
    return PILImage.blend(base, heat, alpha)


def prepare_frame(path: Path, *, bbox: list[float] | None = None, saliency: Path | None = None,
                  ring: int | None = None, decode: bool = True, max_side: int = MAX_SIDE) -> PreparedFrame:
    """Load, downscale, overlay the saliency map and draw the reference box; never raises.

    ``ring`` (pixels, with a saliency map): also mark the inside edge of the ring left out of the box.

    With ``decode=False`` only the header is read (for the size), as the ``none`` image mode needs.
    """
    frame = PreparedFrame(path=path)
    try:
        if not decode:
            with PILImage.open(path) as im:
                frame.original_size = im.size
            return frame
        img, frame.original_size = load_image(path, max_side)
    except FileNotFoundError:
        frame.problem = "image not found"
        return frame
    except IsADirectoryError:
        frame.problem = "image path is a folder"
        return frame
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        frame.problem = f"cannot read image: {exc}"
        return frame
    if saliency is not None:
        try:
            img = blend_saliency(img, saliency)
        except FileNotFoundError:
            frame.notes.append(f"saliency map not found: {saliency}")
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            frame.notes.append(f"cannot read saliency map {saliency}: {exc}")
    if bbox is not None and len(bbox) >= 4:
        img = draw_bbox(img, bbox, frame.original_size)
        if ring is not None and saliency is not None:
            img = draw_ring(img, bbox, ring, frame.original_size)
    frame.image = img
    return frame


# --- the widget ------------------------------------------------------------------------------------

def preload_image_support() -> None:
    """Import textual-image now: it queries the terminal (sixel, kitty graphics, cell size) on import,
    which only works before Textual starts reading the terminal. Call it before ``App.run()``."""
    import textual_image.widget  # noqa: F401


class _NotATerminal:
    """Stands in for ``sys.__stdout__`` while textual-image is imported late: it then asks nothing."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _textual_running() -> bool:
    from orienteer.tui.textual_compat import terminal_app_running

    return terminal_app_running()


def _import_widgets() -> tuple[Any, bool]:
    """textual-image's widget module, and whether it could probe the terminal.

    Imported after Textual took over a real terminal, textual-image's probes would be answered
    into Textual's input (the answer to "do you do sixel?" arrives as key presses, ``?`` among
    them). Then it is imported without probing, and ``auto`` falls back to half-cell blocks.
    """
    global _probed
    if "textual_image.renderable" in sys.modules or not _textual_running():
        import textual_image.widget as tiw

        return tiw, _probed
    real = sys.__stdout__
    sys.__stdout__ = _NotATerminal(real)  # type: ignore[misc,assignment]
    try:
        import textual_image.widget as tiw
    finally:
        sys.__stdout__ = real  # type: ignore[misc]
    _probed = False
    return tiw, False


_probed = True


def image_widget_class(mode: str) -> type[Widget] | None:
    """The textual-image widget class for an image mode (``None`` for ``none``)."""
    if mode == "none":
        return None
    tiw, probed = _import_widgets()
    auto = tiw.Image if probed else tiw.HalfcellImage
    classes: dict[str, Any] = {"auto": auto, "halfcell": tiw.HalfcellImage, "unicode": tiw.UnicodeImage}
    return classes.get(mode, auto)


def _cell_pixels() -> tuple[int, int]:
    """Width and height of a terminal cell in pixels (textual-image's probe; 10x20 when unknown)."""
    mod = sys.modules.get("textual_image._terminal")
    try:
        if mod is not None:
            size = mod.get_cell_size()
            if size.width > 0 and size.height > 0:
                return size.width, size.height
    except Exception:  # noqa: BLE001 - a closed stdout or odd terminal: use the default
        pass
    return 10, 20


def fit_cells(image_size: tuple[int, int], max_cols: int, max_rows: int,
              cell: tuple[int, int] | None = None) -> tuple[int, int]:
    """Columns and rows that show an image of ``image_size`` pixels as large as fits, keeping its shape."""
    w, h = image_size
    if w <= 0 or h <= 0 or max_cols <= 0 or max_rows <= 0:
        return 0, 0
    cw, ch = cell or _cell_pixels()
    cols_per_row = (w / h) * (ch / cw)
    rows = max_rows
    cols = max(1, round(rows * cols_per_row))
    if cols > max_cols:
        cols = max_cols
        rows = max(1, round(cols / cols_per_row))
    return cols, rows


class ItemImage(Vertical):
    """A caption line, then the picture (or a placeholder saying which file was expected)."""

    DEFAULT_CSS = """
    ItemImage {
        height: auto;
        width: 1fr;
    }
    ItemImage > #item-image-caption {
        height: auto;
        color: $text-muted;
    }
    ItemImage > #item-image-picture {
        width: 1;
        height: 1;
    }
    ItemImage > #item-image-placeholder {
        height: auto;
        border: round $warning;
        padding: 0 1;
    }
    """

    def __init__(self, mode: str = "auto", max_rows: int = 16, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.mode = mode if mode in IMAGE_MODES else "auto"
        self.max_rows = max_rows
        self.frame: PreparedFrame | None = None
        self.unavailable: str | None = None
        try:
            self._picture_class = image_widget_class(self.mode)
        except ImportError as exc:  # textual-image missing: paths and sizes only, as in the none mode
            self._picture_class = None
            self.unavailable = f"images off: {exc}"
        self._fitted: tuple[int, int] = (0, 0)

    def compose(self) -> ComposeResult:
        yield Static(id="item-image-caption")
        if self._picture_class is not None:
            yield self._picture_class(id="item-image-picture")
        yield Static(id="item-image-placeholder")

    @property
    def draws_pictures(self) -> bool:
        """False in the ``none`` mode (or without textual-image): only paths and sizes are shown."""
        return self._picture_class is not None

    @property
    def picture(self) -> Widget | None:
        """The textual-image widget (``None`` in the ``none`` image mode)."""
        found = self.query("#item-image-picture")
        return found.first() if found else None

    def show(self, frame: PreparedFrame, caption: Text | str = "") -> None:
        """Show a prepared frame under ``caption``; a frame with a problem shows the placeholder."""
        self.frame = frame
        # The caption's strings came from files: callers build it with safe_text (a str is shown as plain text).
        self.query_one("#item-image-caption", Static).update(text(caption) if isinstance(caption, str) else caption)
        placeholder = self.query_one("#item-image-placeholder", Static)
        picture = self.picture
        message = Text()
        if frame.problem:
            message.append(f"{visible(frame.problem)}\n", style="bold")
            message.append("expected at: ")
            message.append(visible(frame.path), style="underline")
        notes = [*frame.notes, *([self.unavailable] if self.unavailable else [])]
        for note in notes:
            if message:
                message.append("\n")
            message.append(visible(note), style="italic")
        placeholder.update(message)
        placeholder.display = bool(message)
        if picture is not None:
            picture.image = frame.image  # type: ignore[attr-defined]
            picture.display = frame.image is not None
            self._fit()

    def set_max_rows(self, rows: int) -> None:
        if rows != self.max_rows:
            self.max_rows = rows
            self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        picture = self.picture
        if picture is None or self.frame is None or self.frame.image is None:
            return
        max_cols = self.content_size.width or self.size.width
        if max_cols <= 0:
            return
        cols, rows = fit_cells(self.frame.image.size, max_cols, self.max_rows)
        cols, rows = max(1, cols), max(1, rows)
        if self._fitted != (cols, rows):
            self._fitted = (cols, rows)
            picture.styles.width = cols
            picture.styles.height = rows
