"""The eval job's work: plan, resume, batch, score or generate, write the run.

Resumable by construction: the batch plan is a pure function of the selected items, their lengths
and the batch size, and every finished batch is appended (and fsynced) to
``resume_dir/predictions.partial.jsonl`` tagged with its batch number. A re-run of the same spec
skips the batches already there and recomputes any batch cut short, so the final run is identical
to an uninterrupted one. Items whose images are missing are reported and left out of the run.

With ``--gpus N`` the same batches are scored by N processes (``shards.py``): this process plans
(with the processor only), each rank appends its batches to its own
``predictions.partial.rank<R>.jsonl``, and this process merges the union of all partial files
with the very code (``write_run``) of the 1-process path, so the run is the same item for item.
Which process scored a batch never matters: resuming reads every partial file.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orienteer.data.errors import OrienteerError
from orienteer.data.items import Item
from orienteer.data.job_outputs import RunOutput
from orienteer.jobs.context import JobContext
from orienteer.jobs.model.job_files import append_records, read_records

if TYPE_CHECKING:
    from orienteer.jobs.gpus import GpuPlan
    from orienteer.jobs.kinds.eval import EvalSpec

PARTIAL = "predictions.partial.jsonl"
PLAN = "eval-plan.json"
SKIPPED = "skipped.jsonl"
PREDICTIONS = "predictions.jsonl"


def run_notes(spec: EvalSpec, loaded: Any, skipped: int) -> str:
    """One readable line for people (``key=value; ...``); what programs read is ``run_config``."""
    parts = [f"eval mode={spec.mode}", f"prompt={spec.prompt}", f"resize={spec.sizing}"]
    if spec.sizing != "upstream":
        parts.append(f"max_pixels={spec.pixel_cap}")
    if spec.sizing != "upstream" and spec.item_pixels is not None:
        parts.append(f"item_pixels={spec.item_pixels}")
    if loaded.adapter:
        parts.append(f"adapter={loaded.adapter}")
    if spec.mode == "generate":
        parts.append(f"max_new_tokens={spec.max_new_tokens}")
    if skipped:
        parts.append(f"skipped={skipped} (missing images)")
    if loaded.random_weights:
        parts.append("RANDOM WEIGHTS (numbers mean nothing)")
    return "; ".join(parts)


def run_config(spec: EvalSpec, loaded: Any, skipped: int, truncated: int | None = None) -> dict[str, Any]:
    """The run's settings as data (``runs.config``): what a reader needs to know the numbers were made with.

    ``truncated`` (generate mode): replies cut at ``max_new_tokens`` before a stop token, whose answer
    line may be missing; a cap too small for the prompt shows up here, not as silent wrong answers."""
    from orienteer.jobs.model.prompt import template_hash

    config: dict[str, Any] = {"engine": "hf", "mode": spec.mode, "prompt": spec.prompt,
                              "prompt_hash": template_hash(spec.prompt), **frame_sizing_of(spec).config()}
    if loaded.adapter:
        config["adapter"] = str(loaded.adapter)
    if spec.mode == "generate":
        config["max_new_tokens"] = spec.max_new_tokens
        if truncated is not None:
            config["truncated"] = truncated
    if skipped:
        config["skipped_missing_images"] = skipped
    from orienteer.jobs.model.train import trained_dataset

    trained_on = trained_dataset(spec.adapter) or trained_dataset(spec.model)
    if trained_on:
        config["trained_on"] = trained_on
    if spec.allow_overlap:
        config["allow_overlap"] = True
    return config


def frame_sizing_of(spec: EvalSpec) -> Any:
    """The spec's frame sizing (``images.UpstreamResize`` or ``images.PixelBudget``)."""
    from orienteer.jobs.model.images import frame_sizing

    return frame_sizing(spec.sizing, spec.pixel_cap, spec.item_pixels)


def _fingerprint(spec: EvalSpec, model_name: str, plan_ids: Sequence[Sequence[str]]) -> str:
    from orienteer.jobs.model.prompt import template_hash

    text = json.dumps({"model": model_name, "mode": spec.mode, "prompt": spec.prompt, "max_pixels": spec.pixel_cap,
                       "item_pixels": spec.item_pixels, "max_new_tokens": spec.max_new_tokens, "plan": plan_ids,
                       "resize": spec.sizing, "prompt_hash": template_hash(spec.prompt)})
    return hashlib.sha256(text.encode()).hexdigest()


