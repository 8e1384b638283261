"""``orienteer prompt``: the exact user turn an eval sends for one item, and (with a model) its size.

Answers "what did the model actually read?" without running a model: the prompt text of the chosen
style byte for byte (control characters shown as escapes, markup escaped: item text is untrusted),
and, with ``--model``, the processor alone (``AutoProcessor``, offline) to count the whole chat
input's tokens and each frame's processed size under ``--resize``, exactly as ``batching.encode_item``
builds them for the eval. transformers is imported only then, inside the command. With ``--engine
openai``, the chat-completions request body an eval through a server sends (``jobs.engines.request``:
the same text, each frame resized to the size the processor gives it), with the images' base64 elided.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from orienteer.tui.cli.common import JsonOpt, console, current_workspace, errors, print_json
from orienteer.tui.safe_text import safe as one_line
from orienteer.tui.safe_text import visible as _visible


def visible(text: str) -> str:
    """The prompt's text with every control or format character but the newline written as an escape
    (``\\t``, ``\\r``, ``\\x1b``, ``\\u202e``...): ``safe_text.visible`` keeping line breaks."""
    return _visible(text, multiline=True)


def safe(text: str) -> str:
    """Untrusted text for a rich console: control characters visible (line breaks kept), markup escaped."""
    return one_line(text, multiline=True)


def register(app: typer.Typer) -> None:
    """Add ``prompt`` to the ``orienteer`` command."""
    app.command("prompt")(prompt)


def prompt(
    bench: Annotated[str, typer.Option("--bench", help="Benchmark name in the workspace.")],
    item: Annotated[str, typer.Option("--item", help="Item id, matched exactly (ViewSpatial: its index, e.g. 12).")],
    style: Annotated[str, typer.Option("--prompt", help="Prompt style: official (evaluate.py exactly), "
                                                       "official-newline, letter, think.")] = "official",
    resize: Annotated[Optional[str], typer.Option("--resize", help="upstream or budget (default: upstream with "
                                                                   "the official prompt, else budget).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Model folder or registered model: count tokens and "
                                                                 "frame sizes with its processor (offline, no weights).")] = None,
    max_pixels: Annotated[Optional[int], typer.Option("--max-pixels", help="--resize budget: pixel cap per image.")] = None,
    engine: Annotated[str, typer.Option("--engine", help="hf (the in-process model) or openai: also show the request "
                                                        "body an eval through a server sends (images elided).")] = "hf",
    api_model: Annotated[Optional[str], typer.Option("--api-model", help="--engine openai: the served model name "
                                                                         "(default: --model, else MODEL).")] = None,
    mode: Annotated[str, typer.Option("--mode", help="--engine openai: score or generate.")] = "score",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="--engine openai, generate mode.")] = 128,
    as_json: JsonOpt = False,
) -> None:
    """Show the exact user turn an eval sends for one item (and, with --model, its tokens and frame sizes)."""
    with errors():
        result = describe(bench, item, style, resize, model, max_pixels)
        if engine != "hf":
            result["request"] = request_preview(result, engine, api_model or model or "MODEL", mode, max_new_tokens)
    if as_json:
        print_json(result)
        return
    _print(result)


def describe(bench: str, item_id: str, style: str, resize: str | None, model: str | None,
             max_pixels: int | None = None) -> dict[str, Any]:
    """Everything ``orienteer prompt`` shows, as data (its ``--json``)."""
    from orienteer.data.errors import OrienteerError
    from orienteer.jobs.model.images import BUDGET, DEFAULT_MAX_PIXELS, UPSTREAM, default_resize, frame_sizing
    from orienteer.jobs.model.prompt import check_prompt, prompt_text, template_hash
    from orienteer.jobs.selection import load_item

    check_prompt(style)
    mode = resize or (BUDGET if max_pixels else default_resize(style))
    if mode == UPSTREAM and max_pixels:
        raise OrienteerError("--max-pixels sizes frames for --resize budget; --resize upstream sizes them as evaluate.py does")
    sizing = frame_sizing(mode, max_pixels or DEFAULT_MAX_PIXELS)
    ws = current_workspace()
    found, root = load_item(ws, bench, item_id)
    if found is None:
        raise OrienteerError(f"benchmark {bench!r} has no item {item_id!r} (ids are matched exactly)")
    result: dict[str, Any] = {
        "bench": bench, "item_id": found.item_id, "prompt": style, "prompt_hash": template_hash(style),
        "resize": mode, "sizing": sizing.config(), "text": prompt_text(found, style),
        "frames": [{"path": path} for path in found.images],
    }
    if model is not None:
        from orienteer.jobs.api import resolve_model_names

        folder = resolve_model_names(ws, {"model": model})["model"]  # a registered model's name works too
        result.update(_measure(folder, found, root, style, sizing))
    return result


def request_preview(result: dict[str, Any], engine: str, api_model: str, mode: str, max_new_tokens: int) -> dict[str, Any]:
    """The chat-completions body ``--engine openai`` sends for the item ``describe`` found, images elided."""
    from orienteer.data.errors import OrienteerError
    from orienteer.jobs.engines.request import chat_body, elided, item_frames
    from orienteer.jobs.model.images import frame_sizing
    from orienteer.jobs.selection import load_item

    if engine != "openai":
        raise OrienteerError(f"--engine expects hf or openai, got {engine!r}")
    if mode not in ("score", "generate"):
        raise OrienteerError(f"--mode expects score or generate, got {mode!r}")
    found, root = load_item(current_workspace(), result["bench"], result["item_id"])
    if found is None:  # describe found it a moment ago
        raise OrienteerError(f"benchmark {result['bench']!r} has no item {result['item_id']!r}")
    sizing = result["sizing"]
    frames = item_frames(found, root, frame_sizing(sizing["resize"], sizing.get("max_pixels") or 640 * 480))
    return elided(chat_body(api_model, result["text"], frames, mode, max_new_tokens), frames)


def _measure(model: str, item: Any, root: Any, style: str, sizing: Any) -> dict[str, Any]:
    """Token count of the whole chat input and each frame's processed size, from the processor only."""
    from orienteer.data.errors import OrienteerError
    from orienteer.jobs.model.batching import encode_item
    from orienteer.jobs.model.images import image_paths, load_images
    from orienteer.jobs.model.loading import load_processor_offline, resolve_model_ref

    base, _adapter = resolve_model_ref(model)
    try:
        processor = load_processor_offline(base)
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise OrienteerError(f"model {base}: its processor cannot be loaded offline ({reason})") from None
    try:
        frames = load_images(item, root)
    except OrienteerError as exc:  # names a path from the benchmark file: the error handler shows it safely
        raise OrienteerError(str(exc)) from None
    encoded = encode_item(processor, item, frames, style, sizing)
    image_proc = processor.image_processor
    patch = int(getattr(image_proc, "patch_size", 14))
    merge = int(image_proc.merge_size) ** 2
    sizes = []
    for path, (width, height), (t, gh, gw) in zip(image_paths(item, root), encoded.sizes, encoded.image_grid_thw.tolist()):
        sizes.append({"path": str(path), "width": width, "height": height, "processed_height": gh * patch,
                      "processed_width": gw * patch, "tokens": t * gh * gw // merge})
    return {"model": base, "tokens": encoded.length, "image_tokens": int(encoded.mm_token_type_ids.sum()),
            "frames": sizes}


def _print(result: dict[str, Any]) -> None:
    console.print(f"[bold]{one_line(result['bench'])}[/] item [bold]{one_line(result['item_id'])}[/] · prompt "
                  f"{one_line(result['prompt'])} (template {result['prompt_hash']}) · resize {result['resize']}",
                  highlight=False, soft_wrap=True)
    n = len(result["frames"])
    console.print(f"[dim]user turn: {n} image{'s' if n != 1 else ''}, then this text:[/]", highlight=False)
    console.print(safe(result["text"]), highlight=False, soft_wrap=True)
    console.print("[dim]--- end of text[/]", highlight=False)
    if "tokens" in result:
        console.print(f"chat input: {result['tokens']} tokens ({result['image_tokens']} of them image tokens) with "
                      f"{one_line(result['model'])}'s processor", highlight=False, soft_wrap=True)
    if "request" in result:
        import json

        console.print("[dim]request body (POST /v1/chat/completions):[/]", highlight=False)
        console.print(safe(json.dumps(result["request"], indent=1, ensure_ascii=False)), highlight=False, soft_wrap=True)
    for k, frame in enumerate(result["frames"]):
        if "tokens" in frame:
            console.print(f"  frame {k}: {frame['height']}x{frame['width']} -> {frame['processed_height']}x"
                          f"{frame['processed_width']} (HxW), {frame['tokens']} tokens  [dim]{one_line(frame['path'])}[/]",
                          highlight=False, soft_wrap=True)
        else:
            console.print(f"  frame {k}: [dim]{one_line(frame['path'])}[/]", highlight=False, soft_wrap=True)
