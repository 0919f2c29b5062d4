"""Imported by json.py as a sibling; also defines a job name that reliability_jobs.py
already defines, which must be reported without stopping the boot."""

from durably import define_job

GREETING = "hello from a sibling"


@define_job(name="echo")
async def echo_again(step, input):
    return "the second echo must never run"
