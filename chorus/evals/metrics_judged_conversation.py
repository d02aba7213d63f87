"""The conversational LLM-judged metrics (DeepEval's definitions): role adherence, knowledge retention,
conversation completeness and task completion. The judge gives verdicts; each score is computed here."""

from __future__ import annotations

from chorus.evals.judge import Judge, Verdict
from chorus.evals.metrics_deterministic import Measured
from chorus.evals.observation import ToolCall

DEFAULT_THRESHOLD = 0.5  # DeepEval's default for each of them


def transcript(user_turns: list[str], answers: list[str]) -> str:
    lines = []
    for i in range(max(len(user_turns), len(answers))):
        if i < len(user_turns):
            lines.append(f"User: {user_turns[i]}")
        if i < len(answers):
            lines.append(f"Assistant: {answers[i]}")
    return "\n".join(lines)


def ratio(
    name: str, verdicts: list[Verdict], *, counted: tuple[str, ...], what: str, threshold: float | None
) -> Measured:
    """Score = verdicts in `counted` / all verdicts; passes at ≥ threshold. No verdict: unmeasured."""
    if not verdicts:
        return Measured(None, None, f"nothing to judge: no {what}")
    good = sum(1 for v in verdicts if v.verdict in counted)
    score = good / len(verdicts)
    bar = DEFAULT_THRESHOLD if threshold is None else threshold
    bad = [f"#{i}: {v.reason or v.verdict}" for i, v in enumerate(verdicts, 1) if v.verdict not in counted][:3]
    why = f"{name} {good}/{len(verdicts)} {what} = {score:.3f} (passes at ≥ {bar:g})"
    return Measured(score, score >= bar, why + (f"; {'; '.join(bad)}" if bad else ""))


async def role_adherence(
    judge: Judge, *, user_turns: list[str], answers: list[str], role: str | None, threshold: float | None
) -> Measured:
    """Assistant turns that stay in the chatbot's role / assistant turns (a turn judged "no" is out of role)."""
    if not role:
        return Measured(None, None, "no chatbot role: give it as the value or conversation_context.chatbot_role")
    if not answers:
        return Measured(None, None, "nothing to judge: the bot gave no answer")
    items = [f"(after the user said: {u!r}) {a}" for u, a in zip(user_turns, answers, strict=False)]
    verdicts = await judge.verdicts(
        metric="role_adherence",
        step="turn_verdicts",
        prompt=(
            f"An assistant must play this role:\n<role>\n{role}\n</role>\n\nThe conversation:\n<conversation>\n"
            f"{transcript(user_turns, answers)}\n</conversation>\n\nFor each numbered assistant reply, answer 'no' "
            "if it breaks the role (acts, speaks or claims things outside it), otherwise 'yes'. Give the reason "
            "of each 'no'."
        ),
        items=items,
    )
    return ratio("role adherence", verdicts, counted=("yes", "idk"), what="replies in role", threshold=threshold)


async def knowledge_retention(
    judge: Judge, *, user_turns: list[str], answers: list[str], threshold: float | None
) -> Measured:
    """Assistant turns without attrition / assistant turns (attrition: asking again for, forgetting or
    contradicting what the user said earlier in the conversation)."""
    if not answers:
        return Measured(None, None, "nothing to judge: the bot gave no answer")
    verdicts = await judge.verdicts(
        metric="knowledge_retention",
        step="turn_verdicts",
        prompt=(
            f"The conversation:\n<conversation>\n{transcript(user_turns, answers)}\n</conversation>\n\nFor each "
            "numbered assistant reply, answer 'no' if it shows the assistant forgot what the user told it EARLIER "
            "in the conversation (it asks again for information already given, ignores it, or contradicts it), "
            "otherwise 'yes'. Give the reason of each 'no'."
        ),
        items=answers,
    )
    return ratio("knowledge retention", verdicts, counted=("yes", "idk"), what="replies retaining", threshold=threshold)


async def conversation_completeness(
    judge: Judge, *, user_turns: list[str], answers: list[str], threshold: float | None
) -> Measured:
    """User intentions satisfied / user intentions (the judge lists the intentions, then judges each)."""
    conversation = transcript(user_turns, answers)
    intentions = await judge.statements(
        metric="conversation_completeness",
        step="intentions",
        prompt=(
            f"The conversation:\n<conversation>\n{conversation}\n</conversation>\n\nList what the user wanted "
            "from the assistant over the whole conversation: each distinct intention as one short sentence "
            "(e.g. 'the user wants to know where order 12 is'). Do not list greetings."
        ),
    )
    if not intentions:
        return Measured(None, None, "nothing to judge: the judge found no user intention")
    verdicts = await judge.verdicts(
        metric="conversation_completeness",
        step="intention_verdicts",
        prompt=(
            f"The conversation:\n<conversation>\n{conversation}\n</conversation>\n\nFor each numbered user "
            "intention, answer 'yes' if the assistant satisfied it in the conversation, 'no' if it did not. Give "
            "the reason of each 'no'."
        ),
        items=intentions,
    )
    return ratio(
        "conversation completeness", verdicts, counted=("yes", "idk"), what="intentions satisfied", threshold=threshold
    )


async def task_completion(
    judge: Judge,
    *,
    user_turns: list[str],
    answers: list[str],
    tool_calls: list[ToolCall],
    task: str | None,
    threshold: float | None,
) -> Measured:
    """Success criteria of the task met / success criteria (the judge lists the criteria of the task, then
    judges each against the conversation and the tools the bot called; only 'yes' counts)."""
    if not task:
        return Measured(None, None, "no task: give it as the value or as expected_values.expected_outcome")
    criteria = await judge.statements(
        metric="task_completion",
        step="criteria",
        prompt=(
            f"An assistant was given this task (or goal):\n<task>\n{task}\n</task>\n\nList the concrete, checkable "
            "outcomes that must all hold for the task to be complete, each as one short sentence."
        ),
    )
    if not criteria:
        return Measured(None, None, "nothing to judge: the judge found no success criterion in the task")
    calls = "\n".join(f"- {c.name}({c.arguments})" for c in tool_calls) or "(none)"
    verdicts = await judge.verdicts(
        metric="task_completion",
        step="criteria_verdicts",
        prompt=(
            f"The task:\n<task>\n{task}\n</task>\n\nThe conversation:\n<conversation>\n"
            f"{transcript(user_turns, answers)}\n</conversation>\n\nThe tools the assistant called, in order:\n"
            f"{calls}\n\nFor each numbered success criterion, answer 'yes' only if the conversation and tool calls "
            "show it holds, 'no' if they do not, 'idk' if they do not tell. Give the reason of each 'no' or 'idk'."
        ),
        items=criteria,
    )
    return ratio("task completion", verdicts, counted=("yes",), what="criteria met", threshold=threshold)
