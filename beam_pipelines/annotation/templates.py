"""The prompts the annotation model sees: the PRM conversation layout and the region-verification question.

Both are JSON files a user can replace (`--prm_template`, `--verify_template`, local or gs://). The PRM default is
the layout of the VisualPRM400K records, as InternVL's `item2conv_prm` builds them: the process-supervision system
prompt, a first human turn `### Question:\\n{question}\\n\\n### Solution Process:\\n{step}`, each later step a
human turn of its own, and each assistant turn a label: `+` or `-`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

from apache_beam.io.filesystems import FileSystems

PRM_SYSTEM_PROMPT = (
    "You are an advanced AI assistant, designed to serve as a process supervision model. In this task, I will provide "
    "a problem statement followed by the first step of the solution process. For each subsequent turn, I will give "
    "you a new step in the solution. Your role is to assess whether the solution process is correct up to the "
    "current step.\n\n- In the **first round**, I will input the problem and the first step of the solution "
    "process.\n- In **each subsequent round**, I will provide the next step in the solution.\n\nFor each step, you "
    'should:\n\n- Respond with **"+"** if you believe the solution process is correct up to this step.\n- Respond '
    'with **"-"** if you detect any issues or errors in the process up to this step.\n\nPlease note:\n- Only respond '
    'with **"+"** or **"-"**. Do not provide any additional explanations, comments, or justifications.\n\nYour task '
    "is to verify the accuracy and correctness of each step in the given solution process."
)


@dataclass(frozen=True)
class PrmTemplate:
    """How a solution becomes a conversation: `first_turn` formats `{question}` and `{step}`, `step_turn` `{step}`;
    every assistant turn holds `positive` while scoring, and the score is P(positive) against `negative`."""

    system: str = PRM_SYSTEM_PROMPT
    first_turn: str = "### Question:\n{question}\n\n### Solution Process:\n{step}"
    step_turn: str = "{step}"
    positive: str = "+"
    negative: str = "-"

    def first(self, question: str, step: str) -> str:
        return self.first_turn.replace("{question}", question).replace("{step}", step)

    def later(self, step: str) -> str:
        return self.step_turn.replace("{step}", step)


@dataclass(frozen=True)
class VerifyTemplate:
    """The question asked of each region crop about its context (`{context}`); the score is P(yes) against `no`."""

    prompt: str = "Does this image region show what the following text refers to?\n{context}\nAnswer Yes or No."
    yes: str = "Yes"
    no: str = "No"

    def question(self, context: str) -> str:
        return self.prompt.replace("{context}", context)


def load(kind: type, path: str | None):
    """The template in a JSON file (its keys are the dataclass's fields, any may be left out), or the default."""
    if not path:
        return kind()
    if not FileSystems.exists(path):
        raise ValueError(f"template {path!r} does not exist")
    with FileSystems.open(path) as f:
        try:
            body = json.loads(f.read())
        except ValueError as exc:
            raise ValueError(f"template {path!r} is not valid JSON: {exc}") from None
    names = {f.name for f in fields(kind)}
    unknown = sorted(set(body) - names) if isinstance(body, dict) else ["(not an object)"]
    if unknown:
        raise ValueError(f"template {path!r}: unknown keys {unknown}; expected some of {sorted(names)}")
    if not all(isinstance(v, str) for v in body.values()):
        raise ValueError(f"template {path!r}: every value must be a string")
    return kind(**body)
