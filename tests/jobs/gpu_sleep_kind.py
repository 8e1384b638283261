"""A kind that needs a GPU but does nothing heavy: the sleep kind marked ``needs_gpu`` (tests only)."""

import dataclasses

from orienteer.jobs.kinds.sleep import KIND as SLEEP

KIND = dataclasses.replace(SLEEP, name="gpu-sleep", needs_gpu=True)
