"""User data sets read with their faults named, and their ends checked.

A ``Dataset`` is the user's code: its ``__len__`` and ``__getitem__`` may raise anything, and
an ``IterableDataset`` (or a ``DataLoader`` over an endless sampler) need not end at all. Every
pass over one goes through here, so a fault is one line naming the data set, the item's index
and the exception, and a data set that yields more than its ``len()`` says is refused instead
of being read forever.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from torch.utils.data import Dataset, IterableDataset

from engine.errors import DataSetError, describe

__all__ = ["Indexed", "bounded", "checked_len", "indexed", "loader_error", "sigterm_blocked"]


def checked_len(ds: object, key: str) -> int:
    """``len(ds)``, or one line when it raises or is not a count (a negative ``__len__``)."""
    try:
        n = len(ds)  # type: ignore[arg-type]
    except TypeError as e:
        if "has no len" in str(e):
            what = "Dataset" if isinstance(ds, Dataset) else f"{type(ds).__name__}, not a Dataset,"
            raise DataSetError(f"`{key}` returned a {what} without __len__.") from None
        raise DataSetError(f"`{key}`: len() of the data set failed ({describe(e)})") from e
    except Exception as e:  # a __len__ that raises, or returns a negative number
        raise DataSetError(f"`{key}`: len() of the data set failed ({describe(e)})") from e
    return n


class Indexed(Dataset):
    """A map-style data set whose item errors name the data set and the index."""

    def __init__(self, ds: Dataset, key: str, n: int) -> None:
        self.ds, self.key, self.n = ds, key, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        try:
            return self.ds[i]
        except Exception as e:
            # An IndexError before len() is a __len__ that says more than there is.
            lying = f"; its len() says {self.n}" if isinstance(e, IndexError) else ""
            raise DataSetError(f"`{self.key}`: reading item {i} raised {describe(e)}{lying}") from e


class _IndexedMany(Indexed):
    """``Indexed`` for a data set that fetches a batch at once (``__getitems__``, as Hugging
    Face datasets do): the DataLoader keeps calling it so."""

    def __getitems__(self, indices: list[int]) -> Any:
        try:
            return self.ds.__getitems__(indices)  # type: ignore[attr-defined]
        except Exception as e:
            where = f"items {indices[0]}..{indices[-1]}" if indices else "no items"
            raise DataSetError(f"`{self.key}`: reading {where} raised {describe(e)}") from e


def indexed(ds: Dataset, key: str, n: int) -> Dataset:
    """``ds`` with named item errors; an IterableDataset has no items to index."""
    if isinstance(ds, IterableDataset):
        return ds
    return (_IndexedMany if callable(getattr(ds, "__getitems__", None)) else Indexed)(ds, key, n)


def loader_error(e: BaseException) -> str:
    """The user's error inside a DataLoader, as one line: a worker's error comes back as
    "Caught X in DataLoader worker process 0." plus its traceback, whose last line is it."""
    text = str(e)
    if "in DataLoader worker process" in text:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        last = lines[-1] if lines else type(e).__name__
        return last.split(".DataSetError: ", 1)[-1].removeprefix("DataSetError: ")
    return str(e) if isinstance(e, DataSetError) else describe(e)


@contextlib.contextmanager
def sigterm_blocked() -> Iterator[None]:
    """SIGTERM held back while the block runs (delivered when it ends), and blocked for good
    in the processes it forks: a DataLoader's workers. A ``kill`` of the whole process group
    (a scheduler's time limit) then reaches the main process alone, which stops the loader and
    its workers cleanly; a worker killed under the loader made it raise, with a traceback
    and an exit code of 1 instead of 143. The workers still end with their parent."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks, no fork
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def bounded(
    batches: Iterable[Any],
    n: int,
    key: str,
    size_of: Callable[[Any], int | None],
    what: str = "samples",
) -> Iterator[Any]:
    """The batches of one pass, refused once they hold more than the ``n`` samples (or come
    in more than ``n`` batches) that the data set's ``len()`` promised: an endless
    IterableDataset or sampler ends here in one line instead of never."""
    seen = count = 0
    with sigterm_blocked():  # a DataLoader's workers start here, and keep the mask
        it = iter(batches)
    try:
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except DataSetError as e:  # re-raised by a DataLoader from its worker: one line
                raise DataSetError(loader_error(e)) from e
            seen += size_of(batch) or 0
            count += 1
            if seen > n or count > n:
                raise DataSetError(
                    f"`{key}` yields more than the {n} {what} its len() says (it may never "
                    "end); a data set must end where its len() says"
                )
            yield batch
    finally:
        # A pass left early (a first batch taken for a check, an error) stops the loader's
        # workers now, not whenever the garbage collector finds the iterator: there a
        # Ctrl-C or SIGTERM would land in a finalizer, which swallows it.
        stop = getattr(it, "_shutdown_workers", None)
        if stop is not None:
            stop()
