"""cot: distil chain-of-thought rationales from a teacher into a training dataset.

``--mode solve`` (default): the teacher answers each training item in generate mode with a
step-by-step prompt (``--prompt``, default ``think``: question, options, "Think step by step about
the viewpoint, then give the final answer as the option letter on the last line."). ``--mode
rationalize``: the teacher is told the gold option ("The correct answer is B. right. Explain step
by step ...") and writes the explanation that leads to it. Either way ``jobs.model.cot`` keeps a
reply only when the official parser reads the gold letter from its last line and some reasoning
precedes it. Each kept example's target is the rationale plus ``Answer: X``, and its
``prompt`` is the plain ``--prompt`` style (never the gold-bearing teacher text), so the train kind
trains on exactly that prompt and ``eval --mode generate --prompt think`` scores the student the
way the filter read the teacher.

``--samples K`` asks the teacher K times per item (sampled at ``--temperature``, default 0.7 when
K > 1; K = 1 is greedy) and keeps an item only when strictly more than half of the K final letters
are gold. The dataset's composition records, per task and overall, the items tried, kept, and the
mean agreement (share of samples that reach the gold letter).

Items come from a dataset (``--dataset``: each item once, in file order; free-form examples are
counted and skipped) or a benchmark (``--bench`` with ``--items``). Replies are appended to the
resume folder call by call, one record per item and sample, and every call's seed is a function of
``--seed``, its batch and its sample number, so a killed job re-run with the same spec asks the
teacher only for the rest and ends with the replies an uninterrupted one would have had.
"""

from __future__ import annotations

import json
import zlib
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
MODES = ("solve", "rationalize")  # jobs.model.cot.MODES, without importing it for the form
PARAMS = (
    Param("teacher", "str", required=True, help="teacher model: a folder (save_pretrained), adapter folder or cached hub id"),
    Param("name", "str", required=True, help="name of the dataset to write"),
    Param("dataset", "str", None, help="take the items from this training dataset"),
    Param("bench", "str", None, help="or from this benchmark (with --items)"),
    Param("items", "str", None, help="item filter for --bench (task:NAME; ids:A,B; limit:N; ...)"),
    Param("mode", "choice", "solve", choices=MODES,
          help="solve: the teacher answers, kept when it reaches the gold letter; rationalize: the teacher is told "
               "the gold option and explains it (the student still trains on the plain prompt)"),
    Param("prompt", "choice", "think", choices=PROMPT_NAMES,
          help="the student's prompt style (and the teacher's in solve mode); think asks for step-by-step reasoning "
               "ending in the letter"),
    Param("samples", "int", 1, help="teacher replies per item; an item is kept when more than half reach the gold letter"),
    Param("temperature", "float", None,
          help="sampling temperature, no top-k/top-p (default 0.7 when --samples > 1, else greedy; 0: greedy)"),
    Param("seed", "int", 0, help="seed of the sampled replies (re-runs and resumes draw the same ones)"),
    Param("max_new_tokens", "int", 256, help="longest rationale the teacher may write (tokens)"),
    Param("batch_size", "int", 8, help="items per generate call"),
    Param("max_pixels", "int", 640 * 480, help="pixel cap per image"),
)

REPLIES = "teacher_replies.jsonl"
DATASET = "dataset.jsonl"
DEFAULT_SAMPLED_TEMPERATURE = 0.7

# generate(model, batch, tokenizer, max_new_tokens, temperature=None | float, seed=None | int) -> replies,
# each a jobs.model.generate.Reply (text, truncated) or a plain string
Generate = Callable[..., Sequence[Any]]


def check(params: dict[str, Any]) -> None:
    """Refuse impossible sampling settings before a job is created."""
    samples = params.get("samples")
    if samples is not None and int(samples) < 1:
        raise OrienteerError(f"cot: --samples must be at least 1, got {samples}")
    temperature = params.get("temperature")
    if temperature is not None and float(temperature) < 0:
        raise OrienteerError(f"cot: --temperature must be 0 or more, got {temperature}")
    for name in ("max_new_tokens", "batch_size"):
        if params.get(name) is not None and int(params[name]) < 1:
            raise OrienteerError(f"cot: --{name.replace('_', '-')} must be at least 1, got {params[name]}")


def n_samples(params: dict[str, Any]) -> int:
    return int(params.get("samples") or 1)


def temperature(params: dict[str, Any]) -> float | None:
    """The sampling temperature, or None for greedy decoding (one sample and no --temperature, or 0)."""
    given = params.get("temperature")
    if given is None:
        return DEFAULT_SAMPLED_TEMPERATURE if n_samples(params) > 1 else None
    return float(given) or None


def call_seed(seed: int, batch: int, sample: int) -> int:
    """The seed of one generate call: a function of the spec's seed, the batch and the sample number only."""
    return zlib.crc32(f"{seed}:{batch}:{sample}".encode()) & 0x7FFFFFFF


