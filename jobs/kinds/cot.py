"""cot: distil chain-of-thought rationales from a teacher into a training dataset.

The teacher answers each training item in generate mode with a step-by-step prompt (``--prompt``,
default ``think``: question, options, "Think step by step about the viewpoint, then give the final
answer as the option letter on the last line."). ``jobs.model.cot`` keeps a reply only when the
official parser reads the gold letter from its last line and some reasoning precedes it; the kept
share is recorded in the dataset's composition. Each kept example's target is the rationale plus
``Answer: X``, and its ``prompt_suffix`` is the teacher's prompt, so the train kind trains on exactly
that prompt and ``eval --mode generate --prompt think`` scores the student the way the filter read
the teacher.

Items come from a dataset (``--dataset``: each item once, in file order; free-form examples are
counted and skipped) or a benchmark (``--bench`` with ``--items``). Replies are appended to the resume
folder batch by batch, so a killed job re-run with the same spec asks the teacher only for the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.data.items import Item
from orienteer.jobs.context import JobContext
from orienteer.jobs.model.job_files import append_records, read_records
from orienteer.jobs.model.prompt import PROMPT_NAMES
from orienteer.jobs.params import Param

SUMMARY = "distil chain-of-thought rationales from a teacher model"
PARAMS = (
    Param("teacher", "str", required=True, help="teacher model: a folder (save_pretrained), adapter folder or cached hub id"),
    Param("name", "str", required=True, help="name of the dataset to write"),
    Param("dataset", "str", None, help="take the items from this training dataset"),
    Param("bench", "str", None, help="or from this benchmark (with --items)"),
    Param("items", "str", None, help="item filter for --bench (task:NAME; ids:A,B; limit:N; ...)"),
    Param("prompt", "choice", "think", choices=PROMPT_NAMES,
          help="teacher prompt style; think asks for step-by-step reasoning ending in the letter"),
    Param("max_new_tokens", "int", 256, help="longest rationale the teacher may write (tokens)"),
    Param("batch_size", "int", 8, help="items per generate call"),
    Param("max_pixels", "int", 640 * 480, help="pixel cap per image"),
)

REPLIES = "teacher_replies.jsonl"
DATASET = "dataset.jsonl"

Generate = Callable[[Any, dict[str, Any], Any, int], list[str]]


def source_items(ctx: JobContext) -> tuple[list[Item], Path, str, int]:
    """The items to ask about, their image root, a description of the source, and how many free-form
    dataset examples were left out (they have no gold letter to check against)."""
    p = ctx.params
    if bool(p.get("dataset")) == bool(p.get("bench")):
        raise OrienteerError("cot: give exactly one of --dataset NAME or --bench NAME (with --items)")
    if p.get("bench"):
        from orienteer.jobs.selection import load_items

        items, root = load_items(ctx.workspace, p["bench"], p.get("items"))
        return items, root, f"bench {p['bench']}" + (f" ({p['items']})" if p.get("items") else ""), 0
    if p.get("items"):
        raise OrienteerError("cot: --items filters a --bench; a --dataset is used whole")
    from orienteer.data.datasets import get_dataset, read_examples
    from orienteer.jobs.model.train import example_item

    examples = read_examples(Path(get_dataset(ctx.workspace, p["dataset"]).path))
    seen: set[str] = set()
    items: list[Item] = []
    free = 0
    for example in examples:
        if example["item_id"] in seen:
            continue
        seen.add(example["item_id"])
        if not example.get("options") or not example.get("answer"):
            free += 1
            continue
        items.append(example_item(example))
    return items, Path("/"), f"dataset {p['dataset']}", free


def ask_teacher(ctx: JobContext, items: Sequence[Item], root: Path, generate: Generate | None = None) -> dict[str, str]:
    """Generate a reply for every item not answered yet (resume file ``teacher_replies.jsonl``)."""
    p = ctx.params
    ctx.resume_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.resume_dir / REPLIES
    replies = {rec["item_id"]: rec["reply"] for rec in read_records(path)}
    todo = [it for it in items if it.item_id not in replies]
    if replies:
        ctx.log(f"resuming: {len(items) - len(todo)} of {len(items)} items already answered by the teacher")
    ctx.progress(len(items) - len(todo), len(items), unit="items")
    if not todo:
        return replies

    from orienteer.jobs.model.batching import Prefetcher, collate, item_encoder, to_device
    from orienteer.jobs.model.images import PixelBudget
    from orienteer.jobs.model.loading import load_model

    if generate is None:
        from orienteer.jobs.model.generate import generate_batch as generate
    loaded = load_model(str(p["teacher"]), device=ctx.device)
    ctx.log(f"teacher {loaded.name} on {ctx.device}" + ("; RANDOM WEIGHTS" if loaded.random_weights else ""))
    batch_size = int(p.get("batch_size") or 8)
    batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
    encode = item_encoder(loaded.processor, root, p.get("prompt") or "think", PixelBudget(int(p.get("max_pixels") or 640 * 480)))
    done = len(items) - len(todo)
    for encoded, failed in Prefetcher(batches, encode):
        ctx.check_stop()
        if failed:
            raise OrienteerError(f"cot: item {failed[0].item.item_id}: {failed[0].error}")
        batch = to_device(collate(encoded, loaded.pad_id), ctx.device, loaded.dtype)
        texts = generate(loaded.model, batch, loaded.tokenizer, int(p.get("max_new_tokens") or 256))
        answered = {e.item.item_id: reply for e, reply in zip(encoded, texts)}
        append_records(path, [{"item_id": item_id, "reply": reply} for item_id, reply in answered.items()])
        replies.update(answered)
        done += len(encoded)
        ctx.progress(done, len(items), unit="items")
    return replies


def run(ctx: JobContext, generate: Generate | None = None) -> None:
    """``generate`` lets tests stand in for the teacher's decoding; the model is still loaded and fed."""
    from orienteer.data.datasets import example_from_item, write_examples
    from orienteer.data.images import resolve_image
    from orienteer.data.job_outputs import DatasetOutput
    from orienteer.jobs.model.cot import KEPT, filter_rationales
    from orienteer.jobs.model.prompt import PROMPTS

    p = ctx.params
    style = p.get("prompt") or "think"
    items, root, source, n_free = source_items(ctx)
    if not items:
        raise OrienteerError(f"cot: {source} has no multiple-choice items to ask about")
    replies = ask_teacher(ctx, items, root, generate)

    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    report = filter_rationales([(it.item_id, replies[it.item_id], it.answer_letter, it.options) for it in items])
    with open(ctx.out_dir / REPLIES, "w", encoding="utf-8") as fh:
        for item, judged in zip(items, report.judged):
            fh.write(json.dumps({"item_id": item.item_id, "reply": replies[item.item_id], "status": judged.status,
                                 "letter": judged.letter, "gold": judged.gold}, ensure_ascii=False) + "\n")
    composition = {"teacher": str(p["teacher"]), "source": source, "prompt": style, **report.composition()}
    if n_free:
        composition["n_free_form_skipped"] = n_free
    summary = (f"teacher {p['teacher']} on {source}: kept {report.n_kept} of {report.n_items} rationales "
               f"({report.kept_share:.1%}); {', '.join(f'{k} {v}' for k, v in report.counts.items() if k != KEPT and v)}")
    ctx.log(summary)
    if report.n_kept == 0:
        raise OrienteerError(f"cot: none of the teacher's {report.n_items} replies ended in the gold letter; nothing to "
                             f"train on (replies in {ctx.out_dir / REPLIES})")
    examples = []
    for item, judged in zip(items, report.judged):
        if judged.status != KEPT:
            continue
        images = [str(resolve_image(root, rel).resolve()) for rel in item.images]
        example = example_from_item(item, images, "cot", target=judged.target)
        example["rationale"] = replies[item.item_id]
        example["prompt_suffix"] = PROMPTS[style][0]
        examples.append(example)
    write_examples(ctx.out_dir / DATASET, examples)
    ctx.add_output(DatasetOutput(name=p["name"], file=DATASET, composition=composition, notes=summary))
