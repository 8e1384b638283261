"""Open-vocabulary detection behind one small interface: find "the man in red clothes" in an image.

The box-prompt job asks a detector for boxes around a phrase. The real detector is Ultralytics
YOLO-World, which needs a weights file *and* the CLIP text encoder (its package and weights) when
it is told a new phrase; nothing can be downloaded, so it refuses in one line when any of them is
missing. Tests use a YOLO model built from its yaml (random weights) through the same adapter
code, or the deterministic detectors below. ``ultralytics`` is imported only inside functions.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from orienteer.data.errors import OrienteerError
from orienteer.data.images import to_rgb


@dataclass(frozen=True)
class Box:
    """A detection in pixel coordinates of the image it was found in (x1, y1 top-left; x2, y2 bottom-right)."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    label: str

    def as_list(self) -> list[float]:
        return [float(self.x1), float(self.y1), float(self.x2), float(self.y2)]


class Detector(Protocol):
    def detect(self, image: Any, phrase: str) -> list[Box]:
        """Boxes for ``phrase`` in ``image`` (a PIL image), best first or in any order."""
        ...


def best_box(boxes: Sequence[Box], min_score: float = 0.0) -> Box | None:
    """The highest-scoring box at or above ``min_score``, or None."""
    kept = [b for b in boxes if b.score >= min_score]
    return max(kept, key=lambda b: b.score) if kept else None


class FixedDetector:
    """Gives the boxes it was built with, per phrase (or for every phrase): for tests."""

    def __init__(self, boxes: Mapping[str, Sequence[Box]] | Sequence[Box]) -> None:
        self._boxes = boxes

    def detect(self, image: Any, phrase: str) -> list[Box]:
        if isinstance(self._boxes, Mapping):
            return list(self._boxes.get(phrase, ()))
        return list(self._boxes)


class CenterDetector:
    """A deterministic stand-in: the central half of the image (score 1.0), whatever the phrase.

    It makes the whole box-prompt pipeline runnable and testable without weights; its boxes mean
    nothing about the image, so a benchmark made with it is only for trying the plumbing.
    """

    def detect(self, image: Any, phrase: str) -> list[Box]:
        width, height = image.size
        return [Box(width / 4, height / 4, width * 3 / 4, height * 3 / 4, 1.0, phrase)]


class UltralyticsDetector:
    """Adapter from an Ultralytics model's ``predict`` results to ``Box`` lists.

    With ``prompt_classes`` (YOLO-World) the model is told the phrase as its only class before
    predicting (``set_classes([phrase])``, cached while the phrase stays the same), so every box it
    returns is a box for the phrase; without it (a closed-vocabulary YOLO, used in tests) the
    boxes carry the model's own class names.
    """

    def __init__(
        self,
        model: Any,
        *,
        conf: float = 0.05,
        device: str = "cpu",
        imgsz: int = 640,
        prompt_classes: bool = True,
    ) -> None:
        self.model = model
        self.conf = conf
        self.device = device
        self.imgsz = imgsz
        self.prompt_classes = prompt_classes
        self._phrase: str | None = None

    def detect(self, image: Any, phrase: str) -> list[Box]:
        if self.prompt_classes and phrase != self._phrase:
            self.model.set_classes([phrase])
            self._phrase = phrase
        results = self.model.predict(
            to_rgb(image), conf=self.conf, device=self.device, imgsz=self.imgsz, verbose=False
        )
        return boxes_from_result(results[0], phrase if self.prompt_classes else None)


def boxes_from_result(result: Any, phrase: str | None = None) -> list[Box]:
    """Ultralytics ``Results`` -> boxes in the original image's pixels (``xyxy`` is already there)."""
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return []
    xyxy = boxes.xyxy.detach().cpu().tolist()
    scores = boxes.conf.detach().cpu().tolist()
    classes = boxes.cls.detach().cpu().tolist()
    names = result.names or {}
    out = []
    for (x1, y1, x2, y2), score, cls in zip(xyxy, scores, classes):
        label = phrase if phrase is not None else str(names.get(int(cls), int(cls)))
        out.append(Box(x1, y1, x2, y2, float(score), label))
    return sorted(out, key=lambda b: -b.score)


def clip_weights_path() -> Path:
    """Where Ultralytics' CLIP wrapper looks for the ViT-B/32 text encoder (it would download it there)."""
    from ultralytics.utils import WEIGHTS_DIR

    return Path(WEIGHTS_DIR) / "clip" / "ViT-B-32.pt"


def check_yolo_world_ready(weights: Path) -> None:
    """Refuse, in one line, anything that would make YOLO-World try to download."""
    if not weights.is_file():
        raise OrienteerError(f"YOLO-World weights {weights} not found (expected a .pt file such as yolov8s-worldv2.pt; "
                             "nothing is downloaded)")
    if importlib.util.find_spec("clip") is None:
        raise OrienteerError("YOLO-World needs the CLIP text encoder to read phrases: install the 'clip' package "
                             "(git+https://github.com/ultralytics/CLIP.git) on the machine that runs the job")
    clip_file = clip_weights_path()
    if not clip_file.is_file():
        raise OrienteerError(f"YOLO-World needs the CLIP ViT-B/32 weights at {clip_file} (nothing is downloaded; "
                             "copy ViT-B-32.pt there)")


def yolo_world_detector(
    weights: Path | str, *, conf: float = 0.05, device: str = "cpu", imgsz: int = 640,
    check: Callable[[Path], None] = check_yolo_world_ready,
) -> UltralyticsDetector:
    """The real detector: ``ultralytics.YOLOWorld(weights)`` prompted with each phrase."""
    path = Path(weights).expanduser()
    check(path)
    from ultralytics import YOLOWorld

    return UltralyticsDetector(YOLOWorld(str(path)), conf=conf, device=device, imgsz=imgsz, prompt_classes=True)


DETECTORS = ("yolo-world", "center")


def make_detector(name: str, weights: str | None, *, conf: float, device: str) -> Detector:
    """The detector a box-prompt job asked for: ``yolo-world`` (needs ``--weights``) or ``center``."""
    if name == "yolo-world":
        if not weights:
            raise OrienteerError("box-prompt: --weights is required for the yolo-world detector "
                                 "(a YOLO-World .pt file; nothing is downloaded)")
        return yolo_world_detector(weights, conf=conf, device=device)
    if name == "center":
        return CenterDetector()
    raise OrienteerError(f"box-prompt: unknown detector {name!r} (expected one of {', '.join(DETECTORS)})")
