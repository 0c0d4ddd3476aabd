"""Self-checks for the course's exercises: one line per criterion, a hint when wrong, a verdict.

A notebook's check cell calls e.g. ``nb01.check_standardise(data, standardised)``; each check function
builds a :class:`Checker`, records criteria that test behaviour (values, shapes, gradients), and ends
with :meth:`Checker.verdict`. With ``COURSE_STRICT_CHECKS=1`` (CI, the solutions editions) a failed or
unanswered exercise raises :class:`CheckFailed`, so a solution and its check cannot drift apart.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Any

__all__ = ["CheckFailed", "Checker", "exercise", "strict"]


class CheckFailed(AssertionError):
    """Raised in strict mode when an exercise's check fails or the exercise is not answered."""


def strict() -> bool:
    """True when COURSE_STRICT_CHECKS is set to 1/true/yes: failed checks raise instead of printing."""
    return os.environ.get("COURSE_STRICT_CHECKS", "").strip().lower() in ("1", "true", "yes")


class Checker:
    """Collects the criteria of one exercise's check and prints them as ✅/❌ lines with hints."""

    def __init__(self, title: str, *, printer: Callable[[str], None] = print) -> None:
        self.title = title
        self.passed: list[str] = []
        self.failed: list[str] = []
        self.answered = True
        self._print = printer

    def unanswered(self, missing: bool, hint: str) -> bool:
        """Report "⏳ not answered yet" (strict mode: raise) when `missing`; True means stop checking."""
        if not missing:
            return False
        self.answered = False
        if strict():
            raise CheckFailed(f"{self.title}: not answered yet (a solutions edition must answer it). Hint: {hint}")
        self._print(f"⏳ {self.title}: not answered yet. Hint: {hint}")
        return True

    def check(self, condition: bool | Callable[[], Any], what: str, hint: str) -> bool:
        """One criterion: `condition` (or a callable returning it; an exception counts as failed)."""
        detail = ""
        if callable(condition):
            try:
                condition = condition()
            except Exception as error:  # the learner's code may raise anything; that is a finding, not a crash
                condition, detail = False, f" (raised {type(error).__name__}: {error})"
        ok = bool(condition)
        (self.passed if ok else self.failed).append(what)
        self._print(f"✅ {what}" if ok else f"❌ {what}{detail}. Hint: {hint}")
        return ok

    def verdict(self) -> bool:
        """Print the final line; True when every criterion passed (strict mode: raise otherwise)."""
        if not self.answered:
            return False
        total = len(self.passed) + len(self.failed)
        if not self.failed:
            self._print(f"🎉 {self.title}: all {total} checks passed.")
            return True
        message = f"{self.title}: {len(self.failed)} of {total} checks failed ({'; '.join(self.failed)})"
        if strict():
            raise CheckFailed(message)
        self._print(f"🔁 {message}. Read the hints, change your code and run the check again.")
        return False


def exercise(title: str, hint: str) -> Callable[[Callable[..., None]], Callable[..., bool]]:
    """Make `body(c, answer, ...)` a check(answer, ...): None is "not answered yet", then body's criteria, a verdict."""

    def wrap(body: Callable[..., None]) -> Callable[..., bool]:
        @functools.wraps(body)
        def check(answer: Any, *args: Any, **kwargs: Any) -> bool:
            c = Checker(title)
            if c.unanswered(answer is None, hint):
                return False
            body(c, answer, *args, **kwargs)
            return c.verdict()

        params = list(inspect.signature(body).parameters.values())[1:]  # what the notebook passes: no Checker
        check.__signature__ = inspect.signature(body).replace(parameters=params, return_annotation=bool)
        return check

    return wrap