def _read_partial(path: Path) -> dict[int, dict[str, dict[str, Any]]]:
    """Batch number -> item id -> record; a torn last line (killed mid-write) is ignored."""
    batches: dict[int, dict[str, dict[str, Any]]] = {}
    for rec in read_records(path):
        batches.setdefault(int(rec["batch"]), {})[rec["item_id"]] = rec
    return batches


def _eta(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


BatchRecords = tuple[int, list[Any], list[dict[str, Any]]]  # batch number, failed items, result records


def _batch_records(ctx: JobContext, spec: EvalSpec, loaded: Any,
                   batches: Iterable[tuple[int, tuple[list[Any], list[Any]]]]) -> Iterator[BatchRecords]:
    """``(batch number, failed items, result records)`` per batch, in order.

    Score mode runs ``score_pipeline.score_stream``: batch k+1 is on the GPU before batch k's
    results are read. Generate mode decodes token by token, one batch at a time.
    """
    from orienteer.jobs.model.batching import collate, to_device

    if spec.mode == "score":
        from orienteer.jobs.model.score_pipeline import score_stream

        def feed() -> Iterator[tuple[tuple[int, list[Any]], list[Any]]]:
            for k, (encoded, failed) in batches:
                ctx.check_stop()
                yield (k, failed), encoded

        for (k, failed), rows, scored in score_stream(loaded.model, loaded.tokenizer, feed(), loaded.pad_id,
                                                      ctx.device, loaded.dtype):
            yield k, failed, [{"batch": k, "item_id": e.item.item_id, "reply": s.letter, "probs": s.probs}
                              for e, s in zip(rows, scored)]
        return
    from orienteer.jobs.model.generate import generate_replies

    for k, (encoded, failed) in batches:
        ctx.check_stop()
        records: list[dict[str, Any]] = []
        if encoded:
            batch = to_device(collate(encoded, loaded.pad_id), ctx.device, loaded.dtype)
            replies = generate_replies(loaded.model, batch, loaded.tokenizer, spec.max_new_tokens)
            records = [{"batch": k, "item_id": e.item.item_id, "reply": r.text, "truncated": r.truncated}
                       for e, r in zip(encoded, replies)]
        yield k, failed, records


@dataclass
class ModelInfo:
    """What the job process of a sharded eval knows of the model without loading its weights: the
    same identity ``loading.load_model`` gives (name, base, adapter, random weights) and its
    processor (for the length estimates the plan is made of). Duck-types ``LoadedModel`` for
    ``run_notes``, ``run_config`` and ``write_run``."""

    processor: Any
    name: str
    base: str
    adapter: str | None
    random_weights: bool


def describe_model(model: str, adapter: str | None) -> ModelInfo:
    """The model's identity and processor, as ``load_model`` would resolve them, without its weights."""
    from transformers import AutoProcessor

    from orienteer.jobs.model.loading import check_adapter, resolve_model_ref
    from orienteer.jobs.model.tiny import is_random_weights

    base, implied = resolve_model_ref(model)
    adapter_path = check_adapter(adapter) or implied
    try:
        processor = AutoProcessor.from_pretrained(base)
    except Exception as exc:  # noqa: BLE001 - any load failure becomes one line for the user
        raise OrienteerError(f"cannot load the processor of model {base}: {' '.join(str(exc).split())[:300]}") from None
    name = base if adapter_path is None else f"{base}+{adapter_path}"
    random_weights = is_random_weights(base) or (adapter_path is not None and is_random_weights(adapter_path))
    return ModelInfo(processor, name, base, adapter_path, random_weights)


@dataclass
class EvalPlan:
    """The eval's items and batches: a pure function of the items, their lengths and the batch size."""

    items: list[Item]  # selected, benchmark order (the run's order)
    root: Path
    present: list[Item]  # those whose images exist
    skipped: list[dict[str, str]]  # missing images
    costs: list[int]  # per batch: items x the longest's estimated tokens (what it costs padded)
    batches: list[list[Item]]
    fingerprint: str

    @property
    def total(self) -> int:
        return len(self.present)


def select_items(ctx: JobContext, spec: EvalSpec) -> tuple[list[Item], Path]:
    """The benchmark's items ``--items`` selects (benchmark order) and its image root; none is an error."""
    from orienteer.jobs.selection import load_items

    items, root = load_items(ctx.workspace, spec.bench, spec.items)
    if not items:
        raise OrienteerError(f"benchmark {spec.bench}: no items match --items {spec.items!r}")
    return items, root


def write_predictions(out_dir: Path, items: Sequence[Item], by_item: dict[str, dict[str, Any]],
                      skipped: list[dict[str, str]]) -> list[dict[str, Any]]:
    """``predictions.jsonl`` in the items' order from the result records by item (a record that says
    ``skipped`` joins ``skipped``), and ``skipped.jsonl`` when any item was left out; the records written.
    One writer for the in-process and the served eval, so their runs have one shape."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[dict[str, Any]] = []
    with open(out_dir / PREDICTIONS, "w", encoding="utf-8") as fh:
        for item in items:
            rec = by_item.get(item.item_id)
            if rec is None:
                continue
            if "skipped" in rec:
                skipped.append({"item_id": item.item_id, "reason": rec["skipped"]})
                continue
            line: dict[str, Any] = {"item_id": item.item_id, "reply": rec["reply"]}
            if "probs" in rec:
                line["probs"] = rec["probs"]
            if rec.get("truncated"):
                line["truncated"] = True
            fh.write(json.dumps(line) + "\n")
            written.append(rec)
    if skipped:
        with open(out_dir / SKIPPED, "w", encoding="utf-8") as fh:
            for rec in skipped:
                fh.write(json.dumps(rec) + "\n")
    return written


def set_aside_missing(ctx: JobContext, items: Sequence[Item], root: Path) -> tuple[list[Item], list[dict[str, str]]]:
    """The items whose images all exist, and a ``skipped`` record (warned in the log) for each of the others."""
    from orienteer.jobs.model.images import first_missing

    present: list[Item] = []
    skipped: list[dict[str, str]] = []
    for item in items:
        missing = first_missing(item, root)
        if missing is not None:
            ctx.warn(f"item {item.item_id}: image {missing} does not exist; skipped")
            skipped.append({"item_id": item.item_id, "reason": f"missing image {missing}"})
        else:
            present.append(item)
    return present, skipped


def plan_eval(ctx: JobContext, spec: EvalSpec, selected: tuple[list[Item], Path], processor: Any,
              model_name: str) -> EvalPlan:
    """Set aside the items with missing images and plan the batches of the rest."""
    from orienteer.jobs.model.batching import estimate_length, plan_batches
    from orienteer.jobs.model.images import image_paths

    items, root = selected
    budget = frame_sizing_of(spec)
    present, skipped = set_aside_missing(ctx, items, root)
    lengths = [estimate_length(processor, it, image_paths(it, root), budget, spec.prompt) for it in present]
    plan = plan_batches(lengths, spec.batch_size)
    batches = [[present[i] for i in batch] for batch in plan]
    fingerprint = _fingerprint(spec, model_name, [[it.item_id for it in b] for b in batches])
    costs = [len(batch) * max(lengths[i] for i in batch) for batch in plan]
    return EvalPlan(items, root, present, skipped, costs, batches, fingerprint)


def _read_all_partials(resume_dir: Path) -> dict[int, dict[str, dict[str, Any]]]:
    """The union of every process's partial file (``shards.partial_files``), keyed by batch."""
    from orienteer.jobs.model.shards import partial_files

    batches: dict[int, dict[str, dict[str, Any]]] = {}
    for path in partial_files(resume_dir, PARTIAL):
        for k, recs in _read_partial(path).items():
            batches.setdefault(k, {}).update(recs)
    return batches


def finished_batches(ctx: JobContext, spec: EvalSpec, plan: EvalPlan) -> set[int]:
    """The batches an earlier attempt of this spec finished (any process); partial results made with
    another plan are dropped. Logs what is resumed and what is to do."""
    from orienteer.jobs.model.shards import partial_files

    plan_path = ctx.resume_dir / PLAN
    previous = json.loads(plan_path.read_text(encoding="utf-8")).get("fingerprint") if plan_path.is_file() else None
    if previous != plan.fingerprint:
        stale = partial_files(ctx.resume_dir, PARTIAL)
        if stale:
            ctx.log("earlier partial results were made with another plan; starting over")
        for path in stale:
            path.unlink(missing_ok=True)
        plan_path.write_text(json.dumps({"fingerprint": plan.fingerprint, "batches": len(plan.batches)}) + "\n",
                             encoding="utf-8")
    done = _read_all_partials(ctx.resume_dir)
    finished = {k for k, recs in done.items() if k < len(plan.batches) and len(recs) == len(plan.batches[k])}
    n_done = sum(len(plan.batches[k]) for k in finished)
    if finished:
        ctx.log(f"resuming: {len(finished)} of {len(plan.batches)} batches ({n_done} items) already done")
    ctx.log(f"{plan.total} items in {len(plan.batches)} batches of up to {spec.batch_size}; mode {spec.mode}, "
            f"prompt {spec.prompt}, resize {spec.sizing}"
            + (f"; {len(plan.skipped)} skipped (missing images)" if plan.skipped else ""))
    ctx.progress(n_done, plan.total, "items", "resumed" if finished else "starting")
    return finished


def load_for_eval(ctx: JobContext, spec: EvalSpec) -> Any:
    """The model on ``ctx.device``, with a log line saying how it was loaded."""
    from orienteer.jobs.model.loading import load_model

    started = time.time()
    loaded = load_model(spec.model, spec.adapter, ctx.device, vision_attention=spec.vision_attention)
    ctx.log(f"model {loaded.name} on {ctx.device} ({str(loaded.dtype).replace('torch.', '')}, vision attention "
            f"{loaded.vision_attention}) loaded in {time.time() - started:.1f} s"
            + ("; RANDOM WEIGHTS" if loaded.random_weights else ""))
    return loaded


def score_batches(ctx: JobContext, spec: EvalSpec, loaded: Any, root: Path, work: Sequence[tuple[int, list[Item]]],
                  partial_path: Path, n_done: int, total: int) -> None:
    """Score (or generate) batches ``(number, items)`` in order, appending each finished batch's
    records to ``partial_path``; progress counts from ``n_done`` of ``total``. The loop of the
    1-process eval and of every shard."""
    from orienteer.jobs.model.batching import Prefetcher, item_encoder, rope_positions

    budget = frame_sizing_of(spec)
    # one forward per batch in score mode: its rope positions are computed by the encoder threads
    positions = rope_positions(loaded.model) if spec.mode == "score" else None
    encode = item_encoder(loaded.processor, root, spec.prompt, budget, device=ctx.device, positions=positions)
    prefetch = Prefetcher([items for _, items in work], encode, workers=spec.workers or None)
    sizes = dict((k, len(items)) for k, items in work)
    t0, n_new = time.time(), 0
    for k, failed, records in _batch_records(ctx, spec, loaded, zip([k for k, _ in work], prefetch)):
        for f in failed:
            ctx.warn(f"item {f.item.item_id}: {f.error}; skipped")
        records = [{"batch": k, "item_id": f.item.item_id, "skipped": f.error} for f in failed] + records
        append_records(partial_path, records)
        n_done += sizes[k]
        n_new += sizes[k]
        rate = n_new / max(1e-9, time.time() - t0)
        ctx.progress(n_done, total, "items", f"{rate:.1f} items/s, ETA {_eta((total - n_done) / rate if rate else 0)}")
        ctx.check_stop()  # a stop asked for now leaves the batch in flight unread: a resume recomputes it
    ctx.check_stop()


def write_run(ctx: JobContext, spec: EvalSpec, model: Any, plan: EvalPlan) -> RunOutput:
    """Merge every process's partial results into ``out_dir/predictions.jsonl`` (benchmark order)
    and add the run. ``model``: a ``LoadedModel`` or a ``ModelInfo``."""
    final = _read_all_partials(ctx.resume_dir)
    by_item: dict[str, dict[str, Any]] = {}
    for k in sorted(final):
        by_item.update(final[k])
    lost = [it.item_id for it in plan.present if it.item_id not in by_item]
    if lost:
        raise RuntimeError(f"eval: {len(lost)} planned items have no result (first {lost[0]}); run the job again")
    skipped = list(plan.skipped)
    written = write_predictions(ctx.out_dir, plan.items, by_item, skipped)
    n_written = len(written)
    n_truncated = sum(bool(rec.get("truncated")) for rec in written)
    output = RunOutput(name=spec.run, bench=spec.bench, predictions_file=PREDICTIONS, model=model.base,
                       random_weights=bool(model.random_weights),
                       notes=run_notes(spec, model, len(skipped)), parser="viewspatial",
                       config=run_config(spec, model, len(skipped),
                                         n_truncated if spec.mode == "generate" else None))
    ctx.add_output(output)
    ctx.log(f"run {spec.run}: {n_written} predictions written"
            + (f", {len(skipped)} items skipped (see {SKIPPED})" if skipped else "")
            + (f"; {n_truncated} replies cut at --max-new-tokens {spec.max_new_tokens} before their end"
               if n_truncated else ""))
    return output


def run_eval(ctx: JobContext, spec: EvalSpec, plan: GpuPlan | None = None) -> RunOutput:
    """Evaluate ``spec`` (checked by the kind), resuming from ``ctx.resume_dir``; writes
    ``out_dir/predictions.jsonl`` and adds the run. ``plan`` (default: the job's ``--gpu``/``--gpus``)
    with several processes runs the batches in shards (``shards.py``) and merges them here."""
    from orienteer.jobs.gpus import gpu_plan

    plan = plan or gpu_plan(ctx.params.get("gpu"), spec.gpus)
    if plan.processes > 1:
        return _run_sharded(ctx, spec, plan)
    selected = select_items(ctx, spec)
    loaded = load_for_eval(ctx, spec)
    eval_plan = plan_eval(ctx, spec, selected, loaded.processor, loaded.name)
    finished = finished_batches(ctx, spec, eval_plan)
    todo = [(k, batch) for k, batch in enumerate(eval_plan.batches) if k not in finished]
    n_done = sum(len(batch) for k, batch in enumerate(eval_plan.batches) if k in finished)
    score_batches(ctx, spec, loaded, eval_plan.root, todo, ctx.resume_dir / PARTIAL, n_done, eval_plan.total)
    return write_run(ctx, spec, loaded, eval_plan)


def _run_sharded(ctx: JobContext, spec: EvalSpec, gpus: GpuPlan) -> RunOutput:
    """Plan here (the processor only: no weights in this process), score the unfinished batches in
    ``gpus.processes`` shards (each batch to one rank, balanced by its padded length), merge here."""
    from orienteer.jobs.model.shards import assign, item_to_json, run_shards

    selected = select_items(ctx, spec)
    info = describe_model(spec.model, spec.adapter)
    eval_plan = plan_eval(ctx, spec, selected, info.processor, info.name)
    finished = finished_batches(ctx, spec, eval_plan)
    todo = [k for k in range(len(eval_plan.batches)) if k not in finished]
    n_done = sum(len(eval_plan.batches[k]) for k in finished)
    if todo:
        shares = [[todo[i] for i in share] for share in assign([eval_plan.costs[k] for k in todo], gpus.processes)]
        payload = {"root": str(eval_plan.root),
                   "batches": [[k, [item_to_json(it) for it in eval_plan.batches[k]]] for k in todo]}
        run_shards(ctx, gpus, "eval", shares, payload, n_done, eval_plan.total)
    return write_run(ctx, spec, info, eval_plan)


def run_eval_shard(ctx: Any, spec: EvalSpec, share: list[int], payload: dict[str, Any]) -> None:
    """One rank of a sharded eval: load the model on its device, score its batches into its own partial file."""
    from orienteer.jobs.model.shards import item_of, rank_file

    batches = {int(k): [item_of(d) for d in items] for k, items in payload["batches"]}
    work = [(k, batches[k]) for k in share]
    loaded = load_for_eval(ctx, spec)
    ctx.log(f"{len(work)} batches ({sum(len(b) for _, b in work)} items)")
    score_batches(ctx, spec, loaded, Path(payload["root"]), work, rank_file(ctx.resume_dir, PARTIAL, ctx.rank), 0,
                  sum(len(b) for _, b in work))
