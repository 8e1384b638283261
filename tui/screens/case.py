"""The case view: one item of one run, pushed on top of any list (enter), paged with n/p.

Question, options (gold and predicted marked, probabilities as bars when the run scored
options), the raw reply, the error category, the image(s) with the reference box and an
optional saliency overlay, frame by frame, and this item's answers in every other run.
One ``case_detail`` query per item; images are read with Pillow and downscaled first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.widgets import Header, Static

from orienteer.data.errors import OrienteerError
from orienteer.data.images import resolve_image
from orienteer.data.queries.case import Artifact, CaseDetail
from orienteer.tui.labels import category_name, short_task
from orienteer.tui.safe_text import visible
from orienteer.tui.screens.base import OrienteerScreen
from orienteer.tui.widgets.bars import bar
from orienteer.tui.widgets.item_image import ItemImage, PreparedFrame, prepare_frame
from orienteer.tui.widgets.keybar import KeyBar

WIDE = 120  # columns from which text and image sit side by side
MAX_IMAGE_ROWS = 32  # side by side: the picture's height limit (more costs ~50 ms a case at 200x60)
PROB_BAR = 12
OUTCOME_STYLE = {"correct": "bold green", "wrong": "bold red", "unparsed": "bold yellow",
                 "invalid_option": "bold yellow"}


# --- text blocks (pure functions of a CaseDetail, so they are easy to test) --------------------------
# Every string of a CaseDetail came from a file: it enters Text objects only, through ``visible``
# (the question and the reply keep their line breaks; everything else is one line).

def question_text(d: CaseDetail) -> Text:
    text = Text()
    text.append(visible(d.question.strip(), multiline=True) or "(no question text)", style="bold")
    text.append(f"\n{visible(short_task(d.task))}", style="cyan")
    if short_task(d.task) != d.task:
        text.append(f" ({visible(d.task)})", style="dim")
    extra = [f"item {visible(d.item_id)}"]
    if d.source:
        extra.append(f"source {visible(d.source)}")
    text.append(" · " + " · ".join(extra), style="dim")
    return text


def options_text(d: CaseDetail) -> Text:
    """One line per option: letter, label, probability bar (when scored), gold and predicted marks."""
    text = Text()
    if not d.options:
        return Text("(no options)", style="dim")
    shown = [(letter, visible(label)) for letter, label in d.options]
    label_w = max(len(label) for _, label in shown)
    probs = d.probs or {}
    correct = d.letter is not None and d.letter == d.answer_letter
    for i, (letter, label) in enumerate(shown):
        gold, picked = letter == d.answer_letter, letter == d.letter
        if i:
            text.append("\n")
        style = "bold green" if gold else ("bold red" if picked else "")
        text.append(f" {visible(letter)}  ", style=style or "bold")
        text.append(label.ljust(label_w), style=style)
        if d.probs is not None:
            p = float(probs.get(letter, 0.0))
            text.append("  ")
            text.append_text(bar(p, PROB_BAR, style="green" if gold else ("red" if picked else "cyan")))
            text.append(f" {100 * p:5.1f}%")
        marks = []
        if gold:
            marks.append(("✓ gold", "green"))
        if picked:
            marks.append(("◀ predicted", "green" if correct else "red"))
        for mark, mstyle in marks:
            text.append(f"  {mark}", style=mstyle)
    if d.letter is not None and d.letter not in {letter for letter, _ in d.options}:
        text.append(f"\n predicted {visible(repr(d.letter))}, which is not an option", style="yellow")
    return text


def reply_text(d: CaseDetail) -> Text:
    text = Text("Reply", style="bold")
    if d.reply is None:
        text.append("  (no prediction from this run)", style="dim")
        return text
    text.append("\n")
    text.append(visible(d.reply, multiline=True) if d.reply.strip() else "(empty reply)",
                style="" if d.reply.strip() else "dim")
    return text


def verdict_text(d: CaseDetail) -> Text:
    text = Text()
    if d.outcome is None:
        text.append("not answered by this run", style="dim")
    else:
        text.append(d.outcome.replace("_", " "), style=OUTCOME_STYLE.get(d.outcome, "bold"))
        if d.letter is not None:
            label = f" {d.pred_label}" if d.pred_label else ""
            text.append(f" · answered {visible(d.letter)}{visible(label)}", style="")
        text.append(f" · gold {visible(d.answer_letter)}", style="")
    if d.category:
        text.append("\nCategory  ", style="bold")
        text.append(visible(category_name(d.category)), style="magenta")
    if d.reference_object or d.bbox:
        text.append("\nReference ", style="bold")
        text.append(visible(d.reference_object) or "(unnamed object)")
        if d.bbox:
            coords = ", ".join(f"{v:g}" for v in d.bbox[:4])
            text.append(f"  box [{coords}]", style="dim")
            if len(d.images) > 1:
                text.append(f" on frame {d.bbox_frame + 1}", style="dim")
            text.append(" (red)", style="red")
    if d.model:
        text.append(f"\nModel     {visible(d.model)}", style="dim")
    for art in d.artifacts:
        if art.kind != "saliency":
            continue
        # bbox_frame is 0-based in the data; the label below already names the frame (1-based, as everywhere here)
        metrics = {k: v for k, v in (art.metrics or {}).items() if k != "bbox_frame"}
        nums = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
        text.append(f"\nSaliency  frame {int(art.frame or 0) + 1}", style="bold")
        text.append(f"  {visible(nums)}" if nums else "", style="")
        text.append("  (v shows it)", style="dim")
    return text


def others_text(d: CaseDetail) -> Text:
    text = Text("Other runs", style="bold")
    if not d.other_runs:
        text.append("  (none on this benchmark)", style="dim")
        return text
    name_w = max(len(visible(o.run)) for o in d.other_runs)
    labels = dict(d.options)
    for o in d.other_runs:
        text.append(f"\n {visible(o.run).ljust(name_w)}  ")
        if o.outcome is None:
            text.append("no answer", style="dim")
            continue
        letter = o.letter
        label = o.pred_label or (labels.get(letter, "") if letter else "")
        text.append(visible(f"{letter or '-'} {label}".strip()), style="")
        if o.correct:
            text.append("  ✓", style="bold green")
        else:
            text.append(f"  ✗ {o.outcome.replace('_', ' ')}", style=OUTCOME_STYLE.get(o.outcome, "red"))
            if o.category and o.category not in ("unparsed", "invalid_option"):
                text.append(f" · {visible(category_name(o.category))}", style="magenta")
    return text


# --- the screen --------------------------------------------------------------------------------------

class CaseBody(VerticalScroll, can_focus=False):
    """The scrolling body; not focusable, so every key reaches the screen's bindings."""