def source_items(ctx: JobContext) -> tuple[list[Item], Path, str, int, dict[str, str]]:
    """The items to ask about, their image root, a description of the source, how many free-form
    dataset examples were left out (they have no gold letter to check against), and the benchmark
    each item came from where known (kept on the examples, so a train job can see test overlap)."""
    p = ctx.params
    if bool(p.get("dataset")) == bool(p.get("bench")):
        raise OrienteerError("cot: give exactly one of --dataset NAME or --bench NAME (with --items)")
    if p.get("bench"):
        from orienteer.jobs.selection import load_items

        items, root = load_items(ctx.workspace, p["bench"], p.get("items"))
        where = f"bench {p['bench']}" + (f" ({p['items']})" if p.get("items") else "")
        return items, root, where, 0, {it.item_id: str(p["bench"]) for it in items}
    if p.get("items"):
        raise OrienteerError("cot: --items filters a --bench; a --dataset is used whole")
    from orienteer.data.datasets import get_dataset, read_examples
    from orienteer.jobs.model.train import example_item

    examples = read_examples(Path(get_dataset(ctx.workspace, p["dataset"]).path))
    seen: set[str] = set()
    items: list[Item] = []
    benches: dict[str, str] = {}
    free = 0
    for example in examples:
        if example["item_id"] in seen:
            continue
        seen.add(example["item_id"])
        if not example.get("options") or not example.get("answer"):
            free += 1
            continue
        items.append(example_item(example))
        if example.get("bench"):
            benches[example["item_id"]] = str(example["bench"])
    return items, Path("/"), f"dataset {p['dataset']}", free, benches


Samples = dict[str, dict[int, dict[str, Any]]]  # item id -> sample number -> {"reply", "truncated"}


def read_samples(path: Path) -> Samples:
    """The replies a resume file holds (records from before ``--samples`` count as sample 0)."""
    out: Samples = {}
    for rec in read_records(path):
        out.setdefault(rec["item_id"], {})[int(rec.get("sample", 0))] = {
            "reply": rec["reply"], "truncated": bool(rec.get("truncated", False))}
    return out


def _as_reply(value: Any) -> tuple[str, bool]:
    """``(text, truncated)`` of what a generate callable returned (a Reply, or a plain string)."""
    if isinstance(value, str):
        return value, False
    return str(value.text), bool(value.truncated)


def source_benches(ctx: JobContext, benches: dict[str, str]) -> list[str]:
    """The benchmarks the examples came from, plus those a source dataset's composition names: the
    train job's test-overlap check reads them."""
    names = set(benches.values())
    if ctx.params.get("dataset"):
        from orienteer.data.datasets import get_dataset
        from orienteer.data.overlap import composition_benches

        names.update(composition_benches(get_dataset(ctx.workspace, ctx.params["dataset"]).composition))
    return sorted(names)


def ask_teacher(ctx: JobContext, items: Sequence[Item], root: Path, generate: Generate | None = None) -> Samples:
    """Every sample of every item not answered yet (resume file ``teacher_replies.jsonl``).

    The calls follow a fixed plan: batches of ``--batch-size`` items in order, and for each batch
    sample 0, 1, ... K-1, each seeded by ``call_seed``; a call's replies are appended when it returns.
    """
    from orienteer.jobs.model.cot import RATIONALIZE, rationalize_text

    p = ctx.params
    k_samples = n_samples(p)
    temp = temperature(p)
    style = p.get("prompt") or "think"
    ctx.resume_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.resume_dir / REPLIES
    samples = read_samples(path)
    batch_size = int(p.get("batch_size") or 8)
    plan = [list(items[i:i + batch_size]) for i in range(0, len(items), batch_size)]

    def missing(batch: Sequence[Item], k: int) -> list[Item]:
        return [it for it in batch if k not in samples.get(it.item_id, {})]

    total = len(items) * k_samples
    done = sum(1 for it in items for k in range(k_samples) if k in samples.get(it.item_id, {}))
    unit = "items" if k_samples == 1 else "replies"
    if done:
        ctx.log(f"resuming: {done} of {total} teacher replies already there")
    ctx.progress(done, total, unit=unit)
    todo = [b for b, batch in enumerate(plan) if any(missing(batch, k) for k in range(k_samples))]
    if not todo:
        return samples

    from orienteer.jobs.model.batching import Prefetcher, collate, item_encoder, to_device
    from orienteer.jobs.model.images import PixelBudget
    from orienteer.jobs.model.loading import load_model

    if generate is None:
        from orienteer.jobs.model.generate import generate_replies as generate
    loaded = load_model(str(p["teacher"]), device=ctx.device)
    ctx.log(f"teacher {loaded.name} on {ctx.device}" + ("; RANDOM WEIGHTS" if loaded.random_weights else "")
            + f"; {k_samples} sample{'s' if k_samples > 1 else ''} per item, "
            + (f"temperature {temp:g}, seed {int(p.get('seed') or 0)}" if temp else "greedy"))
    text_for = (lambda it: rationalize_text(it, style)) if p.get("mode") == RATIONALIZE else None
    encode = item_encoder(loaded.processor, root, style, PixelBudget(int(p.get("max_pixels") or 640 * 480)),
                          text_for=text_for)
    for b, (encoded, failed) in zip(todo, Prefetcher([plan[b] for b in todo], encode)):
        ctx.check_stop()
        if failed:
            raise OrienteerError(f"cot: item {failed[0].item.item_id}: {failed[0].error}")
        for k in range(k_samples):
            rows = [e for e in encoded if k not in samples.get(e.item.item_id, {})]
            if not rows:
                continue
            ctx.check_stop()
            batch = to_device(collate(rows, loaded.pad_id), ctx.device, loaded.dtype)
            replies = generate(loaded.model, batch, loaded.tokenizer, int(p.get("max_new_tokens") or 256),
                               temperature=temp, seed=call_seed(int(p.get("seed") or 0), b, k))
            records = []
            for e, value in zip(rows, replies):
                text, cut = _as_reply(value)
                samples.setdefault(e.item.item_id, {})[k] = {"reply": text, "truncated": cut}
                records.append({"item_id": e.item.item_id, "sample": k, "reply": text, "truncated": cut})
            append_records(path, records)
            done += len(rows)
            ctx.progress(done, total, unit=unit)
    return samples


