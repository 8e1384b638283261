"""Chain-of-thought distillation: keep a teacher's rationale only when its final answer is the gold letter.

The student is scored like any generate-mode run, with the official ViewSpatial parser: the LAST line
of the reply, first ``\\b[A-D]\\b``. So the filter reads the teacher's reply with that same parser
(a hard target: the parsed letter must equal the gold letter), and every kept training target ends
in a line the parser reads back as the gold letter: ``"<rationale>\\nAnswer: X"``. A teacher line
that only restates the answer ("Answer: B", "The answer is (B) left.") is dropped from the rationale
so the target does not say it twice. Pure Python (no torch): the filter is tested on crafted replies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orienteer.core.answers import viewspatial_letter

# Words an answer-only line may hold besides the letter and the option's label.
_ANSWER_WORDS = re.compile(
    r"\b(?:so|thus|therefore|hence|the|final|correct|answer|answers|option|choice|is|would|be|my|it|its|it.s)\b",
    re.IGNORECASE,
)
_PUNCT = re.compile(r"[\s:：.,;!()\[\]*\"'`-]+")

KEPT = "kept"
WRONG = "wrong"
UNPARSED = "unparsed"
NO_RATIONALE = "no_rationale"
NOT_CHOICE = "not_multiple_choice"
STATUSES = (KEPT, WRONG, UNPARSED, NO_RATIONALE, NOT_CHOICE)


def final_letter(reply: str) -> str | None:
    """The letter the official parser reads from the reply (trailing blank lines ignored)."""
    return viewspatial_letter(reply.rstrip())


def answer_target(letter: str) -> str:
    """The last line of every kept target."""
    return f"Answer: {letter}"


def is_answer_line(line: str, letter: str, options: Mapping[str, str]) -> bool:
    """True when ``line`` says nothing but the answer ("Answer: B", "(B) left", "The final answer is B.")."""
    rest = line
    label = options.get(letter)
    if label:
        rest = re.sub(re.escape(label), " ", rest, flags=re.IGNORECASE)
    rest = re.sub(rf"\b{re.escape(letter)}\b", " ", rest, flags=re.IGNORECASE)
    rest = _ANSWER_WORDS.sub(" ", rest)
    return _PUNCT.sub("", rest) == ""


def split_rationale(reply: str, letter: str, options: Mapping[str, str]) -> str:
    """The reasoning part of a reply: without trailing blank lines and without a final answer-only line."""
    lines = reply.rstrip().split("\n")
    if lines and is_answer_line(lines[-1], letter, options):
        lines = lines[:-1]
    return "\n".join(lines).strip()


def cot_target(rationale: str, letter: str) -> str:
    return f"{rationale}\n{answer_target(letter)}"


@dataclass(frozen=True)
class Judged:
    """One teacher reply and what the filter made of it."""

    item_id: str
    status: str
    letter: str | None
    gold: str | None
    target: str | None = None


def judge(item_id: str, reply: str, gold: str | None, options: Mapping[str, str]) -> Judged:
    """Keep ``reply`` when its final answer parses to ``gold`` and some reasoning precedes it."""
    if not gold or not options:
        return Judged(item_id, NOT_CHOICE, None, gold)
    letter = final_letter(reply)
    if letter is None:
        return Judged(item_id, UNPARSED, None, gold)
    if letter != gold:
        return Judged(item_id, WRONG, letter, gold)
    rationale = split_rationale(reply, letter, options)
    if not rationale:
        return Judged(item_id, NO_RATIONALE, letter, gold)
    return Judged(item_id, KEPT, letter, gold, cot_target(rationale, letter))


@dataclass
class FilterReport:
    judged: list[Judged] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(j.status == s for j in self.judged) for s in STATUSES}

    @property
    def n_items(self) -> int:
        return len(self.judged)

    @property
    def n_kept(self) -> int:
        return self.counts[KEPT]

    @property
    def kept_share(self) -> float:
        return self.n_kept / self.n_items if self.n_items else 0.0

    def composition(self) -> dict[str, Any]:
        counts = self.counts
        return {"n_items": self.n_items, "n_kept": counts[KEPT], "kept_share": round(self.kept_share, 4),
                "n_wrong": counts[WRONG], "n_unparsed": counts[UNPARSED], "n_no_rationale": counts[NO_RATIONALE],
                "n_not_multiple_choice": counts[NOT_CHOICE]}


def filter_rationales(replies: Sequence[tuple[str, str, str | None, Mapping[str, str]]]) -> FilterReport:
    """Judge ``(item_id, reply, gold letter, options)`` tuples; the report keeps them in order."""
    return FilterReport([judge(item_id, reply, gold, options) for item_id, reply, gold, options in replies])
