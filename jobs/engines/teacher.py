"""The cot kind's teacher through an OpenAI-compatible server (``--engine openai``).

One request per item and sample, ``--concurrency`` at a time; each reply is appended to the cot kind's
resume file (``teacher_replies.jsonl``, the in-process path's records plus the model id the server
reported) as it arrives, so a re-run of the same spec asks only for what is missing. A sampled request
carries its own seed, a function of ``--seed``, the item and the sample number only, so a resumed job
asks the server exactly what an uninterrupted one would have (servers that honour ``seed``, as vLLM
does, then give the same replies).
"""

from __future__ import annotations

import functools
import threading
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.data.items import Item
from orienteer.jobs.context import JobContext
from orienteer.jobs.engines.options import OPENAI, api_model
from orienteer.jobs.engines.session import Ask, Progress, ask_all, describe_key, open_endpoint, served_model


def request_seed(seed: int, item_id: str, sample: int) -> int:
    """The seed of one sampled request: a function of the spec's seed, the item and the sample only."""
    return zlib.crc32(f"{seed}:{item_id}:{sample}".encode()) & 0x7FFFFFFF


def ask_teacher_openai(ctx: JobContext, spec: Any, items: Sequence[Item], root: Path,
                       samples: dict[str, dict[int, dict[str, Any]]], path: Path, done: int, total: int, unit: str,
                       temperature: float | None) -> None:
    """Fill ``samples`` (item id -> sample -> reply) with every missing reply, appending each to ``path``."""
    from orienteer.jobs.engines.request import chat_body, item_frames
    from orienteer.jobs.model.cot import rationalize_text
    from orienteer.jobs.model.generate import clean_reply
    from orienteer.jobs.model.images import PixelBudget
    from orienteer.jobs.model.job_files import append_records
    from orienteer.jobs.model.prompt import prompt_text
    from orienteer.jobs.settings import RATIONALIZE

    served, _ = served_model(ctx, spec.serve, spec.teacher)  # a LoRA teacher with --serve: merged into its base
    name = api_model(spec, served)
    sizing = PixelBudget(spec.max_pixels or 640 * 480)
    lock = threading.Lock()

    @functools.lru_cache(maxsize=64)
    def frames_of(item_id: str) -> Any:
        try:
            return item_frames(by_id[item_id], root, sizing)
        except OrienteerError as exc:
            raise OrienteerError(f"cot: {exc}") from None

    def text_of(item: Item) -> str:
        return rationalize_text(item, spec.prompt) if spec.mode == RATIONALIZE else prompt_text(item, spec.prompt)

    def build(item: Item, k: int) -> dict[str, Any]:
        with lock:  # one encode per item even when its samples are built at once
            frames = frames_of(item.item_id)
        seed = request_seed(spec.seed, item.item_id, k) if temperature else None
        return chat_body(name, text_of(item), frames, "generate", spec.max_new_tokens, temperature=temperature, seed=seed)

    by_id = {it.item_id: it for it in items}
    asks = [Ask((it.item_id, k), f"item {it.item_id} sample {k}", functools.partial(build, it, k))
            for it in items for k in range(spec.samples) if k not in samples.get(it.item_id, {})]
    progress: Progress | None = None

    def on_answer(ask: Ask, answer: dict[str, Any]) -> None:
        item_id, k = ask.key
        choice = answer["choices"][0]
        text = clean_reply(str((choice.get("message") or {}).get("content") or ""))
        cut = choice.get("finish_reason") == "length"
        samples.setdefault(item_id, {})[k] = {"reply": text, "truncated": cut}
        append_records(path, [{"item_id": item_id, "sample": k, "reply": text, "truncated": cut,
                               "server_model": str(answer.get("model") or "")}])
        if progress is not None:
            progress.add()

    with open_endpoint(ctx, spec, served, name) as endpoint:
        ctx.log(f"teacher {name!r} at {endpoint.host}: {len(asks)} of {total} replies to ask for, {spec.concurrency} at a "
                f"time; {spec.samples} sample{'s' if spec.samples > 1 else ''} per item, "
                + (f"temperature {temperature:g}, seed {spec.seed}" if temperature else "greedy")
                + f"; {describe_key(ctx, spec, endpoint)}")
        progress = Progress(ctx, done, total, unit)
        ask_all(ctx, spec, endpoint, asks, on_answer, trust_env=not spec.serve)


def teacher_engine(spec: Any, path: Path) -> dict[str, Any]:
    """What the dataset's composition records of the engine (never the key, a URL path or a query)."""
    from orienteer.jobs.engines.options import parse_endpoint
    from orienteer.jobs.model.job_files import read_records

    info: dict[str, Any] = {"engine": OPENAI, "api_model": api_model(spec, spec.teacher)}
    if spec.endpoint:
        info["endpoint_host"] = parse_endpoint(spec.endpoint).host
    else:
        info["served_by"] = spec.serve
        from orienteer.jobs.model.loading import resolve_model_ref

        adapter = resolve_model_ref(spec.teacher)[1]
        if adapter:
            info |= {"adapter": str(adapter), "merged_for_serving": True}
    served = Counter(str(r["server_model"]) for r in read_records(path) if r.get("server_model"))
    if served:
        ids = [m for m, _ in served.most_common()]
        info["server_model"] = ids[0] if len(ids) == 1 else ids
    return info
