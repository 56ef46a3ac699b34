"""Exit codes, one meaning each, for every ttlive command."""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # it ran, and what it judged failed: an invariant, a difference, a refused control
EXIT_USAGE: Final = 2  # bad input (a file, key and line are named), or a refusal before anything ran
EXIT_INTERRUPTED: Final = 130  # stopped by SIGINT (the shell's code); what finished is reported
