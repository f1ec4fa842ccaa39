"""One BLAS thread while ``implicit`` works, and its ALS model built in one place.

``implicit`` parallelizes its own loops and warns when OpenBLAS also runs several threads
(they fight over the cores: it is slower, not faster). :func:`one_blas_thread` limits the BLAS
libraries that are loaded, so ``implicit`` (which loads SciPy's OpenBLAS) is imported first;
every fit and partial fit runs inside it.

Next: ``model.py`` (training), ``service.py`` (updates).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from backbeat.errors import MissingExtraError

if TYPE_CHECKING:
    from implicit.cpu.als import AlternatingLeastSquares


def _implicit() -> Any:
    try:
        import implicit.cpu.als
        import scipy.sparse  # noqa: F401 - history.py needs it too
        import threadpoolctl
    except ImportError as exc:
        raise MissingExtraError("recommendations", "recommend") from exc
    return implicit.cpu.als, threadpoolctl


def one_blas_thread_for_good() -> None:
    """Limit the loaded BLAS libraries to one thread each, for the rest of the process: a
    server ranks for many requests at once, each on a thread of its own, and a BLAS pool per
    request would fight them for the cores."""
    _, threadpoolctl = _implicit()
    threadpoolctl.threadpool_limits(1, "blas")


def require() -> None:
    """Raise :class:`MissingExtraError` unless ``backbeat[recommend]`` is installed."""
    _implicit()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with the loaded BLAS libraries limited to one thread each."""
    _, threadpoolctl = _implicit()
    with threadpoolctl.threadpool_limits(1, "blas"):
        yield


def als(
    *, factors: int, iterations: int, regularization: float, seed: int, threads: int = 0
) -> AlternatingLeastSquares:
    """An untrained ALS model (confidence comes from the matrix it is fitted on); ``threads``
    for its loops, 0: one per core."""
    als_module, _ = _implicit()
    with one_blas_thread():  # the constructor checks the BLAS threads too
        model: AlternatingLeastSquares = als_module.AlternatingLeastSquares(
            factors=factors,
            iterations=iterations,
            regularization=regularization,
            alpha=1.0,
            random_state=seed,
            num_threads=threads,
        )
    return model