class CaseScreen(OrienteerScreen):
    TITLE_TEXT = "Case"
    DEFAULT_CSS = """
    CaseScreen #case-body {
        height: 1fr;
    }
    CaseScreen #case-columns {
        layout: vertical;
        height: auto;
    }
    CaseScreen.-wide #case-columns {
        layout: horizontal;
    }
    CaseScreen #case-text {
        height: auto;
        width: 1fr;
        padding: 0 1;
    }
    CaseScreen #case-text > Static {
        height: auto;
        margin-bottom: 1;
    }
    CaseScreen #case-media {
        height: auto;
        width: 1fr;
        padding: 0 1;
    }
    CaseScreen.-wide #case-media {
        border-left: vkey $primary;
    }
    """
    BINDINGS = [
        Binding("escape", "app.back", "Back"),
        Binding("[,left", "prev_frame", "Prev frame"),
        Binding("],right", "next_frame", "Next frame"),
        Binding("n", "next_item", "Next item"),
        Binding("p", "prev_item", "Prev item"),
        Binding("v", "toggle_saliency", "Saliency"),
        Binding("j,down", "scroll_down", "Scroll down", show=False),
        Binding("k,up", "scroll_up", "Scroll up", show=False),
        Binding("pagedown,space", "page_down", "Page down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("home,g", "scroll_home", "Top", show=False),
        Binding("end,G", "scroll_end", "Bottom", show=False),
    ]

    def __init__(self, run: str, item_id: str, siblings: list[tuple[str, str]]) -> None:
        super().__init__()
        self.detail: CaseDetail | None = None
        self.frame = 0
        self.show_saliency = False
        self._frames: dict[tuple[int, bool], PreparedFrame] = {}
        self._cases_version = 0
        self.show_cases(run, item_id, siblings)

    def show_cases(self, run: str, item_id: str, siblings: list[tuple[str, str]]) -> None:
        """Show ``(run, item_id)`` of this list (n/p page through it); the app reuses one case screen."""
        self.case_list: list[tuple[str, str]] = list(siblings) or [(run, item_id)]
        if (run, item_id) not in self.case_list:
            self.case_list.insert(0, (run, item_id))
        self.index = self.case_list.index((run, item_id))
        self.frame = 0
        self.show_saliency = False
        self._cases_version += 1  # reload when shown again, even on the same data

    @property
    def run(self) -> str:
        return self.case_list[self.index][0]

    @property
    def item_id(self) -> str:
        return self.case_list[self.index][1]

    def compose(self) -> ComposeResult:
        # The layout class before the children mount: set later, it restyled and re-laid out them all.
        self.set_class(self.app.size.width >= WIDE, "-wide", update=False)
        yield Header()
        yield Static(id="case-title", classes="screen-title")
        with CaseBody(id="case-body"):
            with Horizontal(id="case-columns"):
                with Vertical(id="case-text"):
                    yield Static(id="case-question")
                    yield Static(id="case-options")
                    yield Static(id="case-reply")
                    yield Static(id="case-verdict")
                    yield Static(id="case-others")
                with Vertical(id="case-media"):
                    yield ItemImage(self.oapp.image_mode, id="case-image")
        yield KeyBar()

    @property
    def body(self) -> CaseBody:
        return self.query_one("#case-body", CaseBody)

    @property
    def item_image(self) -> ItemImage:
        return self.query_one("#case-image", ItemImage)

    # --- loading ---------------------------------------------------------------------------------

    def _stale_key(self) -> object:
        return self.oapp.state.generation, self._cases_version

    def reload(self) -> None:
        self._load(self.index)

    def _load(self, index: int) -> bool:
        run, item_id = self.case_list[index]
        oapp = self.oapp
        try:
            detail = oapp.cases.get(oapp.case_key(run, item_id),
                                    lambda: self.service.case_detail(run, item_id))
        except OrienteerError as exc:
            self.oapp.report_error(exc)
            if self.detail is None:
                self.app.call_later(self._leave)
            return False
        if self.detail is None or (self.detail.run, self.detail.item_id) != (detail.run, detail.item_id):
            self.frame = 0
        self.index = index
        self.detail = detail
        self._frames.clear()
        self._fill()
        # n and p come next: fetch those cases while the user reads this one
        oapp.prefetch_cases([self.case_list[i] for i in (index + 1, index - 1) if 0 <= i < len(self.case_list)])
        return True

    def _leave(self) -> None:
        if self.app.screen is self:
            self.app.pop_screen()

    def _fill(self) -> None:
        d = self.detail
        if d is None:
            return
        self.sub_title = visible(f"Case {d.item_id} · {d.run}")
        title = Text()
        title.append(visible(d.item_id), style="bold")
        title.append(f" in run {visible(d.run)}")
        title.append(f" · {visible(d.benchmark)}", style="dim")
        if len(self.case_list) > 1:
            title.append(f" · item {self.index + 1}/{len(self.case_list)} (n/p)")
        self.query_one("#case-title", Static).update(title)
        self.query_one("#case-question", Static).update(question_text(d))
        self.query_one("#case-options", Static).update(options_text(d))
        self.query_one("#case-reply", Static).update(reply_text(d))
        self.query_one("#case-verdict", Static).update(verdict_text(d))
        self.query_one("#case-others", Static).update(others_text(d))
        self._show_frame()
        self.body.scroll_home(animate=False)

    # --- images -----------------------------------------------------------------------------------

    def saliency_artifact(self, frame: int) -> Artifact | None:
        """This run and item's saliency map for ``frame`` (path, metrics), if one was made."""
        if self.detail is None:
            return None
        return next((art for art in self.detail.artifacts
                     if art.kind == "saliency" and int(art.frame or 0) == frame), None)

    def saliency_path(self, frame: int) -> Path | None:
        """The saliency map of this run and item for ``frame``, if one was made."""
        art = self.saliency_artifact(frame)
        if art is None:
            return None
        path = Path(str(art.path))
        return path if path.is_absolute() else self.oapp.workspace.root / path

    def ring_px(self, frame: int) -> int | None:
        """The ring saliency left out of the box on ``frame`` (``ring_px``; maps made before it have none)."""
        art = self.saliency_artifact(frame)
        ring = (art.metrics or {}).get("ring_px") if art is not None else None
        return ring if type(ring) is int and ring >= 0 else None

    def has_saliency(self) -> bool:
        return self.detail is not None and any(a.kind == "saliency" for a in self.detail.artifacts)

    def image_path(self, frame: int) -> Path:
        assert self.detail is not None
        relative = self.detail.images[frame]
        root = self.detail.image_root
        if root is None:
            return Path(relative)
        return resolve_image(root, relative)

    def prepared(self, frame: int) -> PreparedFrame:
        """The frame as handed to the image widget (cached per item, frame and overlay)."""
        assert self.detail is not None
        overlay = self.show_saliency and self.saliency_path(frame) is not None
        key = (frame, overlay)
        if key not in self._frames:
            d = self.detail
            path = self.image_path(frame)
            if d.image_root is None and not path.is_absolute():
                self._frames[key] = PreparedFrame(
                    path=path, problem=f"benchmark {d.benchmark!r} has no image folder recorded "
                                       "(re-import it with --images)")
            else:
                self._frames[key] = prepare_frame(
                    path, bbox=d.bbox if frame == d.bbox_frame else None,
                    saliency=self.saliency_path(frame) if overlay else None,
                    ring=self.ring_px(frame) if overlay else None,
                    decode=self.item_image.draws_pictures)
        return self._frames[key]

    def _show_frame(self) -> None:
        d = self.detail
        widget = self.item_image
        if d is None:
            return
        if not d.images:
            widget.show(PreparedFrame(path=Path("-"), problem="this item has no image"), "no image")
            return
        self.frame = max(0, min(self.frame, len(d.images) - 1))
        prepared = self.prepared(self.frame)
        caption = Text()
        if len(d.images) > 1:
            caption.append(f"frame {self.frame + 1}/{len(d.images)}", style="bold")
            caption.append("  ([ ] pages)  ", style="dim")
        caption.append(visible(d.images[self.frame]))
        if prepared.original_size:
            caption.append(f"  {prepared.original_size[0]}x{prepared.original_size[1]}", style="dim")
        if not widget.draws_pictures:
            caption.append(f"\n{visible(prepared.path)}", style="dim")
        if self.frame == d.bbox_frame and d.bbox and prepared.image is not None:
            caption.append("\nred box: ", style="red")
            caption.append(visible(d.reference_object) or "reference object")
            ring = self.ring_px(self.frame) if self.show_saliency else None
            if ring is not None:
                caption.append(f"\ncyan: inside edge of the {ring} px ring left out of mass_in_bbox", style="cyan")
        elif d.bbox and len(d.images) > 1:
            caption.append(f"\nthe red box is on frame {d.bbox_frame + 1}", style="dim")
        if self.show_saliency:
            saliency = self.saliency_path(self.frame)
            if saliency is None:
                caption.append("\nno saliency map for this frame", style="yellow")
            elif widget.draws_pictures:
                caption.append("\nsaliency overlay on", style="yellow")
            else:
                caption.append(f"\nsaliency map: {visible(saliency)}", style="yellow")
        widget.show(prepared, caption)

    # --- layout -----------------------------------------------------------------------------------

    def on_resize(self, event: Resize) -> None:
        self._layout(event.size.width, event.size.height)

    def _layout(self, width: int, height: int) -> None:
        wide = width >= WIDE
        self.set_class(wide, "-wide")
        # Side by side, the picture may take the height (a tall terminal gets a big one); stacked,
        # it stays short enough to keep the text in view. The body scrolls anyway.
        rows = max(8, min(MAX_IMAGE_ROWS if wide else 14, height - 8))
        self.item_image.set_max_rows(rows)

    def on_mount(self) -> None:
        # Textual then runs OrienteerScreen.on_mount too (handlers run along the MRO): it loads the item.
        self._layout(self.size.width or self.app.size.width, self.size.height or self.app.size.height)

    # --- actions ----------------------------------------------------------------------------------

    def action_next_frame(self) -> None:
        self._step_frame(+1)

    def action_prev_frame(self) -> None:
        self._step_frame(-1)

    def _step_frame(self, step: int) -> None:
        if self.detail is None:
            return
        n = len(self.detail.images)
        if n <= 1:
            self.notify("this item has a single image", timeout=2)
            return
        target = self.frame + step
        if not 0 <= target < n:
            self.notify(f"{'last' if step > 0 else 'first'} frame ({self.frame + 1}/{n})", timeout=2)
            return
        self.frame = target
        self._show_frame()

    def action_next_item(self) -> None:
        self._step_item(+1)

    def action_prev_item(self) -> None:
        self._step_item(-1)

    def _step_item(self, step: int) -> None:
        target = self.index + step
        if not 0 <= target < len(self.case_list):
            self.notify("last item of the list" if step > 0 else "first item of the list", timeout=2)
            return
        self._load(target)

    def action_toggle_saliency(self) -> None:
        if not self.has_saliency():
            self.show_saliency = False
            self.notify("no saliency map for this item", timeout=3)
            return
        self.show_saliency = not self.show_saliency
        self._show_frame()

    # Scrolls apply at once (not after the next refresh), so a burst of key presses adds up.
    def _scroll_by(self, rows: int) -> None:
        body = self.body
        body.scroll_to(y=max(0, min(body.max_scroll_y, body.scroll_y + rows)), animate=False, immediate=True)

    def action_scroll_down(self) -> None:
        self._scroll_by(2)

    def action_scroll_up(self) -> None:
        self._scroll_by(-2)

    def action_page_down(self) -> None:
        self._scroll_by(max(1, self.body.scrollable_content_region.height - 1))

    def action_page_up(self) -> None:
        self._scroll_by(-max(1, self.body.scrollable_content_region.height - 1))

    def action_scroll_home(self) -> None:
        self.body.scroll_home(animate=False, immediate=True)

    def action_scroll_end(self) -> None:
        self.body.scroll_end(animate=False, immediate=True)

    # --- for tests and callers ----------------------------------------------------------------------

    def shown_image(self) -> Any:
        """The PIL image the image widget is drawing now (``None`` when there is none)."""
        frame = self.item_image.frame
        return frame.image if frame is not None else None
