"""The eval kind through an OpenAI-compatible server (``--engine openai``): one request per item.

Resumable like the in-process path, keyed by item rather than by batch (answers arrive in any order):
each answer is appended (fsynced) to ``resume_dir/openai.partial.jsonl`` as it arrives, and a re-run
of the same spec sends only the items not there yet. ``openai-plan.json`` holds a fingerprint of what
the answers depend on (served model name, mode, prompt, frame sizing, reply cap, items); when it
changes, the partial answers are dropped. The run's predictions are written in item order, so a resumed
job ends with the same run as an uninterrupted one (given a deterministic server: greedy decoding).

Score mode sends the first item alone and refuses to go on when the server returns no log-probabilities
(``transformers serve`` ignores ``logprobs``): there is no silent fallback to generated letters.

With ``--serve`` and a LoRA adapter (``--adapter``, or ``--model`` an adapter folder such as a train
job's result) the engine serves the adapter merged into its base (``jobs.model.merge``: a folder in the
resume folder, reused by a re-run); the run records the adapter and that it was merged.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from orienteer.data.errors import OrienteerError
from orienteer.data.items import Item
from orienteer.data.job_outputs import RunOutput
from orienteer.jobs.context import JobContext
from orienteer.jobs.engines.options import OPENAI, api_model
from orienteer.jobs.engines.session import Ask, Progress, ask_all, describe_key, open_endpoint, served_model

if TYPE_CHECKING:
    from orienteer.jobs.kinds.eval import EvalSpec

PARTIAL = "openai.partial.jsonl"
PLAN = "openai-plan.json"
PREDICTIONS = "predictions.jsonl"
SKIPPED = "skipped.jsonl"


def fingerprint(spec: EvalSpec, name: str, sizing: Any, item_ids: list[str]) -> str:
    """What the answers depend on; a resume keeps the partial answers only when it is unchanged."""
    from orienteer.jobs.model.prompt import template_hash

    text = json.dumps({"engine": OPENAI, "api_model": name, "mode": spec.mode, "prompt": spec.prompt,
                       "prompt_hash": template_hash(spec.prompt), "sizing": sizing.config(),
                       "max_new_tokens": spec.max_new_tokens if spec.mode == "generate" else None, "items": item_ids},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _resume(ctx: JobContext, digest: str) -> dict[str, dict[str, Any]]:
    """The answers already recorded for this fingerprint (none when it changed)."""
    from orienteer.jobs.model.job_files import read_records

    ctx.resume_dir.mkdir(parents=True, exist_ok=True)
    partial, plan = ctx.resume_dir / PARTIAL, ctx.resume_dir / PLAN
    previous = json.loads(plan.read_text(encoding="utf-8")).get("fingerprint") if plan.is_file() else None
    if previous != digest:
        if partial.exists():
            ctx.log("earlier partial answers were made with other settings; starting over")
        partial.unlink(missing_ok=True)
        plan.write_text(json.dumps({"fingerprint": digest}) + "\n", encoding="utf-8")
    return {rec["item_id"]: rec for rec in read_records(partial) if "item_id" in rec}


def answer_record(item: Item, mode: str, answer: dict[str, Any], probe: bool = False) -> dict[str, Any]:
    """The partial file's record of one answer (the same fields as the in-process path's, plus the
    model id the server reported)."""
    from orienteer.jobs.engines.logprobs import letter_scores
    from orienteer.jobs.model.generate import clean_reply

    record: dict[str, Any] = {"item_id": item.item_id, "server_model": str(answer.get("model") or "")}
    choice = answer["choices"][0]
    if mode == "score":
        scores = letter_scores(answer, item.option_letters)
        record["reply"] = scores.letter if scores.letter is not None else scores.text
        if scores.probs is not None:
            record["probs"] = scores.probs
        else:
            record["outside_top_logprobs"] = True
        return record
    record["reply"] = clean_reply(str((choice.get("message") or {}).get("content") or ""))
    if choice.get("finish_reason") == "length":
        record["truncated"] = True
    return record


def run_openai_eval(ctx: JobContext, spec: EvalSpec) -> RunOutput:
    """Evaluate ``spec`` (checked by the kind) through its endpoint; writes ``out_dir/predictions.jsonl``
    and adds the run."""
    from orienteer.jobs.engines.logprobs import NoLogprobs, first_token_logprobs
    from orienteer.jobs.engines.request import chat_body, item_frames
    from orienteer.jobs.model.eval_loop import frame_sizing_of, set_aside_missing
    from orienteer.jobs.model.job_files import append_records
    from orienteer.jobs.model.prompt import prompt_text
    from orienteer.jobs.selection import load_items

    items, root = load_items(ctx.workspace, spec.bench, spec.items)
    if not items:
        raise OrienteerError(f"benchmark {spec.bench}: no items match --items {spec.items!r}")
    sizing = frame_sizing_of(spec)
    ctx.check_stop()
    served, adapter = served_model(ctx, spec.serve, spec.model, spec.adapter)
    name = api_model(spec, served)
    present, skipped = set_aside_missing(ctx, items, root)
    done = _resume(ctx, fingerprint(spec, name, sizing, [it.item_id for it in present]))
    partial = ctx.resume_dir / PARTIAL
    todo = [it for it in present if it.item_id not in done]
    if len(todo) < len(present):
        ctx.log(f"resuming: {len(present) - len(todo)} of {len(present)} items already answered")

    writing = threading.Lock()  # builders (threads) and answers (the event loop) append to one file

    def record(rec: dict[str, Any]) -> None:
        with writing:
            append_records(partial, [rec])

    def build(item: Item) -> dict[str, Any] | None:
        try:
            frames = item_frames(item, root, sizing)
        except OrienteerError as exc:  # an unreadable image: reported and skipped, as in-process
            ctx.warn(f"{exc}; skipped")
            record({"item_id": item.item_id, "skipped": str(exc)})
            return None
        return chat_body(name, prompt_text(item, spec.prompt), frames, spec.mode, spec.max_new_tokens)

    by_key = {it.item_id: it for it in todo}
    progress: Progress | None = None

    def on_answer(ask: Ask, answer: dict[str, Any]) -> None:
        try:
            rec = answer_record(by_key[ask.key], spec.mode, answer)
        except NoLogprobs:
            raise OrienteerError(f"{ask.label}: the server at {endpoint.host} answered without log-probabilities "
                                 "(it gave them for the first item); score mode cannot go on") from None
        record(rec)
        if progress is not None:
            progress.add()

    def probe(ask: Ask, answer: dict[str, Any]) -> None:
        try:
            first_token_logprobs(answer)
        except NoLogprobs:
            raise OrienteerError(f"--mode score needs log-probabilities, and the server at {endpoint.host} "
                                 f"({answer.get('model') or name}) returned none for {ask.label} (it ignores "
                                 "logprobs); use --mode generate, or a server that returns them (vLLM, SGLang)") from None

    with open_endpoint(ctx, spec, served, name) as endpoint:
        ctx.log(f"{len(present)} items to {endpoint.host} as model {name!r} ({len(todo)} to send, {spec.concurrency} at a "
                f"time); mode {spec.mode}, prompt {spec.prompt}, resize {spec.sizing}; {describe_key(ctx, spec, endpoint)}"
                + (f"; {len(skipped)} skipped (missing images)" if skipped else ""))
        progress = Progress(ctx, len(present) - len(todo), len(present), "items")
        asks = [Ask(it.item_id, f"item {it.item_id}", functools.partial(build, it)) for it in todo]
        ask_all(ctx, spec, endpoint, asks, on_answer, probe if spec.mode == "score" else None,
                trust_env=not spec.serve)
        host = endpoint.host
    ctx.check_stop()
    return _write_run(ctx, spec, items, partial, skipped, name, host, adapter, served)


def _write_run(ctx: JobContext, spec: EvalSpec, items: list[Item], partial: Path, skipped: list[dict[str, str]],
               name: str, host: str, adapter: str | None = None, served: str | None = None) -> RunOutput:
    from orienteer.jobs.model.eval_loop import run_config, run_notes, write_predictions
    from orienteer.jobs.model.job_files import read_records
    from orienteer.jobs.model.tiny import is_random_weights

    by_item = {rec["item_id"]: rec for rec in read_records(partial) if "item_id" in rec}
    planned = {s["item_id"] for s in skipped}
    lost = [it.item_id for it in items if it.item_id not in by_item and it.item_id not in planned]
    if lost:
        raise RuntimeError(f"eval: {len(lost)} items have no answer (first {lost[0]}); run the job again")
    written = write_predictions(ctx.out_dir, items, by_item, skipped)
    n_written = len(written)
    n_truncated = sum(bool(rec.get("truncated")) for rec in written)
    n_outside = sum(bool(rec.get("outside_top_logprobs")) for rec in written)
    served_ids: Counter[str] = Counter(rec["server_model"] for rec in written if rec.get("server_model"))
    random_weights = (is_random_weights(spec.model) if Path(spec.model).exists() else False) or is_random_weights(adapter)
    loaded = SimpleNamespace(adapter=adapter, random_weights=random_weights)
    config = run_config(spec, loaded, len(skipped), n_truncated if spec.mode == "generate" else None)
    config.update(engine_config(spec, host, name, served_ids))
    if adapter is not None:  # the engine served the adapter merged into its base (run_config recorded the adapter)
        config["merged_for_serving"] = True
        config["merged_model"] = str(served)
    if spec.mode == "score" and n_outside:
        config["letters_outside_top_logprobs"] = n_outside
    notes = run_notes(spec, loaded, len(skipped)).replace("eval mode=", f"eval engine=openai ({host}, {name}) mode=", 1)
    if adapter is not None:
        notes = notes.replace(f"adapter={adapter}", f"adapter={adapter} (merged for serving)", 1)
    output = RunOutput(name=spec.run, bench=spec.bench, predictions_file=PREDICTIONS, model=spec.model,
                       random_weights=random_weights, notes=notes, parser="viewspatial", config=config)
    ctx.add_output(output)
    ctx.log(f"run {spec.run}: {n_written} predictions written"
            + (f", {len(skipped)} items skipped (see {SKIPPED})" if skipped else "")
            + (f"; {n_truncated} replies cut at --max-new-tokens {spec.max_new_tokens} before their end" if n_truncated else "")
            + (f"; {n_outside} answers had none of their option letters among the top log-probabilities" if n_outside else ""))
    return output


def engine_config(spec: Any, host: str, name: str, served_ids: Counter[str]) -> dict[str, Any]:
    """What a run (or a dataset's composition) records of the engine: never the key, a path or a query."""
    config: dict[str, Any] = {"engine": OPENAI, "endpoint_host": host, "api_model": name}
    if served_ids:
        ids = [model for model, _ in served_ids.most_common()]
        config["server_model"] = ids[0] if len(ids) == 1 else ids
    if spec.serve:
        config["served_by"] = spec.serve
    config["frames"] = "resized client-side to the processor's size, sent as PNG"
    return config
