"""The saliency job's work: maps for chosen items of a run, as artifacts the case view shows.

Defaults come from the run itself: its model, adapter, prompt and frame sizing (``--resize`` and
pixel budget), read back from the run's settings (``data.run_config``: never from its notes), so
the map explains the answer the run actually gave to the very input it saw. Items default to the
run's failures (at most 20). Per item and frame it writes a grayscale heat PNG at the original
image size (kind ``saliency``, coloured and blended by the TUI), a ready-made overlay
(``saliency-overlay``) and the raw float map (``saliency-raw``, ``.npy``). The box numbers
(``saliency.metrics``) go on the frame the box is on, the item's ``bbox_frame``, with that index
recorded. Finished items are kept in ``resume_dir`` so a re-run of the same spec only computes the rest.
With ``--gpus N`` the chunks of items are computed by N processes (``shards.py``), each appending to its
own ``saliency.partial.rank<R>.jsonl``; every reader takes the union of the partial files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orienteer.data.errors import OrienteerError
from orienteer.data.items import Item
from orienteer.data.job_outputs import ArtifactsOutput
from orienteer.data.rows import RunAnswer
from orienteer.data.run_config import RunConfig
from orienteer.jobs.context import JobContext
from orienteer.jobs.model.job_files import append_records, link_tree, read_records, safe_name

if TYPE_CHECKING:
    from orienteer.jobs.gpus import GpuPlan
    from orienteer.jobs.kinds.saliency import SaliencySpec

ARTIFACTS = "artifacts.jsonl"
FILES = "saliency"
PARTIAL = "saliency.partial.jsonl"
DEFAULT_LIMIT = 20


def target_letter(item: Item, target: str, answers: Mapping[str, RunAnswer]) -> tuple[str | None, str]:
    """The letter whose logit is explained, and why (or ``None`` and the reason to skip)."""
    if target == "gold":
        return item.answer_letter, "gold"
    if target == "predicted":
        answer = answers.get(item.item_id)
        letter = answer.letter if answer is not None else None
        if letter is not None and letter in item.option_letters:
            return letter, "predicted"
        return None, "the run has no valid predicted letter for it (use --target gold or a letter)"
    if target in item.option_letters:
        return target, "fixed"
    return None, f"it has no option {target}"


@dataclass(frozen=True)
class Inputs:
    """How the run's inputs are rebuilt: model, adapter, prompt style and frame sizing."""

    model: str
    adapter: str | None
    prompt: str
    resize: str
    max_pixels: int
    item_pixels: int | None
    warning: str | None = None


def _resolved(spec: SaliencySpec, run_model: str | None, config: RunConfig) -> Inputs:
    """Given settings first, else the run's own (its ``config``; older runs got theirs from their notes
    when the workspace migrated, so notes are never read here).

    A run from before prompts were versioned (no ``prompt_hash``) that says ``official`` was made with
    the text now called ``official-newline`` and the budget sizing; a run with no recorded prompt at
    all (an imported file) is taken as upstream's protocol.
    """
    from orienteer.jobs.model.images import BUDGET, DEFAULT_MAX_PIXELS, default_resize
    from orienteer.jobs.model.prompt import PROMPT_NAMES, template_hash

    model = spec.model or run_model
    if not model:
        raise OrienteerError(f"run {spec.run} records no model; pass --model")
    adapter = spec.adapter if spec.adapter is not None else config.get("adapter")
    recorded = config.get("prompt")
    versioned = config.get("prompt_hash") is not None
    if recorded == "official" and not versioned:
        recorded = "official-newline"
    prompt = spec.prompt or recorded or "official"
    if prompt not in PROMPT_NAMES:
        raise OrienteerError(f"run {spec.run} was made with prompt {prompt!r}, which this version does not know "
                             f"(expected one of {', '.join(PROMPT_NAMES)}); pass --prompt")
    recorded_resize = config.get("resize")
    if recorded_resize is None:
        recorded_resize = BUDGET if (recorded and not versioned) else default_resize(prompt)
    resize = spec.resize or recorded_resize

    def number(key: str) -> int | None:
        value = config.get(key)
        return int(value) if value not in (None, "") else None

    budget_run = recorded_resize == BUDGET
    max_pixels = spec.max_pixels or (number("max_pixels") if budget_run else None) or DEFAULT_MAX_PIXELS
    item_pixels = spec.item_pixels or (number("item_pixels") if budget_run else None)
    warning = None
    if versioned and spec.prompt is None and config.get("prompt_hash") != template_hash(prompt):
        warning = (f"run {spec.run} was made with another {prompt!r} template (hash {config.get('prompt_hash')}, "
                   f"now {template_hash(prompt)}): the maps explain today's text, not the run's")
    return Inputs(str(model), adapter, prompt, resize, max_pixels, item_pixels, warning)


