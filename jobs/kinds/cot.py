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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.data.items import Item
from orienteer.jobs.context import JobContext
from orienteer.jobs.engines.options import (
    HF,
    OPENAI,
    api_key_env_option,
    api_model_option,
    check_engine,
    concurrency_option,
    endpoint_option,
    engine_option,
    needs_local_gpu,
    retries_option,
    serve_option,
)
from orienteer.jobs.gpus import parse_gpus
from orienteer.jobs.kinds.base import Here, KindDef, NewName, new_names, unique_name
from orienteer.jobs.params import option
from orienteer.jobs.settings import COT_MODES, PROMPT_NAMES, RATIONALIZE, SOLVE


@dataclass(frozen=True, kw_only=True)
class CotSpec:
    teacher: str = option(help="teacher model: a folder (save_pretrained), adapter folder or cached hub id")
    name: str = option(help="name of the dataset to write")
    dataset: str | None = option(None, help="take the items from this training dataset")
    bench: str | None = option(None, help="or from this benchmark (with --items)")
    items: str | None = option(None, help="item filter for --bench (task:NAME; ids:A,B; limit:N; ...)")
    mode: str = option(SOLVE, choices=COT_MODES,
                       help="solve: the teacher answers, kept when it reaches the gold letter; rationalize: the teacher "
                            "is told the gold option and explains it (the student still trains on the plain prompt)")
    prompt: str = option("think", choices=PROMPT_NAMES,
                         help="the student's prompt style (and the teacher's in solve mode); think asks for step-by-step "
                              "reasoning ending in the letter")
    samples: int = option(1, help="teacher replies per item; an item is kept when more than half reach the gold letter")
    temperature: float | None = option(
        None, help="sampling temperature, no top-k/top-p (default 0.7 when --samples > 1, else greedy; 0: greedy)")
    seed: int = option(0, help="seed of the sampled replies (re-runs and resumes draw the same ones)")
    max_new_tokens: int = option(256, help="longest rationale the teacher may write (tokens)")
    batch_size: int = option(8, help="items per generate call")
    max_pixels: int = option(640 * 480, help="pixel cap per image")
    engine: str = engine_option()
    endpoint: str | None = endpoint_option()
    serve: str | None = serve_option()
    api_model: str | None = api_model_option("--teacher")
    concurrency: int = concurrency_option()
    api_key_env: str = api_key_env_option()
    retries: int = retries_option()
    gpus: str = option("1", help="--serve: the engine's GPUs (its --tensor-parallel-size): a count N (GPUs 0..N-1) or a list "
                                 "(0,2); the in-process teacher uses one")


REPLIES = "teacher_replies.jsonl"
DATASET = "dataset.jsonl"
DEFAULT_SAMPLED_TEMPERATURE = 0.7

# generate(model, batch, tokenizer, max_new_tokens, temperature=None | float, seed=None | int) -> replies,
# each a jobs.model.generate.Reply (text, truncated) or a plain string
Generate = Callable[..., Sequence[Any]]


def check(spec: CotSpec) -> None:
    """Refuse impossible sampling settings before a job is created."""
    if spec.samples < 1:
        raise OrienteerError(f"cot: --samples must be at least 1, got {spec.samples}")
    if spec.temperature is not None and spec.temperature < 0:
        raise OrienteerError(f"cot: --temperature must be 0 or more, got {spec.temperature}")
    for name in ("max_new_tokens", "batch_size"):
        if getattr(spec, name) < 1:
            raise OrienteerError(f"cot: --{name.replace('_', '-')} must be at least 1, got {getattr(spec, name)}")
    try:
        check_engine(spec)
    except OrienteerError as exc:
        raise OrienteerError(f"cot: {exc}") from None
    if parse_gpus(spec.gpus)[0] > 1 and not spec.serve:
        raise OrienteerError("cot: --gpus N is the tensor-parallel size of an engine the job starts (--engine openai --serve "
                             "vllm|sglang); the in-process teacher runs on one GPU")


def temperature(spec: CotSpec) -> float | None:
    """The sampling temperature, or None for greedy decoding (one sample and no --temperature, or 0)."""
    if spec.temperature is None:
        return DEFAULT_SAMPLED_TEMPERATURE if spec.samples > 1 else None
    return spec.temperature or None


def call_seed(seed: int, batch: int, sample: int) -> int:
    """The seed of one generate call: a function of the spec's seed, the batch and the sample number only."""
    return zlib.crc32(f"{seed}:{batch}:{sample}".encode()) & 0x7FFFFFFF


def source_items(ctx: JobContext) -> tuple[list[Item], Path, str, int, dict[str, str]]:
    """The items to ask about, their image root, a description of the source, how many free-form
    dataset examples were left out (they have no gold letter to check against), and the benchmark
    each item came from where known (kept on the examples, so a train job can see test overlap)."""
    p = ctx.spec_of(CotSpec)
    if bool(p.dataset) == bool(p.bench):
        raise OrienteerError("cot: give exactly one of --dataset NAME or --bench NAME (with --items)")
    if p.bench:
        from orienteer.jobs.selection import load_items

        chosen, root = load_items(ctx.workspace, p.bench, p.items)
        where = f"bench {p.bench}" + (f" ({p.items})" if p.items else "")
        return chosen, root, where, 0, {it.item_id: p.bench for it in chosen}
    if p.items:
        raise OrienteerError("cot: --items filters a --bench; a --dataset is used whole")
    from orienteer.data.datasets import get_dataset, read_examples
    from orienteer.jobs.model.train import example_item

    examples = read_examples(Path(get_dataset(ctx.workspace, str(p.dataset)).path))
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
    return items, Path("/"), f"dataset {p.dataset}", free, benches


