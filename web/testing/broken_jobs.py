"""A job module that fails to import: loading it must not stop the other modules."""

from durably import define_job


@define_job(name="never-registered")
async def never_registered(step, input):
    return None


raise RuntimeError("this job module is broken on purpose")
