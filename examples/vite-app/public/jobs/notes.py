"""Jobs of the notes example: import pasted notes in steps, with progress and logs.

Notes are separated by blank lines; a note's first line is its title and ``#words`` are
tags. Each batch of notes is one step, so an import interrupted by a reload resumes at
the first batch that did not finish.
"""

from __future__ import annotations

import asyncio
import re

from pydantic import BaseModel, Field

from durably import Step, define_job

TAG = re.compile(r"#([\w-]+)")


class ImportNotesInput(BaseModel):
    text: str = Field(min_length=1, description="notes separated by blank lines")
    batch_size: int = Field(default=5, ge=1, le=1000)
    # Slows each batch down, so a demo can show progress and an interrupted import.
    delay_ms: int = Field(default=0, ge=0, le=10_000)


class Note(BaseModel):
    title: str
    body: str
    tags: list[str]
    words: int


class ImportNotesOutput(BaseModel):
    notes: list[Note]
    tags: dict[str, int]


def parse_note(block: str) -> Note:
    title, _, body = block.strip().partition("\n")
    tags = sorted({tag.lower() for tag in TAG.findall(block)})
    return Note(title=title.strip(), body=body.strip(), tags=tags, words=len(block.split()))


@define_job(name="import-notes", input=ImportNotesInput, output=ImportNotesOutput)
async def import_notes(step: Step, input: ImportNotesInput) -> ImportNotesOutput:
    blocks = await step.run(
        "split", lambda: [b for b in re.split(r"\n\s*\n", input.text) if b.strip()]
    )
    step.log.info(f"found {len(blocks)} notes")
    batches = [blocks[i : i + input.batch_size] for i in range(0, len(blocks), input.batch_size)]
    notes: list[Note] = []
    for index, batch in enumerate(batches):

        async def parse_batch(batch: list[str] = batch) -> list[dict[str, object]]:
            await asyncio.sleep(input.delay_ms / 1000)
            return [parse_note(block).model_dump() for block in batch]

        parsed = await step.run(f"batch-{index}", parse_batch)
        notes.extend(Note.model_validate(note) for note in parsed)
        step.progress(index + 1, len(batches), f"batch {index + 1} of {len(batches)}")
    tags: dict[str, int] = {}
    for note in notes:
        for tag in note.tags:
            tags[tag] = tags.get(tag, 0) + 1
    untitled = sum(1 for note in notes if not note.title)
    if untitled:
        step.log.warn(f"{untitled} notes have no title")
    return ImportNotesOutput(notes=notes, tags=tags)
