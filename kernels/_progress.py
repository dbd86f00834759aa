"""Progress bars on stderr (rich), shared by domain sweeps and the report."""

from __future__ import annotations


def start_bar(description: str, total: int):
    """A started, transient rich progress bar on stderr: (progress, task id)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    progress.start()
    return progress, progress.add_task(description, total=total)