def _read_partial(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Item id -> its artifact lines, for the items an earlier attempt finished."""
    return {rec["item_id"]: rec["lines"] for rec in read_records(path)}


def _read_all_partials(resume_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The union of every process's partial file (``shards.partial_files``), keyed by item."""
    from orienteer.jobs.model.shards import partial_files

    done: dict[str, list[dict[str, Any]]] = {}
    for path in partial_files(resume_dir, PARTIAL):
        done.update(_read_partial(path))
    return done


Work = tuple[Item, str, str]  # an item, the letter to explain, and why that letter


def run_saliency(ctx: JobContext, spec: SaliencySpec, plan: GpuPlan | None = None) -> ArtifactsOutput:
    """Maps for ``spec`` (checked by the kind), resuming from ``ctx.resume_dir``; adds the artifacts.
    ``plan`` (default: the job's ``--gpu``/``--gpus``) with several processes computes the chunks
    of items in shards (``shards.py``: each chunk to one rank, each rank its own partial file) and
    merges them here, with the same code as one process."""
    from orienteer.data.service import WorkspaceService
    from orienteer.jobs.gpus import gpu_plan
    from orienteer.jobs.selection import load_items

    plan = plan or gpu_plan(ctx.params.get("gpu"), spec.gpus)
    with WorkspaceService(ctx.workspace) as service:
        info = service.run_detail(spec.run)
    inputs = _resolved(spec, info.model, info.config)
    if inputs.warning:
        ctx.warn(inputs.warning)
    item_spec = spec.items or f"failures:{spec.run};limit:{DEFAULT_LIMIT}"
    items, root = load_items(ctx.workspace, info.bench, item_spec)
    if not items:
        raise OrienteerError(f"run {spec.run}: no items match {item_spec!r}")

    loaded = None
    if plan.processes == 1:
        loaded = _load(ctx, spec, inputs, len(items))
    from orienteer.jobs.model.images import first_missing

    done = _read_all_partials(ctx.resume_dir)
    work: list[Work] = []
    for item in items:
        if item.item_id in done:
            continue
        letter, why = target_letter(item, spec.target, info.answers)
        if letter is None:
            ctx.warn(f"item {item.item_id}: skipped, {why}")
            continue
        missing = first_missing(item, root)
        if missing is not None:
            ctx.warn(f"item {item.item_id}: image {missing} does not exist; skipped")
            continue
        work.append((item, letter, why))
    total = len(work) + len(done)
    ctx.progress(len(done), total, "items", "resumed" if done else "starting")
    chunks = [work[i:i + spec.batch_size] for i in range(0, len(work), spec.batch_size)]
    if loaded is not None:
        saliency_chunks(ctx, spec, loaded, inputs, root, chunks, ctx.resume_dir / PARTIAL, len(done), total)
    elif chunks:
        from orienteer.jobs.model.shards import assign, item_to_json, run_shards

        ctx.log(f"{len(items)} items; target {spec.target}; prompt {inputs.prompt}; resize {inputs.resize}")
        shares = assign([len(chunk) for chunk in chunks], plan.processes)
        payload = {"root": str(root), "inputs": asdict(inputs),
                   "chunks": [[[item_to_json(w[0]), w[1], w[2]] for w in chunk] for chunk in chunks]}
        run_shards(ctx, plan, "saliency", shares, payload, len(done), total)
    return _write_artifacts(ctx, spec, items)


def _load(ctx: JobContext, spec: SaliencySpec, inputs: Inputs, n_items: int) -> Any:
    """The model on ``ctx.device``, with a log line saying how it was loaded."""
    from orienteer.jobs.model.loading import load_model

    loaded = load_model(inputs.model, inputs.adapter, ctx.device, vision_attention=spec.vision_attention)
    ctx.log(f"model {loaded.name} on {ctx.device}; {n_items} items; target {spec.target}; prompt {inputs.prompt}; "
            f"resize {inputs.resize}"
            + ("; RANDOM WEIGHTS" if loaded.random_weights else ""))
    return loaded


def saliency_chunks(ctx: JobContext, spec: SaliencySpec, loaded: Any, inputs: Inputs, root: Path,
                    chunks: list[list[Work]], partial: Path, n_done: int, total: int) -> None:
    """Maps for ``chunks`` of items (one forward+backward each), appending each finished chunk's
    records to ``partial``; progress counts from ``n_done`` of ``total``. The loop of the 1-process
    job and of every shard."""
    from orienteer.jobs.model.batching import Prefetcher, collate, item_encoder, rope_positions, to_device
    from orienteer.jobs.model.images import frame_sizing, load_images
    from orienteer.jobs.model.saliency import metrics, saliency_batch, write_frame_files
    from orienteer.jobs.model.score import letter_token_id

    files_dir = ctx.resume_dir / FILES
    budget = frame_sizing(inputs.resize, inputs.max_pixels, inputs.item_pixels)
    # one forward (and backward) per batch: rope positions come from the encoder threads, as in score mode
    encode = item_encoder(loaded.processor, root, inputs.prompt, budget, device=ctx.device,
                          positions=rope_positions(loaded.model))
    prefetch = Prefetcher([[w[0] for w in chunk] for chunk in chunks], encode, workers=spec.workers or None)
    t0, start = time.time(), n_done
    for chunk, (encoded, failed) in zip(chunks, prefetch):
        ctx.check_stop()
        for f in failed:
            ctx.warn(f"item {f.item.item_id}: {f.error}; skipped")
        if not encoded:
            continue
        letters = {w[0].item_id: (w[1], w[2]) for w in chunk}
        batch = to_device(collate(encoded, loaded.pad_id, positions=True), ctx.device, loaded.dtype)
        targets = [letter_token_id(loaded.tokenizer, letters[e.item.item_id][0]) for e in encoded]
        maps = saliency_batch(loaded.model, batch, targets, [e.sizes for e in encoded], loaded.processor.image_processor)
        records = []
        for e, frames in zip(encoded, maps):
            letter, why = letters[e.item.item_id]
            images = load_images(e.item, root)
            lines = []
            for k, sal in enumerate(frames):
                folder = files_dir / safe_name(e.item.item_id)
                paths = write_frame_files(sal, images[k], folder, f"frame{k}")
                on_box = e.item.bbox is not None and k == e.item.bbox_frame  # the box is on one frame only
                values: dict[str, Any] = metrics(sal, e.item.bbox if on_box else None)
                if on_box:
                    values["bbox_frame"] = k
                values.update(target=letter, target_kind=why)
                for kind, path in paths.items():
                    rel = str(Path(FILES) / path.relative_to(files_dir))
                    lines.append({"item_id": e.item.item_id, "kind": kind, "path": rel, "frame": k,
                                  "metrics": values if kind == "saliency" else {}})
            records.append({"item_id": e.item.item_id, "lines": lines})
        append_records(partial, records)
        n_done += len(encoded) + len(failed)
        rate = (n_done - start) / max(1e-9, time.time() - t0)
        ctx.progress(n_done, total, "items", f"{rate:.2f} items/s")
    ctx.check_stop()


def _write_artifacts(ctx: JobContext, spec: SaliencySpec, items: list[Item]) -> ArtifactsOutput:
    """Merge every process's finished items into ``out_dir/artifacts.jsonl`` (item order) and add them."""
    final = _read_all_partials(ctx.resume_dir)
    files_dir = ctx.resume_dir / FILES
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    if files_dir.is_dir():
        link_tree(files_dir, ctx.out_dir / FILES)
    n_lines = 0
    with open(ctx.out_dir / ARTIFACTS, "w", encoding="utf-8") as fh:
        for item in items:
            for line in final.get(item.item_id, []):
                fh.write(json.dumps(line) + "\n")
                n_lines += 1
    output = ArtifactsOutput(run=spec.run, file=ARTIFACTS)
    ctx.add_output(output)
    ctx.log(f"saliency for {len(final)} items of run {spec.run}: {n_lines} files listed in {ARTIFACTS}")
    return output


def run_saliency_shard(ctx: Any, spec: SaliencySpec, share: list[int], payload: dict[str, Any]) -> None:
    """One rank of a sharded saliency job: load the model on its device, compute its chunks into its own partial file."""
    from orienteer.jobs.model.shards import item_of, rank_file

    inputs = Inputs(**payload["inputs"])
    chunks: list[list[Work]] = [[(item_of(w[0]), w[1], w[2]) for w in payload["chunks"][i]] for i in share]
    loaded = _load(ctx, spec, inputs, sum(len(c) for c in chunks))
    saliency_chunks(ctx, spec, loaded, inputs, Path(payload["root"]), chunks, rank_file(ctx.resume_dir, PARTIAL, ctx.rank),
                    0, sum(len(c) for c in chunks))
