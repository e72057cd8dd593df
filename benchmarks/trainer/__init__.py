"""``modelci bench interference``: how much a training update slows Triton serving.

`run` orchestrates; `load` (a steady request load against Triton) and `job` (the trainer's
training path under interference control on or off) run as their own processes, as they would
in production, so that niceness, scheduler class and thread limits apply to training only.
"""
