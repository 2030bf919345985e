"""Where a pipeline was written, so an error about it can name a file and a line.

The IR holds no positions (it is data a runner may receive); the renderer sends
them alongside: the line of the ``@pipeline`` decorator and of each ``step()`` /
``wait()`` call. An IR JSON file has no lines: a step is located by its
``steps[N]`` index, which every problem message already names.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Origin"]


@dataclass(frozen=True, slots=True)
class Origin:
    """The file a pipeline came from (as shown to the user) and, for the DSL, its lines.

    :param file: the pipeline file, relative to the project root when inside it.
    :param line: the ``@pipeline`` decorator's line; ``None`` for IR JSON.
    :param steps: ``file:line`` of the call that declared ``steps[i]`` (a helper
        function may live in another file); empty for IR JSON.
    """

    file: str
    line: int | None = None
    steps: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        """``file:line`` of the pipeline, or just ``file``."""
        return f"{self.file}:{self.line}" if self.line else self.file

    def of_step(self, index: int) -> str | None:
        """``file:line`` of ``steps[index]``, or ``None`` when it is not known."""
        return self.steps[index] if 0 <= index < len(self.steps) else None
