"""``backbeat serve``: the REST API and the live dashboard over a store another process writes.

Next: ``backbeat.serve.app`` (the app), ``backbeat.serve.hub`` (live pushes).
"""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from backbeat.commands.common import api_token, err_console, guard, settings, store_option
from backbeat.commands.stream import StoreOption
from backbeat.ui.text import plain


def serve(
    store: StoreOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port.")] = 8000,
    recommend: Annotated[
        bool,
        typer.Option(
            "--recommend",
            help="Also serve recommendations from the store's newest model, folding in each "
            "commit (backbeat[recommend]).",
        ),
    ] = False,
) -> None:
    """The REST API and the live dashboard over a store (Ctrl-C stops).

    Reads a store that is idle or written by `backbeat stream --group` members (they hold
    the file only while committing); `backbeat demo` serves its own store itself. A store
    with no results yet is served empty until its first commit.
    """
    from backbeat import wiring
    from backbeat.serve.app import WebServer, create_app
    from backbeat.serve.hub import CommitHub, StoreWatcher, latest_batch
    from backbeat.sinks.registry import open_reader

    def body() -> None:
        current = settings()
        where = store_option(store) or current.store
        reader = open_reader(where, until_ready=True)
        extras = contextlib.ExitStack()
        if recommend:
            reader = extras.enter_context(wiring.recommending(reader, where))
        hub = CommitHub(latest_batch(reader))
        web = WebServer(create_app(reader, hub, api_token(current)), host, port)
        watcher = StoreWatcher(reader, hub)
        watcher.start()
        err_console.print(plain(f"dashboard: {web.url} (API docs: {web.url}docs)"))
        try:
            web.run()
        finally:
            watcher.stop()
            extras.close()
            reader.close()

    guard(body)
