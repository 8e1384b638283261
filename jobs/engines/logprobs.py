"""Score mode through an endpoint: the option letters' probabilities from a one-token answer's logprobs.

The in-process score mode takes a softmax over the option letters' logits at the answer position
(``jobs.model.score``). A server's ``top_logprobs`` for the first generated token are those logits
shifted by one constant (the log of the whole vocabulary's normaliser), so a softmax over the letters'
log-probabilities gives exactly the same numbers. A letter is matched by its token text exactly (``"A"``,
the token the in-process path scores); a letter that is not among the top log-probabilities counts as
probability 0, and an answer with none of the item's letters among them has no probabilities (its reply
is the token the server chose, read by the parser like any generated reply). Pure Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orienteer.data.errors import OrienteerError


class NoLogprobs(OrienteerError):
    """The server answered without log-probabilities (it ignores ``logprobs``): score mode cannot work."""


@dataclass(frozen=True)
class LetterScores:
    letter: str | None  # the most probable option letter; None when no letter was among the top tokens
    probs: dict[str, float] | None
    text: str  # the reply text the server generated (one token)


def first_token_logprobs(response: dict[str, Any]) -> dict[str, float]:
    """``{token: logprob}`` of the first generated token's top candidates (the chosen token included).
    Raises ``NoLogprobs`` when the answer carries none."""
    choice = (response.get("choices") or [{}])[0]
    content = (choice.get("logprobs") or {}).get("content") if isinstance(choice, dict) else None
    if not content:
        raise NoLogprobs("the answer has no logprobs")
    first = content[0]
    out: dict[str, float] = {}
    for entry in [*(first.get("top_logprobs") or []), first]:
        token, logprob = entry.get("token"), entry.get("logprob")
        if isinstance(token, str) and isinstance(logprob, (int, float)) and token not in out:
            out[token] = float(logprob)
    if not out:
        raise NoLogprobs("the answer's logprobs list no tokens")
    return out


def letter_scores(response: dict[str, Any], letters: Sequence[str]) -> LetterScores:
    """The item's option letters scored from ``response`` (softmax over their log-probabilities)."""
    from orienteer.jobs.model.generate import clean_reply
    from orienteer.jobs.model.score import scored_from_probs

    top = first_token_logprobs(response)
    text = clean_reply(str(((response.get("choices") or [{}])[0].get("message") or {}).get("content") or ""))
    found = [top.get(letter) for letter in letters]
    known = [lp for lp in found if lp is not None]
    if not known:
        return LetterScores(None, None, text)
    peak = max(known)
    weights = [math.exp(lp - peak) if lp is not None else 0.0 for lp in found]
    total = sum(weights)
    scored = scored_from_probs(list(letters), [w / total for w in weights])
    return LetterScores(scored.letter, scored.probs, text)
