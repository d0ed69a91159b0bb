"""Byte progress for the kaggle client's blob uploads (dataset files, submissions).

The client streams each file through its module-level `TqdmBufferedReader` and draws its own tqdm bar only when
not quiet (kit always calls it quiet, and its bar would go to the captured stdout). While `upload_progress` is
active, that reader also reports each chunk to kit's callback, so kit draws one bar of its own on stderr.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator


@contextlib.contextmanager
def upload_progress(on_bytes: Callable[[int], None]) -> Iterator[None]:
    """Report the bytes the client uploads to `on_bytes` until the block ends."""
    import sys

    from kit.backends.kaggle.session import RetryPolicy, import_client

    # Import the client as kit does (its import authenticates and prints; both captured), then patch its module.
    client = sys.modules[import_client(RetryPolicy.from_env().timeout).__module__]
    original = client.TqdmBufferedReader

    class Reader(original):  # type: ignore[misc, valid-type]
        def increment(self, length: int) -> None:
            on_bytes(length)
            super().increment(length)

    client.TqdmBufferedReader = Reader
    try:
        yield
    finally:
        client.TqdmBufferedReader = original
