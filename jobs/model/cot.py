"""Chain-of-thought distillation: keep a teacher's rationale only when its final answer is the gold letter.

The student is scored like any generate-mode run, with the official ViewSpatial parser: the LAST line
of the reply, first ``\\b[A-D]\\b``. So the filter reads the teacher's reply with that same parser
(a hard target: the parsed letter must equal the gold letter), and every kept training target ends
in a line the parser reads back as the gold letter: ``"<rationale>\\nAnswer: X"``. A teacher line
that only restates the answer ("Answer: B", "The answer is (B) left.") is dropped from the rationale
so the target does not say it twice. Pure Python (no torch): the filter is tested on crafted replies.

Two ways to ask the teacher (``MODES``). ``solve``: the teacher answers the student's own prompt and
its reply is kept when it reaches the gold letter. ``rationalize``: the teacher is told the gold
option (``rationalize_text``, a prompt for the teacher only) and writes the explanation that leads
to it; the student still trains on the plain prompt, never on the one that gives the answer away.

With K samples per item (sampled decoding) an item is kept only when the MAJORITY of the K parsed
final letters (strictly more than half) is the gold letter: a teacher that reaches the answer
once in five tries is guessing, and its rationale teaches the guess. The kept rationale is the
first majority sample that passes the checks above. ``agreement`` (the share of samples that reach
the gold letter) is recorded per item and averaged per task.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orienteer.core.answers import viewspatial_letter
from orienteer.data.items import Item
from orienteer.jobs.model.prompt import PROMPTS, prompt_text
from orienteer.jobs.settings import COT_MODES
from orienteer.jobs.settings import RATIONALIZE as RATIONALIZE  # the mode names live in jobs.settings
from orienteer.jobs.settings import SOLVE as SOLVE

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
NO_MAJORITY = "no_majority"
NOT_CHOICE = "not_multiple_choice"
STATUSES = (KEPT, WRONG, UNPARSED, NO_RATIONALE, NO_MAJORITY, NOT_CHOICE)

MODES = COT_MODES
NO_TASK = "(no task)"
RATIONALIZE_HINT = ("\nThe correct answer is {letter}. {label}. Explain step by step, from the viewpoint the question "
                    "asks about, why it is correct, then give the final answer as the option letter on the last line.")


def rationalize_text(item: Item, style: str = "think") -> str:
    """The teacher-only user text of ``rationalize`` mode: the question and choices laid out as in
    ``style``, then the gold option and the request to explain it ("The correct answer is B. right.
    Explain step by step ... option letter on the last line."). Never a training prompt."""
    text = prompt_text(item, style)
    suffix = PROMPTS[style][0]
    if suffix and text.endswith(suffix):
        text = text[: len(text) - len(suffix)]
    letter = item.answer_letter or ""
    return text + RATIONALIZE_HINT.format(letter=letter, label=item.options.get(letter, ""))


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
    """One item's teacher reply (or K sampled replies) and what the filter made of it.

    ``letter``: the parsed letter of the one reply, or the commonest parsed letter of K samples;
    ``letters``: each sample's; ``agreement``: the share of samples whose letter is gold (None for
    free-form items); ``used``: which sample's rationale became the target (when kept)."""

    item_id: str
    status: str
    letter: str | None
    gold: str | None
    target: str | None = None
    task: str | None = None
    letters: tuple[str | None, ...] = ()
    agreement: float | None = None
    used: int | None = None


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


def judge_samples(item_id: str, samples: Sequence[str], gold: str | None, options: Mapping[str, str],
                  task: str | None = None) -> Judged:
    """Keep an item when strictly more than half of its K ``samples`` parse to ``gold``; its target is
    the rationale of the first such sample that ``judge`` keeps. One sample is judged as ``judge`` does."""
    if not samples:
        raise ValueError(f"item {item_id}: no teacher replies to judge")
    if not gold or not options:
        return Judged(item_id, NOT_CHOICE, None, gold, task=task)
    letters = tuple(final_letter(s) for s in samples)
    n_gold = sum(letter == gold for letter in letters)
    agreement = n_gold / len(samples)
    parsed = [letter for letter in letters if letter is not None]
    modal = max(parsed, key=parsed.count) if parsed else None  # ties: the first seen
    def judged(status: str, letter: str | None, target: str | None = None, used: int | None = None) -> Judged:
        return Judged(item_id, status, letter, gold, target, task=task, letters=letters, agreement=agreement, used=used)

    if 2 * n_gold <= len(samples):
        if len(samples) == 1:
            single = judge(item_id, samples[0], gold, options)
            return judged(single.status, single.letter)
        return judged(NO_MAJORITY, modal)
    for k, (reply, letter) in enumerate(zip(samples, letters)):
        if letter != gold:
            continue
        one = judge(item_id, reply, gold, options)
        if one.status == KEPT:
            return judged(KEPT, gold, one.target, used=k)
    return judged(NO_RATIONALE, gold)


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

    def tasks(self) -> dict[str, dict[str, Any]]:
        """Per task (in first-seen order): items ``tried`` (multiple-choice ones), ``kept``, and the mean
        ``agreement`` (share of an item's samples that reach the gold letter, averaged over its items)."""
        out: dict[str, dict[str, Any]] = {}
        for j in self.judged:
            if j.agreement is None:
                continue
            row = out.setdefault(j.task or NO_TASK, {"tried": 0, "kept": 0, "agreement": 0.0})
            row["tried"] += 1
            row["kept"] += j.status == KEPT
            row["agreement"] += j.agreement
        for row in out.values():
            row["agreement"] = round(row["agreement"] / row["tried"], 4)
        return out

    @property
    def agreement(self) -> float | None:
        """Mean agreement over every multiple-choice item (None when there is none)."""
        values = [j.agreement for j in self.judged if j.agreement is not None]
        return round(sum(values) / len(values), 4) if values else None

    def composition(self) -> dict[str, Any]:
        counts = self.counts
        return {"n_items": self.n_items, "n_kept": counts[KEPT], "kept_share": round(self.kept_share, 4),
                "n_wrong": counts[WRONG], "n_unparsed": counts[UNPARSED], "n_no_rationale": counts[NO_RATIONALE],
                "n_no_majority": counts[NO_MAJORITY], "n_not_multiple_choice": counts[NOT_CHOICE],
                "agreement": self.agreement, "tasks": self.tasks()}


def filter_rationales(replies: Sequence[tuple[Any, ...]]) -> FilterReport:
    """Judge ``(item_id, reply or K replies, gold letter, options[, task])`` tuples, in order."""
    judged = []
    for item_id, reply, gold, options, *rest in replies:
        samples = [reply] if isinstance(reply, str) else list(reply)
        judged.append(judge_samples(item_id, samples, gold, options, rest[0] if rest else None))
    return FilterReport(judged)
