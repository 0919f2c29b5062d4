"""The demo app's jobs: a countdown (one step per tick) and a CSV import."""

from __future__ import annotations

import asyncio
import csv
import io

from pydantic import BaseModel, Field

from durably import Step, define_job


class CountdownInput(BaseModel):
    steps: int = Field(ge=0, le=10_000)
    step_ms: int = Field(default=100, ge=0, le=60_000)


class CountdownOutput(BaseModel):
    completed: int


@define_job(name="countdown", input=CountdownInput, output=CountdownOutput)
async def countdown(step: Step, input: CountdownInput) -> CountdownOutput:
    for i in range(input.steps):

        async def tick(i: int = i) -> int:
            # Logged inside the step, so each execution of a step leaves exactly one line.
            step.log.info(f"executing step-{i}")
            await asyncio.sleep(input.step_ms / 1000)
            return i

        await step.run(f"step-{i}", tick)
        step.progress(i + 1, input.steps, f"step {i + 1} of {input.steps}")
    return CountdownOutput(completed=input.steps)


class ImportCsvInput(BaseModel):
    csv: str = Field(min_length=1, description="CSV text with a header row")
    chunk_rows: int = Field(default=500, ge=1, le=100_000)


class ImportCsvOutput(BaseModel):
    rows: int
    columns: list[str]
    sums: dict[str, float]


@define_job(name="import-csv", input=ImportCsvInput, output=ImportCsvOutput)
async def import_csv(step: Step, input: ImportCsvInput) -> ImportCsvOutput:
    """Parse a CSV, then sum its numeric columns chunk by chunk (one step per chunk)."""

    def parse() -> dict[str, object]:
        reader = csv.reader(io.StringIO(input.csv))
        header = next(reader, [])
        rows = [row for row in reader if row]
        return {"columns": header, "rows": len(rows)}

    shape = await step.run("parse", parse)
    columns: list[str] = shape["columns"]
    total_rows: int = shape["rows"]
    step.log.info("parsed CSV", {"columns": columns, "rows": total_rows})

    sums: dict[str, float] = {name: 0.0 for name in columns}
    numeric = set(columns)  # columns every chunk could sum
    chunks = max(1, -(-total_rows // input.chunk_rows))
    for chunk in range(chunks):

        def aggregate(chunk: int = chunk) -> dict[str, float]:
            rows = [r for r in csv.reader(io.StringIO(input.csv)) if r][1:]
            part = rows[chunk * input.chunk_rows : (chunk + 1) * input.chunk_rows]
            result: dict[str, float] = {}
            for index, name in enumerate(columns):
                try:
                    result[name] = sum(float(r[index]) for r in part if index < len(r))
                except ValueError:
                    continue  # a non-numeric column is not summed
            return result

        partial = await step.run(f"aggregate-{chunk}", aggregate)
        numeric &= set(partial)
        for name, value in partial.items():
            sums[name] += value
        step.progress(chunk + 1, chunks, f"chunk {chunk + 1} of {chunks}")
    skipped = [name for name in columns if name not in numeric]
    if skipped:
        step.log.warn("skipped non-numeric columns", skipped)
    return ImportCsvOutput(
        rows=total_rows, columns=columns, sums={n: sums[n] for n in columns if n in numeric}
    )
