"""A job module named like a standard-library module: it is loaded as durably_jobs.json,
so `import json` everywhere (here too) still gets the standard library."""

import json
import sys

from durably import define_job

from . import job_helpers


@define_job(name="named-like-json")
async def named_like_json(step, input):
    return {
        "dumps": json.dumps([1]),
        "stdlib": sys.modules["json"] is json and hasattr(json, "JSONDecoder"),
        "module": __name__,
        "helper": job_helpers.GREETING,
    }
