"""Models on the store's shelf: put a trained one, take the newest.

The shelf (``backbeat.sinks.shelf``) makes a put atomic, so a process killed while saving
leaves the previous version the newest; a version that cannot be read is refused with the
reason, never half-loaded. The last :data:`KEEP` versions are kept.

Next: ``service.py`` (who loads them), ``model.py`` (the format).
"""

from __future__ import annotations

import logging
from typing import Final

from backbeat.recommend.model import Model, vars_of
from backbeat.sinks.shelf import Shelf

log = logging.getLogger(__name__)

NAME: Final = "recommender"
KEEP: Final = 3


def save(shelf: Shelf, model: Model) -> Model:
    """Put ``model`` on the shelf as its next version; the model, numbered."""
    about = {
        "trained_at": model.trained_at,
        "through_batch": model.through_batch,
        "users": len(model.user_ids),
        "tracks": len(model.items),
        "params": vars_of(model.params),
    }
    data = model.to_bytes()
    log.info("recommender: saving a model of %d bytes", len(data))
    version = shelf.put(NAME, data, about)
    shelf.prune(NAME, KEEP)
    return model.shelved(version)


def load(shelf: Shelf) -> Model | None:
    """The newest model on the shelf; None when there is none.

    Raises:
        StoreError: the shelf cannot be read, or the newest model is not readable.
    """
    shelved = shelf.latest(NAME)
    return None if shelved is None else Model.from_bytes(shelved.data, shelved.version)
