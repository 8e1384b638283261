"""Pillow renderer for the demo benchmark: tiny 2.5D rooms in which the gold answer is true.

The demo workspace needs real pictures (the item viewer shows them, saliency jobs read them),
but it must build in seconds with nothing but Pillow. So a scene is a handful of labelled
billboards standing on a floor plane, seen by a pin-hole camera:

* world axes: ``x`` to the right of the default camera, ``y`` away from it (depth), ``z`` up;
* a yaw of 0 degrees looks (or faces) along ``+y``, 90 degrees along ``+x``: turning right
  increases the yaw, so a label's angle (front 0, right 90, back 180, left -90) adds to it;
* farther things stand higher on the floor (closer to the horizon) and are drawn smaller.

Layout (`place`) is pure arithmetic and runs in the calling process; drawing (`render`) only
turns a layout into pixels, so it can run in worker processes without changing any number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 320, 240
FOCAL = 220.0  # pixels; about 72 degrees of horizontal field of view
HORIZON = 80.0  # image row of the horizon (the camera looks level)
CAM_HEIGHT = 2.2  # metres above the floor
JPEG_QUALITY = 85
NEAR = 0.8  # metres; nothing closer than this is drawn

Color = tuple[int, int, int]
Box = tuple[float, float, float, float]

LABEL_ANGLES: dict[str, float] = {
    "front": 0.0, "front-right": 45.0, "right": 90.0, "back-right": 135.0,
    "back": 180.0, "back-left": -135.0, "left": -90.0, "front-left": -45.0,
}
"""Yaw offset of each horizontal label inside a frame whose front is yaw 0."""


def unit(yaw_deg: float) -> tuple[float, float]:
    """The floor-plane unit vector of a yaw (0 = +y, 90 = +x)."""
    rad = math.radians(yaw_deg)
    return math.sin(rad), math.cos(rad)


def wrap(angle_deg: float) -> float:
    """An angle folded into [-180, 180)."""
    return (angle_deg + 180.0) % 360.0 - 180.0


def yaw_of(dx: float, dy: float) -> float:
    """The yaw of a floor-plane vector (inverse of `unit`)."""
    return math.degrees(math.atan2(dx, dy))


@dataclass(frozen=True)
class Camera:
    """A level pin-hole camera standing on the floor plane at (x, y), looking along `yaw`."""

    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0

    def to_camera(self, x: float, y: float) -> tuple[float, float]:
        """(lateral, depth) of a floor point: lateral > 0 is to the camera's right."""
        fx, fy = unit(self.yaw)
        dx, dy = x - self.x, y - self.y
        return dx * fy - dy * fx, dx * fx + dy * fy

    def project(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        """(u, v, depth) of a world point; only meaningful when depth > 0."""
        lateral, depth = self.to_camera(x, y)
        depth = max(depth, 1e-6)
        return (WIDTH / 2 + FOCAL * lateral / depth, HORIZON + FOCAL * (CAM_HEIGHT - z) / depth, depth)


# --------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class Kind:
    """What a thing looks like: size in metres, base colour, whether it is a person."""

    width: float
    height: float
    color: Color
    person: bool = False


KINDS: dict[str, Kind] = {
    "chair": Kind(0.55, 0.9, (176, 96, 48)),
    "table": Kind(1.0, 0.75, (150, 105, 60)),
    "lamp": Kind(0.45, 0.95, (230, 200, 60)),
    "ball": Kind(0.42, 0.42, (220, 60, 50)),
    "plant": Kind(0.55, 0.85, (60, 150, 70)),
    "box": Kind(0.6, 0.5, (190, 150, 90)),
    "TV": Kind(0.95, 0.75, (40, 40, 50)),
    "cup": Kind(0.32, 0.32, (70, 130, 210)),
    "sofa": Kind(1.4, 0.8, (90, 110, 170)),
    "bag": Kind(0.45, 0.45, (120, 60, 140)),
    "bookshelf": Kind(0.8, 1.5, (120, 80, 50)),
    "suitcase": Kind(0.5, 0.7, (60, 90, 110)),
    "man": Kind(0.55, 1.78, (60, 90, 160), person=True),
    "woman": Kind(0.5, 1.66, (190, 60, 90), person=True),
    "boy": Kind(0.45, 1.32, (70, 140, 70), person=True),
    "girl": Kind(0.42, 1.26, (220, 130, 40), person=True),
}
OBJECT_KINDS: tuple[str, ...] = tuple(k for k, v in KINDS.items() if not v.person)
PERSON_KINDS: tuple[str, ...] = tuple(k for k, v in KINDS.items() if v.person)
HELD_KINDS: tuple[str, ...] = ("cup", "phone", "ball", "bag")
HELD_COLORS: dict[str, Color] = {"cup": (70, 130, 210), "phone": (30, 30, 30), "ball": (220, 60, 50), "bag": (120, 60, 140)}


@dataclass(frozen=True)
class Thing:
    """One object or person of a scene, in world coordinates (metres, degrees).

    ``z`` is the elevation of the thing's base (objects above the floor sit on a shelf).
    People use ``yaw`` (body facing), ``head_turn`` (head yaw relative to the body, + = to
    their right) and ``held`` ("left:cup": what the hand on that side holds).
    """

    name: str
    kind: str
    x: float
    y: float
    z: float = 0.0
    role: str = "other"
    color: Color | None = None
    yaw: float = 180.0
    head_turn: float = 0.0
    held: str | None = None


@dataclass(frozen=True)
class Placed:
    """Where a thing landed in one image: pixel box, floor contact point and depth."""

    thing: Thing
    bbox: tuple[int, int, int, int]
    ground: tuple[float, float]
    depth: float

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.bbox
        return (x0 + x1) / 2, (y0 + y1) / 2

    def record(self) -> dict:
        """JSON-ready description, written to the demo's scene layout file."""
        t = self.thing
        rec = {
            "name": t.name, "kind": t.kind, "role": t.role, "bbox": list(self.bbox),
            "ground": [round(self.ground[0], 2), round(self.ground[1], 2)], "depth": round(self.depth, 3),
            "world": [round(t.x, 3), round(t.y, 3), round(t.z, 3)],
        }
        if KINDS[t.kind].person:
            rec.update(yaw=round(t.yaw, 1), head_turn=round(t.head_turn, 1), held=t.held)
        return rec


def place(thing: Thing, camera: Camera) -> Placed | None:
    """Project one thing; None when it is behind (or too close to) the camera."""
    kind = KINDS[thing.kind]
    u, v_base, depth = camera.project(thing.x, thing.y, thing.z)
    if depth < NEAR:
        return None
    _, v_ground, _ = camera.project(thing.x, thing.y, 0.0)
    half_w = FOCAL * kind.width / depth / 2
    height = FOCAL * kind.height / depth
    bbox = (round(u - half_w), round(v_base - height), round(u + half_w), round(v_base))
    return Placed(thing, bbox, (u, v_ground), depth)


def place_all(things: Sequence[Thing], camera: Camera) -> list[Placed]:
    """Project every visible thing, in the order given."""
    return [p for p in (place(t, camera) for t in things) if p is not None]


def inside(placed: Placed, margin: int = 2) -> bool:
    """True when the thing (and its label above it) lies fully inside the image."""
    x0, y0, x1, y1 = placed.bbox
    return x0 >= margin and x1 <= WIDTH - margin and y0 >= TAG_HEIGHT and y1 <= HEIGHT - margin


TAG_HEIGHT = 12  # pixels of name tag drawn above each thing


def overlap(a: Placed, b: Placed, tags: bool = False) -> float:
    """Fraction of the smaller box covered by the other (0 = apart, 1 = one hides in the other);
    with `tags`, each box grows upward by its name tag, so labels do not hide things either."""
    ax0, ay0, ax1, ay1 = a.bbox
    bx0, by0, bx1, by1 = b.bbox
    if tags:
        ay0, by0 = ay0 - TAG_HEIGHT, by0 - TAG_HEIGHT
    w = min(ax1, bx1) - max(ax0, bx0)
    h = min(ay1, by1) - max(ay0, by0)
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((ax1 - ax0) * (ay1 - ay0), (bx1 - bx0) * (by1 - by0))
    return w * h / max(smaller, 1)


# --------------------------------------------------------------------------- drawing

PALETTES: tuple[tuple[Color, Color, Color], ...] = (
    # wall top, wall bottom, floor
    ((214, 222, 232), (188, 198, 212), (196, 170, 132)),
    ((236, 226, 206), (214, 200, 176), (150, 150, 156)),
    ((206, 226, 214), (180, 204, 190), (178, 146, 112)),
    ((232, 214, 214), (208, 186, 188), (164, 172, 150)),
)


def _shade(color: Color, factor: float) -> Color:
    return tuple(max(0, min(255, int(c * factor))) for c in color)  # type: ignore[return-value]


@lru_cache(maxsize=None)
def _background(style: int) -> Image.Image:
    """Wall and floor gradients; cached per process because every image starts from one."""
    top, bottom, floor = PALETTES[style % len(PALETTES)]
    img = Image.new("RGB", (WIDTH, HEIGHT), floor)
    draw = ImageDraw.Draw(img)
    horizon = int(HORIZON)
    for row in range(horizon):
        t = row / max(horizon - 1, 1)
        draw.line([(0, row), (WIDTH, row)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    for row in range(horizon, HEIGHT):
        t = (row - horizon) / (HEIGHT - horizon)
        draw.line([(0, row), (WIDTH, row)], fill=_shade(floor, 0.86 + 0.22 * t))
    draw.line([(0, horizon), (WIDTH, horizon)], fill=_shade(bottom, 0.7), width=2)
    return img


def _floor_grid(draw: ImageDraw.ImageDraw, camera: Camera, style: int) -> None:
    """One-metre floor tiles, so depth reads from the picture; clipped at the near plane."""
    line_color = _shade(PALETTES[style % len(PALETTES)][2], 0.78)
    cx, cy = round(camera.x), round(camera.y)
    span = 12
    for k in range(-span, span + 1):
        for a, b in (((cx + k, cy - span), (cx + k, cy + span)), ((cx - span, cy + k), (cx + span, cy + k))):
            seg = _clip_to_view(camera, a, b)
            if seg is not None:
                draw.line(seg, fill=line_color, width=1)


def _clip_to_view(camera: Camera, a: tuple[float, float], b: tuple[float, float]):
    """The visible pixel segment of a floor line, or None when it lies behind the camera."""
    (la, da), (lb, db) = camera.to_camera(*a), camera.to_camera(*b)
    if da < NEAR and db < NEAR:
        return None
    if da < NEAR or db < NEAR:
        t = (NEAR - da) / (db - da)
        lc = la + (lb - la) * t
        if da < NEAR:
            la, da = lc, NEAR
        else:
            lb, db = lc, NEAR
    to_px = lambda lat, dep: (WIDTH / 2 + FOCAL * lat / dep, HORIZON + FOCAL * CAM_HEIGHT / dep)  # noqa: E731
    return [to_px(la, da), to_px(lb, db)]


@lru_cache(maxsize=256)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=512)
def _text_mask(text: str) -> Image.Image:
    """A cached 1-channel stamp of a label; pasting it is 20x faster than drawing text."""
    font = _font(10)
    x0, y0, x1, y1 = font.getbbox(text)
    mask = Image.new("L", (int(x1 - x0) + 4, int(y1 - y0) + 4), 0)
    ImageDraw.Draw(mask).text((2 - x0, 2 - y0), text, fill=255, font=font)
    return mask


def _label(img: Image.Image, draw: ImageDraw.ImageDraw, text: str, cx: float, top: float) -> None:
    """The thing's name on a white tag just above it."""
    mask = _text_mask(text)
    w, h = mask.size
    x = int(min(max(cx - w / 2, 0), WIDTH - w))
    y = int(max(top - h - 1, 0))
    draw.rectangle((x, y, x + w - 1, y + h - 1), fill=(250, 250, 246))
    img.paste((25, 25, 30), (x, y, x + w, y + h), mask)


def _draw_shadow(draw: ImageDraw.ImageDraw, placed: Placed, style: int) -> None:
    u, v = placed.ground
    x0, _, x1, _ = placed.bbox
    rx = max((x1 - x0) * 0.42, 2)
    ry = max(rx * 0.22, 1)
    draw.ellipse((u - rx, v - ry, u + rx, v + ry), fill=_shade(PALETTES[style % len(PALETTES)][2], 0.62))


def _draw_shelf(draw: ImageDraw.ImageDraw, box: Box) -> None:
    """A floating shelf board under an elevated object (the floor shadow marks where it is)."""
    x0, y0, x1, y1 = box
    pad = (x1 - x0) * 0.18
    thick = max((y1 - y0) * 0.08, 2)
    draw.rectangle((x0 - pad, y1, x1 + pad, y1 + thick), fill=(110, 80, 55), outline=(70, 50, 35))


def _chair(d: ImageDraw.ImageDraw, b: Box, c: Color) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    dark = _shade(c, 0.7)
    d.rectangle((x0 + w * 0.1, y0, x0 + w * 0.3, y1), fill=dark)
    d.rectangle((x1 - w * 0.3, y0 + h * 0.45, x1 - w * 0.1, y1), fill=dark)
    d.rectangle((x0 + w * 0.1, y0, x1 - w * 0.35, y0 + h * 0.45), fill=c)
    d.rectangle((x0, y0 + h * 0.45, x1, y0 + h * 0.58), fill=c, outline=dark)


def _table(d: ImageDraw.ImageDraw, b: Box, c: Color) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    dark = _shade(c, 0.7)
    d.rectangle((x0 + w * 0.08, y0 + h * 0.1, x0 + w * 0.16, y1), fill=dark)
    d.rectangle((x1 - w * 0.16, y0 + h * 0.1, x1 - w * 0.08, y1), fill=dark)
    d.rectangle((x0, y0, x1, y0 + h * 0.16), fill=c, outline=dark)


def _lamp(d: ImageDraw.ImageDraw, b: Box, c: Color) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    d.rectangle((cx - w * 0.3, y1 - h * 0.06, cx + w * 0.3, y1), fill=(70, 70, 70))
    d.rectangle((cx - max(w * 0.04, 0.5), y0 + h * 0.35, cx + max(w * 0.04, 0.5), y1), fill=(90, 90, 90))
    d.polygon([(x0 + w * 0.25, y0), (x1 - w * 0.25, y0), (x1, y0 + h * 0.38), (x0, y0 + h * 0.38)],
              fill=c, outline=_shade(c, 0.7))


def _ball(d: ImageDraw.ImageDraw, b: Box, c: Color) -> None:
    x0, y0, x1, y1 = b
    d.ellipse(b, fill=c, outline=_shade(c, 0.6))
    d.arc((x0 + (x1 - x0) * 0.2, y0, x1 - (x1 - x0) * 0.2, y1), 270, 90, fill=(250, 250, 250))


def _plant(d: ImageDraw.ImageDraw, b: Box, c: Color) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    d.polygon([(x0 + w * 0.25, y1 - h * 0.35), (x1 - w * 0.25, y1 - h * 0.35), (x1 - w * 0.33, y1), (x0 + w * 0.33, y1)],
              fill=(160, 80, 50))
    for fx, fy in ((0.5, 0.0), (0.15, 0.2), (0.85, 0.2), (0.5, 0.3)):
        cx, cy = x0 + w * fx, y0 + h * fy
        d.ellipse((cx - w * 0.22, cy, cx + w * 0.22, cy + h * 0.38), fill=c, outline=_shade(c, 0.7))


def _box(d: ImageDraw.ImageDraw, b: Box, c: Color) -> None:
    x0, y0, x1, y1 = b
    h = y1 - y0
    d.rectangle(b, fill=c, outline=_shade(c, 0.6))
    d.line([(x0, y0 + h * 0.25), (x1, y0 + h * 0.25)], fill=_shade(c, 0.6))
    d.rectangle(((x0 + x1) / 2 - 1, y0, (x0 + x1) / 2 + 1, y0 + h * 0.25), fill=(230, 220, 190))


def _tv(d: ImageDraw.ImageDraw, b: Box, c: Color) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    d.rectangle((cx - w * 0.2, y1 - h * 0.08, cx + w * 0.2, y1), fill=(60, 60, 60))
    d.rectangle((cx - w * 0.04, y0 + h * 0.7, cx + w * 0.04, y1), fill=(60, 60, 60))
    d.rectangle((x0, y0, x1, y0 + h * 0.72), fill=c)
    d.rectangle((x0 + w * 0.06, y0 + h * 0.07, x1 - w * 0.06, y0 + h * 0.64), fill=(80, 140, 190))


def _cup(d: ImageDraw.ImageDraw, b: Box, c: Color) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    d.arc((x1 - w * 0.45, y0 + h * 0.2, x1, y0 + h * 0.65), 270, 90, fill=_shade(c, 0.7), width=max(int(w * 0.08), 1))
    d.polygon([(x0, y0), (x1 - w * 0.2, y0), (x1 - w * 0.3, y1), (x0 + w * 0.1, y1)], fill=c, outline=_shade(c, 0.6))


def _sofa(d: ImageDraw.ImageDraw, b: Box, c: Color) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    dark = _shade(c, 0.75)
    d.rectangle((x0 + w * 0.08, y0, x1 - w * 0.08, y0 + h * 0.55), fill=dark)
    d.rectangle((x0, y0 + h * 0.5, x1, y1 - h * 0.1), fill=c, outline=dark)
    d.rectangle((x0, y0 + h * 0.3, x0 + w * 0.1, y1 - h * 0.1), fill=dark)
    d.rectangle((x1 - w * 0.1, y0 + h * 0.3, x1, y1 - h * 0.1), fill=dark)


def _bag(d: ImageDraw.ImageDraw, b: Box, c: Color) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    d.arc((x0 + w * 0.25, y0, x1 - w * 0.25, y0 + h * 0.6), 180, 360, fill=_shade(c, 0.6), width=max(int(w * 0.08), 1))
    d.rounded_rectangle((x0, y0 + h * 0.3, x1, y1), radius=max(w * 0.12, 1), fill=c, outline=_shade(c, 0.6))


def _bookshelf(d: ImageDraw.ImageDraw, b: Box, c: Color) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    d.rectangle(b, fill=c, outline=_shade(c, 0.6))
    books = ((200, 60, 60), (60, 120, 200), (230, 190, 60), (80, 160, 90))
    for shelf in range(4):
        top = y0 + h * (0.05 + shelf * 0.24)
        d.rectangle((x0 + w * 0.08, top, x1 - w * 0.08, top + h * 0.18), fill=(70, 45, 30))
        for k in range(3):
            bx = x0 + w * (0.12 + k * 0.26)
            d.rectangle((bx, top + h * 0.03, bx + w * 0.18, top + h * 0.18), fill=books[(shelf + k) % 4])


def _suitcase(d: ImageDraw.ImageDraw, b: Box, c: Color) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    d.rectangle((x0 + w * 0.35, y0, x1 - w * 0.35, y0 + h * 0.15), outline=(40, 40, 40), width=max(int(w * 0.06), 1))
    d.rounded_rectangle((x0, y0 + h * 0.13, x1, y1), radius=max(w * 0.1, 1), fill=c, outline=_shade(c, 0.6))
    d.line([(x0 + w * 0.5, y0 + h * 0.2), (x0 + w * 0.5, y1 - h * 0.05)], fill=_shade(c, 0.7))


DRAWERS: dict[str, Callable[[ImageDraw.ImageDraw, Box, Color], None]] = {
    "chair": _chair, "table": _table, "lamp": _lamp, "ball": _ball, "plant": _plant, "box": _box,
    "TV": _tv, "cup": _cup, "sofa": _sofa, "bag": _bag, "bookshelf": _bookshelf, "suitcase": _suitcase,
}

SKIN: Color = (236, 196, 160)
HAIR: dict[str, Color] = {"man": (60, 40, 25), "woman": (120, 70, 30), "boy": (40, 30, 20), "girl": (170, 110, 40)}


def _person(d: ImageDraw.ImageDraw, b: Box, thing: Thing, camera: Camera) -> None:
    """A figure whose body and head yaws are readable: shoulders narrow in profile, the face
    (eyes, nose) shows only on the side turned to the camera, feet point where the body faces."""
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    shirt = thing.color or KINDS[thing.kind].color
    body_yaw = wrap(thing.yaw - camera.yaw)
    bs, bc = unit(body_yaw)  # bs > 0: faces screen-right; bc < 0: faces the camera
    head_s, head_c = unit(body_yaw + thing.head_turn)
    head_r = h * 0.1
    head_cy = y0 + head_r
    neck = y0 + 2 * head_r
    hip = y0 + h * 0.58
    half = w * 0.5 * (0.5 + 0.5 * abs(bc))
    # feet first when they point away (hidden behind the legs), last when they point at us
    foot = (cx + bs * w * 0.28, y1 - bc * h * 0.02)
    legs = (cx - half * 0.6, hip, cx + half * 0.6, y1)
    if bc >= 0:
        d.ellipse((foot[0] - w * 0.2, foot[1] - h * 0.025, foot[0] + w * 0.2, foot[1] + h * 0.025), fill=(40, 40, 40))
    d.rectangle(legs, fill=(50, 55, 80))
    d.line([(cx, hip + h * 0.03), (cx, y1)], fill=(30, 32, 50))
    if bc < 0:
        d.ellipse((foot[0] - w * 0.2, foot[1] - h * 0.025, foot[0] + w * 0.2, foot[1] + h * 0.025), fill=(40, 40, 40))
    # torso; a woman's and a girl's clothes flare into a skirt
    if thing.kind in ("woman", "girl"):
        d.polygon([(cx - half * 0.8, neck), (cx + half * 0.8, neck), (cx + half * 1.1, hip + h * 0.1),
                   (cx - half * 1.1, hip + h * 0.1)], fill=shirt)
    else:
        d.rectangle((cx - half, neck, cx + half, hip), fill=shirt)
    if bc < -0.2:  # buttons on the chest, shifted toward where the body turns
        bx = cx + bs * half * 0.5
        d.line([(bx, neck + h * 0.03), (bx, hip - h * 0.02)], fill=_shade(shirt, 0.55), width=max(int(w * 0.05), 1))
    # arms: the person's right hand is on screen-left when they face the camera
    right_dx = bc  # screen x of the person's right side per unit shoulder width (cos of yaw)
    for side in (1, -1):
        sx = cx + side * right_dx * half * 1.05
        hand = (cx + side * right_dx * half * 1.25, hip)
        d.line([(sx, neck + h * 0.03), hand], fill=_shade(shirt, 0.8), width=max(int(w * 0.12), 1))
        held = _held_item(thing, side)
        if held:
            r = max(w * 0.2, 2)
            d.rectangle((hand[0] - r, hand[1] - r * 0.4, hand[0] + r, hand[1] + r * 1.4),
                        fill=HELD_COLORS.get(held, (90, 90, 90)), outline=(20, 20, 20))
    # head: skin, hair on the side turned away, eyes and nose on the side turned to us
    hair = HAIR.get(thing.kind, (60, 40, 25))
    box = (cx - head_r, head_cy - head_r, cx + head_r, head_cy + head_r)
    d.ellipse(box, fill=SKIN)
    if head_c > 0.35:
        d.ellipse(box, fill=hair)
        if abs(head_s) > 0.4:  # turned away but sideways: a cheek shows on the facing side
            mid = 0 if head_s > 0 else 180
            d.pieslice(box, mid - 35, mid + 35, fill=SKIN)
    else:
        back = -head_s  # the back of the head is opposite the nose
        d.pieslice(box, 180, 360, fill=hair)
        if abs(back) > 0.3:
            start, end = (270, 90) if back > 0 else (90, 270)
            d.pieslice(box, start, end, fill=hair)
        eye_y = head_cy + head_r * 0.1
        spacing = head_r * 0.4 * min(1.0, -head_c * 1.6 + 0.25)
        eye_cx = cx + head_s * head_r * 0.45
        er = max(head_r * 0.13, 0.8)
        for k in ((-1, 1) if spacing > head_r * 0.12 else (0,)):
            ex = eye_cx + k * spacing
            d.ellipse((ex - er, eye_y - er, ex + er, eye_y + er), fill=(20, 20, 20))
        nose = _shade(SKIN, 0.75)
        if abs(head_s) > 0.25:  # profile or three-quarter: the nose sticks out sideways
            tip = cx + head_s * head_r * 1.25
            base = cx + head_s * head_r * 0.55
            d.polygon([(base, eye_y), (tip, eye_y + head_r * 0.35), (base, eye_y + head_r * 0.5)], fill=nose)
        else:  # frontal: nose and mouth on the middle line
            nr = max(head_r * 0.14, 0.8)
            d.ellipse((cx - nr, eye_y + head_r * 0.25, cx + nr, eye_y + head_r * 0.25 + 2 * nr), fill=nose)
            d.line([(cx - head_r * 0.3, eye_y + head_r * 0.6), (cx + head_r * 0.3, eye_y + head_r * 0.6)], fill=(150, 60, 60))


def _held_item(thing: Thing, side: int) -> str | None:
    """What the hand on `side` (+1 = the person's right) holds, if anything."""
    if not thing.held:
        return None
    hand, item = thing.held.split(":", 1)
    return item if (hand == "right") == (side == 1) else None


def draw_scene(things: Sequence[Thing], camera: Camera, style: int = 0) -> Image.Image:
    """Paint one view: background, floor tiles, then things far-to-near with labels."""
    img = _background(style).copy()
    draw = ImageDraw.Draw(img)
    _floor_grid(draw, camera, style)
    placed = sorted(place_all(things, camera), key=lambda p: -p.depth)
    for p in placed:
        _draw_shadow(draw, p, style)
    for p in placed:
        box = p.bbox
        if p.thing.z > 0.05:
            _draw_shelf(draw, box)
        if KINDS[p.thing.kind].person:
            _person(draw, box, p.thing, camera)
        else:
            DRAWERS[p.thing.kind](draw, box, p.thing.color or KINDS[p.thing.kind].color)
    for p in placed:
        _label(img, draw, p.thing.name, p.center[0], p.bbox[1])
    return img


def render(task: tuple[tuple[Thing, ...], Camera, int, str]) -> None:
    """Draw one view and save it as JPEG; takes one tuple so a process pool can map it."""
    things, camera, style, path = task
    draw_scene(things, camera, style).save(path, "JPEG", quality=JPEG_QUALITY)


def render_all(tasks: Sequence[tuple[tuple[Thing, ...], Camera, int, str]], workers: int = 1) -> None:
    """Render many views; with workers > 1 a forked pool splits them (same pixels either way)."""
    if workers <= 1 or len(tasks) < 64:
        for t in tasks:
            render(t)
        return
    import multiprocessing as mp

    try:
        ctx = mp.get_context("fork")
    except ValueError:  # platforms without fork: stay in-process rather than pay spawn start-up
        for t in tasks:
            render(t)
        return
    with ctx.Pool(workers) as pool:
        pool.map(render, tasks, chunksize=max(16, len(tasks) // (workers * 4)))
