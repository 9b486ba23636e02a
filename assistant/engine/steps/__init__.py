"""One module per dialogue. Each step offers `prompt(state, ctx)` (what to ask on
arrival) and `answer(state, text, ctx)` (what an answer leads to); `STEPS` maps step
names to them. Steps never change `state.step` themselves: they return `Go`, and the
engine applies it through the flow table.
"""

from assistant.engine.steps import book, identify, language, manage, menu, question, request
from assistant.engine.steps.base import StepHandlers

STEPS: dict[str, StepHandlers] = {
    **menu.STEPS,
    **language.STEPS,
    **identify.STEPS,
    **book.STEPS,
    **manage.STEPS,
    **request.STEPS,
    **question.STEPS,
}
