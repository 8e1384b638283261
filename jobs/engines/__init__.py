"""Answers from a serving engine instead of the in-process model: any OpenAI-compatible server.

``--engine openai`` on ``eval`` and ``cot`` sends each item as one chat-completions request (images as
base64 data URLs) to ``--endpoint`` (a server the user runs: vLLM, SGLang, LMDeploy, ``transformers
serve``, a hosted API) or to an engine the job starts itself (``--serve vllm|sglang``). The modules:

- ``options``: the spec fields and their checks, shared by the kinds (no I/O);
- ``request``: the request body, built from the same prompt text and frame sizes as the in-process path;
- ``client``: the HTTP client (bounded concurrency, retries with backoff, the API key from the environment);
- ``logprobs``: score mode's option-letter probabilities from a response's ``top_logprobs``;
- ``serve``: starting, health-checking and stopping a configured engine;
- ``session``: one job's requests to its endpoint (bodies built in threads, answers recorded as they come);
- ``openai_eval`` and ``teacher``: the eval kind's and the cot kind's work through an endpoint.

Nothing here imports torch: frames are resized with Pillow to the size the model's processor would
give them (``jobs.model.images`` computes it).
"""
