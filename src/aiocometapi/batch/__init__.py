"""Batch runs: an OpenAI Batch API JSONL file answered through the API, resumably.

Input lines are OpenAI's ``{"custom_id", "method", "url", "body"}``; every answer is appended to
the output as one ``{"id", "custom_id", "response", "error"}`` line, written with a single
``os.write`` as soon as it arrives. A rerun with the same output skips the ``custom_id``s it
already holds, so a job stopped in any way resumes without answering a line twice.
``aiocometapi batch`` is this package on the command line.

Modules: ``input`` (the request lines, read and checked), ``output`` (the answer lines,
written and read back), ``report`` (what the user is told: progress, summary, exit status),
``run`` (one run: the lines fanned out, the answers written, the early stop).
"""

from .report import BatchError, BatchSummary
from .run import BatchOptions, run_batch

__all__ = ["BatchError", "BatchOptions", "BatchSummary", "run_batch"]
