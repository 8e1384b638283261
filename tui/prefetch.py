"""Case details fetched ahead of the key that shows them, in one background thread.

``case_detail`` (an item in every run) takes 100-300 ms on a workspace of ten million
predictions, longer than a key may take to repaint. The lists that open cases say which
case is likely next (the failures list: the row under the cursor; the case view: the items
before and after), and a daemon thread fetches those through a ``WorkspaceService`` of its
own (its own read-only connection), so the UI thread's reader is never held by it. A key that needs a case still being fetched
waits for that fetch instead of starting a second one; a case nobody asked for is fetched on
the UI thread as before. Results are keyed by the app's data generation, so new data is
never hidden behind an old answer.
"""

from __future__ import annotations

import atexit
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orienteer.data.service import WorkspaceService

Key = tuple[Hashable, str, str]  # (data generation, run, item id)


class CasePrefetcher:
    """A small LRU cache of ``case_detail`` results, filled ahead of time by a background thread."""

    def __init__(self, service: WorkspaceService, size: int = 64) -> None:
        self._service = service  # this prefetcher's own: closed with it
        self._size = size
        self._cond = threading.Condition()
        self._cache: OrderedDict[Key, Any] = OrderedDict()
        self._wanted: list[Key] = []
        self._busy: Key | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.fetched_ahead = 0  # how many fetches the thread made (for tests and the benchmark)

    # --- the UI thread's side ---------------------------------------------------------------------

    def get(self, key: Key, fetch: Callable[[], Any]) -> Any:
        """The detail for ``key``: cached, or the background fetch of it awaited, or ``fetch()`` now."""
        with self._cond:
            while self._busy == key:
                self._cond.wait()
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        detail = fetch()
        self._store(key, detail)
        return detail

    def want(self, keys: Sequence[Key]) -> None:
        """Fetch these next, in this order (replaces what was wanted before; cached ones are skipped)."""
        with self._cond:
            if self._closed:
                return
            self._wanted = [k for k in dict.fromkeys(keys) if k not in self._cache and k != self._busy]
            if not self._wanted:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="orienteer-prefetch", daemon=True)
                self._thread.start()
                atexit.register(self.close)  # an app that never unmounted: still stop it before exit
            self._cond.notify_all()

    def cached(self, key: Key) -> bool:
        with self._cond:
            return key in self._cache

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (interrupting a fetch in flight) and close its connection.

        The thread must be gone before the interpreter exits: one killed inside DuckDB aborts the process.
        """
        with self._cond:
            self._closed = True
            self._wanted = []
            thread = self._thread
            self._cond.notify_all()
        self._service.interrupt()  # a fetch in flight stops now
        if thread is not None:
            thread.join(timeout)
        else:
            self._service.close()

    # --- the background thread ------------------------------------------------------------------

    def _store(self, key: Key, detail: Any) -> None:
        with self._cond:
            self._cache[key] = detail
            self._cache.move_to_end(key)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)

    def _loop(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._wanted and not self._closed:
                        if not self._cond.wait(timeout=0.5):
                            self._service.release_if_idle()  # let writers in while nothing is wanted
                    if self._closed:
                        return
                    key = self._wanted.pop(0)
                    self._busy = key
                detail = None
                try:
                    _generation, run, item_id = key
                    detail = self._service.case_detail(run, item_id)
                except Exception:  # noqa: BLE001 - the UI thread fetches it again and reports the error
                    detail = None
                with self._cond:
                    self._busy = None
                    if detail is not None:
                        self.fetched_ahead += 1
                        self._cache[key] = detail
                        while len(self._cache) > self._size:
                            self._cache.popitem(last=False)
                    self._cond.notify_all()
        finally:
            self._service.close()