Samples = dict[str, dict[int, dict[str, Any]]]  # item id -> sample number -> {"reply", "truncated"}


def read_samples(path: Path) -> Samples:
    """The replies a resume file holds (records from before ``--samples`` count as sample 0)."""
    from orienteer.jobs.model.job_files import read_records

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
    dataset = ctx.spec_of(CotSpec).dataset
    if dataset:
        from orienteer.data.datasets import get_dataset
        from orienteer.data.overlap import composition_benches

        names.update(composition_benches(get_dataset(ctx.workspace, dataset).composition))
    return sorted(names)


def ask_teacher(ctx: JobContext, items: Sequence[Item], root: Path, generate: Generate | None = None) -> Samples:
    """Every sample of every item not answered yet (resume file ``teacher_replies.jsonl``).

    The calls follow a fixed plan: batches of ``--batch-size`` items in order, and for each batch
    sample 0, 1, ... K-1, each seeded by ``call_seed``; a call's replies are appended when it returns.
    """
    from orienteer.jobs.model.cot import rationalize_text
    from orienteer.jobs.model.job_files import append_records

    p = ctx.spec_of(CotSpec)
    k_samples = p.samples
    temp = temperature(p)
    style = p.prompt
    ctx.resume_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.resume_dir / REPLIES
    samples = read_samples(path)
    batch_size = p.batch_size
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
    if p.engine == OPENAI:  # one request per item and sample, to a server (--batch-size does not apply)
        from orienteer.jobs.engines.teacher import ask_teacher_openai

        ask_teacher_openai(ctx, p, items, root, samples, path, done, total, unit, temp)
        return samples

    from orienteer.jobs.model.batching import Prefetcher, collate, item_encoder, to_device
    from orienteer.jobs.model.images import PixelBudget
    from orienteer.jobs.model.loading import load_model

    if generate is None:
        from orienteer.jobs.model.generate import generate_replies

        generate = generate_replies
    loaded = load_model(p.teacher, device=ctx.device)
    ctx.log(f"teacher {loaded.name} on {ctx.device}" + ("; RANDOM WEIGHTS" if loaded.random_weights else "")
            + f"; {k_samples} sample{'s' if k_samples > 1 else ''} per item, "
            + (f"temperature {temp:g}, seed {p.seed}" if temp else "greedy"))
    text_for = (lambda it: rationalize_text(it, style)) if p.mode == RATIONALIZE else None
    encode = item_encoder(loaded.processor, root, style, PixelBudget(p.max_pixels or 640 * 480),
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
            replies = generate(loaded.model, batch, loaded.tokenizer, p.max_new_tokens,
                               temperature=temp, seed=call_seed(p.seed, b, k))
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
    from orienteer.jobs.model.cot import KEPT, filter_rationales

    p = ctx.spec_of(CotSpec)
    check(p)
    style = p.prompt
    mode = p.mode
    k_samples = p.samples
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
    composition: dict[str, Any] = {"teacher": p.teacher, "source": source, "prompt": style, "mode": mode,
                                   "samples": k_samples, "temperature": temp, **report.composition(),
                                   "n_truncated_replies": n_truncated}
    if temp:
        composition["seed"] = p.seed
    composition["benches"] = source_benches(ctx, benches)
    if p.engine != HF:
        from orienteer.jobs.engines.teacher import teacher_engine

        composition["teacher_engine"] = teacher_engine(p, ctx.resume_dir / REPLIES)
    if mode == RATIONALIZE:
        composition["teacher_prompt"] = "rationalize: the gold option given (teacher only)"
    if n_free:
        composition["n_free_form_skipped"] = n_free
    agreement = f", agreement {report.agreement:.2f}" if k_samples > 1 and report.agreement is not None else ""
    others = ", ".join(f"{k} {v}" for k, v in report.counts.items() if k != KEPT and v)
    summary = (f"teacher {p.teacher} ({mode}, {k_samples} sample{'s' if k_samples > 1 else ''} per item) on {source}: "
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
    ctx.add_output(DatasetOutput(name=p.name, file=DATASET, composition=composition, notes=summary))


def preflight(ws: Any, spec: CotSpec) -> None:
    """``--serve``: the engine's executable is a workspace setting; refuse before a job exists when it is missing."""
    if spec.serve:
        from orienteer.jobs.engines.serve import engine_executable

        engine_executable(ws, spec.serve)


def outputs(spec: CotSpec) -> list[NewName]:
    return new_names(spec, name="datasets")


def prefill(here: Here) -> dict[str, Any]:
    return {"bench": here.bench, "name": unique_name("cot"), "items": here.selection}


KIND = KindDef(
    name="cot", spec=CotSpec, summary="distil chain-of-thought rationales from a teacher model", run=run,
    needs_gpu=True, reads=(("dataset", "datasets"), ("bench", "benchmarks")), models=("teacher",), outputs=outputs,
    check=check, preflight=preflight, prefill=prefill, gpu_when=needs_local_gpu,
)