def run(ctx: JobContext, generate: Generate | None = None) -> None:
    """``generate`` lets tests stand in for the teacher's decoding; the model is still loaded and fed."""
    from orienteer.core.answers import viewspatial_letter
    from orienteer.data.datasets import example_from_item, write_examples
    from orienteer.data.images import resolve_image
    from orienteer.data.job_outputs import DatasetOutput
    from orienteer.jobs.model.cot import KEPT, RATIONALIZE, SOLVE, filter_rationales

    check(ctx.params)
    p = ctx.params
    style = p.get("prompt") or "think"
    mode = p.get("mode") or SOLVE
    k_samples = n_samples(p)
    items, root, source, n_free, benches = source_items(ctx)
    if not items:
        raise OrienteerError(f"cot: {source} has no multiple-choice items to ask about")
    samples = ask_teacher(ctx, items, root, generate)

    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    texts = {it.item_id: [samples[it.item_id][k]["reply"] for k in range(k_samples)] for it in items}
    report = filter_rationales([(it.item_id, texts[it.item_id], it.answer_letter, it.options, it.task) for it in items])
    n_truncated = 0
    with open(ctx.out_dir / REPLIES, "w", encoding="utf-8") as fh:
        for item, judged in zip(items, report.judged):
            for k in range(k_samples):
                sample = samples[item.item_id][k]
                n_truncated += sample["truncated"]
                fh.write(json.dumps({"item_id": item.item_id, "sample": k, "reply": sample["reply"],
                                     "truncated": sample["truncated"],
                                     "letter": viewspatial_letter(sample["reply"].rstrip()), "gold": judged.gold,
                                     "status": judged.status, "used": judged.used == k}, ensure_ascii=False) + "\n")
    temp = temperature(p)
    composition: dict[str, Any] = {"teacher": str(p["teacher"]), "source": source, "prompt": style, "mode": mode,
                                   "samples": k_samples, "temperature": temp, **report.composition(),
                                   "n_truncated_replies": n_truncated}
    if temp:
        composition["seed"] = int(p.get("seed") or 0)
    composition["benches"] = source_benches(ctx, benches)
    if mode == RATIONALIZE:
        composition["teacher_prompt"] = "rationalize: the gold option given (teacher only)"
    if n_free:
        composition["n_free_form_skipped"] = n_free
    agreement = f", agreement {report.agreement:.2f}" if k_samples > 1 and report.agreement is not None else ""
    others = ", ".join(f"{k} {v}" for k, v in report.counts.items() if k != KEPT and v)
    summary = (f"teacher {p['teacher']} ({mode}, {k_samples} sample{'s' if k_samples > 1 else ''} per item) on {source}: "
               f"kept {report.n_kept} of {report.n_items} rationales ({report.kept_share:.1%}){agreement}"
               + (f"; {others}" if others else "")
               + (f"; {n_truncated} replies cut at --max-new-tokens" if n_truncated else ""))
    ctx.log(summary)
    if report.n_kept == 0:
        what = (f"none of the teacher's {report.n_items} replies ended in the gold letter" if k_samples == 1 else
                f"no item had more than half of its {k_samples} samples end in the gold letter with a rationale")
        raise OrienteerError(f"cot: {what}; nothing to train on (replies in {ctx.out_dir / REPLIES})")
    examples = []
    for item, judged in zip(items, report.judged):
        if judged.status != KEPT:
            continue
        images = [str(resolve_image(root, rel).resolve()) for rel in item.images]
        example = example_from_item(item, images, "cot", target=judged.target, bench=benches.get(item.item_id))
        example["rationale"] = texts[item.item_id][judged.used or 0]
        example["prompt"] = style  # the student's plain prompt (by name: separator and suffix), never the teacher's hint
        examples.append(example)
    write_examples(ctx.out_dir / DATASET, examples)
    ctx.add_output(DatasetOutput(name=p["name"], file=DATASET, composition=composition, notes=summary))
